# One SQS queue per consumed manifest queue, its dead-letter queue, and the mapping that
# feeds it to the consuming function with partial batch failures.

resource "aws_sqs_queue" "dlq" {
  for_each = local.queue_consumers

  name                      = "${var.name_prefix}-${each.key}-dlq"
  message_retention_seconds = 14 * 24 * 3600
  kms_master_key_id         = aws_kms_key.main.arn
}

resource "aws_sqs_queue" "queue" {
  for_each = local.queue_consumers

  name = "${var.name_prefix}-${each.key}"
  # AWS's rule for Lambda consumers: at least six times the function timeout, so a
  # message is not redelivered while a retried invocation still holds it.
  visibility_timeout_seconds = 6 * local.functions[each.value].timeout_s
  message_retention_seconds  = 4 * 24 * 3600
  receive_wait_time_seconds  = 20
  kms_master_key_id          = aws_kms_key.main.arn

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[each.key].arn
    maxReceiveCount     = local.max_attempts
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  for_each  = local.queue_consumers
  queue_url = aws_sqs_queue.dlq[each.key].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.queue[each.key].arn]
  })
}

resource "aws_lambda_event_source_mapping" "queue" {
  for_each = local.queue_consumers

  event_source_arn        = aws_sqs_queue.queue[each.key].arn
  function_name           = module.function[each.value].arn
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = 10
  }
}
