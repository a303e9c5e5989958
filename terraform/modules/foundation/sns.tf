# Alerts: `dr schedule` publishes job failures, RPO breaches and state-store outages here, and
# runbooks' notify steps announce drills and failovers (notify.sns_topic in dr.yaml).

resource "aws_sns_topic" "alerts" {
  name              = "${var.name_prefix}-dr-alerts"
  kms_master_key_id = var.sns_kms_key_id
  tags              = local.tags
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alert_emails)

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}
