# The DR-region key: every copy dr makes (RDS snapshot copies, S3 objects, MySQL backups, state
# records) is encrypted under it. Rotation is on; its policy names who administers it and who
# uses it, separately.

resource "aws_kms_key" "dr" {
  description             = "dr: encrypts every disaster-recovery copy in ${var.dr_region}"
  key_usage               = "ENCRYPT_DECRYPT"
  deletion_window_in_days = var.kms_deletion_window_days
  enable_key_rotation     = true
  multi_region            = false
  policy                  = data.aws_iam_policy_document.dr_key.json
  tags                    = merge(local.tags, { Name = "${var.name_prefix}-dr-backups" })

  lifecycle {
    precondition {
      condition     = var.primary_region != var.dr_region
      error_message = "primary_region and dr_region must differ: a copy in the primary region does not survive its loss."
    }
    precondition {
      condition     = !contains(var.backup_bucket_names, var.state_bucket_name)
      error_message = "state_bucket_name must not also be one of backup_bucket_names: the state bucket has no Object Lock and its own lifecycle."
    }
    precondition {
      condition     = data.aws_region.current.name == var.dr_region
      error_message = "The aws provider given to the foundation module must be configured for dr_region."
    }
  }
}

resource "aws_kms_alias" "dr" {
  name          = var.kms_key_alias
  target_key_id = aws_kms_key.dr.key_id
}

data "aws_iam_policy_document" "dr_key" {
  # In a key policy, Resource "*" means this key and nothing else.
  #checkov:skip=CKV_AWS_109:a key policy's Resource "*" is the key itself; administration is limited to key_admin_arns
  #checkov:skip=CKV_AWS_111:a key policy's Resource "*" is the key itself; every write is limited to named principals
  #checkov:skip=CKV_AWS_356:a key policy's Resource "*" is the key itself, not every resource
  statement {
    sid    = "KeyAdministration"
    effect = "Allow"
    principals {
      type        = "AWS"
      identifiers = local.key_admins
    }
    actions = [
      "kms:CancelKeyDeletion",
      "kms:CreateAlias",
      "kms:DeleteAlias",
      "kms:DescribeKey",
      "kms:DisableKey",
      "kms:DisableKeyRotation",
      "kms:EnableKey",
      "kms:EnableKeyRotation",
      "kms:GetKeyPolicy",
      "kms:GetKeyRotationStatus",
      "kms:ListAliases",
      "kms:ListGrants",
      "kms:ListKeyPolicies",
      "kms:ListResourceTags",
      "kms:PutKeyPolicy",
      "kms:RevokeGrant",
      "kms:RotateKeyOnDemand",
      "kms:ScheduleKeyDeletion",
      "kms:TagResource",
      "kms:UntagResource",
      "kms:UpdateAlias",
      "kms:UpdateKeyDescription",
    ]
    resources = ["*"]
  }

  statement {
    sid    = "DrUsesTheKey"
    effect = "Allow"
    principals {
      type        = "AWS"
      identifiers = concat([aws_iam_role.dr.arn], var.key_user_arns)
    }
    actions = [
      "kms:Decrypt",
      "kms:DescribeKey",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "kms:GenerateDataKeyWithoutPlaintext",
      "kms:ReEncryptFrom",
      "kms:ReEncryptTo",
    ]
    resources = ["*"]
  }

  statement {
    sid    = "DrGrantsForAwsServices"
    effect = "Allow"
    principals {
      type        = "AWS"
      identifiers = concat([aws_iam_role.dr.arn], var.key_user_arns)
    }
    # RDS copies and restores encrypted snapshots through a grant it creates as the caller.
    actions   = ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]
    resources = ["*"]
    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }

  dynamic "statement" {
    for_each = var.allow_cloudwatch_logs ? [1] : []
    content {
      sid    = "CloudWatchLogsOfThisAccount"
      effect = "Allow"
      principals {
        type        = "Service"
        identifiers = ["logs.${var.dr_region}.${local.dns_suffix}"]
      }
      actions = [
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
      ]
      resources = ["*"]
      condition {
        test     = "ArnLike"
        variable = "kms:EncryptionContext:aws:logs:arn"
        values   = ["arn:${local.partition}:logs:${var.dr_region}:${local.account_id}:log-group:*"]
      }
    }
  }
}
