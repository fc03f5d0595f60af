# One customer-managed key encrypts the stack's data at rest: bucket, tables, queues,
# secrets, logs and function environments. IAM policies (from the manifest) decide who
# may use it; the key policy only delegates to IAM and lets CloudWatch Logs use it.
data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_111:This is a key policy: Resource "*" means this key only, and the root statement is AWS's default delegation to IAM policies.
  #checkov:skip=CKV_AWS_356:Key policy: Resource "*" is the key itself; who may use it is decided by the roles' IAM policies.
  #checkov:skip=CKV_AWS_109:Key policy: the root statement hands permission management to IAM, as AWS's default key policy does, so the key cannot become unmanageable.
  statement {
    sid       = "AccountIam"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${var.region}:${data.aws_caller_identity.current.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "main" {
  description             = "${var.name_prefix}: data at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "main" {
  name          = "alias/${var.name_prefix}"
  target_key_id = aws_kms_key.main.key_id
}
