# One Catalyst function as a Cloud Run service with its own service account. Who may
# invoke it is decided by the caller (`invokers`): the API gateway's account for
# functions with routes, the push and scheduler accounts for functions with triggers.

terraform {
  required_version = ">= 1.6"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.10, < 8.0"
    }
  }
}

resource "google_service_account" "this" {
  project      = var.project
  account_id   = var.name
  display_name = "Catalyst ${var.function} function"
  description  = "Runs ${var.name}; roles granted from infra/functions.toml only"
}

resource "google_cloud_run_v2_service" "this" {
  project             = var.project
  name                = var.name
  location            = var.region
  description         = "Catalyst ${var.function}"
  ingress             = var.ingress
  deletion_protection = var.deletion_protection

  template {
    service_account                  = google_service_account.this.email
    timeout                          = "${var.timeout_s}s"
    max_instance_request_concurrency = var.concurrency
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    containers {
      image = var.image

      resources {
        limits = {
          memory = "${var.memory_mb}Mi"
          # Cloud Run needs 2 vCPU above 4 GiB.
          cpu = var.memory_mb > 4096 ? "2" : "1"
        }
        # CPU only while serving: the functions do their work inside the request or push delivery.
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = var.environment
        content {
          name  = env.key
          value = env.value
        }
      }

      startup_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds    = 2
        failure_threshold = 60
      }
    }
  }

  labels = var.labels
}

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = var.invokers

  project  = var.project
  location = var.region
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = each.value
}
