# One Secret Manager secret per secret the manifest names; only the functions that list
# a secret may access it (services.tf).

resource "google_secret_manager_secret" "this" {
  for_each = local.secret_names

  project   = var.project
  secret_id = "${var.name_prefix}-${each.key}"
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.this]
}

resource "google_secret_manager_secret_version" "this" {
  # Only the names are used as keys; the values stay sensitive.
  for_each = nonsensitive(toset([for k, v in var.secret_values : k if v != ""]))

  secret      = google_secret_manager_secret.this[each.key].id
  secret_data = var.secret_values[each.key]

  lifecycle {
    precondition {
      condition     = contains(local.secret_names, each.key)
      error_message = "secret_values has `${each.key}`, which no function in the manifest reads."
    }
  }
}
