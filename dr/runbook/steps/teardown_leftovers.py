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

from dr.aws.cfn import Cfn, Stack
from dr.aws.rds import CLUSTER, INSTANCE, Rds, RdsKind
from dr.errors import AwsError, OperationFailed
from dr.dns.base import absolute
from dr.runbook.steps import ownership
from dr.runbook.steps import stack_cloudformation as cfn
from dr.runbook.steps.ownership import TAG_DRILL, TAG_RUN
from dr.runbook.steps.rds_restore import delete_target

if TYPE_CHECKING:
    from dr.runbook.steps.base import StepContext

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
    api = ctx.session.cfn(region)
    stack = api.describe(name)
    if stack is None:
        return None
    why = ownership.owned(ctx, "cloudformation-stack", name, region, stack.tags, stack.id)
    return Leftover("cloudformation-stack", name, region, stack.status,
                    None if why else (lambda: delete_stack(ctx, api, stack)), refused=why)


def _ledger_database(ctx: StepContext, entry: dict[str, Any]) -> Leftover | None:
    kind = INSTANCE if entry["kind"] == "rds-instance" else CLUSTER
    region, ident = entry["region"], entry["id"]
    rds = ctx.session.rds(region)
    db = rds.database(kind, ident)
    if db is None:
        return None
    tags = db.tags
    if entry.get("stack_id"):  # made by a stack this run created: the stack's id proves it
        why = None if tags.get(STACK_ID_TAG) == entry["stack_id"] else (
            f"its {STACK_ID_TAG} tag is {tags.get(STACK_ID_TAG) or 'missing'}, not the drill's stack "
            f"{entry['stack_id']}")
    else:
        why = ownership.owned(ctx, entry["kind"], ident, region, tags)
    return Leftover(entry["kind"], ident, region, db.status,
                    None if why else (lambda: delete_target(ctx, rds, kind, ident)), refused=why)


def _ledger_snapshot(ctx: StepContext, entry: dict[str, Any]) -> Leftover | None:
    kind = INSTANCE if entry["kind"] == "rds-instance-snapshot" else CLUSTER
    region, ident = entry["region"], entry["id"]
    rds = ctx.session.rds(region)
    snap = rds.snapshot(kind, ident)
    if snap is None:
        return None
    return Leftover(entry["kind"], ident, region, snap.status, lambda: _delete_snapshot(rds, kind, ident))


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


def _delete_snapshot(rds: Rds, kind: RdsKind, ident: str) -> None:
    try:
        rds.delete_snapshot(kind, ident)
    except AwsError as exc:
        if exc.code != kind.not_found:
            raise


# --- a stack, and what survives it ----------------------------------------------------------------


def record_stack_resources(ctx: StepContext, api: Cfn, stack: Stack,
                           policies: dict[str, str]) -> list[dict[str, Any]]:
    """Write the stack's billable resources, and those its template keeps, to the ledger."""
    entries, region = [], api.region
    for res in api.resources(stack.id):
        kind = CHECKED_TYPES.get(res.get("ResourceType", ""))
        policy = policies.get(res.get("LogicalResourceId", ""), "Delete")
        if not res.get("PhysicalResourceId") or (kind is None and policy == "Delete"):
            continue
        entry = {"kind": kind or "stack-resource", "id": res["PhysicalResourceId"], "region": region,
                 "stack": stack.name, "stack_id": stack.id,
                 "logical_id": res.get("LogicalResourceId"), "type": res.get("ResourceType"),
                 "deletion_policy": policy}
        ctx.record_created({**entry, "step": ctx.step_id})
        entries.append(entry)
    return entries


def delete_stack(ctx: StepContext, api: Cfn, stack: Stack, policies: dict[str, str] | None = None) -> list[str]:
    """Delete a stack this run owns, then what it left: retained RDS instances and clusters whose
    `aws:cloudformation:stack-id` is this stack, and snapshots of them taken after the stack was
    created (DeletionPolicy: Snapshot). Returns warnings for retained resources of types dr does
    not check; raises when something it checks is still there."""
    if policies is None:
        policies = _policies_of(api, stack)
    entries = record_stack_resources(ctx, api, stack, policies)
    cfn.delete(ctx, api, stack.id)
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
        raise OperationFailed(f"stack {stack.name} is deleted, but what it kept is not: "
                              + "; ".join(problems), hint="they bill until gone: delete them by hand")
    return warnings


def _sweep_child(ctx: StepContext, entry: dict[str, Any], stack: Stack) -> None:
    kind = INSTANCE if entry["kind"] == "rds-instance" else CLUSTER
    region, ident = entry["region"], entry["id"]
    rds = ctx.session.rds(region)
    db = rds.database(kind, ident)
    if db is not None:
        owner = db.tags.get(STACK_ID_TAG)
        if owner != stack.id:
            raise OperationFailed(f"{kind.label} {ident} ({entry['logical_id']}) survived the stack but its "
                                  f"{STACK_ID_TAG} tag is {owner or 'missing'}: not deleting what this drill "
                                  "cannot prove it made")
        ctx.log(f"teardown: {kind.label} {ident} ({entry['logical_id']}, DeletionPolicy: "
                f"{entry['deletion_policy']}) survived the stack: deleting it")
        delete_target(ctx, rds, kind, ident)
    created = stack.created
    for snap in rds.snapshots(kind, ident):
        taken = snap.created
        if snap.source_id != ident or (created is not None and taken is not None and taken < created):
            continue  # not a snapshot this stack's deletion made
        sid = snap.id
        ctx.record_created({"kind": f"{kind.record_kind}-snapshot", "id": sid, "region": region,
                            "step": ctx.step_id, "source": ident, "stack_id": stack.id})
        ctx.log(f"teardown: deleting the final snapshot {sid} the stack left of {ident}")
        _delete_snapshot(rds, kind, sid)


def _policies_of(api: Cfn, stack: Stack) -> dict[str, str]:
    """The DeletionPolicy of each resource, from the template the stack runs."""
    try:
        doc = cfn.parse_template(api.template_body(stack.id, stack.name))
    except Exception:  # noqa: BLE001 - without it every checked type is still checked
        return {}
    return {k: str(v["DeletionPolicy"]) for k, v in (doc.get("Resources") or {}).items()
            if isinstance(v, dict) and v.get("DeletionPolicy") not in (None, "Delete")}


def _stacks(ctx: StepContext, region: str, match: DrillMatcher) -> list[Leftover]:
    api = ctx.session.cfn(region)
    return [Leftover("cloudformation-stack", s.name, region, s.status, lambda s=s: delete_stack(ctx, api, s))
            for s in api.list_stacks() if match(s.name, s.tags, by_name=False)]


def _databases(ctx: StepContext, region: str, match: DrillMatcher) -> list[Leftover]:
    rds = ctx.session.rds(region)
    clusters, instances = rds.databases(CLUSTER), rds.databases(INSTANCE)
    ours = [c for c in clusters if match(c.id, c.tags, by_name=False)]
    in_our_clusters = {m for c in ours for m in c.members}
    found = [Leftover("rds-instance", i.id, region, i.status,
                      lambda i=i: delete_target(ctx, rds, INSTANCE, i.id), stack_id=i.tags.get(STACK_ID_TAG, ""))
             for i in instances if i.id not in in_our_clusters and match(i.id, i.tags, by_name=False)]
    found += [Leftover("rds-cluster", c.id, region, c.status, lambda c=c: delete_target(ctx, rds, CLUSTER, c.id),
                       stack_id=c.tags.get(STACK_ID_TAG, ""))
              for c in ours]
    return found


def _snapshots(ctx: StepContext, region: str, match: DrillMatcher) -> list[Leftover]:
    """Manual snapshots a drill caused (a template's DeletionPolicy: Snapshot, for instance)."""
    rds = ctx.session.rds(region)
    found = []
    for kind in (INSTANCE, CLUSTER):
        for snap in rds.all_snapshots(kind):
            if snap.tags.get("dr:managed") == "true" or not match(snap.id, snap.tags):
                continue  # dr's own backups are never a drill's leftovers
            found.append(Leftover(f"{kind.record_kind}-snapshot", snap.id, region, snap.status,
                                  lambda kind=kind, sid=snap.id: _delete_snapshot(rds, kind, sid),
                                  stack_id=snap.tags.get(STACK_ID_TAG, "")))
    return found


def find_zone(r53, zone: str) -> str | None:
    zones = r53.zones_named(zone)
    return zones[0][0] if zones and zones[0][1] == zone else None


def _records(ctx: StepContext, match: DrillMatcher) -> list[Leftover]:
    zone = ctx.config.dns.zone
    r53 = ctx.session.route53()
    zone_id = find_zone(r53, zone)
    if zone_id is None:
        return []
    found = []
    for rr in r53.all_record_sets(zone_id, zone):
        if rr["Type"] in ("SOA", "NS") or not match(rr["Name"]):
            continue

        def delete(rr=rr) -> None:
            r53.delete_record(zone_id, rr, f"dr teardown {ctx.run_id}")

        detail = rr["Type"] + (f" [{rr['SetIdentifier']}]" if rr.get("SetIdentifier") else "")
        found.append(Leftover("dns-record", absolute(rr["Name"]), "global", detail, delete))
    return list({item.key: item for item in reversed(found)}.values())  # one per name


def _health_checks(ctx: StepContext, match: DrillMatcher) -> list[Leftover]:
    r53 = ctx.session.route53()
    checks = r53.health_checks()
    tags = r53.health_check_tags([c["Id"] for c in checks])
    found = []
    for check in checks:
        fqdn = check.get("HealthCheckConfig", {}).get("FullyQualifiedDomainName", "") or ""
        name = tags.get(check["Id"], {}).get("Name", "")
        if not (match(fqdn, tags.get(check["Id"])) or (name and match(name))):
            continue
        found.append(Leftover("route53-health-check", check["Id"], "global", fqdn or name,
                              lambda cid=check["Id"]: r53.delete_health_check(cid),
                              aliases=(check.get("CallerReference", ""),)))
    return found
