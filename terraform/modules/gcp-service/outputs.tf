output "uri" {
  value = google_cloud_run_v2_service.this.uri
}

output "name" {
  value = google_cloud_run_v2_service.this.name
}

output "service_account_email" {
  value = google_service_account.this.email
}

output "member" {
  description = "IAM member string of the service account."
  value       = "serviceAccount:${google_service_account.this.email}"
}

output "service_account_id" {
  description = "Resource id of the service account (for IAM on the account itself)."
  value       = google_service_account.this.id
}
