output "cluster_arn" {
  description = "ARN of the ECS cluster the task runs in."
  value       = aws_ecs_cluster.dr.arn
}

output "cluster_name" {
  description = "Name of the ECS cluster (for `aws ecs run-task` by hand)."
  value       = aws_ecs_cluster.dr.name
}

output "task_definition_arn" {
  description = "ARN (with revision) of the dr task definition."
  value       = aws_ecs_task_definition.dr.arn
}

output "task_family" {
  description = "Family of the dr task definition."
  value       = aws_ecs_task_definition.dr.family
}

output "log_group_name" {
  description = "CloudWatch log group of every run (one JSON object per line)."
  value       = aws_cloudwatch_log_group.dr.name
}

output "schedule_arn" {
  description = "ARN of the EventBridge Scheduler schedule."
  value       = aws_scheduler_schedule.dr.arn
}

output "ecr_repository_url" {
  description = "Where to push the image built from the Dockerfile, or null when not created."
  value       = try(aws_ecr_repository.dr[0].repository_url, null)
}

output "image" {
  description = "The image the task runs."
  value       = local.image
}

output "execution_role_arn" {
  description = "ARN of the task execution role."
  value       = aws_iam_role.execution.arn
}

output "scheduler_role_arn" {
  description = "ARN of the role EventBridge Scheduler starts the task with."
  value       = aws_iam_role.scheduler.arn
}

output "security_group_ids" {
  description = "Security groups of the task."
  value       = local.security_group_ids
}
