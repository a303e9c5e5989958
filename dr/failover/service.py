"""`dr drill` and `dr restore --to-region`: the shipped runbooks run by the engine, measured.

A drill runs runbooks/drill.yaml with drill-suffixed names and a drill DNS record, measures RTO
twice (run start to healthy in the DR region; run start to traffic moved: the DNS change served
everywhere plus the TTL of the values it replaced) and RPO (run start minus the time of the
restored recovery point), compares them with the objectives (the RTO objective is judged on
traffic moved when a DNS step ran), records them on the run record, and tears down unless
--keep. A failover runs runbooks/failover.yaml for real; a failback runs failback.yaml with the
failover run whose saved DNS values it puts back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dr.context import Context
from dr.errors import EXIT_BREACH, UsageError
from dr.clock import parse_iso

RUNBOOKS = Path(__file__).resolve().parent.parent / "runbooks"  # shipped in the package (and ./runbooks)


def runbook_path(name: str, given: str | None) -> Path:
    if given:
        return Path(given)
    path = RUNBOOKS / f"{name}.yaml"
    if not path.is_file():
        raise UsageError(f"the shipped runbook {name}.yaml was not found next to dr ({RUNBOOKS})",
                         hint="pass --runbook PATH")
    return path


@dataclass
class Measured:
    """What a drill (or failover) measured, against the objectives."""

    rto_seconds: float | None            # run start -> healthy in the target region
    rpo_seconds: float | None
    rto_objective_seconds: float
    rpo_objective_seconds: float
    recovery_point_time: str | None
    rto_traffic_seconds: float | None = None  # run start -> traffic moved (DNS in sync + old TTL)
    rpo_status: str = "measured"              # measured | not applicable | unknown
    rpo_note: str = ""                        # why not measured

    @property
    def rto_met(self) -> bool:
        return self.rto_judged is not None and self.rto_judged <= self.rto_objective_seconds

    @property
    def rpo_met(self) -> bool | None:
        """True/False when measured, None when it does not apply (a run that restores no data)."""
        if self.rpo_status == "not applicable":
            return None
        return self.rpo_seconds is not None and self.rpo_seconds <= self.rpo_objective_seconds

    @property
    def rto_judged(self) -> float | None:
        """The RTO held against the objective: traffic moved when a DNS step ran, else healthy."""
        return self.rto_traffic_seconds if self.rto_traffic_seconds is not None else self.rto_seconds

    @property
    def met(self) -> bool:
        """Both objectives met; an RPO that does not apply does not count, an unknown one does."""
        return self.rto_met and self.rpo_met is not False

    def missed(self) -> list[str]:
        """What was missed or could not be measured, in words (empty when met)."""
        out = []
        if not self.rto_met:
            out.append("RTO not reached" if self.rto_judged is None else
                       f"RTO {self.rto_judged:.0f}s over the objective {self.rto_objective_seconds:.0f}s")
        if self.rpo_status == "unknown":
            out.append(f"RPO unknown ({self.rpo_note})")
        elif self.rpo_met is False:
            out.append(f"RPO {self.rpo_seconds:.0f}s over the objective {self.rpo_objective_seconds:.0f}s")
        return out

    def to_dict(self) -> dict:
        return {"rto_seconds": self.rto_seconds, "rto_traffic_seconds": self.rto_traffic_seconds,
                "rpo_seconds": self.rpo_seconds, "rpo_status": self.rpo_status, "rpo_note": self.rpo_note,
                "rto_objective_seconds": self.rto_objective_seconds,
                "rpo_objective_seconds": self.rpo_objective_seconds,
                "recovery_point_time": self.recovery_point_time, "met": self.met, "missed": self.missed()}


RESTORE_TYPES = ("rds.restore", "mysql.restore")


def measure(result, ctx: Context) -> Measured:
    """RTO from the engine; RPO = run start minus the oldest restored recovery point's time.
    A run with no restore step has no RPO (not applicable); one whose restore did not complete,
    or recorded no recovery time, has an unknown RPO, and says which step."""
    restores = [s for s in result.steps.values() if s.type in RESTORE_TYPES]
    points = [s.outputs.get("snapshot_time") for s in restores if s.outputs.get("snapshot_time")]
    started = result.started if isinstance(result.started, datetime) else parse_iso(result.started)
    oldest = min((parse_iso(p) for p in points), default=None)
    status, note = "measured", ""
    if not restores:
        status, note = "not applicable", "the runbook restores no data"
    else:
        unmeasured = [s.id for s in restores if not s.outputs.get("snapshot_time")]
        if unmeasured:
            oldest = None
            status, note = "unknown", f"step {', '.join(unmeasured)} restored no recovery point"
    objectives = ctx.config.objectives
    return Measured(
        rto_seconds=result.rto_seconds, rto_traffic_seconds=result.rto_traffic_seconds,
        rpo_seconds=round((started - oldest).total_seconds(), 3) if oldest else None,
        rto_objective_seconds=objectives.rto.total_seconds(),
        rpo_objective_seconds=objectives.rpo.total_seconds(),
        recovery_point_time=oldest.isoformat() if oldest else None, rpo_status=status, rpo_note=note)


def run(ctx: Context, *, name: str, runbook: str | None, drill: bool, keep: bool = False,
        resume: str | None = None, dry_run: bool = False, params: dict | None = None,
        region: str | None = None, take_over: bool = False):
    """Load, validate (exit 2 before anything runs), run; returns (RunResult, Measured | None)."""
    from dr.runbook import EngineContext, load_runbook, run_runbook

    book = load_runbook(runbook_path(name, runbook), ctx.config)
    ectx = EngineContext(config=ctx.config, session=ctx.aws, store=ctx.store, clock=ctx.clock,
                         drill=drill, region=region or ctx.config.regions.dr, keep=keep,
                         params=params or {}, command=ctx.command, take_over=take_over)
    result = run_runbook(book, ectx, resume=resume, dry_run=dry_run)
    if dry_run:
        return book, result, None
    measured = measure(result, ctx)
    _record_measurement(ctx, result.run_id, measured)
    return book, result, measured


def _record_measurement(ctx: Context, run_id: str, measured: Measured) -> None:
    try:
        record = ctx.runs.load(run_id)
    except UsageError:
        return
    record.summary.update(measured.to_dict())
    ctx.runs.save(record)


def failover_to_undo(ctx: Context, given: str | None) -> str:
    """The failover run whose saved DNS values a failback puts back: `given`, or the newest
    completed failover whose dns.flip saved them."""
    from dr.dns.base import absolute
    from dr.runbook.steps.dns_safety import previous_key

    if ctx.config.dns is None:
        raise UsageError("dr.yaml has no dns section: there is no DNS to fail back")
    record = absolute(ctx.config.dns.record)
    candidates = [given] if given else [r.run_id for r in ctx.runs.list(kind="failover")
                                        if r.status == "completed"]
    for run_id in candidates:
        if ctx.store.get_json(previous_key(record, run_id)) is not None:
            return run_id
    if given:
        raise UsageError(f"run {given} saved no previous values of {record} (looked for "
                         f"{previous_key(record, given)} in {ctx.store.description})",
                         hint="pass --from-run with the failover run that flipped it (`dr runs list --kind failover`)")
    raise UsageError(f"no completed failover run saved the previous values of {record}: nothing to fail back",
                     hint="pass --from-run RUN_ID (`dr runs list --kind failover`)")


def exit_code(result, measured: Measured | None, drill: bool) -> int:
    if result.exit_code:
        return result.exit_code
    if drill and measured is not None and not measured.met:
        return EXIT_BREACH
    return 0
