"""One run at a time per stack: a lease on `locks/<name>.json`, not a pid file.

The lease names its holder (run id, runbook, kind, host, pid, a random session token) and an
expiry. While the run lives, a heartbeat thread renews it every `ttl / 4` seconds with a
compare-and-swap on the stored version (S3: If-Match on the ETag), so:

* **Exactly one holder.** Taking a lease over is a compare-and-swap on the version that was
  read: of two machines resuming the same run at the same moment, one wins; the other is refused
  naming the winner. The run's journal is fenced the same way (journal.py): a session that lost
  its lease cannot overwrite the new holder's journal, and stops at its next write.
* **A dead machine does not block an outage.** A lease that was not renewed before it expired
  (or whose holder is a dead process on this very host) is taken over by `--resume RUN_ID` of
  the same run, from any machine, and the take-over is printed loudly. `--take-over` takes a
  lease that has not expired yet: the holder, if it is alive after all, loses at its next
  renewal and stops (its steps are told to stop; the new holder checks the world for each step
  that was in flight before redoing it). That is the only danger, and why it is not the default.
  It never takes a lease from a session that has just taken the run over itself and not yet
  renewed: two operators pressing --take-over at once get one resume, not two.
* **A real failover preempts a drill.** A failover (not a drill) that finds a drill holding the
  lease takes it (the same compare-and-swap) and records `preempted`; the drill sees that at its
  next renewal, stops starting steps and tears itself down (its resources are drill-owned and
  tagged, so the failover never waits for it). A drill whose process is gone is marked in
  `preemptions/<drill run id>.json`; `dr drill --resume` of it then only tears down.
* **A new run never duplicates an unfinished one**: it is refused, naming the run to resume.

The lease document stays after release (`released_at` set): deleting it would race with the next
holder's compare-and-swap. Times are compared with this machine's clock; the TTL (default 2
minutes, `$DR_LEASE_SECONDS`) is long against clock skew between machines.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from dr.clock import Clock, iso, parse_iso_or_none
from dr.errors import OperationFailed
from dr.state.base import StateStore, validate_key

LEASE_PREFIX = "locks/"
PREEMPTIONS_PREFIX = "preemptions/"
DEFAULT_TTL = 120.0
FORMAT = 1


class RunLocked(OperationFailed):
    """Another run (or session) holds the lease; the message names it and says the way on."""

    def __init__(self, message: str, *, holder: dict[str, Any], hint: str | None = None):
        super().__init__(message, hint=hint)
        self.holder = holder


def lease_key(name: str) -> str:
    return validate_key(LEASE_PREFIX + re.sub(r"[^A-Za-z0-9._-]", "-", name)[:200] + ".json")


def preemption_key(run_id: str) -> str:
    return validate_key(PREEMPTIONS_PREFIX + re.sub(r"[^A-Za-z0-9._-]", "-", run_id) + ".json")


def default_ttl() -> float:
    """`$DR_LEASE_SECONDS` (at least 1), else two minutes."""
    try:
        return max(1.0, float(os.environ.get("DR_LEASE_SECONDS", DEFAULT_TTL)))
    except ValueError:
        return DEFAULT_TTL


@dataclass(frozen=True)
class Claim:
    """Who wants the lease, and how."""

    run_id: str
    runbook: str
    kind: str
    drill: bool
    resume: bool = False
    take_over: bool = False          # --take-over: even from a holder that has not expired


@dataclass(frozen=True)
class LeaseDecision:
    action: str                      # take | preempt | refuse
    why: str                         # a sentence for the log (take/preempt) or the refusal
    hint: str | None = None


# --- the pure decision ----------------------------------------------------------------------------


def holder_state(holder: dict[str, Any], now: datetime, host: str, pid_alive: Callable[[Any], bool]) -> str:
    """released | expired | dead (its process is gone on this host) | live."""
    if holder.get("released_at"):
        return "released"
    owner = holder.get("owner") or {}
    if owner.get("host") == host and owner.get("boot") == _boot_id() and not pid_alive(owner.get("pid")):
        return "dead"
    expires = parse_iso_or_none(holder.get("expires_at"))
    if expires is None or now >= expires:
        return "expired"
    return "live"


def decide(holder: dict[str, Any], state: str, status: str | None, claim: Claim) -> LeaseDecision:
    """What `claim` may do with a lease held by `holder`, whose state is `state` (holder_state)
    and whose run's journal says `status` (None: no journal). Pure."""
    run_id = holder.get("run_id", "?")
    who = describe_holder(holder, status)
    if state == "released":
        return LeaseDecision("take", f"the lease of run {run_id} was released")
    if run_id == claim.run_id:
        if not claim.resume:
            return LeaseDecision("refuse", f"run {run_id} already holds the lease: {who}")
        if state == "live" and status == "running" and claim.take_over and _just_taken_over(holder):
            return LeaseDecision(
                "refuse", f"run {run_id} was taken over moments ago by another session that is resuming "
                          f"it: {who}",
                hint="two resumes of one run never both go on; look at `dr runs show` for its progress, "
                     "and resume again only if that session dies too")
        if state == "live" and status == "running" and not claim.take_over:
            return LeaseDecision(
                "refuse", f"run {run_id} is still going on: {who}",
                hint=f"if that machine is gone, its lease expires at {holder.get('expires_at')} and "
                     f"--resume {run_id} then takes it over; or pass --take-over to take it now (if that "
                     "session is alive after all, it stops at its next renewal)")
        why = {"live": "taking over from a session that has not expired (--take-over)"
                       if status == "running" else f"its journal says it ended {status or 'before starting'}",
               "dead": "its process on this host is gone",
               "expired": f"its lease expired at {holder.get('expires_at')}"}[state]
        return LeaseDecision("take", f"taking over run {run_id} ({why}): {who}")
    if status == "completed":
        return LeaseDecision("take", f"run {run_id} completed without releasing its lease")
    if holder.get("drill") and not claim.drill:
        return LeaseDecision("preempt", f"a real {claim.kind} preempts drill {run_id}: {who}")
    if status is None and state in ("expired", "dead"):
        return LeaseDecision("take", f"run {run_id} died before writing its journal; nothing to resume")
    if state == "live" and status == "running":
        return LeaseDecision("refuse", f"another run is in progress: {who}",
                        hint=f"wait for it to finish; if its machine is gone, resume it with --resume {run_id} "
                             f"once its lease expires ({holder.get('expires_at')}), or with --take-over now")
    return LeaseDecision("refuse", f"run {run_id} did not finish: {who}",
                    hint=f"resume it with --resume {run_id} (it takes the lease over and adopts what that run "
                         "made instead of making it twice)")


def _just_taken_over(holder: dict[str, Any]) -> bool:
    """The holder took this run over from another session and has not renewed its lease yet:
    it is a resume that started moments ago (no clock is compared, so skew does not matter)."""
    return bool(holder.get("took_over")) and holder.get("renewed_at") == holder.get("acquired_at")


def describe_holder(holder: dict[str, Any], status: str | None) -> str:
    owner = holder.get("owner") or {}
    return (f"run {holder.get('run_id', '?')} (runbook {holder.get('runbook', '?')}, pid {owner.get('pid', '?')} "
            f"on {owner.get('host', '?')}, lease renewed {holder.get('renewed_at', '?')}, expires "
            f"{holder.get('expires_at', '?')}; its journal says {status or 'nothing yet'})")


# --- the lease ------------------------------------------------------------------------------------


class Lease:
    """A held lease. `acquire`, then `start_heartbeat(on_lost)`, then `release()`."""

    def __init__(self, store: StateStore, key: str, doc: dict[str, Any], version: str, clock: Clock,
                 ttl: float, log: Callable[[str], None], preempted: dict[str, Any] | None = None):
        self.store, self.key, self.doc, self.version = store, key, doc, version
        self.clock, self.ttl, self.log = clock, ttl, log
        self.preempted = preempted          # the drill this run preempted: {run_id, kind, state}
        self.lost: str | None = None        # why the lease is not ours any more
        self._stop = threading.Event()
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None

    @classmethod
    def acquire(cls, store: StateStore, name: str, claim: Claim, clock: Clock, *,
                journal_status: Callable[[str], str | None], ttl: float | None = None,
                log: Callable[[str], None] = lambda m: None) -> Lease:
        key, ttl = lease_key(name), ttl or default_ttl()
        token = secrets.token_hex(8)
        first_seen: str | None = None  # the session --take-over was aimed at
        for _ in range(8):
            now = clock.now()
            found = store.get_json_versioned(key)
            doc = _document(name, claim, token, now, ttl, history=[])
            if found is None:
                version = store.put_json_if(key, doc, None)
                if version is not None:
                    return cls(store, key, doc, version, clock, ttl, log)
                continue  # someone created it in between: look again
            holder, version = found
            session = (holder.get("owner") or {}).get("session")
            first_seen = first_seen or session
            state = holder_state(holder, now, socket.gethostname(), _pid_alive)
            status = journal_status(holder.get("run_id", "")) if state != "released" else None
            # --take-over takes the lease from the session it found, never from one that took it
            # while this one was deciding (two resumers racing: exactly one goes on)
            aimed = claim if session == first_seen else replace(claim, take_over=False)
            decision = decide(holder, state, status, aimed)
            if decision.action == "refuse":
                raise RunLocked(f"{decision.why}", holder=holder, hint=decision.hint)
            preempted = None
            if holder.get("run_id") == claim.run_id and state != "released":
                doc["took_over"] = {"session": session, "state": state}
            if decision.action == "preempt":
                preempted = {"run_id": holder.get("run_id"), "kind": holder.get("kind"), "state": state,
                             "host": (holder.get("owner") or {}).get("host"), "at": iso(now)}
                doc["preempted"] = preempted
            doc["history"] = (list(holder.get("history") or []) + [{
                "run_id": holder.get("run_id"), "owner": holder.get("owner"), "state": state,
                "ended": iso(now), "why": decision.why}])[-20:]
            new_version = store.put_json_if(key, doc, version)
            if new_version is None:
                continue  # it changed hands while we decided: decide again on what is there now
            if decision.action != "take" or state != "released":
                log(f"LEASE: {decision.why}")
            if preempted is not None:
                store.put_json(preemption_key(preempted["run_id"]),
                               {"run_id": preempted["run_id"], "by": claim.run_id, "by_kind": claim.kind,
                                "at": iso(now), "holder_state": state})
            return cls(store, key, doc, new_version, clock, ttl, log, preempted)
        raise OperationFailed(f"could not take the lease {key} in {store.description}: it keeps changing hands",
                              hint="another machine is starting or resuming runs on this stack; look at "
                                   "`dr runs list` and try again")

    # -- heartbeat ----------------------------------------------------------------------------

    def start_heartbeat(self, on_lost: Callable[[str, str], None]) -> None:
        """Renew every ttl/4 until released. `on_lost(reason, why)` is called once if the lease
        is lost: reason `preempted` (a failover took it from this drill), `taken-over` (another
        session of this run took it) or `expired` (it could not be renewed in time)."""
        def beat() -> None:
            while not self._stop.wait(self.ttl / 4):
                reason = self.renew()
                if reason is not None:
                    on_lost(*reason)
                    return

        self._thread = threading.Thread(target=beat, daemon=True, name="dr-lease")
        self._thread.start()

    def renew(self) -> tuple[str, str] | None:
        """One renewal; (reason, why) if the lease is lost, else None."""
        with self._mutex:
            if self.lost or self._stop.is_set():
                return None
            now = self.clock.now()
            doc = {**self.doc, "renewed_at": iso(now), "expires_at": iso(now + timedelta(seconds=self.ttl)),
                   "nonce": secrets.token_hex(4)}
            try:
                version = self.store.put_json_if(self.key, doc, self.version)
            except Exception as exc:  # noqa: BLE001 - the store is unreachable: retry until expiry
                expires = parse_iso_or_none(self.doc.get("expires_at"))
                if expires is not None and now + timedelta(seconds=self.ttl / 4) >= expires:
                    self.lost = f"the lease could not be renewed before it expired ({exc})"
                    return "expired", self.lost
                return None
            if version is not None:
                self.doc, self.version = doc, version
                return None
            current = self.store.get_json(self.key) or {}
            self.lost = _lost_to(current, self.doc["run_id"])
            return ("preempted" if (current.get("preempted") or {}).get("run_id") == self.doc["run_id"]
                    else "taken-over"), self.lost

    # -- release ------------------------------------------------------------------------------

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        with self._mutex:
            if self.lost:
                return
            now = iso(self.clock.now())
            doc = {**self.doc, "released_at": now, "expires_at": now}
            try:
                if self.store.put_json_if(self.key, doc, self.version) is None:
                    self.log(f"the lease {self.key} changed hands before it was released; left to its new holder")
            except Exception as exc:  # noqa: BLE001 - it expires on its own
                self.log(f"could not release the lease {self.key} ({exc}); it expires at {self.doc['expires_at']}")
            self.lost = "released"


def _document(name: str, claim: Claim, token: str, now: datetime, ttl: float,
              history: list) -> dict[str, Any]:
    return {"format": FORMAT, "lock": name, "run_id": claim.run_id, "runbook": claim.runbook,
            "kind": claim.kind, "drill": claim.drill,
            "owner": {"host": socket.gethostname(), "boot": _boot_id(), "pid": os.getpid(), "session": token},
            "acquired_at": iso(now), "renewed_at": iso(now),
            "expires_at": iso(now + timedelta(seconds=ttl)), "ttl_seconds": ttl,
            "released_at": None, "preempted": None, "took_over": None, "history": history,
            "nonce": secrets.token_hex(4)}


def _lost_to(current: dict[str, Any], run_id: str) -> str:
    owner = current.get("owner") or {}
    where = f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}"
    if (current.get("preempted") or {}).get("run_id") == run_id:
        return f"preempted by {current.get('kind', 'a run')} {current.get('run_id', '?')} ({where})"
    if current.get("run_id") == run_id:
        return f"another session of this run took the lease over ({where})"
    return f"the lease now belongs to run {current.get('run_id', '?')} ({where})"


def _boot_id() -> str:
    """This machine's boot: a pid is only comparable on the same host in the same boot (two
    containers may share a host name; a rebooted machine reuses pids)."""
    try:
        return open("/proc/sys/kernel/random/boot_id").read().strip()
    except OSError:
        return ""


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


def was_preempted(store: StateStore, run_id: str) -> dict[str, Any] | None:
    """The preemption marker a failover left for this drill, if any."""
    return store.get_json(preemption_key(run_id))
