"""`dr validate --readiness`: can the DR region take over right now? Each check says why not.

One definition: `observe(ctx)` reads (the DR key, the state store, each backup kind's
`readiness_observe`, mongo, the template, DNS) and `judge(...)` decides (pure; each backup kind
judges its own copies with its `readiness`). `dr validate --readiness` calls it; the runbooks'
`readiness` step uses the same checks.

The checks of what a failover needs *last* live here once and run first, both in `dr validate
--readiness` and in the runbooks' `readiness` step: the stack template and its parameters in the
target region (secrets given by reference are read there, never shown), whether the relaunched
stack would run on the restored data, and the DNS record (readable, writable with the configured
credentials, and a routing policy the runbook's flip can change).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

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


@dataclass
class Observed:
    """What readiness reads, before any judgement: the DR key, the state store, each backup
    kind's observation of each resource, and the checks that read and judge in one go (mongo,
    the stack template, DNS)."""

    dr_key: str | DrError
    store: str | DrError
    kinds: list[tuple[Any, Any]] = field(default_factory=list)  # (kind, its observation)
    probed: list[Check] = field(default_factory=list)


def observe(ctx: Context) -> Observed:
    """Read everything readiness judges (I/O; errors are kept in the observation)."""
    from dr.backup.kinds import KINDS

    config = ctx.config
    try:
        key: str | DrError = str(resolve_dr_key(ctx.aws, config.kms.dr_key, config.regions.dr))
    except DrError as exc:
        key = exc
    try:
        ctx.store.list_keys("runs/")
        store: str | DrError = ctx.store.description
    except DrError as exc:
        store = exc
    seen = Observed(key, store)
    seen.kinds = [(kind, kind.readiness_observe(ctx, r)) for kind in KINDS.values()
                  for r in kind.resources(config)]
    for m in config.mongo:
        from dr.mongo.service import check_replica_set

        try:
            rep = check_replica_set(m, config.regions.primary, dr_region=config.regions.dr)
            bad = [f.reason for f in rep.findings if f.severity == "critical"]
            seen.probed.append(Check(f"mongo:{m.name}", not bad, "; ".join(bad) or
                                     f"survives {rep.survivable_region_losses} of "
                                     f"{len(rep.region_losses)} region losses"))
        except DrError as exc:
            seen.probed.append(Check(f"mongo:{m.name}", False, str(exc)))
    if config.stack is not None:
        seen.probed += template_checks(ctx.aws, config, config.regions.dr)
    seen.probed += dns_checks(ctx.aws, config, _shipped_flip_modes())
    return seen


def judge(seen: Observed, config, now: datetime) -> list[Check]:
    """PURE: the checks, from what was observed; each backup kind judges its own copies."""
    key_error = str(seen.dr_key) if isinstance(seen.dr_key, DrError) else None
    checks = [key_check(None if key_error else seen.dr_key, key_error, config.regions.dr),
              Check("state-store", False, str(seen.store)) if isinstance(seen.store, DrError)
              else Check("state-store", True, seen.store)]
    for kind, observation in seen.kinds:
        checks += kind.readiness(observation, config, now)
    return checks + seen.probed


def key_check(key: str | None, error: str | None, region: str, *, encrypts: bool = False) -> Check:
    """PURE: the DR key is usable (`encrypts`: a probe was encrypted with it, the runbook step)."""
    if error is not None or key is None:
        return Check("dr-key", False, error or "the DR key could not be resolved")
    return Check("dr-key", True, f"{key} is enabled in {region}" + (" and encrypts" if encrypts else ""))


def copy_check(name: str, copy_id: str, data_time: datetime, now: datetime, rpo: timedelta,
               accept_data_loss: bool = False) -> Check:
    """PURE: the newest copy holds data young enough for the RPO objective; `data_time` is when
    its data was taken (a copied snapshot's own creation time is when it was copied)."""
    exact = now - data_time
    fresh = exact <= rpo  # judged on the exact age; only the text is rounded to the second
    age = timedelta(seconds=max(0, int(exact.total_seconds())))
    detail = (f"newest copy {copy_id} holds data from {format_duration(age)} ago "
              f"({'within' if fresh else 'over'} the RPO objective {format_duration(rpo)})")
    if not fresh and accept_data_loss:
        detail += "; data loss accepted"
    return Check(name, fresh or accept_data_loss, detail)


def check_readiness(ctx: Context) -> list[Check]:
    """`dr validate --readiness`: observe, then judge."""
    return judge(observe(ctx), ctx.config, ctx.clock.now())


def _shipped_flip_modes() -> tuple[str, ...]:
    """The flip modes of the shipped failover runbook (what `dr restore --to-region` runs)."""
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parent.parent / "runbooks" / "failover.yaml"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return ("simple",)
    return flip_modes((s.get("type"), s.get("with")) for s in doc.get("steps") or [] if isinstance(s, dict))


def fresh(name: str, when: str | None, now, config, what: str) -> Check:
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
        session.cfn(region).validate(template.body, template.path.name)
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
