variable "name" {
  description = "Deployed function name, e.g. catalyst-parse."
  type        = string
}

variable "description" {
  description = "Human description shown in the console."
  type        = string
  default     = ""
}

variable "zip_path" {
  description = "Lambda zip holding `bootstrap` (target/lambda/<fn>/bootstrap.zip, as `catalyst package aws` and cargo-lambda write it)."
  type        = string
}

variable "architecture" {
  description = "arm64 (Graviton, default) or x86_64; must match how the zip was built."
  type        = string
  default     = "arm64"
  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "memory_mb" {
  description = "Memory from the manifest."
  type        = number
}

variable "timeout_s" {
  description = "Timeout from the manifest."
  type        = number
}

variable "ephemeral_storage_mb" {
  description = "/tmp size; model files are fetched there at cold start."
  type        = number
  default     = 512
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions; -1 leaves the function on the account's unreserved pool."
  type        = number
  default     = -1
}

variable "environment" {
  description = "Environment variables."
  type        = map(string)
  default     = {}
}

variable "policy_json" {
  description = "IAM policy for what the manifest says the function reads, writes, consumes, publishes and uses."
  type        = string
  default     = ""
}

variable "attach_policy" {
  description = "Whether policy_json has statements (known at plan time, unlike the policy's ARNs)."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "The stack's KMS key: environment variables and logs are encrypted with it."
  type        = string
}

variable "async_dlq_arn" {
  description = "SQS queue receiving asynchronous invocations that failed every retry."
  type        = string
}

variable "async_retries" {
  description = "Retries of a failed asynchronous invocation (0-2)."
  type        = number
  default     = 2
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention."
  type        = number
}

variable "partition" {
  description = "AWS partition (aws, aws-cn, aws-us-gov)."
  type        = string
  default     = "aws"
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
