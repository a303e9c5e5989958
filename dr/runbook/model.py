"""The runbook model (what the loader builds) and the results a run returns.

Statuses are closed sets and the allowed transitions are plain data (dr.state.status, shared with
every run record), checked by the journal on every write (taskflow's habit): a bug that would
record an impossible history fails loudly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dr.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from dr.runbook.steps.base import StepType

HEALTH_GATE_TYPE = "http.wait_healthy"  # the RTO ends when these complete, unless rto_end is set
PHASES = ("start", "end", "failure")


@dataclass(frozen=True)
class Step:
    id: str
    type: str
    type_cls: type[StepType]
    params: dict[str, Any]          # the `with:` mapping as written (references unresolved)
    needs: tuple[str, ...] = ()     # explicit `needs` plus steps referenced by ${steps.X...}
    explicit_needs: tuple[str, ...] = ()
    timeout: timedelta | None = None  # per attempt
    retries: int = 0
    retry_delay: timedelta = timedelta(seconds=5)
    teardown: bool = True           # drills only: run the type's teardown at the end
    rto_end: bool = False
    description: str = ""
    phase: str | None = None        # None: a DAG step; "start"/"end"/"failure": a hook
    line: int = 0

    @property
    def has_teardown(self) -> bool:
        return self.teardown and self.type_cls.teardown is not StepType.teardown


@dataclass(frozen=True)
class Runbook:
    name: str
    source: str                     # the file it came from
    steps: tuple[Step, ...]         # DAG steps, in file order
    hooks: tuple[Step, ...] = ()    # phase steps (start/end/failure), in file order
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    digest: str = ""                # sha256 of the file text

    def step(self, step_id: str) -> Step:
        for s in (*self.steps, *self.hooks):
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def rto_gates(self) -> tuple[str, ...]:
        """The steps whose completion ends the RTO: `rto_end: true` ones, else the health
        checks, else every step (the run's last completion)."""
        marked = tuple(s.id for s in self.steps if s.rto_end)
        if marked:
            return marked
        gates = tuple(s.id for s in self.steps if s.type == HEALTH_GATE_TYPE)
        return gates or tuple(s.id for s in self.steps)

    @property
    def path(self) -> Path:
        return Path(self.source)


@dataclass
class TeardownResult:
    step: str
    status: str                     # completed | failed | skipped
    seconds: float | None = None
    error: str | None = None


@dataclass
class StepResult:
    id: str
    type: str
    status: str                     # one of STEP_STATUSES
    started: datetime | None = None
    finished: datetime | None = None
    seconds: float | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    hint: str | None = None         # how to fix the error (DrError.hint), shown with it
    attempts: int = 0
    via: str = ""                   # execute | check (found done on resume) | "" (not run)
    teardown: TeardownResult | None = None


@dataclass
class RunResult:
    run_id: str
    runbook: str
    status: str                     # one of RUN_FINAL
    started: datetime
    finished: datetime
    steps: dict[str, StepResult]
    hooks: list[StepResult] = field(default_factory=list)
    teardown: list[TeardownResult] = field(default_factory=list)
    rto_seconds: float | None = None         # run start -> healthy in the target region
    rto_traffic_seconds: float | None = None  # run start -> traffic moved (DNS in sync + old TTL)
    critical_path_seconds: float = 0.0
    critical_path: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0       # this session only (a resumed run's earlier sessions excluded)
    error: str | None = None
    sessions: int = 1
    dry_run: bool = False
    journal_key: str = ""
    region: str = ""
    drill: bool = False
    preempted: dict[str, Any] | None = None      # the drill this run preempted
    preempted_by: dict[str, Any] | None = None   # the failover that preempted this drill
    lease_lost: str | None = None                # why this session stopped: its lease went elsewhere

    @property
    def teardown_failed(self) -> list[str]:
        return [t.step for t in self.teardown if t.status == "failed"]

    @property
    def exit_code(self) -> int:
        """0 completed (and torn down cleanly), 130 interrupted, 1 otherwise."""
        if self.status == "interrupted":
            return EXIT_INTERRUPTED
        if self.status == "completed" and not self.teardown_failed:
            return EXIT_OK
        return EXIT_FAILED

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        from dr.clock import iso

        def when(dt: datetime | None) -> str | None:
            return iso(dt) if dt else None

        data = asdict(self)
        data["started"], data["finished"] = when(self.started), when(self.finished)
        for name, step in self.steps.items():
            data["steps"][name]["started"] = when(step.started)
            data["steps"][name]["finished"] = when(step.finished)
        for i, hook in enumerate(self.hooks):
            data["hooks"][i]["started"] = when(hook.started)
            data["hooks"][i]["finished"] = when(hook.finished)
        data["exit_code"] = self.exit_code
        return data
