"""The contract every step type fulfils. The registry (steps/__init__.py) maps names to classes.

A step type declares its parameters, the IAM actions it needs and a YAML example (shown by
`dr runbook describe`, checked by a test), validates its parameters before anything runs, and
does its work in `execute`, which returns the step's outputs (referenced by later steps as
`${steps.<id>.<output>}`). Every step must be safe to run again after a crash: `check` looks
at the real world on resume ("does the stack already exist?") and returns the outputs if the
step's effect is already there, so the engine neither skips blindly nor duplicates a resource.
"""

from __future__ import annotations

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
    log: Callable[[str], None] = print

    def name(self, base: str) -> str:
        """A deterministic resource name for this run: drills get a suffix, so they never
        collide with production (`acme-web` -> `acme-web-drill-<short run id>`)."""
        if not self.drill:
            return base
        return f"{base}-drill-{self.run_id.rsplit('-', 1)[-1]}"

    def wait(self, seconds: float) -> None:
        """Sleep, but return at once (raising) when the run is cancelled."""
        from dr.errors import Interrupted

        if self.clock.sleep(seconds, self.cancel):
            raise Interrupted(f"step {self.step_id} interrupted")


class StepType:
    name: ClassVar[str]
    description: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    outputs: ClassVar[tuple[str, ...]] = ()
    iam_actions: ClassVar[tuple[str, ...]] = ()
    example: ClassVar[str]  # YAML of one step using this type

    def validate(self, params: Mapping[str, Any], config: Config) -> list[str]:
        """Cross-field checks beyond types and required parameters; messages, no exceptions."""
        return []

    def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        raise NotImplementedError

    def check(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any] | None:
        """On resume, for a step that was in flight: its outputs if its effect already exists in
        the world, else None (the engine then runs `execute`, which must be idempotent)."""
        return None

    def teardown(self, params: Mapping[str, Any], outputs: Mapping[str, Any],
                 ctx: StepContext) -> None:
        """Undo what a drill made (nothing by default)."""
