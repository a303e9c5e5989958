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
     "created": [{"kind", "id", "region", "step", "session", "at", ...}],   # the run's ledger
     "events": [{"at", "session", "step", "from", "to", "attempt", "note"}], "rev": <writes>}

Transitions are checked against STEP_TRANSITIONS / RUN_TRANSITIONS (model.py). After `finish`
the journal is closed: a late write from a step thread that was abandoned is ignored.

**Fenced.** Every write is a compare-and-swap on the version this session last wrote or read
(`put_json_if`): if another session took the run over (lease.py) and wrote the journal, this
session's next write raises JournalFenced and it stops, instead of overwriting the new holder.

**The ledger.** `record_created` is called by a step *before* it asks the world to create
something (a stack, a DB instance, a DNS record, and the resources a stack made): teardown and
leftover checks delete only what the ledger names and the world confirms (tags, ids).
"""

from __future__ import annotations

import copy
import os
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

from dr.clock import Clock, iso
from dr.errors import OperationFailed, UsageError
from dr.runbook.model import Runbook
from dr.state.base import StateStore, validate_key
from dr.state.status import RUN_TRANSITIONS, STEP_TRANSITIONS, check_transition

JOURNAL_PREFIX = "journals/"
FORMAT = 1
FINAL_STEP = ("completed", "failed", "interrupted")


def journal_key(run_id: str) -> str:
    if "/" in run_id:
        raise ValueError(f"run id {run_id!r} must not contain '/'")
    return validate_key(f"{JOURNAL_PREFIX}{run_id}.json")


class JournalFenced(OperationFailed):
    """Another session wrote this run's journal (it took the run over): this one must stop."""


class RunJournal:
    def __init__(self, store: StateStore, doc: dict[str, Any], clock: Clock,
                 on_event: Callable[[dict[str, Any]], None] | None = None, version: str | None = None):
        self.store, self.doc, self.clock, self.on_event = store, doc, clock, on_event
        self.version = version  # of the stored document this session last wrote or read
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
               "created": [], "rev": 1,
               "events": [{"at": now, "session": 1, "step": None, "from": None, "to": "running",
                           "note": "run started"}]}
        version = store.put_json_if(journal_key(run_id), doc, None)
        if version is None:
            raise UsageError(f"a journal for run {run_id} exists already in {store.description}")
        return cls(store, doc, clock, on_event, version)

    @classmethod
    def load(cls, store: StateStore, run_id: str, clock: Clock,
             on_event: Callable[[dict[str, Any]], None] | None = None) -> RunJournal:
        try:
            key = journal_key(run_id)
        except ValueError:
            raise UsageError(f"{run_id!r} is not a run id") from None
        found = store.get_json_versioned(key)
        if found is None:
            raise UsageError(f"no journal for run {run_id} in {store.description}",
                             hint="`dr runs list` shows the runs")
        doc, version = found
        if doc.get("format") != FORMAT:
            raise UsageError(f"journal {key} has format {doc.get('format')!r}; this dr reads {FORMAT}")
        doc.setdefault("created", [])
        return cls(store, doc, clock, on_event, version)

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

    def created(self) -> list[dict[str, Any]]:
        """The ledger: what this run's steps created (or were about to), in order."""
        with self._lock:
            return copy.deepcopy(self.doc.get("created") or [])

    # -- writing ------------------------------------------------------------------------------

    def transition(self, step_id: str, to: str, note: str = "", **fields: Any) -> bool:
        """Move a step to `to`, update its fields, save. False (and nothing written) once the
        journal is closed. If the save fails, the journal in memory is unchanged too."""
        with self._lock:
            if self.closed:
                return False
            current = self.doc["steps"][step_id]["status"]
            check_transition(STEP_TRANSITIONS, f"step {step_id}", current, to)
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

    def record_created(self, entry: Mapping[str, Any]) -> None:
        """Add (or update, by kind+id+region) a ledger entry; saved before the caller goes on."""
        with self._lock:
            if self.closed:
                return
            entry = {**entry, "session": self.session, "at": iso(self.clock.now())}

            def change(doc: dict[str, Any]) -> None:
                ledger = doc.setdefault("created", [])
                same = [i for i, e in enumerate(ledger) if (e.get("kind"), e.get("id"), e.get("region"))
                        == (entry.get("kind"), entry.get("id"), entry.get("region"))]
                if same:
                    ledger[same[0]] = {**ledger[same[0]], **{k: v for k, v in entry.items() if v is not None}}
                else:
                    ledger.append(entry)

            self._commit(change)

    def annotate(self, **fields: Any) -> None:
        """Set top-level facts about the run (e.g. `preempted_by`, `preempted`)."""
        with self._lock:
            if not self.closed:
                self._commit(lambda doc: doc.update(fields))

    def add_hook(self, record: dict[str, Any]) -> None:
        with self._lock:
            if not self.closed:
                self._commit(lambda doc: doc["hooks"].append({**record, "session": self.session}))

    def resume(self) -> None:
        """A new session of an unfinished run: the run goes back to running."""
        with self._lock:
            check_transition(RUN_TRANSITIONS, f"run {self.run_id}", self.doc["status"], "running")

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
        self._write(doc)
        self.doc = doc

    def _write(self, doc: dict[str, Any]) -> None:
        doc["rev"] = int(doc.get("rev") or 0) + 1
        version = self.store.put_json_if(self.key, doc, self.version)
        if version is None:
            raise JournalFenced(f"the journal of run {self.run_id} was written by another session (the run was "
                                "taken over, see `dr runs show`); this session stops without writing more",
                                hint=f"the session holding the lease goes on; to continue here later: "
                                     f"--resume {self.run_id}")
        self.version = version

    def reload(self) -> None:
        """Read the stored journal again (after a fenced write during resume preparation)."""
        with self._lock:
            found = self.store.get_json_versioned(self.key)
            if found is None:
                raise UsageError(f"the journal of run {self.run_id} disappeared from {self.store.description}")
            self.doc, self.version = found
            self.doc.setdefault("created", [])

    def finish(self, status: str, **summary: Any) -> None:
        with self._lock:
            now = iso(self.clock.now())
            self._run_transition(status, "run ended")
            self.doc.update(summary, finished_at=now)
            self.doc["sessions"][-1].update(finished_at=now, status=status)
            try:
                self._write(self.doc)
            finally:
                self.closed = True
        self._emit({"at": now, "step": None, "to": status, "note": "run ended"})

    def _run_transition(self, to: str, note: str) -> None:
        check_transition(RUN_TRANSITIONS, f"run {self.run_id}", self.doc["status"], to)
        self.doc["events"].append({"at": iso(self.clock.now()), "session": self.session, "step": None,
                                   "from": self.doc["status"], "to": to, "note": note})
        self.doc["status"] = to

    def _emit(self, event: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(event)


def _new_step(type_name: str) -> dict[str, Any]:
    return {"type": type_name, "status": "pending", "attempts": 0, "started_at": None,
            "finished_at": None, "seconds": None, "outputs": {}, "error": None, "hint": None, "via": "",
            "in_doubt": False, "teardown": None}


def _session(n: int, now: str) -> dict[str, Any]:
    return {"n": n, "pid": os.getpid(), "host": socket.gethostname(), "started_at": now,
            "finished_at": None, "status": "running"}
