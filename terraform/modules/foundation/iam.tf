# dr's IAM role. Its permissions are not written here: they are the JSON `dr permissions` prints
# for your dr.yaml (var.dr_policy_json), generated from what each backup kind and runbook step
# declares in the code, so the role and the code cannot drift (tests regenerate it and compare).

data "aws_iam_policy_document" "dr_trust" {
  dynamic "statement" {
    for_each = var.allow_ecs_tasks ? [1] : []
    content {
      sid     = "EcsTasks"
      effect  = "Allow"
      actions = ["sts:AssumeRole"]
      principals {
        type        = "Service"
        identifiers = ["ecs-tasks.amazonaws.com"]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account_id]
      }
      condition {
        test     = "ArnLike"
        variable = "aws:SourceArn"
        values   = ["arn:${local.partition}:ecs:${var.dr_region}:${local.account_id}:*"]
      }
    }
  }

  dynamic "statement" {
    for_each = length(var.trusted_principal_arns) > 0 ? [1] : []
    content {
      sid     = "TrustedPrincipals"
      effect  = "Allow"
      actions = ["sts:AssumeRole"]
      principals {
        type        = "AWS"
        identifiers = var.trusted_principal_arns
      }
    }
  }

  dynamic "statement" {
    for_each = var.eks_oidc == null ? [] : [var.eks_oidc]
    content {
      sid     = "EksServiceAccount"
      effect  = "Allow"
      actions = ["sts:AssumeRoleWithWebIdentity"]
      principals {
        type        = "Federated"
        identifiers = [statement.value.provider_arn]
      }
      condition {
        test     = "StringEquals"
        variable = "${statement.value.provider_url}:sub"
        values   = ["system:serviceaccount:${statement.value.namespace}:${statement.value.service_account}"]
      }
      condition {
        test     = "StringEquals"
        variable = "${statement.value.provider_url}:aud"
        values   = ["sts.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role" "dr" {
  name                 = local.role_name
  description          = "dr: scheduled backups to ${var.dr_region}, drills and failover (policy from `dr permissions`)"
  assume_role_policy   = data.aws_iam_policy_document.dr_trust.json
  permissions_boundary = var.permissions_boundary_arn
  max_session_duration = 43200 # a failover can outlast the default hour
  tags                 = local.tags

  lifecycle {
    precondition {
      condition     = var.allow_ecs_tasks || length(var.trusted_principal_arns) > 0 || var.eks_oidc != null
      error_message = "Nobody could assume dr's role: set allow_ecs_tasks, trusted_principal_arns or eks_oidc."
    }
  }
}

# An inline policy: `dr permissions` for a full config (RDS, S3, MySQL, failover) is larger than
# a managed policy may be (6,144 characters), and fits the 10,240 an inline one has.
resource "aws_iam_role_policy" "dr" {
  count = var.dr_policy_json == "" ? 0 : 1

  name   = "dr-permissions"
  role   = aws_iam_role.dr.id
  policy = var.dr_policy_json
}
