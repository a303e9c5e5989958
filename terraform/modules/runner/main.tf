# Runs `dr schedule --once` on AWS-managed compute: EventBridge Scheduler starts a Fargate task
# every few minutes; the task runs whatever is due (each job at most once per slot, decided by
# locks in the state bucket) and exits. Logs go to CloudWatch. The task runs as dr's role from
# the foundation module. Put it in the DR region, so backups keep running when the primary is down.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  family     = "${var.name_prefix}-dr-schedule"
  image      = var.image != null ? var.image : "${try(aws_ecr_repository.dr[0].repository_url, "")}:${coalesce(var.image_tag, "unset")}"

  # The image's entrypoint is `dr`; the task writes dr.yaml from its environment first (the root
  # filesystem is read-only, /tmp is a task volume) and then runs the scheduler once.
  dr_args = concat(
    ["--config", "/tmp/dr.yaml", "schedule", "--once", "--json-logs"],
    var.jitter == null ? [] : ["--jitter", var.jitter],
    var.extra_args,
  )
  script = "set -eu; umask 077; printf '%s' \"$DR_CONFIG_YAML\" > /tmp/dr.yaml; mkdir -p \"$DR_SPOOL_DIR\"; exec dr ${join(" ", [for a in local.dr_args : format("'%s'", replace(a, "'", "'\\''"))])}"

  ssm_secret_arns = [for arn in values(var.secrets) : arn if strcontains(arn, ":ssm:")]
  sm_secret_arns  = [for arn in values(var.secrets) : arn if strcontains(arn, ":secretsmanager:")]
  ecr_arns        = concat(aws_ecr_repository.dr[*].arn, var.ecr_repository_arns)

  security_group_ids = length(var.security_group_ids) > 0 ? var.security_group_ids : aws_security_group.task[*].id

  tags = merge({ "managed-by" = "terraform", "dr:component" = "runner" }, var.tags)
}

# --- the image --------------------------------------------------------------------------------

resource "aws_ecr_repository" "dr" {
  count = var.create_ecr_repository ? 1 : 0

  name                 = "${var.name_prefix}/dr"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  # KMS with the AWS managed key: pulling needs no key policy of ours.
  encryption_configuration {
    encryption_type = "KMS"
  }

  tags = local.tags
}

resource "aws_ecr_lifecycle_policy" "dr" {
  count = var.create_ecr_repository ? 1 : 0

  repository = aws_ecr_repository.dr[0].name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the 20 newest images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 20 }
      action       = { type = "expire" }
    }]
  })
}

# --- logs -------------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "dr" {
  name              = "/dr/${var.name_prefix}/schedule"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = local.tags
}

# --- the cluster and the task -----------------------------------------------------------------

resource "aws_ecs_cluster" "dr" {
  name = "${var.name_prefix}-dr"

  setting {
    name  = "containerInsights"
    value = var.container_insights ? "enabled" : "disabled"
  }

  tags = local.tags
}

resource "aws_ecs_task_definition" "dr" {
  family                   = local.family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.cpu)
  memory                   = tostring(var.memory)
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = var.task_role_arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  ephemeral_storage {
    size_in_gib = var.ephemeral_storage_gib
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = "dr"
    image                  = local.image
    essential              = true
    entryPoint             = ["/bin/sh", "-c"]
    command                = [local.script]
    readonlyRootFilesystem = true
    user                   = "10001:10001"
    stopTimeout            = 120 # dr's --grace: running jobs stop at their next step
    linuxParameters        = { initProcessEnabled = true, capabilities = { drop = ["ALL"] } }
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    environment = [for k, v in merge(var.environment, {
      DR_CONFIG_YAML   = var.dr_config_yaml
      DR_SPOOL_DIR     = "/tmp/spool"
      HOME             = "/tmp"
      AWS_REGION       = local.region
      PYTHONUNBUFFERED = "1"
    }) : { name = k, value = v }]
    secrets = [for k, v in var.secrets : { name = k, valueFrom = v }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = aws_cloudwatch_log_group.dr.name
        "awslogs-region"        = local.region
        "awslogs-stream-prefix" = "dr"
      }
    }
  }])

  tags = local.tags

  lifecycle {
    precondition {
      condition     = !var.schedule_enabled || var.image != null || (var.create_ecr_repository && var.image_tag != null)
      error_message = "An enabled schedule needs an image: set image, or create_ecr_repository = true with image_tag (the tag you pushed)."
    }
  }
}

resource "aws_security_group" "task" {
  #checkov:skip=CKV2_AWS_5:attached to the task by the EventBridge Scheduler target (network_configuration), which checkov does not follow
  count = length(var.security_group_ids) > 0 ? 0 : 1

  name        = "${var.name_prefix}-dr-task"
  description = "dr scheduled task: outbound only"
  vpc_id      = var.vpc_id
  tags        = local.tags

  egress {
    description = "HTTPS to the AWS APIs"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = var.https_egress_cidr_blocks
  }

  dynamic "egress" {
    for_each = var.extra_egress
    content {
      description = egress.value.description
      from_port   = egress.value.port
      to_port     = egress.value.port
      protocol    = "tcp"
      cidr_blocks = egress.value.cidr_blocks
    }
  }
}

# --- the schedule -----------------------------------------------------------------------------

resource "aws_scheduler_schedule" "dr" {
  name                         = "${var.name_prefix}-dr-schedule"
  description                  = "dr schedule --once: backups that are due, each once per slot"
  schedule_expression          = var.schedule_expression
  schedule_expression_timezone = var.schedule_timezone
  state                        = var.schedule_enabled ? "ENABLED" : "DISABLED"
  kms_key_arn                  = var.schedule_kms_key_arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_ecs_cluster.dr.arn
    role_arn = aws_iam_role.scheduler.arn

    ecs_parameters {
      task_definition_arn = aws_ecs_task_definition.dr.arn
      launch_type         = "FARGATE"
      platform_version    = "LATEST"
      task_count          = 1
      propagate_tags      = "TASK_DEFINITION"

      network_configuration {
        subnets          = var.subnet_ids
        security_groups  = local.security_group_ids
        assign_public_ip = var.assign_public_ip
      }
    }

    # A missed start is not retried late: the next run does what is due (catch-up is built in).
    retry_policy {
      maximum_retry_attempts       = 2
      maximum_event_age_in_seconds = 300
    }
  }
}
