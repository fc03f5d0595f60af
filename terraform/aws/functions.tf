# One Lambda and one execution role per manifest entry. Each role's policy is built
# from that entry alone: object ARNs under the prefixes it reads and writes, the queues
# it consumes and publishes to, the tables of its collections, the secrets it names.

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition

  models_uri = coalesce(var.models_uri, "s3://${aws_s3_bucket.uploads.bucket}/models/")

  common_env = merge(
    {
      CATALYST_BLOB_URL   = "s3://${aws_s3_bucket.uploads.bucket}/"
      CATALYST_STORE_URL  = "dynamodb://${var.name_prefix}"
      CATALYST_QUEUE_URL  = "sqs://${var.name_prefix}"
      CATALYST_MODELS_DIR = "/tmp/models"
      CATALYST_LOG_FORMAT = "json"
    },
    var.firebase_project_id == "" ? {} : { FIREBASE_PROJECT_ID = var.firebase_project_id },
    var.otlp_endpoint == "" ? {} : { OTEL_EXPORTER_OTLP_ENDPOINT = var.otlp_endpoint },
  )

  # Model locations only for functions allowed to read models/.
  model_env = { for k, v in var.model_paths : k => "${trimsuffix(local.models_uri, "/")}/${v}/" }

  llm_env = merge(
    var.llm_url == "" ? {} : { LLM_URL = var.llm_url },
    var.llm_model == "" ? {} : { LLM_MODEL = var.llm_model },
  )

  function_env = {
    for fn, f in local.functions : fn => merge(
      local.common_env,
      contains(f.reads, "models/") ? local.model_env : {},
      contains(f.secrets, "llm") ? local.llm_env : {},
      # `<NAME>_API_KEY_SECRET` names the secret to read at cold start (LLM_API_KEY_SECRET for `llm`).
      { for s in f.secrets : "${upper(s)}_API_KEY_SECRET" => aws_secretsmanager_secret.this[s].arn if s != "llm" || var.llm_api_key_in_secret },
    )
  }
}

data "aws_iam_policy_document" "function" {
  for_each = local.functions

  dynamic "statement" {
    for_each = length(each.value.reads) > 0 ? [1] : []
    content {
      sid       = "ReadObjects"
      actions   = ["s3:GetObject"]
      resources = [for p in each.value.reads : "${aws_s3_bucket.uploads.arn}/${p}*"]
    }
  }
  dynamic "statement" {
    for_each = length(each.value.reads) > 0 ? [1] : []
    content {
      sid       = "ListReadPrefixes"
      actions   = ["s3:ListBucket"]
      resources = [aws_s3_bucket.uploads.arn]
      condition {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = [for p in each.value.reads : "${p}*"]
      }
    }
  }
  dynamic "statement" {
    for_each = length(each.value.writes) > 0 ? [1] : []
    content {
      sid       = "WriteObjects"
      actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
      resources = [for p in each.value.writes : "${aws_s3_bucket.uploads.arn}/${p}*"]
    }
  }
  dynamic "statement" {
    for_each = length(each.value.queues) > 0 ? [1] : []
    content {
      sid       = "ConsumeQueues"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
      resources = [for q in each.value.queues : aws_sqs_queue.queue[q].arn]
    }
  }
  dynamic "statement" {
    for_each = length(each.value.publishes) > 0 ? [1] : []
    content {
      sid       = "PublishQueues"
      actions   = ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"]
      resources = [for q in each.value.publishes : aws_sqs_queue.queue[q].arn]
    }
  }
  dynamic "statement" {
    for_each = length(each.value.collections) > 0 ? [1] : []
    content {
      sid = "Collections"
      actions = [
        "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query",
        "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable",
      ]
      resources = flatten([for c in each.value.collections : [aws_dynamodb_table.collection[c].arn, "${aws_dynamodb_table.collection[c].arn}/index/*"]])
    }
  }
  dynamic "statement" {
    for_each = length(each.value.secrets) > 0 ? [1] : []
    content {
      sid       = "Secrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [for s in each.value.secrets : aws_secretsmanager_secret.this[s].arn]
    }
  }
}

module "function" {
  source   = "../modules/aws-function"
  for_each = local.functions

  name                 = "${var.name_prefix}-${each.key}"
  description          = "Catalyst ${each.key}"
  zip_path             = "${var.lambda_dir}/${each.key}/bootstrap.zip"
  architecture         = var.architecture
  memory_mb            = each.value.memory_mb
  timeout_s            = each.value.timeout_s
  ephemeral_storage_mb = contains(each.value.reads, "models/") ? var.model_tmp_mb : 512
  reserved_concurrency = lookup(var.reserved_concurrency, each.key, -1)
  environment          = local.function_env[each.key]
  policy_json          = data.aws_iam_policy_document.function[each.key].json
  attach_policy        = length(concat(each.value.reads, each.value.writes, each.value.queues, each.value.publishes, each.value.collections, each.value.secrets)) > 0
  kms_key_arn          = aws_kms_key.main.arn
  async_dlq_arn        = aws_sqs_queue.async_failures.arn
  log_retention_days   = var.log_retention_days
  partition            = local.partition
}

# Asynchronous invocations (S3 notifications, schedules) that failed every retry, kept
# for inspection and replay.
resource "aws_sqs_queue" "async_failures" {
  name                      = "${var.name_prefix}-async-dlq"
  message_retention_seconds = 14 * 24 * 3600
  kms_master_key_id         = aws_kms_key.main.arn
}
