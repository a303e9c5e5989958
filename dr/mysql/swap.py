"""The swap: a verified staging database becomes the target, or the target is put back.

    1. with force and a non-empty target: capture its views/triggers/routines/events, drop its
       triggers (a table with triggers cannot change database) and views;
    2. one atomic RENAME TABLE: target.* → `<target>__dr_old_<hex>`.*, staging.* → target.*;
    3. drop the old routines and events; create the new routines, views, triggers, events;
    4. drop the old tables' database.

`rollback()` undoes whatever of 1-3 happened: drops the new objects, renames the tables back,
recreates the captured objects (and drops a target database it had created).
"""

from __future__ import annotations

import secrets

from dr.mysql import objects as obj_ops
from dr.mysql.errors import RestoreError, TargetNotEmpty
from dr.mysql.schema import ObjectDef
from dr.mysql.sqltext import quote_ident as q


class Swap:
    def __init__(self, conn, *, target: str, staging: str, schema: dict, force: bool):
        self.conn = conn
        self.target = target
        self.staging = staging
        self.schema = schema
        self.force = force
        self.created_target = False
        self.old_db: str | None = None
        self.saved: list[ObjectDef] = []  # the target's objects before, for a rollback
        self.renamed_old: list[str] = []
        self.renamed_new: list[str] = []
        self.created: list[tuple[str, str]] = []
        self.dropped_routines_events = False

    def run(self) -> None:
        conn, s = self.conn, self.schema
        with conn.cursor() as cur:
            if not obj_ops.database_exists(cur, self.target):
                cur.execute(f"CREATE DATABASE {q(self.target)} CHARACTER SET {s['charset']} "
                            f"COLLATE {s['collation']}")
                self.created_target = True
                inv = obj_ops.Inventory()
            else:
                inv = obj_ops.inventory(cur, self.target)
            if not inv.empty:
                if not self.force:  # it filled up since the preflight
                    raise TargetNotEmpty(f"database {self.target} is no longer empty: nothing "
                                         "was restored", hint="run again with --force to "
                                                              "replace it")
                self.saved = obj_ops.capture(conn, self.target, inv)
                for name in inv.triggers:
                    obj_ops.drop(cur, self.target, "TRIGGER", name)
                for name in inv.views:
                    obj_ops.drop(cur, self.target, "VIEW", name)
                if inv.tables:
                    self.old_db = f"{self.target[:40]}__dr_old_{secrets.token_hex(4)}"
                    cur.execute(f"CREATE DATABASE {q(self.old_db)}")
            pairs = [f"{q(self.target)}.{q(t)} TO {q(self.old_db)}.{q(t)}" for t in inv.tables]
            pairs += [f"{q(self.staging)}.{q(t['name'])} TO {q(self.target)}.{q(t['name'])}"
                      for t in s["tables"]]
            if pairs:
                cur.execute("RENAME TABLE " + ", ".join(pairs))
                self.renamed_old = list(inv.tables)
                self.renamed_new = [t["name"] for t in s["tables"]]
                obj_ops.retarget_sequence_defaults(cur, self.staging, self.target)
            for kind, name in inv.routines:
                obj_ops.drop(cur, self.target, kind, name)
            for name in inv.events:
                obj_ops.drop(cur, self.target, "EVENT", name)
            self.dropped_routines_events = True
        conn.select_db(self.target)
        new_objects = [ObjectDef.from_dict(o)
                       for key in ("routines", "views", "triggers", "events") for o in s[key]]
        try:
            obj_ops.create_all(conn, self.target, new_objects, self.created)
        except obj_ops.ObjectCreateError as e:
            raise RestoreError(f"{e} (in {self.target}); the target was put back as it was",
                               hint="the object refers to something the target server lacks "
                                    "(another database, a plugin, a user)") from None

    def drop_old(self) -> None:
        if self.old_db:
            with self.conn.cursor() as cur:
                cur.execute(f"DROP DATABASE {q(self.old_db)}")

    def rollback(self, conn) -> None:
        """Put the target back as it was before run() (on `conn`, a working connection)."""
        with conn.cursor() as cur:
            for kind, name in reversed(self.created):
                obj_ops.drop(cur, self.target, kind, name)
            pairs = [f"{q(self.target)}.{q(t)} TO {q(self.staging)}.{q(t)}"
                     for t in self.renamed_new]
            pairs += [f"{q(self.old_db)}.{q(t)} TO {q(self.target)}.{q(t)}"
                      for t in self.renamed_old]
            if pairs:
                cur.execute("RENAME TABLE " + ", ".join(pairs))
            saved = self.saved
            if not self.dropped_routines_events:  # only the views and triggers were dropped
                saved = [o for o in saved if o.kind in ("VIEW", "TRIGGER")]
            if saved:
                for o in saved:
                    obj_ops.drop(cur, self.target, o.kind, o.name)
                conn.select_db(self.target)
                obj_ops.create_all(conn, self.target, saved, [])
            if self.old_db:
                cur.execute(f"DROP DATABASE IF EXISTS {q(self.old_db)}")
            if self.created_target:
                cur.execute(f"DROP DATABASE IF EXISTS {q(self.target)}")
