"""One run at a time per stack: `locks/<name>.json`, taken with the store's exclusive create.

The lock names the run holding it (run id, runbook, pid, host, start time, a random token). A
second run is refused with that name. A lock left behind by a run that is not going on any more
(its journal says interrupted/failed/aborted, or it says running but its pid is gone on this
host) is taken over only by `--resume` of that same run; `break_lock` overrides the check when
the holder's machine is gone. A lock whose run completed, or that names a dead process on this
host that never wrote a journal, is taken over by anyone. Release deletes the lock only if it still carries our token.

The takeover is delete-then-create; the token is re-read just before the delete so a takeover
cannot remove a lock that changed hands in between (a narrow window remains: the store has no
compare-and-delete).
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from collections.abc import Callable
from typing import Any

from dr.clock import Clock
from dr.errors import OperationFailed
from dr.state.base import StateStore, validate_key
from dr.state.runs import iso

LOCK_PREFIX = "locks/"
STALE_STATUSES = ("interrupted", "failed", "aborted")


class RunLocked(OperationFailed):
    """Another run holds the lock; the message names it."""

    def __init__(self, message: str, *, holder: dict[str, Any], hint: str | None = None):
        super().__init__(message, hint=hint)
        self.holder = holder


def lock_key(name: str) -> str:
    return validate_key(LOCK_PREFIX + re.sub(r"[^A-Za-z0-9._-]", "-", name)[:200] + ".json")


class RunLock:
    def __init__(self, store: StateStore, key: str, document: dict[str, Any]):
        self.store, self.key, self.document = store, key, document
        self.held = True

    @classmethod
    def acquire(cls, store: StateStore, name: str, run_id: str, runbook: str, clock: Clock, *,
                resume: bool, journal_status: Callable[[str], str | None],
                break_lock: bool = False) -> RunLock:
        key = lock_key(name)
        doc = {"run_id": run_id, "runbook": runbook, "lock": name, "pid": os.getpid(),
               "host": socket.gethostname(), "started_at": iso(clock.now()),
               "token": secrets.token_hex(8)}
        for _ in range(5):
            if store.create_json(key, doc):
                return cls(store, key, doc)
            holder = store.get_json(key)
            if holder is None:
                continue  # released in between: try again
            status = journal_status(holder.get("run_id", ""))
            if break_lock or _may_take_over(holder, status, run_id, resume):
                current = store.get_json(key)
                if current is not None and current.get("token") == holder.get("token"):
                    store.delete(key)
                continue
            raise _refusal(name, holder, status, _is_stale(holder, status))
        raise OperationFailed(f"could not take the lock {key} in {store.description} (it keeps changing hands)")

    def release(self) -> None:
        if not self.held:
            return
        current = self.store.get_json(self.key)
        if current is not None and current.get("token") == self.document["token"]:
            self.store.delete(self.key)
        self.held = False


def _dead_here(holder: dict[str, Any]) -> bool:
    return holder.get("host") == socket.gethostname() and not _pid_alive(holder.get("pid"))


def _is_stale(holder: dict[str, Any], status: str | None) -> bool:
    """The holder is not going on any more (as far as this machine can tell)."""
    return status in STALE_STATUSES or status == "completed" or _dead_here(holder)


def _may_take_over(holder: dict[str, Any], status: str | None, run_id: str, resume: bool) -> bool:
    if status is None:
        return _dead_here(holder)  # died before its journal was written: nothing to resume
    if status == "completed":
        return True  # finished but could not release
    return _is_stale(holder, status) and resume and holder.get("run_id") == run_id


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _refusal(name: str, holder: dict[str, Any], status: str | None, stale: bool) -> RunLocked:
    run_id = holder.get("run_id", "?")
    who = (f"run {run_id} (runbook {holder.get('runbook', '?')}, pid {holder.get('pid', '?')} on "
           f"{holder.get('host', '?')}, since {holder.get('started_at', '?')}; its journal says "
           f"{status or 'nothing yet'})")
    if stale:
        hint = (f"that run is not going on any more: resume it with --resume {run_id} "
                "(which takes the lock over)")
    else:
        hint = (f"wait for it to finish; if its machine is gone, resume it with --resume {run_id} "
                "--break-lock")
    return RunLocked(f"another run is in progress on {name}: {who}", holder=holder, hint=hint)
