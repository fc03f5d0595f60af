# The bucket every function reads and writes: browser uploads (uploads/), their parsed
# results, transcripts, caches and model files (models/). Object-created events under
# each manifest storage prefix invoke the function that declared it.

resource "aws_s3_bucket" "uploads" {
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage cost for inputs users can re-upload; versioning and lifecycle cover accidental loss.
  #checkov:skip=CKV_AWS_18:Access logs go to an operator-owned bucket when var.access_log_bucket is set (aws_s3_bucket_logging below); a log bucket made here would need one of its own.
  bucket = "${var.name_prefix}-data-${local.account}-${var.region}"
}

resource "aws_s3_bucket_public_access_block" "uploads" {
  bucket                  = aws_s3_bucket.uploads.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.main.arn
    }
    # One KMS call per bucket and hour instead of per object.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "uploads" {
  bucket = aws_s3_bucket.uploads.id

  rule {
    id     = "housekeeping"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expire_days
    }
    expiration {
      expired_object_delete_marker = true
    }
  }

  dynamic "rule" {
    for_each = var.uploads_expire_days > 0 ? [1] : []
    content {
      id     = "raw-uploads"
      status = "Enabled"
      filter {
        prefix = "uploads/"
      }
      abort_incomplete_multipart_upload {
        days_after_initiation = 1
      }
      expiration {
        days = var.uploads_expire_days
      }
    }
  }

  rule {
    id     = "scrape-cache"
    status = "Enabled"
    filter {
      prefix = "cache/"
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
    expiration {
      days = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.uploads]
}

# Browsers PUT resumes and audio straight to signed URLs.
resource "aws_s3_bucket_cors_configuration" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  cors_rule {
    allowed_methods = ["PUT", "POST"]
    allowed_origins = var.cors_allowed_origins
    allowed_headers = ["content-type", "content-md5", "x-amz-*"]
    expose_headers  = ["etag"]
    max_age_seconds = 3600
  }
}

resource "aws_s3_bucket_logging" "uploads" {
  count         = var.access_log_bucket == "" ? 0 : 1
  bucket        = aws_s3_bucket.uploads.id
  target_bucket = var.access_log_bucket
  target_prefix = "${aws_s3_bucket.uploads.bucket}/"
}

# Deny anything not over TLS, even to principals IAM would allow.
data "aws_iam_policy_document" "uploads" {
  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.uploads.arn, "${aws_s3_bucket.uploads.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "uploads" {
  bucket     = aws_s3_bucket.uploads.id
  policy     = data.aws_iam_policy_document.uploads.json
  depends_on = [aws_s3_bucket_public_access_block.uploads]
}

resource "aws_lambda_permission" "storage" {
  for_each = local.storage_triggers

  statement_id   = "s3-${each.key}"
  action         = "lambda:InvokeFunction"
  function_name  = module.function[each.value.function].function_name
  principal      = "s3.amazonaws.com"
  source_arn     = aws_s3_bucket.uploads.arn
  source_account = local.account
}

# A bucket has one notification configuration, so every trigger is a block of it.
resource "aws_s3_bucket_notification" "uploads" {
  bucket = aws_s3_bucket.uploads.id

  dynamic "lambda_function" {
    for_each = local.storage_triggers
    content {
      id                  = lambda_function.key
      lambda_function_arn = module.function[lambda_function.value.function].arn
      events              = ["s3:ObjectCreated:*"]
      filter_prefix       = lambda_function.value.prefix
      filter_suffix       = lambda_function.value.suffix == "" ? null : lambda_function.value.suffix
    }
  }

  depends_on = [aws_lambda_permission.storage]
}
