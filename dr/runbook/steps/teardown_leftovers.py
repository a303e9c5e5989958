"""teardown's helpers: find what a drill left in the region, delete it, prove nothing billable is left.

Peers' drills leave restored instances running for weeks. A drill's resources are found three
ways, and all are checked: the run's **ledger** (journal: every step writes what it is about to
create, and a stack's resources are written there before the stack is deleted), the tag
`dr:run=<run id>` that the steps put on what they create, and the drill suffix
`-drill-<short id>` in names (DNS records, snapshots a template's DeletionPolicy made).

Only resources of THIS drill are ever touched: a tag match needs both `dr:run=<this run>` and
`dr:drill=true`; a ledger entry is deleted only when the world confirms it (ownership.py; a
stack's resource: its `aws:cloudformation:stack-id` tag is the stack this run created). A ledger
entry the world does not confirm is reported, loudly, and never deleted.

Deleting a stack is not the end: resources with `DeletionPolicy: Retain` survive it and
`Snapshot` leaves a final snapshot behind. `delete_stack` lists the stack's resources into the
ledger first, deletes the stack, then looks for each billable one again (RDS instances and
clusters, and the snapshots of them made after the stack was created) and deletes what is
still there; retained resources of types dr cannot check are named in a warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dr.aws import aws_call
from dr.backup.rds_api import CLUSTER, INSTANCE, aware
from dr.errors import AwsError, OperationFailed
from dr.dns.base import absolute
from dr.runbook.steps import ownership
from dr.runbook.steps import stack_cloudformation as cfn
from dr.runbook.steps.ownership import TAG_DRILL, TAG_RUN
from dr.runbook.steps.rds_restore import delete_target, describe_target, tags_of

if TYPE_CHECKING:
    from dr.runbook.steps.base import StepContext

ROUTE53_REGION = "us-east-1"  # Route 53 is global; its API signs in us-east-1
STACK_ID_TAG = "aws:cloudformation:stack-id"
# Stack resource types dr checks after the stack is gone, and their ledger kinds.
CHECKED_TYPES = {"AWS::RDS::DBInstance": "rds-instance", "AWS::RDS::DBCluster": "rds-cluster"}


@dataclass(frozen=True)
class Leftover:
    kind: str  # cloudformation-stack | rds-instance | rds-cluster | rds-snapshot | ...
    id: str
    region: str
    detail: str = ""
    delete: Callable[[], None] | None = None
    refused: str | None = None  # why it must not be deleted (ownership not proven)
    stack_id: str = ""          # aws:cloudformation:stack-id, for what a stack made
    aliases: tuple[str, ...] = ()  # other ids the ledger may know it by (a health check's reference)

    def to_dict(self) -> dict[str, str]:
        out = {"kind": self.kind, "id": self.id, "region": self.region, "detail": self.detail}
        if self.refused:
            out["refused"] = self.refused
        return out

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.id, self.region)

    def __str__(self) -> str:
        return (f"{self.kind} {self.id} in {self.region}" + (f" ({self.detail})" if self.detail else "")
                + (f" [not deleted: {self.refused}]" if self.refused else ""))


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
    """Everything of this drill in `region` (and in its DNS zone), in deletion order: stacks
    first (they take their resources with them)."""
    used = services_used(ctx)
    found: list[Leftover] = []
    if "cloudformation" in used:
        found += _stacks(ctx, region, match)
    if "rds" in used:
        found += _databases(ctx, region, match)
        found += _snapshots(ctx, region, match)
    if dns and "route53" in used:
        found += _records(ctx, match)
        found += _health_checks(ctx, match)
    ledger = _from_ledger(ctx, dns=dns)
    known = {item.key for item in ledger}
    found = ledger + [_proven(ctx, item) for item in found if item.key not in known]
    return sorted(found, key=lambda f: f.kind != "cloudformation-stack")


def services_used(ctx: StepContext) -> set[str]:
    """The AWS services this run can have made something in: from its steps, the stack's
    template and its ledger. Only those are asked (an emulator without RDS, or an account
    without the permission, must not fail a drill that never touched RDS)."""
    route53 = ctx.config.dns is not None and ctx.config.dns.provider == "route53"
    if not ctx.plan:  # called outside a run's plan (tests, a hand-made context): ask them all
        return {"cloudformation", "rds"} | ({"route53"} if route53 else set())
    used: set[str] = set()
    for _, step_type, params in ctx.plan:
        if step_type == "rds.restore":
            used.add("rds")
        elif step_type == "stack.launch":
            used.add("cloudformation")
            used |= _template_services(ctx, params)
        elif step_type in ("dns.flip", "dns.restore") and route53:
            used.add("route53")
    for entry in ctx.ledger():
        kind = str(entry.get("kind", ""))
        used |= {"rds"} if kind.startswith("rds-") else {"cloudformation"} if kind == "cloudformation-stack" \
            else {"route53"} if kind in ("dns-record", "route53-health-check") and route53 else set()
    return used


def _template_services(ctx: StepContext, params) -> set[str]:
    path = (params or {}).get("template") if isinstance((params or {}).get("template"), str) else None
    path = path or (str(ctx.config.stack.template) if ctx.config.stack is not None else None)
    if not path or "${" in path:
        return {"rds"}  # cannot tell: ask
    try:
        types = {str(v.get("Type", "")) for v in (cfn.load_template(path).doc.get("Resources") or {}).values()
                 if isinstance(v, dict)}
    except Exception:  # noqa: BLE001 - cannot tell: ask
        return {"rds"}
    return {"rds"} if any(t.startswith("AWS::RDS::") for t in types) else set()


def _proven(ctx: StepContext, item: Leftover) -> Leftover:
    """A resource found by this drill's tags or name is deleted only if the run's ledger knows it
    too: by its id (or an alias), or as a resource of a stack this run created. Otherwise it is
    reported, not deleted: something else made it look like this drill's."""
    entries = ctx.ledger()
    names = {item.id, *item.aliases}
    if any(e.get("kind") == item.kind and e.get("id") in names for e in entries):
        return item
    stacks = {e.get("world_id") for e in entries if e.get("kind") == "cloudformation-stack" and e.get("world_id")}
    if item.stack_id and item.stack_id in stacks:
        return item
    return Leftover(item.kind, item.id, item.region, item.detail, None,
                    refused="it looks like this drill's, but this run's journal does not record creating it")


# --- what the ledger names ------------------------------------------------------------------------


def _from_ledger(ctx: StepContext, *, dns: bool) -> list[Leftover]:
    """Each ledger entry that still exists in the world: deletable when the world confirms it is
    this run's, refused (and reported) when not."""
    found = []
    for entry in ctx.ledger():
        kind, ident, region = entry.get("kind"), entry.get("id"), entry.get("region")
        if kind == "cloudformation-stack":
            item = _ledger_stack(ctx, ident, region)
        elif kind in ("rds-instance", "rds-cluster"):
            item = _ledger_database(ctx, entry)
        elif kind in ("rds-instance-snapshot", "rds-cluster-snapshot"):
            item = _ledger_snapshot(ctx, entry)
        elif kind == "dns-record" and dns:
            item = _ledger_record(ctx, ident)
        else:
            item = None
        if item is not None:
            found.append(item)
    return found


def _ledger_stack(ctx: StepContext, name: str, region: str) -> Leftover | None:
    client = ctx.session.client("cloudformation", region)
    stack = cfn.describe(client, name, region)
    if stack is None:
        return None
    why = ownership.owned(ctx, "cloudformation-stack", name, region, cfn.tags_of(stack), stack["StackId"])
    return Leftover("cloudformation-stack", name, region, stack["StackStatus"],
                    None if why else (lambda: delete_stack(ctx, client, stack, region)), refused=why)


def _ledger_database(ctx: StepContext, entry: dict[str, Any]) -> Leftover | None:
    kind = INSTANCE if entry["kind"] == "rds-instance" else CLUSTER
    region, ident = entry["region"], entry["id"]
    rds = ctx.session.client("rds", region)
    item = describe_target(rds, kind, ident, region)
    if item is None:
        return None
    tags = tags_of(item)
    if entry.get("stack_id"):  # made by a stack this run created: the stack's id proves it
        why = None if tags.get(STACK_ID_TAG) == entry["stack_id"] else (
            f"its {STACK_ID_TAG} tag is {tags.get(STACK_ID_TAG) or 'missing'}, not the drill's stack "
            f"{entry['stack_id']}")
    else:
        why = ownership.owned(ctx, entry["kind"], ident, region, tags)
    status = item.get("DBInstanceStatus") or item.get("Status") or ""
    return Leftover(entry["kind"], ident, region, status,
                    None if why else (lambda: delete_target(ctx, rds, kind, ident, region)), refused=why)


def _ledger_snapshot(ctx: StepContext, entry: dict[str, Any]) -> Leftover | None:
    kind = INSTANCE if entry["kind"] == "rds-instance-snapshot" else CLUSTER
    region, ident = entry["region"], entry["id"]
    rds = ctx.session.client("rds", region)
    try:
        items = aws_call(getattr(rds, kind.describe), **{kind.id_key: ident}, action="describing snapshot",
                         resource=ident, region=region)[kind.list_key]
    except AwsError as exc:
        if exc.code == kind.not_found:
            return None
        raise
    if not items:
        return None
    return Leftover(entry["kind"], ident, region, items[0].get("Status", ""),
                    lambda: _delete_snapshot(rds, kind, ident, region))


def _ledger_record(ctx: StepContext, record: str) -> Leftover | None:
    from dr.dns import make_provider
    from dr.dns.base import RecordState
    from dr.runbook.steps.dns_safety import guard_drill

    if ctx.config.dns is None:
        return None
    provider = make_provider(ctx.config.dns, session=ctx.session, wait=ctx.wait)
    current = provider.current(record)
    if not current.exists:
        return None
    try:
        guard_drill(record, ctx)
        refused = None
    except Exception as exc:  # noqa: BLE001 - the guard's reason is the refusal
        refused = getattr(exc, "message", str(exc))

    def delete() -> None:
        provider.apply(RecordState(record))
        provider.wait_in_sync()

    return Leftover("dns-record", record, "global", current.describe(), None if refused else delete,
                    refused=refused)


def _delete_snapshot(rds, kind, ident: str, region: str) -> None:
    try:
        aws_call(getattr(rds, kind.delete), **{kind.id_key: ident}, action="deleting snapshot",
                 resource=ident, region=region)
    except AwsError as exc:
        if exc.code != kind.not_found:
            raise


# --- a stack, and what survives it ----------------------------------------------------------------


def record_stack_resources(ctx: StepContext, client, stack: dict[str, Any], region: str,
                           policies: dict[str, str]) -> list[dict[str, Any]]:
    """Write the stack's billable resources, and those its template keeps, to the ledger."""
    entries = []
    for res in cfn.stack_resources(client, stack["StackId"], region):
        kind = CHECKED_TYPES.get(res.get("ResourceType", ""))
        policy = policies.get(res.get("LogicalResourceId", ""), "Delete")
        if not res.get("PhysicalResourceId") or (kind is None and policy == "Delete"):
            continue
        entry = {"kind": kind or "stack-resource", "id": res["PhysicalResourceId"], "region": region,
                 "stack": stack["StackName"], "stack_id": stack["StackId"],
                 "logical_id": res.get("LogicalResourceId"), "type": res.get("ResourceType"),
                 "deletion_policy": policy}
        ctx.record_created({**entry, "step": ctx.step_id})
        entries.append(entry)
    return entries


def delete_stack(ctx: StepContext, client, stack: dict[str, Any], region: str,
                 policies: dict[str, str] | None = None) -> list[str]:
    """Delete a stack this run owns, then what it left: retained RDS instances and clusters whose
    `aws:cloudformation:stack-id` is this stack, and snapshots of them taken after the stack was
    created (DeletionPolicy: Snapshot). Returns warnings for retained resources of types dr does
    not check; raises when something it checks is still there."""
    if policies is None:
        policies = _policies_of(client, stack, region)
    entries = record_stack_resources(ctx, client, stack, region, policies)
    cfn.delete(ctx, client, stack["StackId"], region)
    problems, warnings = [], []
    for entry in entries:
        if entry["kind"] == "stack-resource":
            if entry["deletion_policy"] != "Delete":
                warnings.append(f"{entry['type']} {entry['id']} ({entry['logical_id']}, DeletionPolicy: "
                                f"{entry['deletion_policy']}) may survive the stack; dr cannot check this "
                                "type: delete it by hand if it bills")
            continue
        try:
            _sweep_child(ctx, entry, stack)
        except OperationFailed as exc:
            problems.append(exc.message)
    for warning in warnings:
        ctx.log(f"teardown: warning: {warning}")
    if problems:
        raise OperationFailed(f"stack {stack['StackName']} is deleted, but what it kept is not: "
                              + "; ".join(problems), hint="they bill until gone: delete them by hand")
    return warnings


def _sweep_child(ctx: StepContext, entry: dict[str, Any], stack: dict[str, Any]) -> None:
    kind = INSTANCE if entry["kind"] == "rds-instance" else CLUSTER
    region, ident = entry["region"], entry["id"]
    rds = ctx.session.client("rds", region)
    item = describe_target(rds, kind, ident, region)
    if item is not None:
        owner = tags_of(item).get(STACK_ID_TAG)
        if owner != stack["StackId"]:
            raise OperationFailed(f"{kind.label} {ident} ({entry['logical_id']}) survived the stack but its "
                                  f"{STACK_ID_TAG} tag is {owner or 'missing'}: not deleting what this drill "
                                  "cannot prove it made")
        ctx.log(f"teardown: {kind.label} {ident} ({entry['logical_id']}, DeletionPolicy: "
                f"{entry['deletion_policy']}) survived the stack: deleting it")
        delete_target(ctx, rds, kind, ident, region)
    created = aware(stack.get("CreationTime"))
    snaps = aws_call(_pages, rds, kind.describe, kind.list_key, SnapshotType="manual",
                     **{kind.source_param: ident}, action="listing snapshots of", resource=ident, region=region)
    for snap in snaps:
        taken = aware(snap.get("SnapshotCreateTime"))
        source = snap.get(kind.source_param)
        if source != ident or (created is not None and taken is not None and taken < created):
            continue  # not a snapshot this stack's deletion made
        sid = snap[kind.id_key]
        ctx.record_created({"kind": f"{kind.record_kind}-snapshot", "id": sid, "region": region,
                            "step": ctx.step_id, "source": ident, "stack_id": stack["StackId"]})
        ctx.log(f"teardown: deleting the final snapshot {sid} the stack left of {ident}")
        _delete_snapshot(rds, kind, sid, region)


def _policies_of(client, stack: dict[str, Any], region: str) -> dict[str, str]:
    """The DeletionPolicy of each resource, from the template the stack runs."""
    try:
        body = aws_call(client.get_template, StackName=stack["StackId"], TemplateStage="Original",
                        action="reading the template of stack", resource=stack["StackName"],
                        region=region)["TemplateBody"]
        doc = body if isinstance(body, dict) else cfn.parse_template(body)
    except Exception:  # noqa: BLE001 - without it every checked type is still checked
        return {}
    return {k: str(v["DeletionPolicy"]) for k, v in (doc.get("Resources") or {}).items()
            if isinstance(v, dict) and v.get("DeletionPolicy") not in (None, "Delete")}


def _stacks(ctx: StepContext, region: str, match: DrillMatcher) -> list[Leftover]:
    client = ctx.session.client("cloudformation", region)
    stacks = aws_call(_pages, client, "describe_stacks", "Stacks", action="listing stacks",
                      resource="(all)", region=region)
    return [Leftover("cloudformation-stack", s["StackName"], region, s["StackStatus"],
                     lambda s=s: delete_stack(ctx, client, s, region))
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
                      lambda i=i: delete_target(ctx, rds, INSTANCE, i["DBInstanceIdentifier"], region),
                      stack_id=_tags(i).get(STACK_ID_TAG, ""))
             for i in instances
             if i["DBInstanceIdentifier"] not in in_our_clusters
             and match(i["DBInstanceIdentifier"], _tags(i), by_name=False)]
    found += [Leftover("rds-cluster", c["DBClusterIdentifier"], region, c.get("Status", ""),
                       lambda c=c: delete_target(ctx, rds, CLUSTER, c["DBClusterIdentifier"], region),
                       stack_id=_tags(c).get(STACK_ID_TAG, ""))
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

            found.append(Leftover(f"{kind.record_kind}-snapshot", sid, region, item.get("Status", ""), delete,
                                  stack_id=_tags(item).get(STACK_ID_TAG, "")))
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

        detail = rr["Type"] + (f" [{rr['SetIdentifier']}]" if rr.get("SetIdentifier") else "")
        found.append(Leftover("dns-record", absolute(rr["Name"]), "global", detail, delete))
    return list({item.key: item for item in reversed(found)}.values())  # one per name


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
                                  resource=cid, region="global"),
                              aliases=(check.get("CallerReference", ""),)))
    return found
