"""The swap: a verified staging database becomes the target, journaled so that whatever stops it
(an error, Ctrl-C, kill -9 of dr, a crash of the server) is finished or undone exactly.

Phases, each recorded in the journal *before* it starts:

    prepared           the plan is journaled: the target's inventory, the definitions of its
                       views, triggers, routines and events (SHOW CREATE, with their DEFINER),
                       the new tables and objects (the latter as they will be created: with
                       their original DEFINER under --keep-definers, else without); nothing has
                       been changed yet
    drop-old-views     the target's triggers and views are dropped (a table with triggers cannot
                       move to another database, and views stay behind)
    rename             one atomic RENAME TABLE: target.* → `<target>__dr_old_<hex>`.*,
                       staging.* → target.*; then the column DEFAULTs that call a sequence
                       (`NEXTVAL(staging.seq)`: the server binds them to the database the table
                       was created in) are pointed at the same sequence in the target
    drop-old-routines  the target's routines and events are dropped
    create-new         the new routines, views, triggers and events are created one by one
    committed          the old tables' database and the staging database are dropped, then the
                       journal

Where the journal lives: on the server itself, in a schema of its own named after the target,
`<target[:40]>__dr_swap_<8 hex of SHA-1(target)>`, table `journal` (one row: the phase and the
plan as JSON). On the server, because that is what survives dr being killed, its machine being
lost, or the rerun happening on another machine (a runbook resumed elsewhere): whoever can
reach the target can see and finish the swap, and the journal can never describe another
server than the one it is on. InnoDB and autocommit make each phase record durable before the
DDL it announces. In its own schema rather than in the staging database, because the staging
database is dropped by both outcomes, because a rerun must find the journal from the target's
name alone, and because its existence is then the one atomic marker of "a swap into this
target is unfinished": CREATE DATABASE cannot succeed twice. A live swap also holds the named
lock `dr_swap_<SHA-1(target)>` (GET_LOCK, released by the server when the connection dies), so
a rerun tells a swap that is running from one whose process or server died.

Recovery (`recover()`: at the start of every restore into the target, and `--resume`):

* roll **forward** once the RENAME has happened (the phase is at least `rename` and the old
  tables are in the old-tables database, or the new tables have left the staging database):
  every new table is in place and verified, and what is left (repointing sequence defaults,
  dropping the old routines, creating the new objects from the journal, dropping the
  leftovers) needs nothing but the journal, not the backup. If a new object cannot be created,
  it rolls back instead.
* roll **back** before that: the target still holds all its tables; only the views and triggers
  dropped so far are re-created from their saved definitions.

Rolling back drops the new objects that exist, renames the new tables back to the staging
database and the old tables back into the target, re-creates every saved object that is
missing (with its original DEFINER: SHOW CREATE is the same as before), drops the staging and
old-tables databases (and the target, if the swap had created it and it is empty), then the
journal. Both directions look at what is on the server before each step, so they can
themselves be interrupted and rerun. The journal and both directions are in swap_journal.py.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
from collections.abc import Callable
from datetime import datetime, timezone

import pymysql

from dr.mysql import objects as obj_ops
from dr.mysql.errors import RestoreError, TargetNotEmpty
from dr.mysql.swap_journal import COMMITTED, JOURNAL_VERSION, Recovery, SwapInterrupted, SwapJournal

log = logging.getLogger("dr.mysql")

LOCK_WAIT = 10  # seconds a swap waits for another one into the same target


class SwapBusy(RestoreError):
    """Another restore is swapping into the same target right now."""


def lock_name(target: str) -> str:
    return f"dr_swap_{hashlib.sha1(target.encode('utf-8')).hexdigest()[:32]}"


# -- the swap --------------------------------------------------------------------------------


class Swap:
    """One staging database into its target. `connect()` opens a fresh connection (to roll back
    when `conn` broke)."""

    def __init__(self, conn, *, target: str, staging: str, schema: dict, force: bool,
                 connect: Callable[[], object] | None = None, note: dict | None = None):
        self.conn = conn
        self.connect = connect
        self.target = target
        self.staging = staging
        self.schema = schema
        self.force = force
        self.note = note or {}
        self.journal: SwapJournal | None = None
        self.recovered: Recovery | None = None

    def run(self) -> None:
        """Swap, or raise with the target as it was (RestoreError), or, when it cannot even be
        put back (the server went away), SwapInterrupted saying so and how to finish it."""
        _lock(self.conn, self.target, LOCK_WAIT)
        try:
            found = SwapJournal.load(self.conn, self.target)
            if found is not None:  # an earlier swap died (we hold its lock): settle it first
                self.recovered = _settle(found)
            plan = self._plan()
            self.journal = SwapJournal.begin(self.conn, plan)
        except BaseException:
            _unlock(self.conn, self.target)
            raise
        try:
            self.journal.forward()
        except BaseException as e:
            self._abort(e)  # raises unless only the leftovers were left to drop
        _unlock(self.conn, self.target)

    def _plan(self) -> dict:
        s = self.schema
        with self.conn.cursor() as cur:
            exists = obj_ops.database_exists(cur, self.target)
            inv = obj_ops.inventory(cur, self.target) if exists else obj_ops.Inventory()
        if not inv.empty and not self.force:  # it filled up since the preflight
            raise TargetNotEmpty(f"database {self.target} is no longer empty: nothing was "
                                 "restored", hint="run again with --force to replace it")
        saved = obj_ops.capture(self.conn, self.target, inv) if not inv.empty else []
        return {
            "version": JOURNAL_VERSION, "target": self.target, "staging": self.staging,
            "old_db": f"{self.target[:40]}__dr_old_{secrets.token_hex(4)}" if inv.tables
            else None,
            "created_target": not exists, "charset": s["charset"], "collation": s["collation"],
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "by": f"{socket.gethostname()} pid {os.getpid()}",
            "old": {"tables": inv.tables, "views": inv.views, "triggers": inv.triggers,
                    "routines": [list(r) for r in inv.routines], "events": inv.events},
            "saved": [o.to_dict() for o in saved],
            "new_tables": [t["name"] for t in s["tables"]],
            "new_objects": [o for key in ("routines", "views", "triggers", "events")
                            for o in s[key]],
            "note": self.note,
        }

    def _abort(self, e: BaseException) -> None:
        """Roll back after `e` and raise what to report; or, when `e` came while the
        committed swap's leftovers were dropped, finish that and return."""
        cause = _describe(e)
        j = self.journal
        try:
            conn = _working(self.conn, self.connect)
            if conn is not self.conn:
                _lock(conn, self.target, LOCK_WAIT)
            j.conn = conn
            j.reload()
            self.conn = conn
            if j.phase == COMMITTED:  # only leftovers were being dropped: finish
                j.forward()
                if not isinstance(e, Exception):
                    log.warning("interrupted after the swap into %s had committed: it is "
                                "complete", self.target)
                    raise e
                return
            j.backward()
            _unlock(conn, self.target)
        except Exception as again:  # noqa: BLE001 - say exactly where the target stands
            log.error("could not put %s back after a failed swap: %s", self.target, again)
            _unlock(j.conn, self.target)
            raise SwapInterrupted(
                f"{cause}: the swap into {self.target} stopped at phase {j.phase!r} and could "
                f"not be put back ({_describe(again)}); it is journaled on the server in "
                f"{j.db}: run the same restore again, or `dr restore mysql --resume` with the "
                f"same --to, to finish it (when every new table is in place) or roll it back",
                hint="nothing is lost: the old tables are in the target or in "
                     f"{j.plan.get('old_db') or 'the target'}, the new ones in the target or "
                     f"in {self.staging}") from None
        if not isinstance(e, Exception):  # Ctrl-C: stop as asked, saying where things are
            log.warning("interrupted during the swap into %s: it was rolled back, the target is "
                        "as it was", self.target)
            raise e
        if isinstance(e, obj_ops.ObjectCreateError):
            raise RestoreError(f"{e} (in {self.target}); the target was put back as it was",
                               hint="the object refers to something the target server lacks "
                                    "(another database, a plugin, a user)") from None
        raise RestoreError(f"{cause}; the swap into {self.target} was rolled back: the target "
                           "was put back as it was") from None


def recover(conn, target: str, *, wait: float = 0) -> Recovery | None:
    """Settle an unfinished swap into `target`: finish it when its RENAME has happened, else
    roll it back (see the module's docstring). None when there is none. Raises SwapBusy when a
    live restore holds the swap lock, SwapInterrupted when it cannot be settled now."""
    if SwapJournal.load(conn, target) is None:
        return None
    _lock(conn, target, wait)
    try:
        j = SwapJournal.load(conn, target)  # under the lock: it may have finished meanwhile
        return _settle(j) if j is not None else None
    finally:
        _unlock(conn, target)


def _settle(j: SwapJournal) -> Recovery:
    try:
        return j.settle()
    except RestoreError:
        raise
    except Exception as e:  # noqa: BLE001 - the journal stays: a later run tries again
        raise SwapInterrupted(
            f"an interrupted restore into {j.target} (phase {j.phase!r}, journal {j.db}) could "
            f"not be settled now: {_describe(e)}",
            hint="fix the cause and run again (or dr restore mysql --resume)") from None


# -- helpers ---------------------------------------------------------------------------------


def _lock(conn, target: str, wait: float) -> None:
    name = lock_name(target)
    with conn.cursor() as cur:
        cur.execute("SELECT GET_LOCK(%s, %s)", (name, wait))
        if cur.fetchone()[0] == 1:
            return
        cur.execute("SELECT IS_USED_LOCK(%s)", (name,))
        holder = cur.fetchone()[0]
        who = ""
        if holder is not None:
            cur.execute("SELECT HOST, TIME FROM information_schema.PROCESSLIST WHERE ID=%s",
                        (holder,))
            row = cur.fetchone()
            who = f" (connection {holder}" + (f" from {row[0]}, idle {row[1]}s" if row else "") \
                + ")"
    raise SwapBusy(f"another restore is swapping into {target} right now{who}: nothing was "
                   "changed", hint="wait for it; if that restore is dead but its connection is "
                                   f"not, end it (KILL {holder}) and run again" if holder
                   else "run again")


def _unlock(conn, target: str) -> None:
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT RELEASE_LOCK(%s)", (lock_name(target),))
    except Exception:  # noqa: BLE001 - a broken connection has released it anyway
        pass


def _working(conn, connect):
    """`conn` if it still answers, else a new connection."""
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        return conn
    except Exception:  # noqa: BLE001
        if connect is None:
            raise
        return connect()


def _describe(e: BaseException) -> str:
    if isinstance(e, pymysql.MySQLError) and len(e.args) > 1:
        return f"MySQL error {e.args[0]}: {e.args[1]}"
    return str(e) or type(e).__name__
