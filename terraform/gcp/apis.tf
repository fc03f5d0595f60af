# The services the stack uses, so a fresh project works on the first apply. Left enabled
# on destroy: other workloads in the project may depend on them.
resource "google_project_service" "this" {
  for_each = toset(concat(local.llm_on_vertex ? ["aiplatform.googleapis.com"] : [], [
    "apigateway.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudscheduler.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "servicecontrol.googleapis.com",
    "servicemanagement.googleapis.com",
    "storage.googleapis.com",
  ]))
  project            = var.project
  service            = each.key
  disable_on_destroy = false
}
