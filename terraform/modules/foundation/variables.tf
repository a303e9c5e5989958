variable "name_prefix" {
  description = "Prefix of every name this module creates (role, topic, health check), e.g. \"acme\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix: 3-32 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "primary_region" {
  description = "The region production runs in (regions.primary in dr.yaml). Used for outputs and KMS conditions; nothing is created there."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]+$", var.primary_region))
    error_message = "primary_region: an AWS region name such as us-east-1."
  }
}

variable "dr_region" {
  description = "The DR region (regions.dr in dr.yaml). The aws provider passed to this module must be configured for it: the key, the buckets and the topic are created there."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]+$", var.dr_region))
    error_message = "dr_region: an AWS region name such as us-west-2."
  }
}

variable "kms_key_alias" {
  description = "Alias of the DR-region KMS key (kms.dr_key in dr.yaml)."
  type        = string
  default     = "alias/dr-backups"

  validation {
    condition     = can(regex("^alias/[A-Za-z0-9/_-]{1,250}$", var.kms_key_alias)) && !startswith(var.kms_key_alias, "alias/aws/")
    error_message = "kms_key_alias: alias/NAME (letters, digits, / _ -), not under alias/aws/ (reserved for AWS managed keys)."
  }
}

variable "kms_deletion_window_days" {
  description = "Days a deleted DR key stays recoverable (7-30). Every copy dr made is unreadable once it is gone: keep it long."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30 && floor(var.kms_deletion_window_days) == var.kms_deletion_window_days
    error_message = "kms_deletion_window_days: a whole number from 7 to 30."
  }
}

variable "key_admin_arns" {
  description = "IAM principals allowed to administer the DR key (not to use it). Empty: the account root, i.e. IAM policies in this account decide who administers it. When set, include the principal that runs Terraform, or KMS refuses the policy (lockout check)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.key_admin_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(root|role/.+|user/.+)$", arn))])
    error_message = "key_admin_arns: IAM role, user or account root ARNs."
  }
}

variable "key_user_arns" {
  description = "More IAM principals allowed to use the DR key besides dr's role (e.g. an operator role that restores backups by hand)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.key_user_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/.+$", arn))])
    error_message = "key_user_arns: IAM role or user ARNs."
  }
}

variable "allow_cloudwatch_logs" {
  description = "Let CloudWatch Logs in the DR region encrypt this account's log groups with the DR key (the runner module's log group uses it)."
  type        = bool
  default     = true
}

variable "state_bucket_name" {
  description = "Name of the state bucket (state.bucket in dr.yaml): run records, journals, locks, manifests."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.state_bucket_name)) && !strcontains(var.state_bucket_name, "..")
    error_message = "state_bucket_name: a valid S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)."
  }
}

variable "backup_bucket_names" {
  description = "Names of the DR backup buckets: destinations of s3 entries (s3[].destination) and of MySQL backups (mysql[].destination s3://BUCKET/...)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for name in var.backup_bucket_names : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", name)) && !strcontains(name, "..")])
    error_message = "backup_bucket_names: valid S3 bucket names (3-63 lowercase letters, digits, dots and hyphens)."
  }

  validation {
    condition     = length(distinct(var.backup_bucket_names)) == length(var.backup_bucket_names)
    error_message = "backup_bucket_names: each name once."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which a noncurrent object version (overwritten or deleted) expires in every bucket of this module. Longer than your longest retention window keeps old copies recoverable."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && floor(var.noncurrent_version_expiration_days) == var.noncurrent_version_expiration_days
    error_message = "noncurrent_version_expiration_days: a whole number of days, at least 1."
  }
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days after which S3 aborts an incomplete multipart upload (dr aborts its own; this catches a killed process)."
  type        = number
  default     = 7

  validation {
    condition     = var.abort_incomplete_multipart_upload_days >= 1 && floor(var.abort_incomplete_multipart_upload_days) == var.abort_incomplete_multipart_upload_days
    error_message = "abort_incomplete_multipart_upload_days: a whole number of days, at least 1."
  }
}

variable "object_lock_mode" {
  description = "S3 Object Lock on the backup buckets against ransomware: null (off), GOVERNANCE (privileged users can still delete) or COMPLIANCE (nobody can, not even root, until the retention ends). Only at bucket creation: switching it on later replaces the buckets."
  type        = string
  default     = null

  validation {
    condition     = var.object_lock_mode == null || contains(["GOVERNANCE", "COMPLIANCE"], coalesce(var.object_lock_mode, "-"))
    error_message = "object_lock_mode: null, GOVERNANCE or COMPLIANCE."
  }
}

variable "object_lock_retention_days" {
  description = "Default Object Lock retention of each new object version, in days (with object_lock_mode). dr's own deletions (mysql prune, s3 mirror) leave locked versions in place until then."
  type        = number
  default     = 30

  validation {
    condition     = var.object_lock_retention_days >= 1 && floor(var.object_lock_retention_days) == var.object_lock_retention_days
    error_message = "object_lock_retention_days: a whole number of days, at least 1."
  }
}

variable "access_log_bucket" {
  description = "A bucket in the DR region that receives S3 server access logs of every bucket here (under s3/<bucket>/), or null for none."
  type        = string
  default     = null

  validation {
    condition     = var.access_log_bucket == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", coalesce(var.access_log_bucket, "-")))
    error_message = "access_log_bucket: a valid S3 bucket name, or null."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete buckets that still hold objects. Keep false outside tests: these buckets are your backups."
  type        = bool
  default     = false
}

variable "dr_policy_json" {
  description = "The IAM policy for dr's role, exactly as `dr permissions` prints it for your dr.yaml (e.g. file(\"dr-policy.json\")). Empty: the role gets no permissions yet (first apply, before dr.yaml exists). Actions must be spelt out: no wildcards."
  type        = string
  default     = ""

  validation {
    condition     = var.dr_policy_json == "" || can(jsondecode(var.dr_policy_json).Statement[0])
    error_message = "dr_policy_json: an IAM policy document in JSON with a Statement list: the output of `dr permissions`."
  }

  validation {
    condition = var.dr_policy_json == "" || try(alltrue([
      for statement in jsondecode(var.dr_policy_json).Statement : (
        !can(statement.NotAction) &&
        alltrue([for action in flatten([statement.Action]) : !strcontains(action, "*")])
      )
    ]), false)
    error_message = "dr_policy_json: every action must be spelt out (no \"*\" or \"service:*\", no NotAction). Regenerate it with `dr permissions`."
  }
}

variable "allow_ecs_tasks" {
  description = "Let ECS tasks in this account and the DR region assume dr's role (the runner module's task role)."
  type        = bool
  default     = true
}

variable "trusted_principal_arns" {
  description = "More IAM principals allowed to assume dr's role (e.g. an operator role for `dr restore`, a CI role for drills)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.trusted_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(root|role/.+|user/.+)$", arn))])
    error_message = "trusted_principal_arns: IAM role, user or account root ARNs."
  }
}

variable "eks_oidc" {
  description = "For the Kubernetes CronJob (IRSA): the cluster's OIDC provider ARN and URL (without https://) and the service account that may assume dr's role. null: none."
  type = object({
    provider_arn    = string
    provider_url    = string
    namespace       = optional(string, "dr")
    service_account = optional(string, "dr")
  })
  default = null

  validation {
    condition     = var.eks_oidc == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/.+$", var.eks_oidc.provider_arn))
    error_message = "eks_oidc.provider_arn: an IAM OIDC provider ARN."
  }
}

variable "role_name" {
  description = "Name of dr's IAM role; null: <name_prefix>-dr."
  type        = string
  default     = null

  validation {
    condition     = var.role_name == null || can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", coalesce(var.role_name, "-")))
    error_message = "role_name: 1-64 characters of letters, digits and +=,.@_-."
  }
}

variable "permissions_boundary_arn" {
  description = "A permissions boundary for dr's role, or null."
  type        = string
  default     = null
}

variable "sns_kms_key_id" {
  description = "KMS key of the alerts topic. The default AWS managed key lets dr publish with sns:Publish alone; a customer managed key also needs kms:GenerateDataKey and kms:Decrypt for every publisher."
  type        = string
  default     = "alias/aws/sns"
}

variable "alert_emails" {
  description = "Email addresses subscribed to the alerts topic (each must confirm the subscription)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.alert_emails : can(regex("^[^@ ]+@[^@ ]+\\.[^@ ]+$", e))])
    error_message = "alert_emails: email addresses."
  }
}

variable "route53_failover" {
  description = "Optional Route 53 health check on the primary site and a PRIMARY/SECONDARY failover record pair. null: none. Do not also point dr's dns.flip at the same name: one owner per record."
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

  validation {
    condition     = var.route53_failover == null || contains(["CNAME", "A", "AAAA"], try(var.route53_failover.record_type, ""))
    error_message = "route53_failover.record_type: CNAME, A or AAAA."
  }

  validation {
    condition     = var.route53_failover == null || contains(["HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH", "TCP"], try(var.route53_failover.health_check.type, ""))
    error_message = "route53_failover.health_check.type: HTTP, HTTPS, HTTP_STR_MATCH, HTTPS_STR_MATCH or TCP."
  }

  validation {
    condition     = var.route53_failover == null || contains([10, 30], try(var.route53_failover.health_check.request_interval, 0))
    error_message = "route53_failover.health_check.request_interval: 10 or 30 seconds."
  }

  validation {
    condition     = var.route53_failover == null || (try(var.route53_failover.health_check.failure_threshold, 0) >= 1 && try(var.route53_failover.health_check.failure_threshold, 0) <= 10)
    error_message = "route53_failover.health_check.failure_threshold: 1 to 10."
  }
}

variable "tags" {
  description = "Tags on every resource this module creates."
  type        = map(string)
  default     = {}
}
