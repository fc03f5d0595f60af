# One Lambda function of the Catalyst workspace: its execution role, log group and the
# function itself. What the function may touch beyond its own logs and traces comes in
# as `policy_json`, built by the stack from the function's manifest entry.

terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70, < 7.0"
    }
  }
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = var.name
  description        = "Execution role of the ${var.name} function (least privilege, from infra/functions.toml)"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

# The log group exists before the function so retention and encryption apply from the
# first invocation, and the role needs no logs:CreateLogGroup.
resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "base" {
  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
  statement {
    sid       = "StackKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
  statement {
    sid       = "AsyncFailures"
    actions   = ["sqs:SendMessage"]
    resources = [var.async_dlq_arn]
  }
}

resource "aws_iam_role_policy" "base" {
  name   = "base"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.base.json
}

resource "aws_iam_role_policy" "manifest" {
  count  = var.attach_policy ? 1 : 0
  name   = "manifest"
  role   = aws_iam_role.this.id
  policy = var.policy_json
}

# X-Ray's write actions cannot be scoped to a resource; AWS's managed policy is exactly them.
resource "aws_iam_role_policy_attachment" "xray" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:${var.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:No VPC on purpose: the functions reach public LLM APIs and scrape public sites; a VPC would add a NAT gateway and nothing private to reach.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile the operator owns; the zip's SHA-256 is pinned through source_code_hash instead.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is opt-in (var.reserved_concurrency): reserving it by default fails on new accounts whose regional limit is 10.
  function_name                  = var.name
  description                    = var.description
  role                           = aws_iam_role.this.arn
  runtime                        = "provided.al2023"
  handler                        = "bootstrap"
  architectures                  = [var.architecture]
  filename                       = var.zip_path
  source_code_hash               = filebase64sha256(var.zip_path)
  memory_size                    = var.memory_mb
  timeout                        = var.timeout_s
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  ephemeral_storage {
    size = var.ephemeral_storage_mb
  }

  environment {
    variables = var.environment
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  # Asynchronous invocations (S3 notifications, Scheduler) that fail every retry land here.
  dead_letter_config {
    target_arn = var.async_dlq_arn
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.base, aws_iam_role_policy_attachment.xray]
}

resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = var.async_retries
  maximum_event_age_in_seconds = 6 * 3600
}
