"""Run leases: the proof that a backup, verify or prune run is still alive.

While it runs, a run holds `leases/runs/<run_id>.json` in the state store: its owner (host,
boot id, pid and the pid's start time), a heartbeat a thread renews every HEARTBEAT, and what it
is writing (backup files by their full location, scratch databases by name). It deletes the
lease when it ends, however it ends, except when it is killed (kill -9, OOM, power loss): then
the lease stays, and that is how the leftovers are found (dr.backup.cleanup).

A lease is

* **dead** when its owner ran on this machine (same host name and boot id) and that process is
  gone (or the pid now belongs to a process started at another time): proven at once;
* **stale** when its heartbeat is older than STALE_AFTER (5 minutes, five missed heartbeats):
  the owner is on another machine that died, or cannot reach the state store;
* **live** otherwise. A live lease protects what it holds, whatever its age.

A run takes its lease *before* it creates anything, and a cleanup lists what exists *before* it
reads the leases, so whatever a live run has created is covered by a lease the cleanup sees.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta
from typing import Any

from dr.clock import Clock, iso, parse_iso_or_none
from dr.state.base import StateStore, validate_key

log = logging.getLogger(__name__)
PREFIX = "leases/runs/"
FORMAT = "dr-run-lease/1"
HEARTBEAT = timedelta(seconds=60)
STALE_AFTER = timedelta(minutes=5)


def lease_key(run_id: str) -> str:
    return validate_key(f"{PREFIX}{run_id}.json")


def owner() -> dict[str, Any]:
    """This process, as a lease names it."""
    from dr.runbook.lease import _boot_id

    pid = os.getpid()
    return {"host": socket.gethostname(), "boot": _boot_id(), "pid": pid,
            "pid_started": _pid_started(pid)}


class RunLease:
    """`start()` (or `with`), `hold(...)` before creating anything, `release()` at the end."""

    def __init__(self, store: StateStore, run_id: str, kind: str, clock: Clock, *,
                 heartbeat: timedelta = HEARTBEAT):
        self.store, self.clock, self.interval = store, clock, heartbeat
        self.key = lease_key(run_id)
        now = iso(clock.now())
        self.doc: dict[str, Any] = {"format": FORMAT, "run_id": run_id, "kind": kind,
                                    "owner": owner(), "acquired_at": now, "heartbeat": now,
                                    "files": [], "databases": []}
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> RunLease:
        try:
            self._write()
        except Exception as exc:  # noqa: BLE001 - the run goes on; the next beat tries again
            log.warning("could not write the run lease %s: %s", self.key, exc)
        self._thread = threading.Thread(target=self._beat, daemon=True, name="dr-run-lease")
        self._thread.start()
        return self

    def hold(self, *, files: list[str] = (), databases: list[str] = ()) -> None:
        """Add what this run is about to create (full file locations, database names); written
        before the caller goes on, so a cleanup that sees the thing also sees the lease."""
        with self._mutex:
            self.doc["files"] = sorted(set(self.doc["files"]) | set(files))
            self.doc["databases"] = sorted(set(self.doc["databases"]) | set(databases))
        self._write()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        try:
            self.store.delete(self.key)
        except Exception as exc:  # noqa: BLE001 - it goes stale on its own; the run is over
            log.warning("could not delete the run lease %s: %s", self.key, exc)

    def __enter__(self) -> RunLease:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.release()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval.total_seconds()):
            try:
                self._write()
            except Exception as exc:  # noqa: BLE001 - retried at the next beat
                log.warning("could not renew the run lease %s: %s", self.key, exc)

    def _write(self) -> None:
        with self._mutex:
            if self._stop.is_set():
                return
            self.doc["heartbeat"] = iso(self.clock.now())
            self.store.put_json(self.key, dict(self.doc))


def lease_state(doc: dict[str, Any], now: datetime, *, here: dict[str, Any] | None = None,
                alive=None) -> tuple[str, str]:
    """(live | dead | stale, why): see the module docstring."""
    here = here or owner()
    alive = alive or _pid_alive
    who = doc.get("owner") or {}
    where = f"pid {who.get('pid', '?')} on {who.get('host', '?')}"
    if who.get("host") == here["host"] and who.get("boot") and who.get("boot") == here["boot"]:
        pid = who.get("pid")
        if not alive(pid):
            return "dead", f"its process ({where}) is gone"
        started = who.get("pid_started")
        if started is not None and _pid_started(pid) not in (None, started):
            return "dead", f"its process ({where}) is gone (the pid now belongs to another process)"
        return "live", f"its process ({where}) is running"
    beat = parse_iso_or_none(doc.get("heartbeat"))
    if beat is None:
        return "stale", f"its lease ({where}) has no readable heartbeat"
    age = now - beat
    if age > STALE_AFTER:
        return "stale", (f"its process ({where}) has not renewed its lease since {iso(beat)} "
                         f"(more than {int(STALE_AFTER.total_seconds() // 60)} minutes)")
    return "live", f"its process ({where}) renewed its lease at {iso(beat)}"


def read_leases(store: StateStore) -> list[tuple[str, dict]]:
    """(key, document) of every run lease; unreadable ones are skipped."""
    out = []
    for key in store.list_keys(PREFIX):
        if not key.endswith(".json"):
            continue
        try:
            doc = store.get_json(key)
        except Exception as exc:  # noqa: BLE001 - one bad document must not stop a cleanup
            log.warning("cannot read the run lease %s: %s", key, exc)
            continue
        if isinstance(doc, dict) and doc.get("format") == FORMAT:
            out.append((key, doc))
    return out


def _pid_alive(pid: Any) -> bool:
    from dr.runbook.lease import _pid_alive as alive

    return alive(pid)


def _pid_started(pid: Any) -> int | None:
    """When the process started, in clock ticks since boot (Linux); None if unknown."""
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None
