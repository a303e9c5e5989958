"""What a drill left in the region: find it, delete it, and prove nothing billable remains.

Peers' drills leave restored instances running for weeks. A drill's resources are recognisable
two ways, and both are checked: the tag `dr:run=<run id>` that the steps put on what they create,
and the drill suffix `-drill-<short id>` in names (CloudFormation puts the stack name into the
names of the resources it creates, and a stack's own resources do not always carry its tags).
Only resources of THIS drill are ever touched: a tag match needs both `dr:run=<this run>` and
`dr:drill=true`, and production names carry no drill suffix.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dr.aws import aws_call
from dr.backup.rds_api import CLUSTER, INSTANCE
from dr.errors import AwsError
from dr.runbook.steps import cfn
from dr.runbook.steps.rds_restore import TAG_DRILL, TAG_RUN, delete_target

if TYPE_CHECKING:
    from dr.runbook.steps.base import StepContext

ROUTE53_REGION = "us-east-1"  # Route 53 is global; its API signs in us-east-1


@dataclass(frozen=True)
class Leftover:
    kind: str  # cloudformation-stack | rds-instance | rds-cluster | rds-snapshot | ...
    id: str
    region: str
    detail: str = ""
    delete: Callable[[], None] | None = None

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id, "region": self.region, "detail": self.detail}

    def __str__(self) -> str:
        return f"{self.kind} {self.id} in {self.region}" + (f" ({self.detail})" if self.detail else "")


class DrillMatcher:
    """Is this resource (by name or tags) one of this drill's?"""

    def __init__(self, ctx: StepContext):
        self.run_id = ctx.run_id
        short = ctx.run_id.rsplit("-", 1)[-1].lower()
        self.label = f"drill-{short}"
        self._name = re.compile(rf"(^|[.-]){re.escape(self.label)}($|[.-])")

    def __call__(self, name: str, tags: dict[str, str] | None = None, *, by_name: bool = True) -> bool:
        """Tags prove ownership. `by_name` also accepts the drill label in the name, for what
        cannot carry dr's tags (DNS records, snapshots a template's DeletionPolicy made); stacks,
        instances and clusters, which dr tags itself, need the tags."""
        if tags and tags.get(TAG_RUN) == self.run_id and tags.get(TAG_DRILL) == "true":
            return True
        return by_name and bool(self._name.search(name.lower()))


def _tags(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("TagList") or item.get("Tags") or []}


def _pages(client, op: str, key: str, **kwargs) -> list[dict[str, Any]]:
    return [item for page in client.get_paginator(op).paginate(**kwargs) for item in page.get(key, [])]


def find(ctx: StepContext, region: str, match: DrillMatcher, *, dns: bool = True) -> list[Leftover]:
    """Everything of this drill in `region` (and in its Route 53 zone), in deletion order."""
    found: list[Leftover] = []
    found += _stacks(ctx, region, match)
    found += _databases(ctx, region, match)
    found += _snapshots(ctx, region, match)
    if dns and ctx.config.dns is not None and ctx.config.dns.provider == "route53":
        found += _records(ctx, match)
        found += _health_checks(ctx, match)
    return found


def _stacks(ctx: StepContext, region: str, match: DrillMatcher) -> list[Leftover]:
    client = ctx.session.client("cloudformation", region)
    stacks = aws_call(_pages, client, "describe_stacks", "Stacks", action="listing stacks",
                      resource="(all)", region=region)
    return [Leftover("cloudformation-stack", s["StackName"], region, s["StackStatus"],
                     lambda s=s: cfn.delete(ctx, client, s["StackId"], region))
            for s in stacks
            if s["StackStatus"] != "DELETE_COMPLETE" and match(s["StackName"], cfn.tags_of(s), by_name=False)]


def _databases(ctx: StepContext, region: str, match: DrillMatcher) -> list[Leftover]:
    rds = ctx.session.client("rds", region)
    clusters = aws_call(_pages, rds, "describe_db_clusters", "DBClusters", action="listing DB clusters",
                        resource="(all)", region=region)
    instances = aws_call(_pages, rds, "describe_db_instances", "DBInstances",
                         action="listing DB instances", resource="(all)", region=region)
    ours = [c for c in clusters if match(c["DBClusterIdentifier"], _tags(c), by_name=False)]
    in_our_clusters = {m["DBInstanceIdentifier"] for c in ours for m in c.get("DBClusterMembers") or []}
    found = [Leftover("rds-instance", i["DBInstanceIdentifier"], region, i.get("DBInstanceStatus", ""),
                      lambda i=i: delete_target(ctx, rds, INSTANCE, i["DBInstanceIdentifier"], region))
             for i in instances
             if i["DBInstanceIdentifier"] not in in_our_clusters
             and match(i["DBInstanceIdentifier"], _tags(i), by_name=False)]
    found += [Leftover("rds-cluster", c["DBClusterIdentifier"], region, c.get("Status", ""),
                       lambda c=c: delete_target(ctx, rds, CLUSTER, c["DBClusterIdentifier"], region))
              for c in ours]
    return found


def _snapshots(ctx: StepContext, region: str, match: DrillMatcher) -> list[Leftover]:
    """Manual snapshots a drill caused (a template's DeletionPolicy: Snapshot, for instance)."""
    rds = ctx.session.client("rds", region)
    found = []
    for kind in (INSTANCE, CLUSTER):
        items = aws_call(_pages, rds, kind.describe, kind.list_key, SnapshotType="manual",
                         action="listing snapshots", resource="(manual)", region=region)
        for item in items:
            sid = item[kind.id_key]
            if _tags(item).get("dr:managed") == "true" or not match(sid, _tags(item)):
                continue  # dr's own backups are never a drill's leftovers

            def delete(kind=kind, sid=sid) -> None:
                try:
                    aws_call(getattr(rds, kind.delete), **{kind.id_key: sid}, action="deleting snapshot",
                             resource=sid, region=region)
                except AwsError as exc:
                    if exc.code != kind.not_found:
                        raise

            found.append(Leftover(f"{kind.record_kind}-snapshot", sid, region, item.get("Status", ""), delete))
    return found


def find_zone(r53, zone: str) -> str | None:
    zones = aws_call(r53.list_hosted_zones_by_name, DNSName=zone, MaxItems="1",
                     action="finding hosted zone", resource=zone, region="global")["HostedZones"]
    return zones[0]["Id"] if zones and zones[0]["Name"] == zone else None


def _records(ctx: StepContext, match: DrillMatcher) -> list[Leftover]:
    zone = ctx.config.dns.zone
    r53 = ctx.session.client("route53", ROUTE53_REGION)
    zone_id = find_zone(r53, zone)
    if zone_id is None:
        return []
    records = aws_call(_pages, r53, "list_resource_record_sets", "ResourceRecordSets", HostedZoneId=zone_id,
                       action="listing records of", resource=zone, region="global")
    found = []
    for rr in records:
        if rr["Type"] in ("SOA", "NS") or not match(rr["Name"]):
            continue

        def delete(rr=rr) -> None:
            try:
                aws_call(r53.change_resource_record_sets, HostedZoneId=zone_id,
                         ChangeBatch={"Comment": f"dr teardown {ctx.run_id}",
                                      "Changes": [{"Action": "DELETE", "ResourceRecordSet": rr}]},
                         action="deleting record", resource=rr["Name"], region="global")
            except AwsError as exc:
                if "not found" not in str(exc):
                    raise

        ident = f"{rr['Name']} {rr['Type']}" + (f" [{rr['SetIdentifier']}]" if rr.get("SetIdentifier") else "")
        found.append(Leftover("route53-record", ident, "global", "", delete))
    return found


def _health_checks(ctx: StepContext, match: DrillMatcher) -> list[Leftover]:
    r53 = ctx.session.client("route53", ROUTE53_REGION)
    checks = aws_call(_pages, r53, "list_health_checks", "HealthChecks", action="listing health checks",
                      resource="(all)", region="global")
    tags: dict[str, dict[str, str]] = {}
    ids = [c["Id"] for c in checks]
    for start in range(0, len(ids), 10):
        batch = aws_call(r53.list_tags_for_resources, ResourceType="healthcheck",
                         ResourceIds=ids[start:start + 10], action="reading tags of",
                         resource="health checks", region="global")
        for entry in batch.get("ResourceTagSets", []):
            tags[entry["ResourceId"]] = _tags(entry)
    found = []
    for check in checks:
        fqdn = check.get("HealthCheckConfig", {}).get("FullyQualifiedDomainName", "") or ""
        name = tags.get(check["Id"], {}).get("Name", "")
        if not (match(fqdn, tags.get(check["Id"])) or (name and match(name))):
            continue
        found.append(Leftover("route53-health-check", check["Id"], "global", fqdn or name,
                              lambda cid=check["Id"]: aws_call(
                                  r53.delete_health_check, HealthCheckId=cid, action="deleting health check",
                                  resource=cid, region="global")))
    return found
