"""RunJournal: every state transition of a runbook run, saved to the state store as it happens.

One document per run at `journals/<run_id>.json` (the state store lives in the DR region, so
the journal survives the primary). It is rewritten atomically after every transition: a step
is journaled `running` BEFORE its work starts and `completed`/`failed`/... AFTER it ends, so a
crash at any moment leaves a journal that says exactly which steps were done, which were in
flight (resume asks the real world about those) and which had not started. Layout:

    {"format": 1, "run_id", "runbook": {"name", "source", "digest"}, "kind", "drill", "region",
     "params": {...}, "status": running|completed|failed|aborted|interrupted,
     "started_at", "finished_at", "error", "rto_seconds", "critical_path_seconds",
     "sessions": [{"n", "pid", "host", "started_at", "finished_at", "status"}],
     "steps": {"<id>": {"type", "status", "attempts", "started_at", "finished_at", "seconds",
                        "outputs", "error", "via", "in_doubt", "teardown": {...} | null}},
     "finish_order": ["<id>", ...],          # when each step reached a final state
     "hooks": [{"id", "phase", "status", "session", "started_at", "finished_at", "error"}],
     "events": [{"at", "session", "step", "from", "to", "attempt", "note"}]}

Transitions are checked against STEP_TRANSITIONS / RUN_TRANSITIONS (model.py). After `finish`
the journal is closed: a late write from a step thread that was abandoned is ignored.
"""

from __future__ import annotations

import copy
import os
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

from dr.clock import Clock
from dr.errors import UsageError
from dr.runbook.model import RUN_TRANSITIONS, STEP_TRANSITIONS, Runbook
from dr.state.base import StateStore, validate_key
from dr.state.runs import iso

JOURNAL_PREFIX = "journals/"
FORMAT = 1
FINAL_STEP = ("completed", "failed", "interrupted")


def journal_key(run_id: str) -> str:
    if "/" in run_id:
        raise ValueError(f"run id {run_id!r} must not contain '/'")
    return validate_key(f"{JOURNAL_PREFIX}{run_id}.json")


class TransitionError(RuntimeError):
    """An impossible history was about to be recorded (a bug in the engine, not in the world)."""


class RunJournal:
    def __init__(self, store: StateStore, doc: dict[str, Any], clock: Clock,
                 on_event: Callable[[dict[str, Any]], None] | None = None):
        self.store, self.doc, self.clock, self.on_event = store, doc, clock, on_event
        self._lock = threading.RLock()
        self.closed = False

    # -- creating and loading -----------------------------------------------------------------

    @classmethod
    def create(cls, store: StateStore, runbook: Runbook, run_id: str, *, kind: str, drill: bool,
               region: str, params: Mapping[str, Any], clock: Clock,
               on_event: Callable[[dict[str, Any]], None] | None = None) -> RunJournal:
        now = iso(clock.now())
        steps = {s.id: _new_step(s.type) for s in runbook.steps}
        doc = {"format": FORMAT, "run_id": run_id, "kind": kind, "drill": drill, "region": region,
               "runbook": {"name": runbook.name, "source": runbook.source, "digest": runbook.digest},
               "params": dict(params), "status": "running", "started_at": now, "finished_at": None,
               "error": None, "rto_seconds": None, "critical_path_seconds": None,
               "sessions": [_session(1, now)], "steps": steps, "finish_order": [], "hooks": [],
               "events": [{"at": now, "session": 1, "step": None, "from": None, "to": "running",
                           "note": "run started"}]}
        journal = cls(store, doc, clock, on_event)
        journal.save()
        return journal

    @classmethod
    def load(cls, store: StateStore, run_id: str, clock: Clock,
             on_event: Callable[[dict[str, Any]], None] | None = None) -> RunJournal:
        try:
            key = journal_key(run_id)
        except ValueError:
            raise UsageError(f"{run_id!r} is not a run id") from None
        doc = store.get_json(key)
        if doc is None:
            raise UsageError(f"no journal for run {run_id} in {store.description}",
                             hint="`dr runs list` shows the runs")
        if doc.get("format") != FORMAT:
            raise UsageError(f"journal {key} has format {doc.get('format')!r}; this dr reads {FORMAT}")
        return cls(store, doc, clock, on_event)

    # -- reading ------------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self.doc["run_id"]

    @property
    def key(self) -> str:
        return journal_key(self.run_id)

    @property
    def session(self) -> int:
        return len(self.doc["sessions"])

    def step(self, step_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.doc["steps"][step_id])

    def status_of(self, step_id: str) -> str:
        with self._lock:
            return self.doc["steps"][step_id]["status"]

    def outputs(self) -> dict[str, dict[str, Any]]:
        """Outputs of completed steps (what `${steps...}` and StepContext.outputs see)."""
        with self._lock:
            return {k: copy.deepcopy(v["outputs"]) for k, v in self.doc["steps"].items()
                    if v["status"] == "completed"}

    def types(self) -> dict[str, str]:
        with self._lock:
            return {k: v["type"] for k, v in self.doc["steps"].items() if v["status"] == "completed"}

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.doc)

    # -- writing ------------------------------------------------------------------------------

    def transition(self, step_id: str, to: str, note: str = "", **fields: Any) -> bool:
        """Move a step to `to`, update its fields, save. False (and nothing written) once the
        journal is closed. If the save fails, the journal in memory is unchanged too."""
        with self._lock:
            if self.closed:
                return False
            current = self.doc["steps"][step_id]["status"]
            if to not in STEP_TRANSITIONS[current]:
                raise TransitionError(f"step {step_id}: {current} -> {to} is not allowed")
            event = {"at": iso(self.clock.now()), "session": self.session, "step": step_id,
                     "from": current, "to": to, "attempt": fields.get("attempts"), "note": note}

            def change(doc: dict[str, Any]) -> None:
                doc["steps"][step_id].update(fields, status=to)
                if to in FINAL_STEP:
                    doc["finish_order"].append(step_id)
                doc["events"].append(event)

            self._commit(change)
        self._emit(event)
        return True

    def set_teardown(self, step_id: str, record: dict[str, Any]) -> None:
        with self._lock:
            if self.closed:
                return
            event = {"at": iso(self.clock.now()), "session": self.session, "step": step_id,
                     "from": None, "to": f"teardown-{record['status']}", "note": record.get("error") or ""}

            def change(doc: dict[str, Any]) -> None:
                doc["steps"][step_id]["teardown"] = dict(record)
                doc["events"].append(event)

            self._commit(change)
        self._emit(event)

    def add_hook(self, record: dict[str, Any]) -> None:
        with self._lock:
            if not self.closed:
                self._commit(lambda doc: doc["hooks"].append({**record, "session": self.session}))

    def resume(self) -> None:
        """A new session of an unfinished run: the run goes back to running."""
        with self._lock:
            if "running" not in RUN_TRANSITIONS[self.doc["status"]]:
                raise TransitionError(f"run {self.run_id}: {self.doc['status']} -> running is not allowed")

            def change(doc: dict[str, Any]) -> None:
                now = iso(self.clock.now())
                doc["events"].append({"at": now, "session": len(doc["sessions"]) + 1, "step": None,
                                      "from": doc["status"], "to": "running", "note": "resumed"})
                doc["sessions"].append(_session(len(doc["sessions"]) + 1, now))
                doc.update(status="running", finished_at=None, error=None)

            self._commit(change)

    def _commit(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Apply `change` to a copy, save the copy, then adopt it: memory never runs ahead of
        the store."""
        doc = copy.deepcopy(self.doc)
        change(doc)
        self.store.put_json(self.key, doc)
        self.doc = doc

    def finish(self, status: str, **summary: Any) -> None:
        with self._lock:
            now = iso(self.clock.now())
            self._run_transition(status, "run ended")
            self.doc.update(summary, finished_at=now)
            self.doc["sessions"][-1].update(finished_at=now, status=status)
            try:
                self.save()
            finally:
                self.closed = True
        self._emit({"at": now, "step": None, "to": status, "note": "run ended"})

    def _run_transition(self, to: str, note: str) -> None:
        if to not in RUN_TRANSITIONS[self.doc["status"]]:
            raise TransitionError(f"run {self.run_id}: {self.doc['status']} -> {to} is not allowed")
        self.doc["events"].append({"at": iso(self.clock.now()), "session": self.session, "step": None,
                                   "from": self.doc["status"], "to": to, "note": note})
        self.doc["status"] = to

    def save(self) -> None:
        with self._lock:
            self.store.put_json(self.key, self.doc)

    def _emit(self, event: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(event)


def _new_step(type_name: str) -> dict[str, Any]:
    return {"type": type_name, "status": "pending", "attempts": 0, "started_at": None,
            "finished_at": None, "seconds": None, "outputs": {}, "error": None, "via": "",
            "in_doubt": False, "teardown": None}


def _session(n: int, now: str) -> dict[str, Any]:
    return {"n": n, "pid": os.getpid(), "host": socket.gethostname(), "started_at": now,
            "finished_at": None, "status": "running"}
