# EventBridge Scheduler schedules from the manifest. The functions recognise a schedule
# by the shape of an EventBridge scheduled event, so the target input is that shape,
# filled in by Scheduler's context attributes; the schedule ARN's last segment (the
# schedule name, as in the manifest) names the schedule to the function.

resource "aws_scheduler_schedule_group" "main" {
  name = var.name_prefix
}

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  count              = length(local.schedules) > 0 ? 1 : 0
  name               = "${var.name_prefix}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "InvokeScheduledFunctions"
    actions   = ["lambda:InvokeFunction"]
    resources = distinct([for s in values(local.schedules) : module.function[s.function].arn])
  }
  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.async_failures.arn]
  }
  statement {
    sid       = "StackKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  count  = length(local.schedules) > 0 ? 1 : 0
  name   = "invoke"
  role   = aws_iam_role.scheduler[0].id
  policy = data.aws_iam_policy_document.scheduler.json
}

resource "aws_scheduler_schedule" "schedule" {
  for_each = local.schedules

  name                         = each.key
  group_name                   = aws_scheduler_schedule_group.main.name
  description                  = "${each.value.function}: ${each.value.cron} (UTC)"
  schedule_expression          = each.value.aws_cron
  schedule_expression_timezone = "UTC"
  kms_key_arn                  = aws_kms_key.main.arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = module.function[each.value.function].arn
    role_arn = aws_iam_role.scheduler[0].arn
    # jsonencode writes `<` and `>` as \u003c and \u003e, which Scheduler would not
    # recognise as its placeholders; both are valid JSON unescaped.
    input = replace(replace(jsonencode({
      version       = "0"
      id            = "<aws.scheduler.execution-id>"
      "detail-type" = "Scheduled Event"
      source        = "aws.scheduler"
      account       = local.account
      time          = "<aws.scheduler.scheduled-time>"
      region        = var.region
      resources     = ["<aws.scheduler.schedule-arn>"]
      detail        = each.value.payload
    }), "\\u003c", "<"), "\\u003e", ">")

    retry_policy {
      maximum_retry_attempts       = local.max_attempts - 1
      maximum_event_age_in_seconds = 3600
    }

    dead_letter_config {
      arn = aws_sqs_queue.async_failures.arn
    }
  }
}
