# `dr init --from-terraform` reads these names (terraform output -json).

output "primary_region" {
  description = "regions.primary."
  value       = module.foundation.primary_region
}

output "dr_region" {
  description = "regions.dr."
  value       = module.foundation.dr_region
}

output "account_id" {
  description = "The AWS account: `dr permissions --account`."
  value       = module.foundation.account_id
}

output "dr_key_alias" {
  description = "kms.dr_key."
  value       = module.foundation.dr_key_alias
}

output "dr_key_arn" {
  description = "ARN of the DR key."
  value       = module.foundation.dr_key_arn
}

output "state_bucket" {
  description = "state.bucket."
  value       = module.foundation.state_bucket
}

output "backup_bucket" {
  description = "The bucket for MySQL backups: mysql[].destination s3://<this>/mysql/<name>/."
  value       = module.foundation.backup_buckets[0]
}

output "backup_buckets" {
  description = "Every DR backup bucket (s3[].destination candidates)."
  value       = module.foundation.backup_buckets
}

output "sns_topic_arn" {
  description = "notify.sns_topic."
  value       = module.foundation.sns_topic_arn
}

output "dr_role_arn" {
  description = "dr's role (the task role; assume it to run dr by hand)."
  value       = module.foundation.dr_role_arn
}

output "dr_policy_attached" {
  description = "false until dr-policy.json exists and is applied."
  value       = module.foundation.dr_policy_attached
}

output "health_check_id" {
  description = "Route 53 health check of the primary site, or null."
  value       = module.foundation.health_check_id
}

output "ecr_repository_url" {
  description = "Push the image built from the repository's Dockerfile here."
  value       = module.runner.ecr_repository_url
}

output "cluster_name" {
  description = "ECS cluster of the scheduled task."
  value       = module.runner.cluster_name
}

output "log_group_name" {
  description = "CloudWatch log group of the scheduled runs."
  value       = module.runner.log_group_name
}

output "schedule_arn" {
  description = "The EventBridge Scheduler schedule."
  value       = module.runner.schedule_arn
}
