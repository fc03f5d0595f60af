# The bucket every function reads and writes (uploads/, parsed/, transcripts/, caches,
# models/), and its storage triggers.
#
# Prefix filtering: Eventarc's direct Cloud Storage triggers filter by bucket only, so
# each manifest storage trigger is a Cloud Storage Pub/Sub notification with
# `object_name_prefix`, to a topic of its own, pushed to the function (pubsub.tf). The
# functions read these notifications as storage events.

resource "google_storage_bucket" "uploads" {
  #checkov:skip=CKV_GCP_62:Usage logs go to an operator-owned bucket when var.access_log_bucket is set (dynamic logging block); Cloud Audit Logs record data access either way.
  project                     = var.project
  name                        = "${var.project}-${var.name_prefix}-data"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = var.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_expire_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  dynamic "lifecycle_rule" {
    for_each = var.uploads_expire_days > 0 ? [1] : []
    content {
      condition {
        age            = var.uploads_expire_days
        matches_prefix = ["uploads/"]
      }
      action {
        type = "Delete"
      }
    }
  }

  lifecycle_rule {
    condition {
      age            = 7
      matches_prefix = ["cache/"]
    }
    action {
      type = "Delete"
    }
  }

  # Browsers PUT resumes and audio straight to signed URLs.
  cors {
    origin          = var.cors_allowed_origins
    method          = ["PUT", "POST"]
    response_header = ["content-type", "content-md5", "x-goog-resumable", "etag"]
    max_age_seconds = 3600
  }

  dynamic "logging" {
    for_each = var.access_log_bucket == "" ? [] : [var.access_log_bucket]
    content {
      log_bucket = logging.value
    }
  }

  depends_on = [google_project_service.this]
}

data "google_storage_project_service_account" "this" {
  project = var.project
}

resource "google_pubsub_topic" "storage" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption at rest; notifications carry object metadata only. Set an organization CMEK policy if yours requires Cloud KMS keys.
  for_each = local.storage_triggers

  project = var.project
  name    = "${var.name_prefix}-storage-${each.key}"
  labels  = var.labels

  depends_on = [google_project_service.this]
}

resource "google_pubsub_topic_iam_member" "storage_publisher" {
  for_each = local.storage_triggers

  topic  = google_pubsub_topic.storage[each.key].id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${data.google_storage_project_service_account.this.email_address}"
}

resource "google_storage_notification" "trigger" {
  for_each = local.storage_triggers

  bucket             = google_storage_bucket.uploads.name
  topic              = google_pubsub_topic.storage[each.key].id
  payload_format     = "JSON_API_V1"
  event_types        = ["OBJECT_FINALIZE"]
  object_name_prefix = each.value.prefix

  lifecycle {
    # Notifications filter by prefix only; a suffix must be checked by the function.
    precondition {
      condition     = each.value.suffix == ""
      error_message = "Cloud Storage notifications cannot filter by suffix (trigger ${each.key}); filter in the function or drop the suffix."
    }
  }

  depends_on = [google_pubsub_topic_iam_member.storage_publisher]
}
