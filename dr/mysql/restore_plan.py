"""Before a restore loads anything: read the stream's head and schemas, map source tables to the
staging and target databases, check allowed mismatches and definers, and create the staging
database."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

import pymysql

from dr.identifiers import mysql_database_name_problem
from dr.mysql import indexes
from dr.mysql import objects as obj_ops
from dr.mysql import swap
from dr.mysql.errors import RestoreError, RestoreRefused, StreamFormatError, TargetNotEmpty
from dr.mysql.frames import HEAD, NAMES, SCHEMA, FrameReader, read_head, read_schema
from dr.mysql.manifest import FORMAT
from dr.mysql.schema import ObjectDef
from dr.mysql.sqltext import quote_ident

log = logging.getLogger("dr.mysql")

SYSTEM_DATABASES = {"mysql", "information_schema", "performance_schema", "sys"}


@dataclass
class DatabasePlan:
    source: str
    target: str
    staging: str
    schema: dict  # the SCHEMA frame
    tables: dict[int, dict] = field(default_factory=dict)  # id → table entry


class RestorePlanning:
    """The planning steps of a restore (mixed into restore._Restore, whose state it uses)."""

    # -- stream head -------------------------------------------------------------------------

    def _read_schemas(self, reader: FrameReader) -> tuple[dict, list[dict]]:
        kind, payload = next(reader, (None, b""))
        if kind != HEAD:
            raise StreamFormatError("the dump stream does not start with its header frame "
                                    f"(at byte {reader.offset}: {frame_name(kind)})")
        head = read_head(payload, reader.offset)
        if head.get("format") != FORMAT:
            raise StreamFormatError(f"unsupported dump format {head.get('format')!r}: this dr "
                                    f"reads {FORMAT}", hint="restore with the dr version that "
                                                            "made the backup")
        schemas = []
        for db in head["databases"]:
            kind, payload = next(reader, (None, b""))
            if kind != SCHEMA:
                raise StreamFormatError(
                    f"the dump stream is damaged: the schema frame of database {db} is missing "
                    f"(at byte {reader.offset}: {frame_name(kind)})",
                    hint="the backup is damaged; restore another one")
            schemas.append(read_schema(payload, reader.offset))
            if schemas[-1]["database"] != db:
                raise StreamFormatError(
                    f"the dump stream is damaged: the schema frame at byte {reader.offset} is "
                    f"of database {schemas[-1]['database']!r}, the header lists {db!r} there")
        ids = [t["id"] for s in schemas for t in s["tables"]]
        if len(set(ids)) != len(ids):
            raise StreamFormatError("the dump stream is damaged: two tables share an id")
        self.known_ids = set(ids)
        return head, schemas

    def _plan(self, head: dict, schemas: list[dict]) -> None:
        self.source_version = str(head.get("server_version") or "")
        names = [s["database"] for s in schemas]
        if self.source_db is not None:
            if self.source_db not in names:
                raise RestoreError(f"the backup has no database {self.source_db!r} "
                                   f"(it has {', '.join(names)})")
            chosen = [s for s in schemas if s["database"] == self.source_db]
        elif self.target_db is not None and len(schemas) > 1:
            raise RestoreError(f"the backup holds {len(schemas)} databases "
                               f"({', '.join(names)}): say which one to restore as "
                               f"{self.target_db}", hint="pass source_db")
        else:
            chosen = schemas
        targets = set()
        for s in chosen:
            target = self.target_db or s["database"]
            if target.lower() in SYSTEM_DATABASES:
                raise RestoreError(f"refusing to restore into the system database {target}")
            problem = mysql_database_name_problem(target)
            if problem is not None:
                raise RestoreError(f"{target!r} cannot be a database name: {problem}")
            if target in targets:
                raise RestoreError(f"two databases would be restored as {target}")
            targets.add(target)
            plan = DatabasePlan(source=s["database"], target=target,
                         staging=f"{target[:40]}__dr_staging_{secrets.token_hex(4)}", schema=s)
            for t in s["tables"]:
                plan.tables[t["id"]] = t
                self.by_id[t["id"]] = plan
            self.plans.append(plan)
        self._check_allowed_names()
        if self.keep_definers:
            for p in self.plans:
                for key in ("routines", "views", "triggers", "events"):
                    p.schema[key] = [obj_ops.with_definer(ObjectDef.from_dict(o)).to_dict()
                                     for o in p.schema.get(key, [])]

    # -- allowed mismatches and definers -----------------------------------------------------

    def _allowed(self, p: DatabasePlan, table: str) -> bool:
        if self.allow_mismatch is True:
            return True
        if not self.allow_mismatch or isinstance(self.allow_mismatch, (str, bytes)):
            return False
        return any(n in (table, f"{p.source}.{table}", f"{p.target}.{table}")
                   for n in self.allow_mismatch)

    def _check_allowed_names(self) -> None:
        """Each table named in allow_mismatch must be one this restore loads (a typo would
        otherwise allow nothing, and say nothing)."""
        if isinstance(self.allow_mismatch, bool) or not self.allow_mismatch:
            return
        if isinstance(self.allow_mismatch, (str, bytes)):
            raise TypeError("allow_mismatch takes True or a collection of table names")
        unknown = [n for n in self.allow_mismatch
                   if not any(n in (t["name"], f"{p.source}.{t['name']}",
                                    f"{p.target}.{t['name']}")
                              for p in self.plans for t in p.tables.values())]
        if unknown:
            names = sorted(t["name"] for p in self.plans for t in p.tables.values())
            known = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
            raise RestoreRefused(
                f"--allow-mismatch names {', '.join(unknown)}, which the backup does not hold "
                f"(its tables: {known or 'none'}): nothing was restored",
                hint="name a table as TABLE or DATABASE.TABLE")

    def _report_definers(self) -> None:
        """After the swap: warn about objects that run with their definer's privileges and
        changed definer (or whose kept definer does not exist here). Never fails the restore:
        it is done."""
        for p in self.plans:
            objects = [ObjectDef.from_dict(o) for key in ("routines", "views", "triggers",
                                                          "events")
                       for o in p.schema.get(key, [])]
            if not objects:
                continue
            try:
                with self._fresh_coord().cursor() as cur:
                    found = obj_ops.definer_report(cur, p.target, objects)
            except Exception as e:  # noqa: BLE001 - the restore is complete; say what is unknown
                found = [f"{p.target}: could not check the objects' definers: {e}"]
            for w in found:
                log.warning("%s", w)
            self.warnings += found

    def _preflight(self) -> None:
        for p in self.plans:  # a swap into the target that a crash interrupted: settle it
            recovered = swap.recover(self.coord, p.target)
            if recovered is not None:
                self.warnings.append(recovered.describe())
        with self.coord.cursor() as cur:
            for p in self.plans:
                if not obj_ops.database_exists(cur, p.target):
                    continue
                inv = obj_ops.inventory(cur, p.target)
                if not inv.empty and not self.force:
                    raise TargetNotEmpty(
                        f"database {p.target} on {self.spec.address} is not empty "
                        f"({inv.describe()}): nothing was restored",
                        hint="restore to a new name (--to .../OTHER_DB), or replace it with "
                             "--force")

    def _create_staging(self) -> None:
        conn = self.coord
        with conn.cursor() as cur:
            cur.execute("SET SESSION foreign_key_checks=0, SESSION sql_mode=%s",
                        ("NO_AUTO_VALUE_ON_ZERO",))
            for p in self.plans:
                s = p.schema
                cur.execute(f"CREATE DATABASE {quote_ident(p.staging)} CHARACTER SET "
                            f"{s['charset']} COLLATE {s['collation']}")
                self.staging_made.append(p.staging)
                conn.select_db(p.staging)
                referenced = indexes.referenced_tables([t["create"] for t in s["tables"]])
                # sequences first: a column's DEFAULT may call NEXTVAL on one
                for t in sorted(s["tables"], key=lambda t: t.get("kind") != "SEQUENCE"):
                    create, t["deferred_indexes"] = indexes.plan(
                        t["create"], t.get("engine", ""), int(t.get("rows_estimate") or 0),
                        t["name"] in referenced)
                    try:
                        cur.execute(create.encode("utf-8", "surrogateescape"))
                    except pymysql.MySQLError as e:
                        raise RestoreError(
                            f"cannot create table {t['name']} of {p.source}: "
                            f"{e.args[1] if len(e.args) > 1 else e}; the target was left as it "
                            "was") from None
            cur.execute("SET SESSION foreign_key_checks=1, SESSION sql_mode=''")


def frame_name(kind: bytes | None) -> str:
    return "the stream ends there" if kind is None else f"a {NAMES[kind]} frame"
