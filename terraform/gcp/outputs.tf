output "api_url" {
  description = "Base URL of the API Gateway."
  value       = "https://${google_api_gateway_gateway.api.default_hostname}"
}

output "bucket" {
  description = "Data bucket: upload resumes under uploads/resumes/<uid>/, audio under uploads/audio/<uid>/, models under models/."
  value       = google_storage_bucket.uploads.name
}

output "image_registry" {
  description = "Push one image per function here: <registry>/<fn>:<tag>."
  value       = local.registry
}

output "services" {
  description = "Cloud Run service URLs (not callable without an invoker identity)."
  value       = { for fn, m in module.service : fn => m.uri }
}

output "topics" {
  description = "Pub/Sub topics by manifest queue name."
  value       = { for q, t in google_pubsub_topic.queue : q => t.name }
}

output "dead_letter_subscriptions" {
  description = "Where undeliverable messages and storage events wait."
  value       = { for k, s in google_pubsub_subscription.dead_letter : k => s.name }
}

output "firestore_database" {
  value = google_firestore_database.main.name
}

output "secrets" {
  description = "Secret ids by manifest secret name; add versions with `gcloud secrets versions add` if not given to Terraform."
  value       = { for s, r in google_secret_manager_secret.this : s => r.id }
}

output "scheduler_jobs" {
  value = { for s, j in google_cloud_scheduler_job.schedule : s => j.name }
}
