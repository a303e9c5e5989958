"""The contract every step type fulfils. The registry (steps/__init__.py) maps names to classes.

A step type declares its parameters, the IAM actions it needs and a YAML example (shown by
`dr runbook describe`, checked by a test), validates its parameters before anything runs, and
does its work in `execute`, which returns the step's outputs (referenced by later steps as
`${steps.<id>.<output>}`). Every step must be safe to run again after a crash: `check` looks
at the real world on resume ("does the stack already exist?") and returns the outputs if the
step's effect is already there, so the engine neither skips blindly nor duplicates a resource.

Parameter values reach `execute` type-checked, with defaults filled in (None for an optional
parameter without a default) and `${...}` references resolved; a `duration` arrives as a
`datetime.timedelta`. Outputs must be JSON-serialisable (they are journaled) and never secrets.
An `outputs` entry "*" means the type's outputs are dynamic (e.g. a stack's outputs): any
`${steps.<id>.<name>}` is accepted at load time and checked when the step has run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from dr.aws import AwsSession
    from dr.clock import Clock
    from dr.config import Config
    from dr.state.base import StateStore

PARAM_TYPES = ("str", "int", "float", "bool", "duration", "list", "dict")
DYNAMIC_OUTPUTS = "*"


class AbortRun(Exception):
    """Raised by a step to stop the run on purpose (a safety gate said no): no further step
    starts, steps already running finish, the run ends `aborted` (drills still tear down)."""


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # one of PARAM_TYPES
    required: bool = False
    default: Any = None
    help: str = ""


@dataclass
class StepContext:
    """What a step sees while it runs."""

    run_id: str
    step_id: str
    config: Config
    session: AwsSession
    clock: Clock
    cancel: threading.Event
    store: StateStore
    drill: bool = False
    region: str = ""  # the region being moved to (the DR region for a failover or drill)
    outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # earlier steps' outputs
    log: Callable[[str], None] = logging.getLogger("dr.runbook.steps").info  # the runner passes its own
    attempt: int = 1  # 1 for the first try, 2 for the first retry, ...
    types: Mapping[str, str] = field(default_factory=dict)  # step id -> type name, for `outputs`
    run_session: int = 1  # the journal's session number (1, then 2 after the first --resume, ...)
    run_started: str = ""  # ISO time the run (its first session) started
    record_created: Callable[[Mapping[str, Any]], None] = lambda entry: None  # the run's ledger
    ledger: Callable[[], list[dict[str, Any]]] = list  # what the ledger holds so far
    plan: tuple[tuple[str, str, Mapping[str, Any]], ...] = ()  # (id, type, `with` as written) of the DAG

    def created(self, kind: str, ident: str, region: str, **detail: Any) -> None:
        """Write `kind ident in region` to the run's ledger (journal) BEFORE creating it, so a
        teardown after a crash at any moment knows this run may have made it."""
        self.record_created({"kind": kind, "id": ident, "region": region, "step": self.step_id, **detail})

    def name(self, base: str) -> str:
        """A deterministic resource name for this run: drills get a suffix, so they never
        collide with production (`acme-web` -> `acme-web-drill-<short run id>`)."""
        if not self.drill:
            return base
        return f"{base}-drill-{self.run_id.rsplit('-', 1)[-1]}"

    @property
    def wait_clock(self) -> Clock:
        """The clock a step gives dr.wait.poll: the run's time, pauses through `wait` (so Ctrl-C
        and the step's timeout stop them, with the step's own message)."""
        from dr.clock import PausingClock

        return PausingClock(self.clock, self.wait)

    def wait(self, seconds: float) -> None:
        """Sleep, but return at once (raising) when the run is cancelled."""
        from dr.errors import Interrupted

        if self.clock.sleep(seconds, self.cancel):
            raise Interrupted(f"step {self.step_id} interrupted")


def target_region(ctx: StepContext) -> str:
    """The region a step works in: the one the run moves to (the DR region unless told)."""
    return ctx.region or ctx.config.regions.dr


def is_reference(value: Any) -> bool:
    """A value still holding `${...}` text: known only when the run gets there."""
    return isinstance(value, str) and "${" in value


class StepType:
    name: ClassVar[str]
    description: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    outputs: ClassVar[tuple[str, ...]] = ()
    iam_actions: ClassVar[tuple[str, ...]] = ()
    example: ClassVar[str]  # YAML of one step using this type
    # A gate whose answer goes stale (a health check): on every --resume it runs again in the new
    # session instead of being skipped, and so do the completed steps that need it.
    fresh_per_session: ClassVar[bool] = False

    @classmethod
    def phase(cls, params: Mapping[str, Any]) -> str | None:
        """None for an ordinary step of the DAG; "start", "end" or "failure" for a hook step
        that runs outside the DAG at that moment of the run (e.g. `notify` with `at: end`)."""
        return None

    def validate(self, params: Mapping[str, Any], config: Config) -> list[str]:
        """Cross-field checks beyond types and required parameters; messages, no exceptions.

        Runs at load time, when a config is at hand (never with config None). A value known
        only at run time (a step output, `${run.id}`) still holds its `${...}` text there."""
        return []

    def output_names(self, params: Mapping[str, Any], config: Config) -> tuple[str, ...]:
        """The outputs `${steps.<id>.<name>}` may name, given this step's parameters (e.g. a
        stack's outputs from its template); called at load time when a config is at hand."""
        return self.outputs

    def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        raise NotImplementedError

    def check(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any] | None:
        """On resume, for a step that was in flight: its outputs if its effect already exists in
        the world, else None (the engine then runs `execute`, which must be idempotent)."""
        return None

    def teardown(self, params: Mapping[str, Any], outputs: Mapping[str, Any],
                 ctx: StepContext) -> None:
        """Undo what a drill made (nothing by default)."""
