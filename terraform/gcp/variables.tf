variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "region" {
  description = "Region of Cloud Run, Artifact Registry, API Gateway, Cloud Scheduler and the bucket."
  type        = string
  default     = "us-central1"
}

variable "name_prefix" {
  description = "Prefix of every resource name; service accounts are <prefix>-<function>, so at most 19 characters."
  type        = string
  default     = "catalyst"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}$", var.name_prefix))
    error_message = "name_prefix must be 2-19 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "labels" {
  description = "Extra labels for resources that take them."
  type        = map(string)
  default     = {}
}

variable "repository" {
  description = "Artifact Registry repository id holding one image per function."
  type        = string
  default     = "catalyst"
}

variable "image_tag" {
  description = "Tag of the function images to deploy (<region>-docker.pkg.dev/<project>/<repository>/<fn>:<tag>)."
  type        = string
  default     = "latest"
}

variable "image_registry" {
  description = "Registry path of the images; null: the repository created here."
  type        = string
  default     = null
}

variable "firebase_project_id" {
  description = "Firebase project whose ID tokens sign users in; null: this project."
  type        = string
  default     = null
}

variable "gateway_verifies_id_tokens" {
  description = "API Gateway checks Firebase ID tokens before any service runs. Gateway JWT checks cannot admit Catalyst API keys, so set false to let integrators in with `x-api-key`; the services verify every caller either way."
  type        = bool
  default     = true
}

variable "firestore_database" {
  description = "Firestore database id; a named database keeps Catalyst apart from a Firebase app's (default) one."
  type        = string
  default     = null
}

variable "firestore_location" {
  description = "Firestore location; null: the region."
  type        = string
  default     = null
}

variable "cors_allowed_origins" {
  description = "Browser origins allowed to call the API (services answer CORS preflights, which the gateway passes on) and to upload to the bucket with signed URLs."
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
  description = "Functions read the hosted LLM's API key from the `llm` secret at cold start (LLM_API_KEY_SECRET). Set false for an endpoint that takes no key. On Google Cloud, false with a Vertex AI llm_url authenticates with the services' own service accounts (roles/aiplatform.user)."
  type        = bool
  default     = true
}

variable "secret_values" {
  description = "Initial values of the manifest's secrets, by name (e.g. { llm = \"sk-...\" }). Leave out to add versions outside Terraform (they then stay out of the state)."
  type        = map(string)
  default     = {}
  sensitive   = true
}

variable "otlp_endpoint" {
  description = "OTLP/HTTP endpoint for trace export (OTEL_EXPORTER_OTLP_ENDPOINT); empty: none."
  type        = string
  default     = ""
}

variable "max_instances" {
  description = "Upper bound on Cloud Run instances per function (cost guard)."
  type        = number
  default     = 20
}

variable "uploads_expire_days" {
  description = "Days after which raw uploads (uploads/) are deleted; 0 keeps them."
  type        = number
  default     = 90
}

variable "noncurrent_version_expire_days" {
  description = "Days overwritten or deleted object versions are kept."
  type        = number
  default     = 30
}

variable "deletion_protection" {
  description = "Protect Firestore and the Cloud Run services from deletion (turn off only to tear a test stack down)."
  type        = bool
  default     = true
}

variable "access_log_bucket" {
  description = "Existing bucket receiving usage logs of the data bucket; empty: none."
  type        = string
  default     = ""
}
