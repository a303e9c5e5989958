"""Shared helpers for the runbook tests: a config, a store, and fake step types over a fake world.

The fake world stands in for AWS: `make` creates a named resource (refusing a duplicate, as a
real API would), `check` finds it, `teardown` deletes it, and every call is counted, so tests
can assert "executed once", "check was consulted", "torn down in this order".
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dr.clock import Clock
from dr.config import parse_config
from dr.runbook import EngineContext, parse_runbook
from dr.runbook.steps.base import AbortRun, Param, StepContext, StepType
from dr.runbook.steps.generic import STEP_TYPES as GENERIC
from dr.state.local import LocalStore

KEY_ARN = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CONFIG = f"""\
version: 1
regions: {{primary: us-east-1, dr: us-west-2}}
objectives: {{rpo: 1h, rto: 30m}}
kms: {{dr_key: {KEY_ARN}}}
state: {{path: ./state}}
rds:
  - {{name: app-db, instance: acme-prod-db}}
  - {{name: orders, cluster: acme-aurora}}
health: {{url: "https://example.com/health", timeout: 10m}}
"""


def make_config(tmp_path: Path, text: str = CONFIG):
    return parse_config(text, str(tmp_path / "dr.yaml"), base_dir=tmp_path)


class SimClock(Clock):
    """Simulated time for a run on threads, so the engine tests never wait for real.

    `sleep` blocks until the simulated time reaches its end (or its event is set). When every
    participant (the main thread, which runs the engine, and the run's dr-step threads) is
    asleep and stays so for a moment, time jumps to the earliest wake-up or `at` callback: a
    30 s step with a 0.2 s timeout is cancelled at 0.2 simulated seconds, in milliseconds. Wall
    time (`now`) moves with it from `start`."""

    QUIET = 0.002  # real seconds every participant must stay asleep before time moves
    sleeping_on: dict[int, SimClock] = {}  # thread -> the clock it sleeps on (an earlier test's, maybe)

    def __init__(self, start: datetime | None = None):
        self._start = start or Clock().now()
        self._mono = 0.0
        self._cond = threading.Condition(threading.RLock())  # RLock: a signal handler may read the time
        self._sleepers: dict[int, tuple[float, threading.Event | None]] = {}
        self._calls: list[tuple[float, int, Callable[[], None]]] = []
        self._advancing = False  # the clock's thread runs while anyone sleeps

    def now(self) -> datetime:
        with self._cond:
            return self._start + timedelta(seconds=self._mono)

    def monotonic(self) -> float:
        with self._cond:
            return self._mono

    def at(self, seconds: float, call: Callable[[], None]) -> None:
        """Call `call` (on the clock's thread) when the simulated time reaches `seconds`."""
        with self._cond:
            heapq.heappush(self._calls, (seconds, len(self._calls), call))

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        me = threading.get_ident()
        with self._cond:
            wake = self._mono + max(0.0, seconds)
            self._sleepers[me] = (wake, cancel)
            SimClock.sleeping_on[me] = self
            if not self._advancing:
                self._advancing = True
                threading.Thread(target=self._advance, daemon=True, name="sim-clock").start()
            try:
                while True:
                    if cancel is not None and cancel.is_set():
                        return True
                    if self._mono >= wake:
                        return False
                    self._cond.wait(0.001)
            finally:
                del self._sleepers[me]
                SimClock.sleeping_on.pop(me, None)

    def _asleep(self) -> bool:
        ids = {threading.main_thread().ident} | {t.ident for t in threading.enumerate()
                                                 if t.name.startswith("dr-step")
                                                 and SimClock.sleeping_on.get(t.ident, self) is self}
        for ident in ids:
            slept = self._sleepers.get(ident)
            if slept is None or slept[0] <= self._mono or (slept[1] is not None and slept[1].is_set()):
                return False
        return True

    def _advance(self) -> None:
        quiet_since, idle_since = None, time.monotonic()
        while True:
            time.sleep(0.0005)
            due: list[Callable[[], None]] = []
            with self._cond:
                if self._sleepers:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > 0.2:
                    self._advancing = False
                    return
                if not self._asleep():
                    quiet_since = None
                    continue
                if quiet_since is None or time.monotonic() - quiet_since < self.QUIET:
                    quiet_since = quiet_since or time.monotonic()
                    continue
                quiet_since = None
                wakes = [w for w, _ in self._sleepers.values()] + [c[0] for c in self._calls[:1]]
                self._mono = max(self._mono, min(wakes))
                while self._calls and self._calls[0][0] <= self._mono:
                    due.append(heapq.heappop(self._calls)[2])
                self._cond.notify_all()
            for call in due:
                call()
            if due:
                time.sleep(0.02)  # let what the call set off (a signal handler) happen first


class World:
    """Fake cloud: named resources, and a log of every call the step types made."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.resources: dict[str, dict] = {}
        self.calls: list[tuple[str, str]] = []  # (what, step id)
        self.started: dict[str, float] = {}
        self.finished: dict[str, float] = {}
        self.check_result: dict[str, bool] = {}  # step id -> should check() find the effect?
        self.fail_next: set[str] = set()  # step ids whose next execute raises

    def log(self, what: str, step: str) -> None:
        with self.lock:
            self.calls.append((what, step))

    def count(self, what: str, step: str | None = None) -> int:
        return sum(1 for w, s in self.calls if w == what and (step is None or s == step))

    def order(self, what: str) -> list[str]:
        return [s for w, s in self.calls if w == what]


def fake_types(world: World) -> dict[str, type[StepType]]:
    class Make(StepType):
        name = "make"
        description = "Makes a named fake resource (deterministic name from ctx.name)."
        params = (Param("name", "str", required=True), Param("seconds", "float", default=0.0),
                  Param("size", "int", default=1), Param("teardown_seconds", "float", default=0.0))
        outputs = ("resource", "size")
        iam_actions = ("fake:Make",)
        example = "- id: m\n  type: make\n  with: {name: x}\n"

        def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
            world.log("execute", ctx.step_id)
            world.started[ctx.step_id] = ctx.clock.monotonic()
            if ctx.step_id in world.fail_next:
                world.fail_next.discard(ctx.step_id)
                raise RuntimeError("the API said no")
            if params["seconds"]:
                ctx.wait(params["seconds"])
            name = ctx.name(params["name"])
            with world.lock:
                if name in world.resources:
                    raise RuntimeError(f"{name} already exists")
                world.resources[name] = {"size": params["size"]}
            world.finished[ctx.step_id] = ctx.clock.monotonic()
            return {"resource": name, "size": params["size"]}

        def check(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any] | None:
            world.log("check", ctx.step_id)
            name = ctx.name(params["name"])
            if name in world.resources and world.check_result.get(ctx.step_id, True):
                return {"resource": name, "size": world.resources[name]["size"]}
            return None

        def teardown(self, params: Mapping[str, Any], outputs: Mapping[str, Any], ctx: StepContext) -> None:
            world.log("teardown", ctx.step_id)
            if params["teardown_seconds"]:
                ctx.wait(params["teardown_seconds"])
            if params["name"] == "boom":
                raise RuntimeError("teardown exploded")
            world.resources.pop(ctx.name(params["name"]), None)

    class Echo(StepType):
        name = "echo"
        description = "Returns its typed parameters (for reference resolution tests)."
        params = (Param("text", "str"), Param("number", "int"), Param("flag", "bool"),
                  Param("mapping", "dict"), Param("items", "list"), Param("wait", "duration"),
                  Param("ratio", "float"))
        outputs = ("text", "number", "flag", "mapping", "items", "wait", "ratio", "types")
        iam_actions = ()
        example = "- id: e\n  type: echo\n  with: {text: hi}\n"

        def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
            world.log("execute", ctx.step_id)
            out = {k: v for k, v in params.items()}
            out["types"] = {k: type(v).__name__ for k, v in params.items()}
            return out

    class Hang(StepType):
        name = "hang"
        description = "Ignores cancellation (a badly written step)."
        params = (Param("seconds", "float", required=True),)
        outputs = ()
        iam_actions = ()
        example = "- id: h\n  type: hang\n  with: {seconds: 1}\n"

        def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
            world.log("execute", ctx.step_id)
            ctx.clock.sleep(params["seconds"])  # no cancel event: it does not stop when told
            return {}

    class Gate(StepType):
        name = "gate"
        description = "Aborts the run on purpose when `refuse` is true."
        params = (Param("refuse", "bool", default=True),)
        outputs = ()
        iam_actions = ()
        example = "- id: g\n  type: gate\n"

        def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
            world.log("execute", ctx.step_id)
            if params["refuse"]:
                raise AbortRun("the newest copy is older than the RPO objective")
            return {}

    class Healthy(StepType):
        name = "http.wait_healthy"  # stands in for the real one: the default RTO gate
        description = "Pretends a URL became healthy."
        params = (Param("seconds", "float", default=0.0),)
        outputs = ("healthy",)
        iam_actions = ()
        fresh_per_session = True  # like the real one: runs again in every session
        example = "- id: h\n  type: http.wait_healthy\n"

        def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
            world.log("execute", ctx.step_id)
            if params["seconds"]:
                ctx.wait(params["seconds"])
            return {"healthy": True}

    return {cls.name: cls for cls in (Make, Echo, Hang, Gate, Healthy)}


def registry(world: World | None = None) -> dict[str, type[StepType]]:
    types = {cls.name: cls for cls in GENERIC}
    if world is not None:
        types.update(fake_types(world))
    return types


def runbook(text: str, tmp_path: Path, world: World | None = None, config: Any = "default"):
    cfg = make_config(tmp_path) if config == "default" else config
    path = tmp_path / "rb.yaml"
    path.write_text(text)
    return parse_runbook(text, str(path), cfg, registry(world))


def engine(tmp_path: Path, **kwargs: Any) -> EngineContext:
    messages: list[str] = []
    defaults = dict(config=make_config(tmp_path), session=None, store=LocalStore(tmp_path / "state"),
                    log=messages.append, warn=messages.append, stop_grace=2.0, clock=SimClock())
    defaults.update(kwargs)
    ectx = EngineContext(**defaults)
    ectx.messages = messages  # type: ignore[attr-defined]
    return ectx


def test_fake_make_refuses_a_duplicate(tmp_path):
    world = World()
    rb = runbook("version: 1\nname: t\nsteps:\n  - {id: a, type: make, with: {name: r}}\n"
                 "  - {id: b, type: make, with: {name: r}, needs: [a]}\n", tmp_path, world)
    from dr.runbook import run_runbook

    result = run_runbook(rb, engine(tmp_path))
    assert result.status == "failed"
    assert "r already exists" in result.steps["b"].error
