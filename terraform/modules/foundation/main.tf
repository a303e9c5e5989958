# The DR foundation: everything dr needs in the DR region, created once per account.
# The aws provider given to this module must be configured for var.dr_region.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  dns_suffix = data.aws_partition.current.dns_suffix
  role_name  = coalesce(var.role_name, "${var.name_prefix}-dr")
  key_admins = length(var.key_admin_arns) > 0 ? var.key_admin_arns : ["arn:${local.partition}:iam::${local.account_id}:root"]

  # Every bucket of this module, with the settings that differ: the state bucket never has
  # Object Lock (dr overwrites its locks and deletes expired ones).
  buckets = merge(
    { for name in var.backup_bucket_names : name => { role = "backup", object_lock = var.object_lock_mode != null } },
    { (var.state_bucket_name) = { role = "state", object_lock = false } },
  )
  locked_buckets = { for name, b in local.buckets : name => b if b.object_lock }

  tags = merge({ "managed-by" = "terraform", "dr:component" = "foundation" }, var.tags)
}
