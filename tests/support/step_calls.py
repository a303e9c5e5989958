"""Call a step type as the engine does: parameters checked, converted and with their declared
defaults filled in (dr.runbook.params.apply, what StepRunner.resolve_params hands a step), so a
test that gives only some parameters runs the step exactly as a runbook giving the same would."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dr.runbook.params import apply
from dr.runbook.steps.base import StepContext, StepType


class AsRun:
    def __init__(self, cls: type[StepType]) -> None:
        self.cls, self.step = cls, cls()

    def filled(self, given: Mapping[str, Any]) -> dict[str, Any]:
        params, problems = apply(self.cls, given)
        wrong = {k: v for k, v in problems.items() if k in given}  # a missing one stays missing
        assert not wrong, wrong
        return params

    def execute(self, given: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        return self.step.execute(self.filled(given), ctx)

    def check(self, given: Mapping[str, Any], ctx: StepContext) -> dict[str, Any] | None:
        return self.step.check(self.filled(given), ctx)

    def teardown(self, given: Mapping[str, Any], outputs: Mapping[str, Any], ctx: StepContext) -> None:
        self.step.teardown(self.filled(given), outputs, ctx)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.step, name)
