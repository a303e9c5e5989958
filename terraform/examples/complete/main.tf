# The complete DR set-up: the foundation (key, buckets, role, topic, optional health check) and
# the runner (dr schedule --once on Fargate every few minutes), wired together.
#
#   1. terraform apply                              # dr-policy.json absent: role without permissions
#   2. dr init --from-terraform <(terraform output -json) --config dr.yaml   # or edit dr.yaml
#   3. dr --config dr.yaml permissions > dr-policy.json
#   4. docker build -t "$(terraform output -raw ecr_repository_url):TAG" ../../.. && docker push ...
#   5. terraform apply -var image_tag=TAG          # attaches the policy, starts the schedule

locals {
  dr_policy_json = fileexists("${path.module}/${var.dr_policy_file}") ? file("${path.module}/${var.dr_policy_file}") : ""
  dr_config_yaml = file("${path.module}/${var.dr_config_file}")
}

module "foundation" {
  source = "../../modules/foundation"

  name_prefix         = var.name_prefix
  primary_region      = var.primary_region
  dr_region           = var.dr_region
  kms_key_alias       = var.kms_key_alias
  state_bucket_name   = var.state_bucket_name
  backup_bucket_names = var.backup_bucket_names
  object_lock_mode    = var.object_lock_mode
  alert_emails        = var.alert_emails
  dr_policy_json      = local.dr_policy_json
  route53_failover    = var.route53_failover
  eks_oidc            = var.eks_oidc
}

module "runner" {
  source = "../../modules/runner"

  name_prefix         = var.name_prefix
  task_role_arn       = module.foundation.dr_role_arn
  kms_key_arn         = module.foundation.dr_key_arn
  dr_config_yaml      = local.dr_config_yaml
  image_tag           = var.image_tag
  schedule_expression = var.schedule_expression
  schedule_enabled    = var.image_tag != null && module.foundation.dr_policy_attached
  vpc_id              = var.vpc_id
  subnet_ids          = var.subnet_ids
  secrets             = var.secrets
  extra_egress        = var.mysql_egress
}
