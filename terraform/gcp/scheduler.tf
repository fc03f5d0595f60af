# Cloud Scheduler jobs from the manifest: POST the payload to `<service>/_/events` with
# an OIDC token; the function knows the call by its X-CloudScheduler headers.

resource "google_cloud_scheduler_job" "schedule" {
  for_each = local.schedules

  project     = var.project
  region      = var.region
  name        = "${var.name_prefix}-${each.key}"
  description = "${each.value.function}: ${each.value.cron} (UTC)"
  schedule    = each.value.cron
  time_zone   = "Etc/UTC"
  # Cloud Scheduler waits at most 30 minutes for an HTTP target.
  attempt_deadline = "${min(1800, max(15, local.functions[each.value.function].timeout_s))}s"

  retry_config {
    retry_count          = local.max_attempts - 1
    min_backoff_duration = "30s"
    max_backoff_duration = "600s"
  }

  http_target {
    http_method = "POST"
    uri         = "${module.service[each.value.function].uri}/_/events"
    body        = base64encode(jsonencode(each.value.payload))
    headers = {
      "Content-Type" = "application/json"
    }
    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = module.service[each.value.function].uri
    }
  }

  depends_on = [google_project_service.this]
}
