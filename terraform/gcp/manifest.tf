# The wiring of every function, mirroring infra/functions.toml entry by entry.
# tests/e2e/terraform_manifest.rs fails when the two differ, and the stack's resources
# are for_each over these locals, so editing the manifest means editing this block.
#
# Cloud Scheduler takes the manifest's five-field cron as it is. `authorizer` only
# matters on AWS; here API Gateway checks ID tokens itself (gateway.tf).

locals {
  max_attempts = 5

  collections = ["api_keys", "interviews", "turns", "evaluations", "prompts", "optimize_runs"]

  functions = {
    auth = {
      memory_mb   = 256
      timeout_s   = 10
      authorizer  = true
      routes      = ["GET /v1/auth/whoami", "POST /v1/auth/api-keys", "GET /v1/auth/api-keys", "GET /v1/auth/api-keys/{id}", "DELETE /v1/auth/api-keys/{id}"]
      storage     = []
      queues      = []
      schedules   = []
      reads       = []
      writes      = []
      publishes   = []
      collections = ["api_keys"]
      secrets     = []
    }
    scrape = {
      memory_mb   = 512
      timeout_s   = 30
      authorizer  = false
      routes      = ["POST /v1/scrape"]
      storage     = []
      queues      = ["scrape"]
      schedules   = []
      reads       = ["scrape/cache/"]
      writes      = ["scrape/cache/", "scrape/results/"]
      publishes   = []
      collections = ["api_keys"]
      secrets     = []
    }
    parse = {
      memory_mb   = 1024
      timeout_s   = 60
      authorizer  = false
      routes      = ["POST /v1/parse", "POST /v1/parse/uploads"]
      storage     = [{ prefix = "uploads/resumes/", suffix = "" }]
      queues      = []
      schedules   = []
      reads       = ["uploads/resumes/", "models/"]
      writes      = ["parsed/resumes/", "uploads/resumes/"]
      publishes   = []
      collections = ["api_keys"]
      secrets     = []
    }
    transcribe = {
      memory_mb   = 2048
      timeout_s   = 300
      authorizer  = false
      routes      = ["POST /v1/transcribe", "POST /v1/transcribe/uploads"]
      storage     = [{ prefix = "uploads/audio/", suffix = "" }]
      queues      = []
      schedules   = []
      reads       = ["uploads/audio/", "models/"]
      writes      = ["transcripts/", "uploads/audio/"]
      publishes   = ["transcripts"]
      collections = ["api_keys"]
      secrets     = []
    }
    evaluate = {
      memory_mb   = 1024
      timeout_s   = 30
      authorizer  = false
      routes      = ["POST /v1/evaluate"]
      storage     = []
      queues      = ["evaluate"]
      schedules   = []
      reads       = ["models/", "transcripts/"]
      writes      = []
      publishes   = []
      collections = ["api_keys", "evaluations", "turns"]
      secrets     = ["llm"]
    }
    agent = {
      memory_mb   = 1024
      timeout_s   = 60
      authorizer  = false
      routes      = ["POST /v1/interviews", "GET /v1/interviews", "GET /v1/interviews/{id}", "POST /v1/interviews/{id}/turns", "POST /v1/interviews/{id}/report", "POST /v1/interviews/{id}/turns/{n}/rating"]
      storage     = []
      queues      = ["agent", "transcripts", "replays"]
      schedules   = []
      reads       = ["models/", "parsed/resumes/", "transcripts/", "scrape/results/", "indexes/"]
      writes      = ["indexes/question-bank/"]
      publishes   = []
      collections = ["api_keys", "interviews", "turns", "evaluations", "prompts", "optimize_runs"]
      secrets     = ["llm"]
    }
    optimize = {
      memory_mb   = 1024
      timeout_s   = 900
      authorizer  = false
      routes      = ["GET /v1/prompts"]
      storage     = []
      queues      = ["optimize"]
      schedules   = [{ name = "optimize-nightly", cron = "0 3 * * *", payload = { window_hours = 24 } }]
      reads       = ["models/"]
      writes      = []
      publishes   = ["optimize", "replays"]
      collections = ["api_keys", "turns", "prompts", "optimize_runs"]
      secrets     = ["llm"]
    }
  }
}

# Derived views: one element per resource instance, keyed stably.
locals {
  routes = merge([
    for fn, f in local.functions : {
      for r in f.routes : r => { function = fn, method = split(" ", r)[0], path = split(" ", r)[1] }
    }
  ]...)

  storage_triggers = merge([
    for fn, f in local.functions : {
      for i, s in f.storage : "${fn}-${i}" => { function = fn, prefix = s.prefix, suffix = s.suffix }
    }
  ]...)

  # Queue name => consuming function. One consumer per queue (the manifest test checks
  # it): a queue message or push delivery goes to one function.
  queue_consumers = merge([
    for fn, f in local.functions : { for q in f.queues : q => fn }
  ]...)

  schedules = merge([
    for fn, f in local.functions : {
      for s in f.schedules : s.name => merge(s, { function = fn })
    }
  ]...)

  secret_names = toset(flatten([for f in values(local.functions) : f.secrets]))
}
