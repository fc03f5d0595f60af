# Push deliveries to the functions: one topic per consumed manifest queue, plus the
# storage-notification topics (storage.tf). Every delivery gets a push subscription to
# `<service>/_/events` with an OIDC token of the push account, and a dead-letter topic
# after max_attempts deliveries, with a pull subscription that keeps dead letters.

resource "google_pubsub_topic" "queue" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption at rest; messages are short-lived job references (ids and keys, no documents). Set an organization CMEK policy if yours requires Cloud KMS keys.
  for_each = local.queue_consumers

  project = var.project
  name    = "${var.name_prefix}-${each.key}"
  labels  = var.labels

  depends_on = [google_project_service.this]
}

locals {
  deliveries = merge(
    { for q, fn in local.queue_consumers : "queue-${q}" => { function = fn, topic = google_pubsub_topic.queue[q].id, name = "${var.name_prefix}-${q}" } },
    { for k, t in local.storage_triggers : "storage-${k}" => { function = t.function, topic = google_pubsub_topic.storage[k].id, name = "${var.name_prefix}-storage-${k}" } },
  )

  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption at rest; messages are short-lived job references (ids and keys, no documents). Set an organization CMEK policy if yours requires Cloud KMS keys.
  for_each = local.deliveries

  project = var.project
  name    = "${each.value.name}-dlq"
  labels  = var.labels
}

# A topic keeps nothing by itself: this subscription is where dead letters wait.
resource "google_pubsub_subscription" "dead_letter" {
  for_each = local.deliveries

  project                    = var.project
  name                       = "${each.value.name}-dlq"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  message_retention_duration = "604800s"
  ack_deadline_seconds       = 60
  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "push" {
  for_each = local.deliveries

  project = var.project
  name    = each.value.name
  topic   = each.value.topic
  # Pub/Sub allows at most 600 s; longer functions (optimize) are redelivered after
  # that, which their idempotent handlers absorb.
  ack_deadline_seconds       = min(600, max(10, local.functions[each.value.function].timeout_s))
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = "${module.service[each.value.function].uri}/_/events"
    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = module.service[each.value.function].uri
    }
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.key].id
    max_delivery_attempts = local.max_attempts
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_pubsub_topic_iam_member.dead_letter]
}

# Pub/Sub's service agent forwards dead letters: it publishes to the dead-letter topic
# and acknowledges on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter" {
  for_each = local.deliveries

  topic  = google_pubsub_topic.dead_letter[each.key].id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter" {
  for_each = local.deliveries

  subscription = google_pubsub_subscription.push[each.key].id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# Projects created before April 2021 need the agent to mint the push account's tokens.
resource "google_service_account_iam_member" "push_token" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}
