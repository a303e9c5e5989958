variable "name_prefix" {
  description = "Prefix of every name this module creates (cluster, task family, schedule, roles), e.g. \"acme\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix: 3-32 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "task_role_arn" {
  description = "dr's IAM role, which the task runs as: the foundation module's dr_role_arn."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.task_role_arn))
    error_message = "task_role_arn: an IAM role ARN (module.foundation.dr_role_arn)."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the task's CloudWatch log group: the foundation module's dr_key_arn (its policy lets CloudWatch Logs use it)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn: a KMS key ARN (module.foundation.dr_key_arn)."
  }
}

variable "dr_config_yaml" {
  description = "The dr.yaml the task runs with (its text, e.g. file(\"dr.yaml\")). Secrets stay out of it: use {env: NAME} there and var.secrets here."
  type        = string

  validation {
    condition     = length(trimspace(var.dr_config_yaml)) > 0 && length(var.dr_config_yaml) <= 32768
    error_message = "dr_config_yaml: the text of a dr.yaml, at most 32 KiB (it travels in the task definition)."
  }
}

variable "create_ecr_repository" {
  description = "Create an ECR repository (immutable tags, scan on push, KMS encrypted) for the image built from the repository's Dockerfile."
  type        = bool
  default     = true
}

variable "image" {
  description = "The container image to run (repository:tag or @digest). null: the created ECR repository with image_tag."
  type        = string
  default     = null
}

variable "image_tag" {
  description = "Tag of the image in the created ECR repository (used when image is null), e.g. the dr version you pushed."
  type        = string
  default     = null

  validation {
    condition     = var.image_tag == null || can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", coalesce(var.image_tag, "-")))
    error_message = "image_tag: a Docker tag (letters, digits, _ . -; at most 128)."
  }
}

variable "ecr_repository_arns" {
  description = "ECR repositories (besides the created one) the task may pull from, when image points elsewhere in ECR."
  type        = list(string)
  default     = []
}

variable "schedule_expression" {
  description = "When EventBridge Scheduler starts the task: rate(...) or cron(...). Run it at least as often as your most frequent dr schedule; each run does what is due (`dr schedule --once`)."
  type        = string
  default     = "rate(5 minutes)"

  validation {
    condition     = can(regex("^(rate|cron)\\(.+\\)$", var.schedule_expression))
    error_message = "schedule_expression: rate(5 minutes) or cron(0/5 * * * ? *)."
  }
}

variable "schedule_timezone" {
  description = "Time zone of a cron schedule_expression (IANA name)."
  type        = string
  default     = "UTC"
}

variable "schedule_enabled" {
  description = "Whether the schedule runs (false pauses it without destroying anything)."
  type        = bool
  default     = true
}

variable "schedule_kms_key_arn" {
  description = "A customer managed KMS key for the schedule's stored target settings, or null for an AWS owned key (the schedule holds no secret: a task definition and network settings)."
  type        = string
  default     = null
}

variable "jitter" {
  description = "`dr schedule --jitter`: spread the start of each job over up to this long (e.g. 1m), or null for none. Fargate bills the wait."
  type        = string
  default     = null

  validation {
    condition     = var.jitter == null || can(regex("^[0-9]+[smh]$", coalesce(var.jitter, "-")))
    error_message = "jitter: a duration like 30s, 1m or 2h, or null."
  }
}

variable "extra_args" {
  description = "More arguments after `dr schedule --once --json-logs`, e.g. [\"--max-parallel\", \"2\"]."
  type        = list(string)
  default     = []
}

variable "cpu" {
  description = "Fargate task CPU units."
  type        = number
  default     = 512

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096], var.cpu)
    error_message = "cpu: 256, 512, 1024, 2048 or 4096."
  }
}

variable "memory" {
  description = "Fargate task memory in MiB (must fit the CPU: 512 CPU takes 1024-4096)."
  type        = number
  default     = 1024

  validation {
    condition     = var.memory >= 512 && var.memory <= 30720
    error_message = "memory: 512 to 30720 MiB."
  }
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64: the architecture the image was built for."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture: X86_64 or ARM64."
  }
}

variable "ephemeral_storage_gib" {
  description = "Fargate ephemeral storage (GiB) for /tmp: the spool and MySQL dump buffers."
  type        = number
  default     = 21

  validation {
    condition     = var.ephemeral_storage_gib >= 21 && var.ephemeral_storage_gib <= 200
    error_message = "ephemeral_storage_gib: 21 to 200."
  }
}

variable "vpc_id" {
  description = "VPC of the task (in the DR region)."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id: a VPC id (vpc-...)."
  }
}

variable "subnet_ids" {
  description = "Subnets of the task: private subnets with a NAT gateway or VPC endpoints for the AWS APIs dr calls (S3, RDS, KMS, SNS, CloudWatch Logs, ECR; CloudFormation and Route 53 for drills)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "subnet_ids: at least one subnet id (subnet-...)."
  }
}

variable "assign_public_ip" {
  description = "Give the task a public IP (only for public subnets without NAT)."
  type        = bool
  default     = false
}

variable "security_group_ids" {
  description = "Security groups of the task. Empty: one is created that allows HTTPS out (AWS APIs) plus extra_egress."
  type        = list(string)
  default     = []
}

variable "https_egress_cidr_blocks" {
  description = "Where the created security group lets the task reach on 443 (the AWS APIs; narrow it to VPC endpoint ranges if you have them)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "extra_egress" {
  description = "More egress rules for the created security group, e.g. MySQL servers: [{port = 3306, cidr_blocks = [\"10.0.0.5/32\"], description = \"office MySQL\"}]."
  type = list(object({
    port        = number
    cidr_blocks = list(string)
    description = string
  }))
  default = []
}

variable "environment" {
  description = "More environment variables for the container (not secrets)."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Environment variable -> SSM parameter or Secrets Manager secret ARN (e.g. DR_MYSQL_PASSWORD for password: {env: DR_MYSQL_PASSWORD} in dr.yaml). The execution role may read exactly these."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for arn in values(var.secrets) : can(regex("^arn:aws[a-z-]*:(ssm|secretsmanager):[a-z0-9-]+:[0-9]{12}:.+$", arn))])
    error_message = "secrets: values must be SSM parameter or Secrets Manager secret ARNs."
  }
}

variable "secrets_kms_key_arns" {
  description = "Customer managed KMS keys that encrypt those secrets (the execution role gets kms:Decrypt on them). Secrets under AWS managed keys need none."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "How long CloudWatch keeps the task's logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days: one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ..., 365, 400, 545, 731, ...)."
  }
}

variable "container_insights" {
  description = "Container Insights on the ECS cluster (metrics for each run)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags on every resource this module creates."
  type        = map(string)
  default     = {}
}
