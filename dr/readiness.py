"""`dr validate --readiness`: can the DR region take over right now? Each check says why not."""

from __future__ import annotations

from dataclasses import dataclass

from dr.backup import rds_api, s3
from dr.backup.catalog import list_rds_points
from dr.config import format_duration
from dr.context import Context
from dr.errors import DrError
from dr.kms import resolve_dr_key


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def check_readiness(ctx: Context) -> list[Check]:
    config, now = ctx.config, ctx.clock.now()
    checks: list[Check] = []
    try:
        key = resolve_dr_key(ctx.aws, config.kms.dr_key, config.regions.dr)
        checks.append(Check("dr-key", True, f"{key} is enabled in {config.regions.dr}"))
    except DrError as exc:
        checks.append(Check("dr-key", False, str(exc)))
    try:
        store = ctx.store
        store.list_keys("runs/")
        checks.append(Check("state-store", True, store.description))
    except DrError as exc:
        checks.append(Check("state-store", False, str(exc)))
    for b in config.s3:
        try:
            problems = s3.readiness_problems(ctx.aws, config, b)
        except DrError as exc:
            problems = [str(exc)]
        checks.append(Check(f"s3:{b.name}", not problems, "; ".join(problems) or
                            f"s3://{b.destination} is in {config.regions.dr}, versioned, "
                            "encrypted with SSE-KMS by default"))
        synced = [m["in_sync_as_of"] for m in s3.list_manifests(ctx.store, b.name)
                  if m.get("in_sync_as_of")]
        checks.append(_fresh(f"s3:{b.name}:copy", max(synced, default=None), now, config,
                             f"s3://{b.destination} was fully in sync"))
    for m in config.mysql:
        from dr.backup import mysql

        try:
            dest = mysql.destination(ctx, m, None)
            dest.check()
            backups = mysql.list_backups(dest, m)
        except DrError as exc:
            checks.append(Check(f"mysql:{m.name}", False, str(exc)))
            continue
        checks.append(_fresh(f"mysql:{m.name}:backup", backups[0].created.isoformat()
                             if backups else None, now, config, f"the newest backup in "
                             f"{m.destination} was taken"))
    for m in config.mongo:
        from dr.monitor import check_replica_set

        try:
            rep = check_replica_set(m, config.regions.primary, dr_region=config.regions.dr)
            bad = [f.reason for f in rep.findings if f.severity == "critical"]
            checks.append(Check(f"mongo:{m.name}", not bad, "; ".join(bad) or
                                f"survives {rep.survivable_region_losses} of "
                                f"{len(rep.region_losses)} region losses"))
        except DrError as exc:
            checks.append(Check(f"mongo:{m.name}", False, str(exc)))
    for r in config.rds:
        kind = rds_api.KINDS[r.kind]
        try:
            source = rds_api.describe_source(ctx.aws.client("rds", config.regions.primary), kind,
                                             r.source_id, config.regions.primary)
            points = list_rds_points(ctx.aws, config, [r])
        except DrError as exc:
            checks.append(Check(f"rds:{r.name}", False, str(exc)))
            continue
        if source is None:
            checks.append(Check(f"rds:{r.name}:source", False,
                                f"{kind.label} {r.source_id} not found in {config.regions.primary}"))
        copies = [p for p in points if p.role == "copy" and p.status == "available" and p.created]
        if not copies:
            checks.append(Check(f"rds:{r.name}:copy", False,
                                f"no copy in {config.regions.dr} yet: run `dr backup run`"))
            continue
        newest = copies[0]
        age = now - newest.created
        fresh = age <= config.objectives.rpo
        checks.append(Check(
            f"rds:{r.name}:copy", fresh,
            f"newest copy {newest.id} is {format_duration(age)} old "
            f"({'within' if fresh else 'over'} the RPO objective "
            f"{format_duration(config.objectives.rpo)})"))
    return checks


def _fresh(name: str, when: str | None, now, config, what: str) -> Check:
    """A check that the newest recovery point is younger than the RPO objective."""
    from dr.state.runs import parse_iso

    if when is None:
        return Check(name, False, "no complete copy yet: run `dr backup run`")
    age = now - parse_iso(when)
    fresh = age <= config.objectives.rpo
    return Check(name, fresh, f"{what} {format_duration(age)} ago ({'within' if fresh else 'over'} "
                              f"the RPO objective {format_duration(config.objectives.rpo)})")
