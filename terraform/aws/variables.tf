variable "region" {
  description = "AWS region of the whole stack."
  type        = string
  default     = "us-east-1"
}

variable "name_prefix" {
  description = "Prefix of every resource name (functions, queues, tables, bucket); the functions derive queue and table names from it."
  type        = string
  default     = "catalyst"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

variable "lambda_dir" {
  description = "Directory with <fn>/bootstrap.zip for every function (`catalyst package aws` writes target/lambda)."
  type        = string
  default     = "../../target/lambda"
}

variable "architecture" {
  description = "Lambda architecture the zips were built for: arm64 (Graviton) or x86_64."
  type        = string
  default     = "arm64"
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention for functions and API access logs (logs carry user ids; lower it if policy allows)."
  type        = number
  default     = 365
}

variable "firebase_project_id" {
  description = "Firebase project whose ID tokens sign users in (FIREBASE_PROJECT_ID). Empty: API keys only."
  type        = string
  default     = ""
}

variable "cors_allowed_origins" {
  description = "Browser origins allowed to call the API and to upload to the bucket with signed URLs."
  type        = list(string)
  default     = ["http://localhost:3000"]
}

variable "models_uri" {
  description = "Where model files live; null means models/ in the stack's bucket (upload them there, see README)."
  type        = string
  default     = null
}

variable "model_paths" {
  description = "Model directories under models_uri, by environment variable."
  type        = map(string)
  default = {
    MINILM_MODEL     = "minilm"
    WHISPER_MODEL    = "whisper-tiny.en"
    SKILLS_GAZETTEER = "skills"
    LLM_MODEL_PATH   = "smollm2-135m"
  }
}

variable "model_tmp_mb" {
  description = "/tmp size of functions that load models (fetched there once per cold start)."
  type        = number
  default     = 4096
}

variable "llm_url" {
  description = "OpenAI-compatible endpoint for hosted LLM calls (LLM_URL); empty uses the local model."
  type        = string
  default     = ""
}

variable "llm_model" {
  description = "Model name sent to llm_url (LLM_MODEL)."
  type        = string
  default     = ""
}

variable "llm_api_key_in_secret" {
  description = "Functions read the hosted LLM's API key from the `llm` secret at cold start (LLM_API_KEY_SECRET). Set false for an endpoint that takes no key."
  type        = bool
  default     = true
}

variable "secret_values" {
  description = "Initial values of the manifest's secrets, by name (e.g. { llm = \"sk-...\" }). Leave out to set them outside Terraform (they then stay out of the state)."
  type        = map(string)
  default     = {}
  sensitive   = true
}

variable "otlp_endpoint" {
  description = "OTLP/HTTP endpoint for trace export (OTEL_EXPORTER_OTLP_ENDPOINT), e.g. an ADOT collector; empty: X-Ray active tracing only."
  type        = string
  default     = ""
}

variable "reserved_concurrency" {
  description = "Reserved concurrency per function name; functions not listed use the unreserved pool."
  type        = map(number)
  default     = {}
}

variable "api_throttle" {
  description = "API Gateway default route throttling."
  type = object({
    burst_limit = number
    rate_limit  = number
  })
  default = {
    burst_limit = 200
    rate_limit  = 100
  }
}

variable "authorizer_cache_ttl_s" {
  description = "How long API Gateway caches an authorizer answer per Authorization header (0-3600); revoked API keys keep working this long."
  type        = number
  default     = 300
}

variable "uploads_expire_days" {
  description = "Days after which raw uploads (uploads/) are deleted; the parsed results stay. 0 keeps them."
  type        = number
  default     = 90
}

variable "noncurrent_version_expire_days" {
  description = "Days overwritten or deleted object versions are kept."
  type        = number
  default     = 30
}

variable "deletion_protection" {
  description = "Protect the DynamoDB tables from deletion (turn off only to tear a test stack down)."
  type        = bool
  default     = true
}

variable "access_log_bucket" {
  description = "Existing bucket receiving S3 server access logs of the uploads bucket; empty: none."
  type        = string
  default     = ""
}
