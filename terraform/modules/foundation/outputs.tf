output "primary_region" {
  description = "regions.primary for dr.yaml."
  value       = var.primary_region
}

output "dr_region" {
  description = "regions.dr for dr.yaml: where everything here lives."
  value       = var.dr_region
}

output "account_id" {
  description = "The AWS account (for `dr permissions --account`)."
  value       = local.account_id
}

output "dr_key_arn" {
  description = "ARN of the DR-region KMS key."
  value       = aws_kms_key.dr.arn
}

output "dr_key_id" {
  description = "Key id of the DR-region KMS key."
  value       = aws_kms_key.dr.key_id
}

output "dr_key_alias" {
  description = "Alias of the DR key: kms.dr_key for dr.yaml."
  value       = aws_kms_alias.dr.name
}

output "state_bucket" {
  description = "state.bucket for dr.yaml."
  value       = aws_s3_bucket.this[var.state_bucket_name].id
}

output "state_bucket_arn" {
  description = "ARN of the state bucket."
  value       = aws_s3_bucket.this[var.state_bucket_name].arn
}

output "backup_buckets" {
  description = "Names of the DR backup buckets, in the order given (destinations for s3 and mysql entries)."
  value       = [for name in var.backup_bucket_names : aws_s3_bucket.this[name].id]
}

output "backup_bucket_arns" {
  description = "Backup bucket name -> ARN."
  value       = { for name in var.backup_bucket_names : name => aws_s3_bucket.this[name].arn }
}

output "dr_role_arn" {
  description = "ARN of dr's IAM role (the runner's task role; assume it to run dr by hand)."
  value       = aws_iam_role.dr.arn
}

output "dr_role_name" {
  description = "Name of dr's IAM role."
  value       = aws_iam_role.dr.name
}

output "dr_policy_attached" {
  description = "Whether dr's role has its `dr permissions` policy yet (false on a first apply without dr_policy_json)."
  value       = length(aws_iam_role_policy.dr) > 0
}

output "sns_topic_arn" {
  description = "notify.sns_topic for dr.yaml."
  value       = aws_sns_topic.alerts.arn
}

output "health_check_id" {
  description = "Route 53 health check of the primary site, or null."
  value       = try(aws_route53_health_check.primary[0].id, null)
}
