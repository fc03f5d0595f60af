# The document store: one Firestore database, one collection per manifest collection,
# documents expiring on `expires_at`.

resource "google_firestore_database" "main" {
  project                           = var.project
  name                              = local.firestore_db
  location_id                       = coalesce(var.firestore_location, var.region)
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "OPTIMISTIC"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = var.deletion_protection ? "ABANDON" : "DELETE"

  depends_on = [google_project_service.this]
}

resource "google_firestore_field" "ttl" {
  for_each = toset(local.collections)

  project    = var.project
  database   = google_firestore_database.main.name
  collection = each.key
  field      = "expires_at"

  ttl_config {}

  # Nothing queries by expiry; an unindexed TTL field keeps writes cheap.
  index_config {}
}
