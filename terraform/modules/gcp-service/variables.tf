variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "region" {
  description = "Cloud Run region."
  type        = string
}

variable "name" {
  description = "Service and service-account id, e.g. catalyst-parse (6-30 characters)."
  type        = string
}

variable "function" {
  description = "Manifest function name."
  type        = string
}

variable "image" {
  description = "Container image, <region>-docker.pkg.dev/<project>/<repo>/<fn>:<tag>."
  type        = string
}

variable "memory_mb" {
  description = "Memory from the manifest."
  type        = number
}

variable "timeout_s" {
  description = "Request timeout from the manifest."
  type        = number
}

variable "ingress" {
  description = "INGRESS_TRAFFIC_ALL for services behind API Gateway; INGRESS_TRAFFIC_INTERNAL_ONLY for event-only services (Pub/Sub and Cloud Scheduler count as internal)."
  type        = string
  default     = "INGRESS_TRAFFIC_INTERNAL_ONLY"
}

variable "invokers" {
  description = "IAM members given roles/run.invoker, keyed by a stable name."
  type        = map(string)
  default     = {}
}

variable "environment" {
  description = "Environment variables."
  type        = map(string)
  default     = {}
}

variable "concurrency" {
  description = "Requests one instance serves at once."
  type        = number
  default     = 40
}

variable "min_instances" {
  description = "Instances kept warm (0 scales to zero)."
  type        = number
  default     = 0
}

variable "max_instances" {
  description = "Upper bound on instances (cost guard)."
  type        = number
  default     = 20
}

variable "deletion_protection" {
  description = "Refuse `terraform destroy` of the service."
  type        = bool
  default     = false
}

variable "labels" {
  description = "Labels for the service."
  type        = map(string)
  default     = {}
}
