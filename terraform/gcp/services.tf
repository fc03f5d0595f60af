# One Cloud Run service and one service account per manifest entry, and the roles that
# entry asks for: objects under its read and write prefixes (IAM conditions), the topics
# it publishes to, the Firestore database, the secrets it names.

locals {
  registry = coalesce(var.image_registry, "${var.region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.images.repository_id}")

  firebase_project = coalesce(var.firebase_project_id, var.project)
  firestore_db     = coalesce(var.firestore_database, var.name_prefix)
  models_uri       = coalesce(var.models_uri, "gs://${google_storage_bucket.uploads.name}/models/")

  common_env = merge(
    {
      CATALYST_BLOB_URL   = "gs://${google_storage_bucket.uploads.name}/"
      CATALYST_STORE_URL  = "firestore://${var.project}/${local.firestore_db}"
      CATALYST_QUEUE_URL  = "pubsub://projects/${var.project}/topics/${var.name_prefix}"
      CATALYST_MODELS_DIR = "/tmp/models"
      CATALYST_LOG_FORMAT = "json"
      FIREBASE_PROJECT_ID = local.firebase_project
    },
    var.otlp_endpoint == "" ? {} : { OTEL_EXPORTER_OTLP_ENDPOINT = var.otlp_endpoint },
  )
  model_env = { for k, v in var.model_paths : k => "${trimsuffix(local.models_uri, "/")}/${v}/" }
  llm_env = merge(
    var.llm_url == "" ? {} : { LLM_URL = var.llm_url },
    var.llm_model == "" ? {} : { LLM_MODEL = var.llm_model },
  )

  llm_on_vertex = !var.llm_api_key_in_secret && strcontains(var.llm_url, "aiplatform.googleapis.com")

  function_env = {
    for fn, f in local.functions : fn => merge(
      local.common_env,
      contains(f.reads, "models/") ? local.model_env : {},
      contains(f.secrets, "llm") ? local.llm_env : {},
      # Google's API Gateway answers no CORS preflight itself: it passes them on (see
      # gateway.tf) and the service answers for these origins.
      length(f.routes) > 0 && length(var.cors_allowed_origins) > 0 ? { CORS_ALLOWED_ORIGINS = join(",", var.cors_allowed_origins) } : {},
      # `<NAME>_API_KEY_SECRET` names the secret to read at cold start (LLM_API_KEY_SECRET for `llm`).
      { for s in f.secrets : "${upper(s)}_API_KEY_SECRET" => google_secret_manager_secret.this[s].id if s != "llm" || var.llm_api_key_in_secret },
    )
  }

  # Who may invoke each service: the gateway for routes, the push account for storage
  # and queue deliveries, the scheduler account for schedules. Nobody else.
  invokers = {
    for fn, f in local.functions : fn => merge(
      length(f.routes) > 0 ? { gateway = "serviceAccount:${google_service_account.gateway.email}" } : {},
      length(f.storage) + length(f.queues) > 0 ? { push = "serviceAccount:${google_service_account.push.email}" } : {},
      length(f.schedules) > 0 ? { scheduler = "serviceAccount:${google_service_account.scheduler.email}" } : {},
    )
  }

  bucket_objects = "projects/_/buckets/${google_storage_bucket.uploads.name}/objects/"
}

module "service" {
  source   = "../modules/gcp-service"
  for_each = local.functions

  project   = var.project
  region    = var.region
  name      = "${var.name_prefix}-${each.key}"
  function  = each.key
  image     = "${local.registry}/${each.key}:${var.image_tag}"
  memory_mb = each.value.memory_mb
  timeout_s = each.value.timeout_s
  # API Gateway reaches services over the internet; Pub/Sub push and Cloud Scheduler
  # count as internal traffic, so services without routes take internal traffic only.
  ingress             = length(each.value.routes) > 0 ? "INGRESS_TRAFFIC_ALL" : "INGRESS_TRAFFIC_INTERNAL_ONLY"
  invokers            = local.invokers[each.key]
  environment         = local.function_env[each.key]
  max_instances       = var.max_instances
  deletion_protection = var.deletion_protection
  labels              = merge({ app = "catalyst", function = each.key }, var.labels)

  depends_on = [google_project_service.this]
}

# The callers: API Gateway's backend identity, Pub/Sub push, Cloud Scheduler.
resource "google_service_account" "gateway" {
  project      = var.project
  account_id   = "${var.name_prefix}-gateway"
  display_name = "Catalyst API Gateway backend identity"
}

resource "google_service_account" "push" {
  project      = var.project
  account_id   = "${var.name_prefix}-push"
  display_name = "Catalyst Pub/Sub push deliveries"
}

resource "google_service_account" "scheduler" {
  project      = var.project
  account_id   = "${var.name_prefix}-scheduler"
  display_name = "Catalyst Cloud Scheduler jobs"
}

# Object access by prefix: uniform bucket-level access lets IAM conditions match
# object names. Listing is not granted (a list is checked against the bucket, not a
# prefix); the functions address objects by key.
resource "google_storage_bucket_iam_member" "reads" {
  for_each = { for fn, f in local.functions : fn => f.reads if length(f.reads) > 0 }

  bucket = google_storage_bucket.uploads.name
  role   = "roles/storage.objectViewer"
  member = module.service[each.key].member
  condition {
    title      = "${each.key}-reads"
    expression = join(" || ", [for p in each.value : "resource.name.startsWith(\"${local.bucket_objects}${p}\")"])
  }
}

resource "google_storage_bucket_iam_member" "writes" {
  for_each = { for fn, f in local.functions : fn => f.writes if length(f.writes) > 0 }

  bucket = google_storage_bucket.uploads.name
  # objectUser, not objectCreator: idempotent writes overwrite, which needs delete.
  role   = "roles/storage.objectUser"
  member = module.service[each.key].member
  condition {
    title      = "${each.key}-writes"
    expression = join(" || ", [for p in each.value : "resource.name.startsWith(\"${local.bucket_objects}${p}\")"])
  }
}

# Signed upload URLs (routes ending in /uploads): on Cloud Run there is no key file, so a
# function signs through the IAM signBlob API as its own account, which needs this role
# on that one account and nothing wider.
resource "google_service_account_iam_member" "sign_uploads" {
  for_each = { for fn, f in local.functions : fn => f if anytrue([for r in f.routes : endswith(r, "/uploads")]) }

  service_account_id = module.service[each.key].service_account_id
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = module.service[each.key].member
}

# Firestore IAM stops at the database: collections cannot be told apart, so each
# function gets the one database and nothing else in the project.
resource "google_project_iam_member" "firestore" {
  for_each = { for fn, f in local.functions : fn => f if length(f.collections) > 0 }

  project = var.project
  role    = "roles/datastore.user"
  member  = module.service[each.key].member
  condition {
    title      = "${each.key}-firestore"
    expression = "resource.name == \"projects/${var.project}/databases/${local.firestore_db}\""
  }
}

resource "google_pubsub_topic_iam_member" "publishes" {
  for_each = merge([
    for fn, f in local.functions : { for q in f.publishes : "${fn}-${q}" => { function = fn, queue = q } }
  ]...)

  topic  = google_pubsub_topic.queue[each.value.queue].id
  role   = "roles/pubsub.publisher"
  member = module.service[each.value.function].member
}

resource "google_secret_manager_secret_iam_member" "access" {
  for_each = merge([
    for fn, f in local.functions : { for s in f.secrets : "${fn}-${s}" => { function = fn, secret = s } }
  ]...)

  secret_id = google_secret_manager_secret.this[each.value.secret].id
  role      = "roles/secretmanager.secretAccessor"
  member    = module.service[each.value.function].member
}

# Vertex AI without a key: the LLM functions call it with their own service accounts.
resource "google_project_iam_member" "vertex" {
  for_each = { for fn, f in local.functions : fn => f if contains(f.secrets, "llm") && local.llm_on_vertex }

  project = var.project
  role    = "roles/aiplatform.user"
  member  = module.service[each.key].member
}

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:Images hold open-source binaries and public model files, no user data; Google-managed encryption at rest is enough.
  project       = var.project
  location      = var.region
  repository_id = var.repository
  format        = "DOCKER"
  description   = "Catalyst function images, one per function"

  # Old untagged images pile up with every deploy.
  cleanup_policies {
    id     = "drop-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.this]
}
