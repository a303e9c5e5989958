"""The swap's journal on the server, and finishing or rolling back a swap from it (swap.py).

A swap journals each phase in a database of its own (`journal_db(target)`) before doing it, so
a crash of dr or of the server at any moment leaves what `SwapJournal.settle` needs to finish
the swap (every new table already in place) or roll it back exactly.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import pymysql

from dr.mysql import objects as obj_ops
from dr.mysql.errors import RestoreError
from dr.mysql.schema import ObjectDef
from dr.mysql.sqltext import quote_ident as q

log = logging.getLogger("dr.mysql")

PREPARED, DROP_OLD_VIEWS, RENAME = "prepared", "drop-old-views", "rename"
DROP_OLD_ROUTINES, CREATE_NEW, COMMITTED = "drop-old-routines", "create-new", "committed"
PHASES = (PREPARED, DROP_OLD_VIEWS, RENAME, DROP_OLD_ROUTINES, CREATE_NEW, COMMITTED)
FINISHED, ROLLED_BACK = "finished", "rolled back"
JOURNAL_VERSION = 1

#: Tests set this to a callable(event) to stop the process at a given point: "phase:<phase>"
#: right after the phase is journaled, "step:<what>" right after a step of it is done.
hook: Callable[[str], None] | None = None


class SwapInterrupted(RestoreError):
    """A swap stopped half-way and could not be put back: the journal on the server says what
    was done; a rerun (or --resume) finishes or rolls it back."""


def journal_db(target: str) -> str:
    return f"{target[:40]}__dr_swap_{hashlib.sha1(target.encode('utf-8')).hexdigest()[:8]}"


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


# -- the journal -----------------------------------------------------------------------------


class SwapJournal:
    def __init__(self, conn, db: str, plan: dict, phase: str):
        self.conn = conn
        self.db = db
        self.plan = plan
        self.phase = phase

    @property
    def target(self) -> str:
        return self.plan["target"]

    @classmethod
    def load(cls, conn, target: str) -> SwapJournal | None:
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
    def begin(cls, conn, plan: dict) -> SwapJournal:
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


def _mark(event: str) -> None:
    if hook is not None:
        hook(event)


def _created(obj: ObjectDef) -> None:
    _mark(f"step:created {obj.kind} {obj.name}")
