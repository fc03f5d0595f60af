# One Secrets Manager secret per secret the manifest names; each function's role may
# read only the ones its entry lists (functions.tf).

resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:These are third-party API keys (hosted LLMs); they are rotated at the provider and written here, no rotation Lambda can mint them.
  for_each = local.secret_names

  name                    = "${var.name_prefix}/${each.key}"
  description             = "Catalyst secret `${each.key}` (read at cold start by the functions that list it)"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "this" {
  # Only the names are used as keys; the values stay sensitive.
  for_each = nonsensitive(toset([for k, v in var.secret_values : k if v != ""]))

  secret_id     = aws_secretsmanager_secret.this[each.key].id
  secret_string = var.secret_values[each.key]

  lifecycle {
    precondition {
      condition     = contains(local.secret_names, each.key)
      error_message = "secret_values has `${each.key}`, which no function in the manifest reads."
    }
  }
}
