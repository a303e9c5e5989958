# Optional: Route 53 checks the primary site and answers with the secondary when it fails.
# This is Route 53's own automatic failover; dr's `dns.flip` step is the manual, health-gated
# one. Give each record name one owner.

resource "aws_route53_health_check" "primary" {
  count = var.route53_failover == null ? 0 : 1

  fqdn              = var.route53_failover.health_check.fqdn
  port              = var.route53_failover.health_check.port
  type              = var.route53_failover.health_check.type
  resource_path     = contains(["TCP"], var.route53_failover.health_check.type) ? null : var.route53_failover.health_check.resource_path
  failure_threshold = var.route53_failover.health_check.failure_threshold
  request_interval  = var.route53_failover.health_check.request_interval
  tags              = merge(local.tags, { Name = "${var.name_prefix}-primary" })
}

resource "aws_route53_record" "primary" {
  count = var.route53_failover == null ? 0 : 1

  zone_id         = var.route53_failover.zone_id
  name            = var.route53_failover.record_name
  type            = var.route53_failover.record_type
  ttl             = var.route53_failover.ttl
  records         = [var.route53_failover.primary_value]
  set_identifier  = "${var.name_prefix}-primary"
  health_check_id = aws_route53_health_check.primary[0].id

  failover_routing_policy {
    type = "PRIMARY"
  }
}

resource "aws_route53_record" "secondary" {
  count = var.route53_failover == null ? 0 : 1

  zone_id        = var.route53_failover.zone_id
  name           = var.route53_failover.record_name
  type           = var.route53_failover.record_type
  ttl            = var.route53_failover.ttl
  records        = [var.route53_failover.secondary_value]
  set_identifier = "${var.name_prefix}-secondary"

  failover_routing_policy {
    type = "SECONDARY"
  }
}
