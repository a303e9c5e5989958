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
themselves be interrupted and rerun.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pymysql

from dr.mysql import objects as obj_ops
from dr.mysql.errors import RestoreError, TargetNotEmpty
from dr.mysql.schema import ObjectDef
from dr.mysql.sqltext import quote_ident as q

log = logging.getLogger("dr.mysql")

PREPARED, DROP_OLD_VIEWS, RENAME = "prepared", "drop-old-views", "rename"
DROP_OLD_ROUTINES, CREATE_NEW, COMMITTED = "drop-old-routines", "create-new", "committed"
PHASES = (PREPARED, DROP_OLD_VIEWS, RENAME, DROP_OLD_ROUTINES, CREATE_NEW, COMMITTED)
FINISHED, ROLLED_BACK = "finished", "rolled back"
JOURNAL_VERSION = 1
LOCK_WAIT = 10  # seconds a swap waits for another one into the same target

#: Tests set this to a callable(event) to stop the process at a given point: "phase:<phase>"
#: right after the phase is journaled, "step:<what>" right after a step of it is done.
hook: Callable[[str], None] | None = None


class SwapInterrupted(RestoreError):
    """A swap stopped half-way and could not be put back: the journal on the server says what
    was done; a rerun (or --resume) finishes or rolls it back."""


class SwapBusy(RestoreError):
    """Another restore is swapping into the same target right now."""


def journal_db(target: str) -> str:
    return f"{target[:40]}__dr_swap_{hashlib.sha1(target.encode('utf-8')).hexdigest()[:8]}"


def lock_name(target: str) -> str:
    return f"dr_swap_{hashlib.sha1(target.encode('utf-8')).hexdigest()[:32]}"


@dataclass
class Recovery:
    """What `recover()` did with an unfinished swap."""

    target: str
    outcome: str  # FINISHED or ROLLED_BACK
    phase: str  # how far the interrupted swap had got
    started_at: str
    by: str  # "host pid N" of the process that had started it
    note: dict = field(default_factory=dict)  # what the caller journaled (backup, result)
    reason: str = ""  # why it was rolled back rather than finished

    def describe(self) -> str:
        head = (f"the restore into {self.target} interrupted at phase {self.phase!r} "
                f"(started {self.started_at} by {self.by})")
        if self.outcome == FINISHED:
            return (f"{head} was finished from its journal: every new table was already in "
                    f"place, so the rest was done and {self.target} now holds the restored "
                    "database")
        return (f"{head} was rolled back: {self.target} is exactly as it was before it"
                + (f" ({self.reason})" if self.reason else ""))


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
        self.journal: _Journal | None = None
        self.recovered: Recovery | None = None

    def run(self) -> None:
        """Swap, or raise with the target as it was (RestoreError), or, when it cannot even be
        put back (the server went away), SwapInterrupted saying so and how to finish it."""
        _lock(self.conn, self.target, LOCK_WAIT)
        try:
            found = _Journal.load(self.conn, self.target)
            if found is not None:  # an earlier swap died (we hold its lock): settle it first
                self.recovered = _settle(found)
            plan = self._plan()
            self.journal = _Journal.begin(self.conn, plan)
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
    if _Journal.load(conn, target) is None:
        return None
    _lock(conn, target, wait)
    try:
        j = _Journal.load(conn, target)  # under the lock: it may have finished meanwhile
        return _settle(j) if j is not None else None
    finally:
        _unlock(conn, target)


def _settle(j: _Journal) -> Recovery:
    try:
        return j.settle()
    except RestoreError:
        raise
    except Exception as e:  # noqa: BLE001 - the journal stays: a later run tries again
        raise SwapInterrupted(
            f"an interrupted restore into {j.target} (phase {j.phase!r}, journal {j.db}) could "
            f"not be settled now: {_describe(e)}",
            hint="fix the cause and run again (or dr restore mysql --resume)") from None


# -- the journal -----------------------------------------------------------------------------


class _Journal:
    def __init__(self, conn, db: str, plan: dict, phase: str):
        self.conn = conn
        self.db = db
        self.plan = plan
        self.phase = phase

    @property
    def target(self) -> str:
        return self.plan["target"]

    @classmethod
    def load(cls, conn, target: str) -> _Journal | None:
        db = journal_db(target)
        with conn.cursor() as cur:
            if not obj_ops.database_exists(cur, db):
                return None
            try:
                cur.execute(f"SELECT phase, plan FROM {q(db)}.journal WHERE id=1")
                row = cur.fetchone()
            except pymysql.MySQLError as e:
                if e.args and e.args[0] == 1146:  # no table: died before writing the plan
                    row = None
                else:
                    raise
        if row is None:
            return cls(conn, db, {"target": target, "empty": True}, PREPARED)
        plan = json.loads(row[1])
        if plan.get("version") != JOURNAL_VERSION or plan.get("target") != target:
            raise SwapInterrupted(f"{db} holds a swap journal this dr cannot read "
                                  f"(version {plan.get('version')!r})",
                                  hint="finish it with the dr version that started it")
        return cls(conn, db, plan, row[0])

    @classmethod
    def begin(cls, conn, plan: dict) -> _Journal:
        db = journal_db(plan["target"])
        j = cls(conn, db, plan, PREPARED)
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {q(db)} CHARACTER SET utf8mb4")
            cur.execute(f"CREATE TABLE {q(db)}.journal (id TINYINT PRIMARY KEY, "
                        "phase VARCHAR(32) NOT NULL, plan LONGBLOB NOT NULL, "
                        "updated TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) "
                        "ON UPDATE CURRENT_TIMESTAMP(6)) ENGINE=InnoDB")
            cur.execute(f"INSERT INTO {q(db)}.journal (id, phase, plan) VALUES (1, %s, %s)",
                        (PREPARED, json.dumps(plan).encode("ascii")))
        _mark(f"phase:{PREPARED}")
        return j

    def reload(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT phase FROM {q(self.db)}.journal WHERE id=1")
            row = cur.fetchone()
        if row is not None:
            self.phase = row[0]

    def record(self, phase: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute(f"UPDATE {q(self.db)}.journal SET phase=%s WHERE id=1", (phase,))
        self.phase = phase
        _mark(f"phase:{phase}")

    # -- recovery --------------------------------------------------------------------------

    def settle(self) -> Recovery:
        p = self.plan
        rec = Recovery(target=self.target, outcome=ROLLED_BACK, phase=self.phase,
                       started_at=p.get("started_at", "?"), by=p.get("by", "?"),
                       note=p.get("note") or {})
        if p.get("empty"):  # died between creating the journal and writing the plan
            with self.conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {q(self.db)}")
            rec.reason = "it had not started"
            return rec
        if self.phase == COMMITTED or (PHASES.index(self.phase) >= PHASES.index(RENAME)
                                       and self._renamed()):
            try:
                self.forward()
                rec.outcome = FINISHED
                return rec
            except obj_ops.ObjectCreateError as e:
                rec.reason = f"it could not be finished: {e}"
                log.warning("finishing the swap into %s failed (%s): rolling it back",
                            self.target, e)
        elif not rec.reason:
            rec.reason = "it stopped before its tables were swapped"
        self.backward()
        return rec

    # -- what is on the server ---------------------------------------------------------------

    def _tables(self, db: str | None) -> set[str]:
        if not db:
            return set()
        with self.conn.cursor() as cur:
            cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s "
                        "AND TABLE_TYPE <> 'VIEW'", (db,))
            return {r[0] for r in cur.fetchall()}

    def _renamed(self) -> bool:
        """Whether the RENAME TABLE has happened (it is atomic: all or nothing)."""
        p = self.plan
        old, new = p["old"]["tables"], p["new_tables"]
        if old:
            in_old = self._tables(p["old_db"]) & set(old)
            if in_old and len(in_old) != len(old):
                raise SwapInterrupted(f"only some of {self.target}'s old tables are in "
                                      f"{p['old_db']}: not touching it",
                                      hint="compare the two databases by hand")
            return bool(in_old)
        if not new:
            return True
        in_staging = self._tables(p["staging"]) & set(new)
        return not in_staging and set(new) <= self._tables(self.target)

    def _present(self) -> set[tuple[str, str]]:
        with self.conn.cursor() as cur:
            if not obj_ops.database_exists(cur, self.target):
                return set()
            inv = obj_ops.inventory(cur, self.target)
        return ({("VIEW", n) for n in inv.views} | {("TRIGGER", n) for n in inv.triggers}
                | {(k, n) for k, n in inv.routines} | {("EVENT", n) for n in inv.events})

    # -- forward -----------------------------------------------------------------------------

    def forward(self) -> None:
        """Do the phases from the journaled one on (each is idempotent), then drop the
        leftovers and the journal."""
        p, t = self.plan, self.target
        at = PHASES.index(self.phase)
        with self.conn.cursor() as cur:
            if at <= PHASES.index(DROP_OLD_VIEWS):
                if p["created_target"]:
                    cur.execute(f"CREATE DATABASE IF NOT EXISTS {q(t)} CHARACTER SET "
                                f"{p['charset']} COLLATE {p['collation']}")
                self.record(DROP_OLD_VIEWS)
                for name in p["old"]["triggers"]:
                    obj_ops.drop(cur, t, "TRIGGER", name)
                    _mark(f"step:dropped TRIGGER {name}")
                for name in p["old"]["views"]:
                    obj_ops.drop(cur, t, "VIEW", name)
                    _mark(f"step:dropped VIEW {name}")
            if at <= PHASES.index(RENAME):
                self.record(RENAME)
                if not self._renamed():
                    if p["old_db"]:
                        cur.execute(f"CREATE DATABASE IF NOT EXISTS {q(p['old_db'])}")
                    pairs = [f"{q(t)}.{q(n)} TO {q(p['old_db'])}.{q(n)}"
                             for n in p["old"]["tables"]]
                    pairs += [f"{q(p['staging'])}.{q(n)} TO {q(t)}.{q(n)}"
                              for n in p["new_tables"]]
                    if pairs:
                        cur.execute("RENAME TABLE " + ", ".join(pairs))
                    _mark("step:renamed")
                # idempotent (it looks for defaults still naming the staging database), so a
                # swap that died after the RENAME finishes it here
                if obj_ops.retarget_sequence_defaults(cur, p["staging"], t):
                    _mark("step:repointed sequence defaults")
            if at <= PHASES.index(DROP_OLD_ROUTINES):
                self.record(DROP_OLD_ROUTINES)
                for kind, name in p["old"]["routines"]:
                    obj_ops.drop(cur, t, kind, name)
                    _mark(f"step:dropped {kind} {name}")
                for name in p["old"]["events"]:
                    obj_ops.drop(cur, t, "EVENT", name)
                    _mark(f"step:dropped EVENT {name}")
            if at <= PHASES.index(CREATE_NEW):
                self.record(CREATE_NEW)
                present = self._present()  # after a crash: those made before it are ours
                todo = [ObjectDef.from_dict(o) for o in p["new_objects"]
                        if (o["kind"], o["name"]) not in present]
                if todo:
                    self.conn.select_db(t)
                    obj_ops.create_all(self.conn, t, todo, [], on_created=_created)
            self.record(COMMITTED)
            for db in (p["old_db"], p["staging"]):
                if db:
                    cur.execute(f"DROP DATABASE IF EXISTS {q(db)}")
                    _mark(f"step:dropped database {db}")
            cur.execute(f"DROP DATABASE IF EXISTS {q(self.db)}")

    # -- backward ----------------------------------------------------------------------------

    def backward(self) -> None:
        """Put the target back as the journal saw it before the swap, then drop the staging
        and old-tables databases and the journal."""
        p, t = self.plan, self.target
        at = PHASES.index(self.phase)
        if self.phase == COMMITTED:
            raise SwapInterrupted(f"the swap into {t} was committed: it cannot be rolled back")
        with self.conn.cursor() as cur:
            if at >= PHASES.index(RENAME) and self._renamed():
                if at >= PHASES.index(CREATE_NEW):
                    present = self._present()
                    for o in reversed(p["new_objects"]):
                        if (o["kind"], o["name"]) in present:
                            obj_ops.drop(cur, t, o["kind"], o["name"])
                cur.execute(f"CREATE DATABASE IF NOT EXISTS {q(p['staging'])}")
                pairs = [f"{q(t)}.{q(n)} TO {q(p['staging'])}.{q(n)}" for n in p["new_tables"]]
                pairs += [f"{q(p['old_db'])}.{q(n)} TO {q(t)}.{q(n)}"
                          for n in p["old"]["tables"]]
                if pairs:
                    cur.execute("RENAME TABLE " + ", ".join(pairs))
                _mark("step:renamed back")
            present = self._present()
            missing = [ObjectDef.from_dict(o) for o in p["saved"]
                       if (o["kind"], o["name"]) not in present]
            if missing:
                self.conn.select_db(t)
                obj_ops.create_all(self.conn, t, missing, [])
            if p["old_db"]:
                left = self._tables(p["old_db"])
                if left:
                    raise SwapInterrupted(f"{p['old_db']} still holds {', '.join(sorted(left))}"
                                          f" after {t} was put back: not dropping it")
                cur.execute(f"DROP DATABASE IF EXISTS {q(p['old_db'])}")
            cur.execute(f"DROP DATABASE IF EXISTS {q(p['staging'])}")
            if p["created_target"] and obj_ops.database_exists(cur, t) and \
                    obj_ops.inventory(cur, t).empty:
                cur.execute(f"DROP DATABASE {q(t)}")
            cur.execute(f"DROP DATABASE IF EXISTS {q(self.db)}")


# -- helpers ---------------------------------------------------------------------------------


def _mark(event: str) -> None:
    if hook is not None:
        hook(event)


def _created(obj: ObjectDef) -> None:
    _mark(f"step:created {obj.kind} {obj.name}")


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
