"""Restore a dr-mysql/1 stream: load into a staging database, verify, then swap into the target.

    stream ─▶ staging `<target>__dr_staging_<hex>`: tables created (big InnoDB tables without
              their secondary indexes), chunks loaded by `threads` connections (load.py);
              each table, once its last chunk is in, gets its indexes and a CHECKSUM TABLE
           ─▶ end frame and manifest read: row counts and checksums compared with the manifest
           ─▶ swap (swap.py): one atomic RENAME TABLE staging.* → target.*, then routines,
              views, triggers, events created in the target ─▶ staging dropped

Until the swap the target is untouched: a stream that fails (an authentication error raised by
read(), truncation, damage), an SQL error or a verification mismatch drops the staging database
and raises. A failure during the swap puts the target back as it was.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

import pymysql

from dr.clock import Clock
from dr.errors import DrError
from dr.identifiers import mysql_database_name_problem
from dr.mysql import indexes
from dr.mysql import objects as obj_ops
from dr.mysql.conn import ConnectionSpec, Timeouts, connect, query_error
from dr.mysql.errors import (
    RestoreError,
    RestoreRefused,
    StreamFormatError,
    TargetNotEmpty,
    VerificationFailed,
)
from dr.mysql.frames import (
    DONE,
    END,
    HEAD,
    MANIFEST,
    NAMES,
    ROWS,
    SCHEMA,
    FrameReader,
    damaged,
    parse_json,
    read_done,
    read_head,
    read_schema,
    rows_table_id,
)
from dr.mysql.manifest import FORMAT, DumpManifest, TableInfo
from dr.mysql.load import Loaders
from dr.mysql.schema import ObjectDef, sequence_problems, write_sequence
from dr.mysql.swap import Swap
from dr.mysql.sqltext import quote_ident

log = logging.getLogger("dr.mysql")

SYSTEM_DATABASES = {"mysql", "information_schema", "performance_schema", "sys"}
_PACKET_TOO_LARGE = 1153


@dataclass
class TableResult:
    database: str  # the target database
    table: str
    rows_expected: int
    rows_loaded: int
    checksum_expected: int | None
    checksum_actual: int | None

    @property
    def ok(self) -> bool:
        return self.rows_expected == self.rows_loaded and (
            self.checksum_expected is None or self.checksum_actual == self.checksum_expected)


@dataclass
class RestoreResult:
    databases: dict[str, str]  # source name → target name
    tables: list[TableResult]
    mismatches: list[str]  # only non-fatal ones are left here (allow_mismatch, or checksums
    #                        between different server versions)
    seconds: float  # the measured RTO: first byte read → target ready
    load_seconds: float
    verify_seconds: float
    swap_seconds: float
    bytes_read: int
    rows: int
    manifest: DumpManifest
    started_at: datetime | None = None
    finished_at: datetime | None = None
    warnings: list[str] = field(default_factory=list)
    allowed_mismatches: list[str] = field(default_factory=list)  # the swap went ahead anyway


def restore(stream: BinaryIO, spec: ConnectionSpec, *, target_db: str | None = None,
            source_db: str | None = None, force: bool = False, threads: int = 2,
            verify_checksums: bool = True, allow_mismatch: bool | Collection[str] = False,
            use_load_data: bool | None = None, clock: Clock | None = None,
            keep_definers: bool = False, timeouts: Timeouts | None = None) -> RestoreResult:
    """Restore the dump read from `stream` to the server at `spec`.

    `source_db` picks one database of a multi-database dump; `target_db` renames it (default:
    its own name). The target must be missing or empty unless `force` (it is then replaced).
    Row counts and CHECKSUM TABLE are compared with the manifest before the swap; a mismatch
    raises VerificationFailed unless `allow_mismatch` (then it is listed in the result):
    True allows every mismatch, a collection of table names (`TABLE`, or `DB.TABLE` with the
    source or target database) only those tables' (each must be in the backup); the swap goes
    ahead only if every mismatch is allowed, and `allowed_mismatches` lists them.
    Objects are created with the restoring account as their definer, and a warning names each
    one that runs with its definer's privileges and so changed hands; `keep_definers` creates
    them with their original definers instead (needs SUPER or SET USER).
    Chunks are loaded with LOAD DATA LOCAL (from memory, never from a file) when the server
    allows it (`local_infile`), else with INSERT; `use_load_data` forces one or the other.
    Every connection's statements, reads and writes are bounded by `timeouts` (default
    `Timeouts()`: one hour per statement); the first loader error ends the restore.
    """
    return _Restore(stream, spec, target_db, source_db, force, max(1, int(threads)),
                    verify_checksums, allow_mismatch, use_load_data, clock or Clock(),
                    keep_definers, timeouts if timeouts is not None else Timeouts()).run()


def verify(spec: ConnectionSpec, database: str, manifest_tables: Mapping[str, TableInfo], *,
           checksums: bool = True, timeouts: Timeouts | None = None) -> list[str]:
    """Compare `database`'s tables with a manifest: row counts and CHECKSUM TABLE.
    Returns the mismatches in words; [] when everything matches. Statements, reads and writes
    are bounded by `timeouts` (default `Timeouts()`)."""
    conn = connect(spec, timeouts=timeouts if timeouts is not None else Timeouts())
    try:
        with conn.cursor() as cur:
            if not obj_ops.database_exists(cur, database):
                return [f"database {database} does not exist"]
            present = set(obj_ops.inventory(cur, database).tables)
            cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
                        "TABLE_SCHEMA=%s AND TABLE_TYPE='SEQUENCE'", (database,))
            sequences = {r[0] for r in cur.fetchall()}
            problems = []
            for name, info in sorted(manifest_tables.items()):
                src = f"{quote_ident(database)}.{quote_ident(name)}"
                if name not in present:
                    problems.append(f"{database}.{name}: missing")
                    continue
                if name in sequences:  # no checksum: its row (options and state) instead
                    if info.sequence is not None:
                        problems += sequence_problems(cur, f"{database}.{name}", src,
                                                      info.sequence)
                    continue
                cur.execute(f"SELECT COUNT(*) FROM {src}")
                rows = cur.fetchone()[0]
                if rows != info.rows:
                    problems.append(f"{database}.{name}: {rows} rows, expected {info.rows}")
                if checksums and info.checksum is not None:
                    cur.execute(f"CHECKSUM TABLE {src}")
                    actual = cur.fetchone()[1]
                    if actual != info.checksum:
                        problems.append(f"{database}.{name}: checksum {actual}, expected "
                                        f"{info.checksum}")
            for name in sorted(present - set(manifest_tables)):
                problems.append(f"{database}.{name}: not in the backup")
            return problems
    except pymysql.MySQLError as e:
        raise query_error(spec, e, f"verifying {database}") from None
    finally:
        conn.close()


@dataclass
class _Plan:
    source: str
    target: str
    staging: str
    schema: dict  # the SCHEMA frame
    tables: dict[int, dict] = field(default_factory=dict)  # id → table entry


class _Restore:
    def __init__(self, stream, spec, target_db, source_db, force, threads, verify_checksums,
                 allow_mismatch, use_load_data, clock, keep_definers, timeouts):
        self.use_load_data = use_load_data
        self.keep_definers = keep_definers
        self.timeouts = timeouts
        self.allowed_mismatches: list[str] = []
        self.stream = stream
        self.spec = spec
        self.target_db = target_db
        self.source_db = source_db
        self.force = force
        self.threads = threads
        self.verify_checksums = verify_checksums
        self.allow_mismatch = allow_mismatch
        self.clock = clock
        self.plans: list[_Plan] = []
        self.by_id: dict[int, _Plan] = {}
        self.coord: pymysql.Connection | None = None
        self.loaders: Loaders | None = None
        self.warnings: list[str] = []
        self.staging_made: list[str] = []
        self.known_ids: set[int] = set()

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> RestoreResult:
        t0 = time.monotonic()
        started = self.clock.now()
        reader = None
        self.coord = connect(self.spec, timeouts=self.timeouts)
        try:  # like the loaders: the restore stays out of the binlog (when the account may)
            with self.coord.cursor() as cur:
                cur.execute("SET SESSION sql_log_bin=0")
        except pymysql.MySQLError:
            pass
        try:
            reader = self._reader()
            head, schemas = self._read_schemas(reader)
            self._plan(head, schemas)
            self._preflight()
            self._create_staging()
            manifest = self._load(reader)
            t_loaded = time.monotonic()
            tables, mismatches = self._verify(manifest)
            t_verified = time.monotonic()
            for p in self.plans:
                self._swap(p)
            t_swapped = time.monotonic()
            self._report_definers()
        except BaseException as e:
            self._cleanup()
            raise self._error(e) from (None if isinstance(e, DrError) else e)
        finally:
            if self.loaders is not None:
                self.loaders.close()
        self._cleanup()
        self.coord.close()
        return RestoreResult(
            databases={p.source: p.target for p in self.plans}, tables=tables,
            mismatches=mismatches, seconds=time.monotonic() - t0,
            load_seconds=t_loaded - t0, verify_seconds=t_verified - t_loaded,
            swap_seconds=t_swapped - t_verified, bytes_read=reader.bytes_read,
            rows=sum(t.rows_loaded for t in tables), manifest=manifest, started_at=started,
            finished_at=self.clock.now(), warnings=self.warnings,
            allowed_mismatches=self.allowed_mismatches)

    def _error(self, e: BaseException) -> BaseException:
        if isinstance(e, DrError) or not isinstance(e, Exception):
            return e  # DrErrors (e.g. the stream's IntegrityError) and Ctrl-C go out as they are
        if getattr(e, "_from_stream", False):
            return RestoreError(f"reading the dump stream failed: {type(e).__name__}: {e}; "
                                "the target was left as it was")
        if isinstance(e, (pymysql.MySQLError, OSError)):
            err = query_error(self.spec, e, "restoring")
            hint = err.hint
            if e.args and e.args[0] == _PACKET_TOO_LARGE:
                hint = ("a chunk or row is larger than this server's max_allowed_packet: raise "
                        "it (SET GLOBAL max_allowed_packet=1073741824) or enable local_infile")
            return RestoreError(err.message + ": the target was left as it was", hint=hint)
        return e  # a bug: let it show as what it is

    def _reader(self) -> FrameReader:
        return FrameReader(_GuardedStream(self.stream))

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
            plan = _Plan(source=s["database"], target=target,
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

    def _allowed(self, p: _Plan, table: str) -> bool:
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

    # -- loading -----------------------------------------------------------------------------

    def _load(self, reader: FrameReader) -> DumpManifest:
        tables = {tid: (p.staging, t) for p in self.plans for tid, t in p.tables.items()}
        self.loaders = Loaders(self.spec, self.threads, tables, self.use_load_data,
                               self.verify_checksums, self.timeouts)
        manifest_doc = None
        try:
            for kind, payload in reader:
                if manifest_doc is not None and kind != END:
                    raise damaged(kind, reader.offset, "comes after the manifest, where only "
                                                       "the end frame may")
                if kind == ROWS:
                    tid = rows_table_id(payload, reader.offset)
                    if tid in tables:
                        self.loaders.put(tid, payload)
                    elif tid not in self.known_ids:
                        raise damaged(kind, reader.offset, f"is for table id {tid}, which no "
                                                           "schema frame names")
                elif kind == DONE:
                    done = read_done(payload, reader.offset)
                    if done["id"] in tables:
                        self.loaders.finish_table(done["id"], done.get("checksum") is not None)
                    elif done["id"] not in self.known_ids:
                        raise damaged(kind, reader.offset, f"is for table id {done['id']}, "
                                                           "which no schema frame names")
                elif kind == MANIFEST:
                    manifest_doc = parse_json(kind, payload, reader.offset)
                    info = _parse_manifest(manifest_doc, reader.offset).databases
                    for tid, (_, t) in tables.items():  # any table without a DONE frame
                        p = self.by_id[tid]
                        ti = info.get(p.source).tables.get(t["name"]) if p.source in info \
                            else None
                        self.loaders.finish_table(tid, ti is not None and ti.checksum
                                                  is not None)
                elif kind == END:
                    pass
                else:
                    raise damaged(kind, reader.offset, "is out of place: the header and "
                                                       "schema frames come first, once")
            self.loaders.finish()
        except BaseException:
            self.loaders.abort()
            raise
        if manifest_doc is None:
            raise StreamFormatError("the dump stream has no manifest")
        manifest = _parse_manifest(manifest_doc)
        self._restore_sequences()
        return manifest

    # -- sequences ---------------------------------------------------------------------------

    def _restore_sequences(self) -> None:
        """Give each staged sequence its row from the backup: options, next value, round."""
        with self.coord.cursor() as cur:
            for p in self.plans:
                for t in p.tables.values():
                    state = t.get("sequence")
                    if state is None:
                        continue
                    src = f"{quote_ident(p.staging)}.{quote_ident(t['name'])}"
                    if isinstance(state, dict):
                        write_sequence(cur, src, state)
                        continue
                    # a backup of an older dr: the next value only, the options were not kept
                    cur.execute(f"SELECT SETVAL({src}, %s, 0)", (int(state),))
                    self.warnings.append(
                        f"sequence {p.source}.{t['name']}: this backup kept only its next value "
                        f"({int(state)}), not its options (INCREMENT, MINVALUE, MAXVALUE, CACHE, "
                        "CYCLE): it was restored with the server's defaults; check them")

    def _sequence_mismatches(self, manifest: DumpManifest) -> list[tuple[_Plan, str, str]]:
        """Each staged sequence compared with its row in the manifest (or the schema frame):
        (plan, table, mismatch in words)."""
        out: list[tuple[_Plan, str, str]] = []
        with self.coord.cursor() as cur:
            for p in self.plans:
                info = manifest.databases.get(p.source)
                for t in p.tables.values():
                    ti = info.tables.get(t["name"]) if info is not None else None
                    expected = ti.sequence if ti is not None else None
                    if expected is None and isinstance(t.get("sequence"), dict):
                        expected = t["sequence"]
                    if expected is None:
                        continue
                    out += [(p, t["name"], m) for m in sequence_problems(
                        cur, f"{p.source}.{t['name']}",
                        f"{quote_ident(p.staging)}.{quote_ident(t['name'])}", expected)]
        return out

    # -- verification ------------------------------------------------------------------------

    def _verify(self, manifest: DumpManifest) -> tuple[list[TableResult], list[str]]:
        jobs = []
        for p in self.plans:
            info = manifest.databases.get(p.source)
            if info is None:
                raise StreamFormatError(f"the manifest does not describe database {p.source}")
            for tid, t in p.tables.items():
                ti = info.tables.get(t["name"])
                if ti is None:
                    raise StreamFormatError(f"the manifest does not describe table "
                                            f"{p.source}.{t['name']}")
                jobs.append((p, tid, t["name"], ti))
        results, fatal, soft = [], [], []
        comparable = _comparable(manifest.server_version, self._server_version())
        for p, tid, name, ti in jobs:
            r = TableResult(database=p.target, table=name, rows_expected=ti.rows,
                            rows_loaded=self.loaders.rows.get(tid, 0),
                            checksum_expected=ti.checksum if self.verify_checksums else None,
                            checksum_actual=self.loaders.checks.get(tid))
            results.append(r)
            if r.rows_loaded != r.rows_expected:
                fatal.append((p, name, f"{p.source}.{name}: {r.rows_loaded} rows loaded, the "
                                       f"backup has {r.rows_expected}"))
            if r.checksum_expected is not None and r.checksum_actual != r.checksum_expected:
                msg = (f"{p.source}.{name}: checksum {r.checksum_actual}, the backup has "
                       f"{r.checksum_expected}")
                if comparable:
                    fatal.append((p, name, msg))
                else:
                    soft.append(msg)
        fatal += self._sequence_mismatches(manifest)
        self.allowed_mismatches = [m for p, name, m in fatal if self._allowed(p, name)]
        fatal = [m for p, name, m in fatal if not self._allowed(p, name)]
        if soft:
            self.warnings.append(f"CHECKSUM TABLE differs for {len(soft)} table(s), but the "
                                 f"servers differ ({manifest.server_version} → "
                                 f"{self._server_version()}), so checksums are not comparable")
        if fatal:
            raise VerificationFailed(
                f"the restored data does not match the backup ({len(fatal)} mismatch"
                f"{'es' if len(fatal) != 1 else ''}: {'; '.join(fatal[:5])}): the target was "
                "left as it was", fatal,
                hint=None if not self.allowed_mismatches else
                f"{len(self.allowed_mismatches)} other mismatch(es) were allowed")
        return results, self.allowed_mismatches + soft

    def _server_version(self) -> str:
        if not hasattr(self, "_version"):
            with self.coord.cursor() as cur:
                cur.execute("SELECT VERSION()")
                self._version = cur.fetchone()[0]
        return self._version

    # -- swap --------------------------------------------------------------------------------

    def _swap(self, p: _Plan) -> None:
        move = Swap(self.coord, target=p.target, staging=p.staging, schema=p.schema,
                    force=self.force)
        try:
            move.run()
        except BaseException:
            try:
                move.rollback(self._fresh_coord())
            except Exception as e:  # noqa: BLE001 - report it; the original error goes out
                log.error("could not fully put %s back after a failed swap: %s", p.target, e)
                self.warnings.append(f"rollback of {p.target} incomplete: {e}")
            raise
        move.drop_old()

    # -- cleanup -----------------------------------------------------------------------------

    def _fresh_coord(self) -> pymysql.Connection:
        try:
            with self.coord.cursor() as cur:
                cur.execute("SELECT 1")
            return self.coord
        except Exception:  # noqa: BLE001 - the connection broke: open another
            self.coord = connect(self.spec, timeouts=self.timeouts)
            return self.coord

    def _cleanup(self) -> None:
        """Drop the staging databases (after success or failure)."""
        if not self.staging_made:
            return
        try:
            conn = self._fresh_coord()
            with conn.cursor() as cur:
                for db in self.staging_made:
                    cur.execute(f"DROP DATABASE IF EXISTS {quote_ident(db)}")
            self.staging_made = []
        except Exception as e:  # noqa: BLE001 - the original error matters more
            log.error("could not drop the staging database(s) %s: %s",
                      ", ".join(self.staging_made), e)


def frame_name(kind: bytes | None) -> str:
    return "the stream ends there" if kind is None else f"a {NAMES[kind]} frame"


def _parse_manifest(doc: dict, offset: int | None = None) -> DumpManifest:
    try:
        return DumpManifest.from_dict(doc)
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        where = f" (its frame at byte {offset})" if offset is not None else ""
        what = f"{type(e).__name__} {e}" if isinstance(e, KeyError) else str(e)
        raise StreamFormatError(f"the dump's manifest is damaged{where}: {what}",
                                hint="the backup is damaged; restore another one") from None


class _GuardedStream:
    """Marks exceptions raised by the caller's stream, so they are not taken for SQL errors."""

    def __init__(self, stream):
        self._stream = stream

    def read(self, n: int = -1) -> bytes:
        try:
            return self._stream.read(n)
        except Exception as e:
            try:
                e._from_stream = True
            except AttributeError:
                pass
            raise


def _comparable(source_version: str, target_version: str) -> bool:
    """CHECKSUM TABLE is only comparable between servers of the same family and major.minor."""
    def key(v: str) -> tuple[str, str]:
        family = "mariadb" if "mariadb" in v.lower() else "mysql"
        return family, ".".join(v.split("-")[0].split(".")[:2])
    return key(source_version) == key(target_version)
