variable "name_prefix" {
  description = "Prefix of every name created (role, topic, cluster, schedule)."
  type        = string
  default     = "acme"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix: 3-32 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "primary_region" {
  description = "Where production runs (regions.primary in dr.yaml)."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]+$", var.primary_region))
    error_message = "primary_region: an AWS region name such as us-east-1."
  }
}

variable "dr_region" {
  description = "The DR region (regions.dr in dr.yaml): the key, the buckets, the topic and the runner are created there."
  type        = string
  default     = "us-west-2"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]+$", var.dr_region))
    error_message = "dr_region: an AWS region name such as us-west-2."
  }
}

variable "kms_key_alias" {
  description = "Alias of the DR key (kms.dr_key in dr.yaml)."
  type        = string
  default     = "alias/acme-dr-backups"

  validation {
    condition     = startswith(var.kms_key_alias, "alias/")
    error_message = "kms_key_alias: alias/NAME."
  }
}

variable "state_bucket_name" {
  description = "The state bucket (state.bucket in dr.yaml). S3 bucket names are global: pick your own."
  type        = string
  default     = "acme-dr-state"
}

variable "backup_bucket_names" {
  description = "The DR backup buckets: the first takes MySQL backups (mysql[].destination), the others are destinations of s3 entries (s3[].destination)."
  type        = list(string)
  default     = ["acme-dr-backups", "acme-assets-dr"]

  validation {
    condition     = length(var.backup_bucket_names) > 0
    error_message = "backup_bucket_names: at least one bucket."
  }
}

variable "object_lock_mode" {
  description = "Object Lock on the backup buckets: null, GOVERNANCE or COMPLIANCE."
  type        = string
  default     = "GOVERNANCE"

  validation {
    condition     = var.object_lock_mode == null || contains(["GOVERNANCE", "COMPLIANCE"], coalesce(var.object_lock_mode, "-"))
    error_message = "object_lock_mode: null, GOVERNANCE or COMPLIANCE."
  }
}

variable "alert_emails" {
  description = "Who gets dr's alerts by email."
  type        = list(string)
  default     = []
}

variable "dr_config_file" {
  description = "The dr.yaml the scheduled task runs with and the policy is generated from."
  type        = string
  default     = "dr.yaml"
}

variable "dr_policy_file" {
  description = "The output of `dr permissions` for dr_config_file. Missing: dr's role gets no permissions yet (first apply)."
  type        = string
  default     = "dr-policy.json"
}

variable "vpc_id" {
  description = "VPC in the DR region for the scheduled task."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (with NAT or VPC endpoints) in the DR region for the scheduled task."
  type        = list(string)
}

variable "image_tag" {
  description = "Tag of the dr image pushed to the created ECR repository (docker build -t REPO:TAG . && docker push REPO:TAG)."
  type        = string
  default     = null
}

variable "schedule_expression" {
  description = "How often the task runs `dr schedule --once`."
  type        = string
  default     = "rate(5 minutes)"
}

variable "secrets" {
  description = "Environment variable -> SSM parameter / Secrets Manager ARN for the task, e.g. DR_MYSQL_PASSWORD."
  type        = map(string)
  default     = {}
}

variable "mysql_egress" {
  description = "Egress rules from the task to self-managed MySQL servers: [{port, cidr_blocks, description}]."
  type = list(object({
    port        = number
    cidr_blocks = list(string)
    description = string
  }))
  default = []
}

variable "route53_failover" {
  description = "Optional Route 53 health check + failover record pair (see modules/foundation)."
  type = object({
    zone_id         = string
    record_name     = string
    record_type     = optional(string, "CNAME")
    ttl             = optional(number, 60)
    primary_value   = string
    secondary_value = string
    health_check = object({
      fqdn              = string
      port              = optional(number, 443)
      type              = optional(string, "HTTPS")
      resource_path     = optional(string, "/health")
      failure_threshold = optional(number, 3)
      request_interval  = optional(number, 30)
    })
  })
  default = null
}

variable "eks_oidc" {
  description = "For the Kubernetes CronJob instead of (or besides) the runner: the EKS OIDC provider and service account."
  type = object({
    provider_arn    = string
    provider_url    = string
    namespace       = optional(string, "dr")
    service_account = optional(string, "dr")
  })
  default = null
}

variable "tags" {
  description = "Default tags on everything."
  type        = map(string)
  default     = { project = "dr" }
}
