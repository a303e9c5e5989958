"""Statuses and allowed transitions: plain data, one set for every record dr writes.

The runbook journal (dr.runbook.journal) and the run recorder (dr.state.recorder) check every
change against these tables (taskflow's habit), so a bug that would record an impossible history
fails loudly instead of being written. A run record's resources and steps follow the step table;
the run itself follows the run table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

RUN_FINAL = ("completed", "failed", "aborted", "interrupted")
RUN_STATUSES = ("running", *RUN_FINAL)
RUN_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "running": (*RUN_FINAL, "running"),  # running -> running: --resume after a crash (SIGKILL)
    "failed": ("running",),       # --resume
    "aborted": ("running",),      # --resume (after fixing what the safety gate refused)
    "interrupted": ("running",),  # --resume
    "completed": (),
}

STEP_STATUSES = ("pending", "running", "completed", "failed", "skipped", "interrupted")
STEP_FINAL = ("completed", "failed", "skipped", "interrupted")
# running -> running is a retry; every -> pending is a --resume preparing the step to run again
# (a completed step only goes back to pending when a drill teardown removed its effect).
STEP_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending": ("running", "skipped"),
    "running": ("running", "completed", "failed", "interrupted", "pending"),
    "completed": ("pending",),
    "failed": ("pending",),
    "interrupted": ("pending",),
    "skipped": ("pending",),
}

# A journal step as a run record's result: a step still running when the record is written was
# stopped (the record is only rewritten at the run's start and end), one never started was skipped.
RESULT_OF_STEP: dict[str, str] = {"completed": "completed", "failed": "failed",
                                  "interrupted": "interrupted", "running": "interrupted",
                                  "skipped": "skipped", "pending": "skipped"}


class IllegalTransition(RuntimeError):
    """An impossible history was about to be recorded (a bug in dr, not in the world)."""


def check_transition(table: Mapping[str, tuple[str, ...]], what: str, current: str, to: str) -> None:
    """Raise IllegalTransition unless `table` allows `current -> to` (`what` names the thing)."""
    if to not in table.get(current, ()):
        raise IllegalTransition(f"{what}: {current} -> {to} is not allowed")


def run_outcome(result_statuses: Iterable[str], error: str | None = None) -> str:
    """The final status of a run from its results: interrupted if any was, else failed if any
    failed or the run has an error of its own, else completed (skipped results fail nothing)."""
    statuses = set(result_statuses)
    if "interrupted" in statuses:
        return "interrupted"
    if "failed" in statuses or error:
        return "failed"
    return "completed"
