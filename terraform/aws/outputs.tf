output "api_url" {
  description = "Base URL of the HTTP API."
  value       = aws_apigatewayv2_api.http.api_endpoint
}

output "bucket" {
  description = "Data bucket: upload resumes under uploads/resumes/<uid>/, audio under uploads/audio/<uid>/, models under models/."
  value       = aws_s3_bucket.uploads.bucket
}

output "functions" {
  description = "Lambda function names."
  value       = { for fn, m in module.function : fn => m.function_name }
}

output "queues" {
  description = "Queue URLs by manifest queue name."
  value       = { for q, r in aws_sqs_queue.queue : q => r.url }
}

output "dead_letter_queues" {
  description = "Dead-letter queue URLs: per queue, and async-failures for storage events and schedules."
  value       = merge({ for q, r in aws_sqs_queue.dlq : q => r.url }, { async-failures = aws_sqs_queue.async_failures.url })
}

output "tables" {
  description = "DynamoDB table names by collection."
  value       = { for c, t in aws_dynamodb_table.collection : c => t.name }
}

output "secrets" {
  description = "Secret ARNs by manifest secret name; set values with `aws secretsmanager put-secret-value` if not given to Terraform."
  value       = { for s, r in aws_secretsmanager_secret.this : s => r.arn }
}

output "schedules" {
  description = "EventBridge Scheduler schedule ARNs."
  value       = { for s, r in aws_scheduler_schedule.schedule : s => r.arn }
}

output "kms_key_arn" {
  description = "Key encrypting the stack's data."
  value       = aws_kms_key.main.arn
}
