"""Generic step types: noop, sleep, fail (tests, benchmarks, placeholders) and notify."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from dr.runbook.steps.base import DYNAMIC_OUTPUTS, Param, StepContext, StepType

log = logging.getLogger(__name__)


class Noop(StepType):
    name = "noop"
    description = "Does nothing; its outputs are the `values` given (a placeholder, or for tests)."
    params = (Param("values", "dict", default=None, help="returned as this step's outputs"),)
    outputs = (DYNAMIC_OUTPUTS,)
    iam_actions = ()
    example = """\
- id: checkpoint
  type: noop
  with: {values: {ready: true}}
"""

    def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        return dict(params.get("values") or {})

    def check(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any] | None:
        return dict(params.get("values") or {})


class Sleep(StepType):
    name = "sleep"
    description = "Waits a while (simulated latency in tests and benchmarks; a settle time)."
    params = (Param("seconds", "float", required=True, help="how long to wait"),)
    outputs = ("slept",)
    iam_actions = ()
    example = """\
- id: settle
  type: sleep
  with: {seconds: 30}
"""

    def validate(self, params: Mapping[str, Any], config: Any) -> list[str]:
        seconds = params.get("seconds")
        if isinstance(seconds, (int, float)) and seconds < 0:
            return [f"seconds: expected zero or more, got {seconds}"]
        return []

    def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        ctx.wait(params["seconds"])
        return {"slept": params["seconds"]}


class Fail(StepType):
    name = "fail"
    description = ("Fails with a message (for tests, or to stop a runbook on purpose); with `times`, "
                   "fails only the first N attempts and then succeeds.")
    params = (Param("message", "str", default="failed on purpose", help="the error message"),
              Param("times", "int", default=None, help="fail only the first N attempts"))
    outputs = ("attempt",)
    iam_actions = ()
    example = """\
- id: boom
  type: fail
  with: {message: "stop here"}
"""

    def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        times = params.get("times")
        if times is None or ctx.attempt <= times:
            raise RuntimeError(params["message"])
        return {"attempt": ctx.attempt}


class Notify(StepType):
    name = "notify"
    description = ("Tells people: publishes to the SNS topic `notify.sns_topic` (if set) and prints "
                   "on the terminal. `at: start|end|failure` makes it a hook that runs at that moment "
                   "of the run instead of a step of the DAG. A failed publish is logged, not fatal, "
                   "unless `required: true`.")
    params = (Param("message", "str", required=True, help="the text; ${run.status} etc. may be used"),
              Param("subject", "str", default=None, help="the SNS subject (default: dr <runbook>)"),
              Param("at", "str", default="now", help="now (a DAG step), start, end or failure"),
              Param("required", "bool", default=False, help="fail the step if the publish fails"))
    outputs = ("sent", "message_id")
    iam_actions = ("sns:Publish",)
    example = """\
- id: tell-on-call
  type: notify
  with: {at: failure, message: "drill ${run.id} ended ${run.status}"}
"""
    PHASES = ("now", "start", "end", "failure")

    @classmethod
    def phase(cls, params: Mapping[str, Any]) -> str | None:
        at = params.get("at") or "now"
        return None if at == "now" else at

    def validate(self, params: Mapping[str, Any], config: Any) -> list[str]:
        at = params.get("at")
        if isinstance(at, str) and at not in self.PHASES:
            return [f"at: expected one of {', '.join(self.PHASES)}, got {at!r}"]
        return []

    def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        message = params["message"]
        ctx.log(f"notify: {message}")
        topic = ctx.config.notify.sns_topic if ctx.config is not None else None
        if not topic:
            return {"sent": False, "message_id": None}
        subject = (params.get("subject") or f"dr {ctx.run_id}")[:100]
        try:
            message_id = ctx.session.sns(topic.split(":")[3]).publish(topic, subject, message)
        except Exception as exc:
            if params.get("required"):
                raise
            ctx.log(f"notify: could not publish to {topic}: {exc}")
            log.warning("notify: publish to %s failed: %s", topic, exc)
            return {"sent": False, "message_id": None}
        return {"sent": True, "message_id": message_id}


STEP_TYPES = (Noop, Sleep, Fail, Notify)
