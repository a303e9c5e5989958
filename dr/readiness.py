"""`dr validate --readiness`: can the DR region take over right now? Each check says why not.

The checks of what a failover needs *last* live here once and run first, both in `dr validate
--readiness` and in the runbooks' `readiness` step: the stack template and its parameters in the
target region (secrets given by reference are read there, never shown), whether the relaunched
stack would run on the restored data, and the DNS record (readable, writable with the configured
credentials, and a routing policy the runbook's flip can change).
"""

from __future__ import annotations

from dataclasses import dataclass

from dr.aws import rds as rds_api
from dr.backup import s3
from dr.backup.catalog import list_rds_points
from dr.config import format_duration
from dr.context import Context
from dr.errors import DrError
from dr.aws.kms import resolve_dr_key


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
            # only what a manifest proves counts: an edited `created` must not look fresh
            backups, problems = mysql.authenticated_backups(dest, m, mysql.key_provider(ctx, m))
        except DrError as exc:
            checks.append(Check(f"mysql:{m.name}", False, str(exc)))
            continue
        if problems:
            checks.append(Check(f"mysql:{m.name}:manifests", False,
                                f"{len(problems)} backup manifest(s) do not authenticate and are "
                                f"ignored: {'; '.join(problems[:3])}"))
        checks.append(_fresh(f"mysql:{m.name}:backup", backups[0].created.isoformat()
                             if backups else None, now, config, f"the newest backup in "
                             f"{m.destination} was taken"))
        if backups:
            checks.append(_verified(ctx, m, backups, now))
    for m in config.mongo:
        from dr.mongo.service import check_replica_set

        try:
            rep = check_replica_set(m, config.regions.primary, dr_region=config.regions.dr)
            bad = [f.reason for f in rep.findings if f.severity == "critical"]
            checks.append(Check(f"mongo:{m.name}", not bad, "; ".join(bad) or
                                f"survives {rep.survivable_region_losses} of "
                                f"{len(rep.region_losses)} region losses"))
        except DrError as exc:
            checks.append(Check(f"mongo:{m.name}", False, str(exc)))
    if config.stack is not None:
        checks += template_checks(ctx.aws, config, config.regions.dr)
    checks += dns_checks(ctx.aws, config, _shipped_flip_modes())
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


def _verified(ctx: Context, m, backups: list, now) -> Check:
    """Whether the MySQL backups are proven restorable (restored into a scratch database and
    compared: `dr backup verify`, or `dr schedule` with mysql[].verify.every).

    Fails when the newest backup failed its verification (a failover would restore it), when no
    backup was ever verified, and when verification is scheduled but none succeeded for two of
    its intervals (it stopped). The newest backup merely not verified *yet* passes, naming the
    newest verified one: backups are more frequent than verifications (each is a full restore),
    so failing on it would keep readiness red between two verifications."""
    from dr.backup import verified
    from dr.clock import parse_iso_or_none

    name = f"mysql:{m.name}:verified"
    try:
        done = verified.load(ctx.store, m.name)
    except DrError as exc:
        return Check(name, False, str(exc))
    newest = backups[0]
    mine = done.get(newest.id)
    fix = (f"add mysql[].verify {{host, port, user, password, every: 1d}} (a scratch server) and "
           f"run `dr backup verify --name {m.name}`" if m.verify is None or m.verify_every is None
           else f"`dr backup verify --name {m.name}`")
    if mine and mine.get("status") == verified.FAILED:
        return Check(name, False, f"the newest backup {newest.id} FAILED its verification "
                                  f"({mine.get('at')}): {mine.get('error') or 'see the verify run'}; "
                                  f"a failover would restore it (details: dr runs show {mine.get('run_id')})")
    if mine:
        return Check(name, True, f"the newest backup {newest.id} was verified at {mine.get('at')} "
                                 f"(restored in {mine.get('restore_seconds')}s)")
    good = [(b, done[b.id]) for b in backups if done.get(b.id, {}).get("status") == verified.VERIFIED]
    if not good:
        return Check(name, False, f"no backup of {m.name} has been proven restorable: none was "
                                  f"restored and compared yet ({fix})")
    b, entry = good[0]
    at = parse_iso_or_none(entry.get("at"))
    age = now - at if at else None
    if m.verify_every is not None and age is not None and \
            age > 2 * m.verify_every.nominal_interval():
        return Check(name, False, f"verification has stopped: the newest verified backup, {b.id}, "
                                  f"was verified {format_duration(age)} ago, more than twice "
                                  f"verify.every ({m.verify_every}); the newest backup {newest.id} "
                                  "is not verified (check `dr schedule` and the verify server)")
    return Check(name, True, f"the newest backup {newest.id} is not verified yet; the newest "
                             f"verified one is {b.id}"
                             + (f" (verified {format_duration(age)} ago)" if age else ""))


def _shipped_flip_modes() -> tuple[str, ...]:
    """The flip modes of the shipped failover runbook (what `dr restore --to-region` runs)."""
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parent / "runbooks" / "failover.yaml"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return ("simple",)
    return flip_modes((s.get("type"), s.get("with")) for s in doc.get("steps") or [] if isinstance(s, dict))


def _fresh(name: str, when: str | None, now, config, what: str) -> Check:
    """A check that the newest recovery point is younger than the RPO objective."""
    from dr.clock import parse_iso

    if when is None:
        return Check(name, False, "no complete copy yet: run `dr backup run`")
    age = now - parse_iso(when)
    fresh = age <= config.objectives.rpo
    return Check(name, fresh, f"{what} {format_duration(age)} ago ({'within' if fresh else 'over'} "
                              f"the RPO objective {format_duration(config.objectives.rpo)})")


# --- what a failover needs last, checked first -----------------------------------------------------


def template_checks(session, config, region: str, restores: bool = True) -> list[Check]:
    """The stack template in `region`: valid there, its region mappings, every parameter it needs
    given (references readable in `region`), and, when the run `restores` a database, whether
    the stack runs on it."""
    from dr.errors import ConfigError
    from dr.runbook.steps import stack_cloudformation as cfn
    from dr.secret_refs import resolve_parameters, secret_refs

    stack = config.stack
    try:
        template = cfn.load_template(stack.template)
    except ConfigError as exc:
        return [Check("template", False, exc.message)]
    checks = []
    try:
        client = session.client("cloudformation", region)
        from dr.aws import aws_call

        aws_call(client.validate_template, TemplateBody=template.body, action="validating template",
                 resource=template.path.name, region=region)
        checks.append(Check("template", True, f"{template.path.name} is valid in {region}"))
    except DrError as exc:
        checks.append(Check("template", False, exc.message))
    gaps = template.region_mapping_gaps(region)
    checks.append(Check(
        "template:region-mappings", not gaps,
        f"mapping {', '.join(gaps)} in {template.path.name} has no entry for {region}: the stack "
        "cannot launch there (add the region's values, e.g. its AMI ids)" if gaps
        else f"every region-keyed mapping in {template.path.name} covers {region}"))
    values = dict(stack.parameters) if region == config.regions.primary else stack.parameters_for_dr()
    keys = set(values) | ({stack.snapshot_parameter} if stack.snapshot_parameter and restores else set())
    problems = cfn.parameter_problems(template, keys)
    checks.append(Check("template:parameters", not problems, "; ".join(problems) or
                        f"every parameter {template.path.name} needs has a value"))
    for name, ref in sorted(secret_refs(values).items()):
        try:
            resolve_parameters({name: ref}, session, region)
            checks.append(Check(f"template:parameter:{name}", True, f"{ref} is readable in {region}"))
        except DrError as exc:
            checks.append(Check(f"template:parameter:{name}", False, exc.message))
    if restores and config.rds:
        problem = cfn.restored_data_problem(template, stack.snapshot_parameter)
        checks.append(Check("template:restored-data", problem is None, problem or (
            f"{template.path.name} is given the restored database"
            + (f" through {stack.snapshot_parameter}" if stack.snapshot_parameter else
               " (it has no database of its own)"))))
    return checks


def flip_modes(steps) -> tuple[str, ...]:
    """The routing modes the runbook's dns.flip steps use: `steps` is (type, with) pairs; a mode
    given by reference counts as simple (the default)."""
    modes = []
    for step_type, params in steps:
        if step_type == "dns.flip":
            mode = (params or {}).get("mode") or "simple"
            modes.append(mode if isinstance(mode, str) and "${" not in mode else "simple")
    return tuple(dict.fromkeys(modes))


def dns_checks(session, config, modes: tuple[str, ...] = ("simple",), wait=None) -> list[Check]:
    """The production record, through the configured provider and credentials: readable, writable
    (RFC 2136: a signed update of `_dr-readiness.<zone>`), and of a routing policy each of `modes`
    can flip. Read-only for the record itself: a drill checks it too, and never changes it."""
    from dr.dns import make_provider
    from dr.dns.base import absolute

    if config.dns is None:
        return []
    try:
        provider = make_provider(config.dns, session=session, wait=wait)
    except DrError as exc:
        return [Check("dns", False, exc.message)]
    record = absolute(config.dns.record)
    checks: dict[str, Check] = {}
    for mode in modes or ("simple",):
        try:
            probes = provider.readiness(record, mode)
        except DrError as exc:
            probes = []
            checks.setdefault("dns", Check("dns", False, exc.message))
        for probe in probes:
            name = f"dns:{probe.name.removeprefix('dns-')}" + (f":{mode}" if probe.name == "dns-routing" else "")
            checks.setdefault(name, Check(name, probe.ok, probe.detail))
    return list(checks.values())
