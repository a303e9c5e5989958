"""Restore a dr-mysql/1 stream: load into a staging database, verify, then swap into the target.

    stream ─▶ staging `<target>__dr_staging_<hex>`: tables created (big InnoDB tables without
              their secondary indexes), chunks loaded by `threads` connections (load.py);
              each table, once its last chunk is in, gets its indexes and a CHECKSUM TABLE
              (or its content hash, see below); sequences get their row from the backup
           ─▶ end frame and manifest read: row counts, checksums and sequences compared with
              the manifest
           ─▶ swap (swap.py, journaled): one atomic RENAME TABLE staging.* → target.*,
              sequence defaults repointed, then routines, views, triggers, events created in
              the target ─▶ staging dropped

Until the swap the target is untouched: a stream that fails (an authentication error raised by
read(), truncation, damage), an SQL error or a verification mismatch drops the staging database
and raises. The swap is journaled on the server (swap.py): a failure during it puts the target
back as it was, and a swap interrupted by a crash (of dr or of the server) is finished or
rolled back exactly by the next restore into the same target, or by `resume()`, before
anything else happens.

How the content is checked: row counts always; CHECKSUM TABLE against the manifest when both
servers are of the same family and major.minor version; otherwise (another version: the normal
DR case, 10.6 → 10.11 or MySQL → MariaDB) the content hash of content.py: the rows of the dump
stream against the loaded table, computed the same way on both sides. A check that cannot be
made is reported as not made (RestoreResult.check_summary), never as passed.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
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
from dr.mysql import swap
from dr.mysql.schema import ObjectDef, sequence_problems, write_sequence
from dr.mysql.swap import Recovery, Swap
from dr.mysql.sqltext import quote_ident

log = logging.getLogger("dr.mysql")

SYSTEM_DATABASES = {"mysql", "information_schema", "performance_schema", "sys"}
_PACKET_TOO_LARGE = 1153


#: How a table's content was compared with the backup (TableResult.method).
BY_CHECKSUM, BY_CONTENT, BY_ROWS = "checksum", "content", "rows"


@dataclass
class TableResult:
    database: str  # the target database
    table: str
    rows_expected: int
    rows_loaded: int
    checksum_expected: int | None
    checksum_actual: int | None
    # How the content was compared: "checksum": CHECKSUM TABLE (servers of one family and
    # major.minor version); "content": the content hash of the loaded table against that of the
    # backup's rows (content.py: other server versions, system-versioned tables); "rows": only
    # the row count (the backup has no comparable checksum); None: a sequence (compared by its
    # options and state instead)
    method: str | None = BY_CHECKSUM
    content_expected: int | None = None
    content_actual: int | None = None

    @property
    def ok(self) -> bool:
        if self.rows_expected != self.rows_loaded:
            return False
        if self.method == BY_CONTENT:
            return self.content_actual == self.content_expected
        if self.method == BY_CHECKSUM:
            return self.checksum_expected is None or self.checksum_actual == self.checksum_expected
        return True


@dataclass
class RestoreResult:
    databases: dict[str, str]  # source name → target name
    tables: list[TableResult]
    mismatches: list[str]  # only allowed ones (allow_mismatch): any other raises before the swap
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
    source_version: str = ""  # the dumped server's VERSION()
    target_version: str = ""  # this server's
    resumed: bool = False  # from the journal of a swap a crash had interrupted (resumed_result)

    @property
    def unverified(self) -> list[str]:
        """Tables whose content could not be compared with the backup (only their row count)."""
        return [t.table for t in self.tables if t.method == BY_ROWS]

    def check_summary(self) -> str:
        """What proved the restored tables equal to the backup, in words: never claims a
        comparison that was not made, nor a match for a mismatch that was allowed."""
        methods = [t.method for t in self.tables if t.method is not None and t.ok]
        n_sum, n_content = methods.count(BY_CHECKSUM), methods.count(BY_CONTENT)
        n_rows = len(methods) - n_sum - n_content
        why = (f"CHECKSUM TABLE is not comparable between {self.source_version} and "
               f"{self.target_version}" if not _comparable(self.source_version,
                                                           self.target_version)
               else "no CHECKSUM TABLE in the backup: system-versioned")
        if n_sum and not n_content and not n_rows:
            text = f"row counts and checksums match (CHECKSUM TABLE, {n_sum} tables)"
        elif n_content and not n_sum and not n_rows:
            text = f"row counts and content hashes match ({n_content} tables; {why})"
        else:
            parts = []
            if n_sum:
                parts.append(f"checksums match for {n_sum} (CHECKSUM TABLE)")
            if n_content:
                parts.append(f"content hashes match for {n_content} ({why})")
            if n_rows:
                parts.append(f"the content of {n_rows} was NOT compared (no comparable "
                             "checksum in the backup)")
            text = "row counts match" + "".join("; " + x for x in parts)
        n = len(self.allowed_mismatches)
        if n:
            text += f"; except {n} allowed mismatch{'es' if n != 1 else ''} (--allow-mismatch)"
        return text


def restore(stream: BinaryIO, spec: ConnectionSpec, *, target_db: str | None = None,
            source_db: str | None = None, force: bool = False, threads: int = 2,
            verify_checksums: bool = True, allow_mismatch: bool | Collection[str] = False,
            use_load_data: bool | None = None, clock: Clock | None = None,
            keep_definers: bool = False, timeouts: Timeouts | None = None,
            label: dict | None = None) -> RestoreResult:
    """Restore the dump read from `stream` to the server at `spec`.

    `source_db` picks one database of a multi-database dump; `target_db` renames it (default:
    its own name). The target must be missing or empty unless `force` (it is then replaced).
    Row counts and CHECKSUM TABLE (or, across server versions, the content hash), and each
    sequence's options and state, are compared with the backup before the swap; a mismatch
    raises VerificationFailed (the target is left as it was) unless `allow_mismatch`: True
    allows every mismatch, a collection of table names (`TABLE`, or `DB.TABLE` with the source
    or target database) only those tables' (each must be in the backup); the swap goes ahead
    only if every mismatch is allowed, and `allowed_mismatches` lists them.
    Objects are created with the restoring account as their definer, and a warning names each
    one that runs with its definer's privileges and so changed hands; `keep_definers` creates
    them with their original definers instead (needs SUPER or SET USER).
    Chunks are loaded with LOAD DATA LOCAL (from memory, never from a file) when the server
    allows it (`local_infile`), else with INSERT; `use_load_data` forces one or the other.
    Every connection's statements, reads and writes are bounded by `timeouts` (default
    `Timeouts()`: one hour per statement); the first loader error ends the restore.
    An unfinished swap into a target (a crash) is settled first (swap.recover: finished or
    rolled back; said in `warnings`). `label` (JSON-able, e.g. the backup's id) is kept in the
    swap journal with the verification result, so a caller can tell, after a crash, whether the
    swap that `resume()` finished was of the same backup.
    """
    job = _Restore(stream, spec, target_db, source_db, force, max(1, int(threads)),
                   verify_checksums, allow_mismatch, use_load_data, clock or Clock(),
                   keep_definers, timeouts if timeouts is not None else Timeouts())
    job.label = label
    return job.run()


def resume(spec: ConnectionSpec, target_db: str, *,
           timeouts: Timeouts | None = None) -> Recovery | None:
    """Settle an unfinished swap into `target_db` left by a crash: finish it when its RENAME
    had happened (every new table is in place), else roll it back (swap.py). None when there
    is none. The backup itself is not needed. Statements, reads and writes are bounded by
    `timeouts` (default `Timeouts()`)."""
    conn = connect(spec, timeouts=timeouts if timeouts is not None else Timeouts())
    try:
        return swap.recover(conn, target_db)
    except pymysql.MySQLError as e:
        raise query_error(spec, e, f"settling the unfinished restore into {target_db}") \
            from None
    finally:
        conn.close()


def resumed_result(recovery: Recovery) -> RestoreResult | None:
    """The RestoreResult of a restore whose swap `resume()` (or a rerun) finished, from what its
    journal recorded; None when it did not record one."""
    done = (recovery.note or {}).get("result")
    if recovery.outcome != swap.FINISHED or not done:
        return None
    try:
        tables = [TableResult(**t) for t in done["tables"]]
        mismatches = list(done.get("mismatches", []))  # a swap only ever has allowed ones
        return RestoreResult(
            databases=dict(done["databases"]), tables=tables, mismatches=mismatches,
            seconds=0.0, load_seconds=0.0, verify_seconds=0.0, swap_seconds=0.0, bytes_read=0,
            rows=sum(t.rows_loaded for t in tables), manifest=_parse_manifest(done["manifest"]),
            warnings=[recovery.describe()], allowed_mismatches=list(mismatches),
            source_version=done.get("source_version", ""),
            target_version=done.get("target_version", ""), resumed=True)
    except (KeyError, TypeError, ValueError, StreamFormatError):
        return None  # journaled by another dr version: the caller restores again


def verify(spec: ConnectionSpec, database: str, manifest_tables: Mapping[str, TableInfo], *,
           checksums: bool = True, source_version: str | None = None,
           timeouts: Timeouts | None = None) -> list[str]:
    """Compare `database`'s tables with a manifest: row counts, CHECKSUM TABLE, and each
    sequence's options and state. CHECKSUM TABLE is compared only when this server is of the
    family and major.minor version of `source_version` (the manifest's server_version; None:
    assumed so): across versions it differs for equal data, and only a restore (which has the
    rows of the dump stream) can compare content then. Returns the mismatches in words; []
    when everything matches. Statements, reads and writes are bounded by `timeouts` (default
    `Timeouts()`)."""
    conn = connect(spec, timeouts=timeouts if timeouts is not None else Timeouts())
    try:
        with conn.cursor() as cur:
            if not obj_ops.database_exists(cur, database):
                return [f"database {database} does not exist"]
            present = set(obj_ops.inventory(cur, database).tables)
            cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
                        "TABLE_SCHEMA=%s AND TABLE_TYPE='SEQUENCE'", (database,))
            sequences = {r[0] for r in cur.fetchall()}
            if source_version is not None:
                cur.execute("SELECT VERSION()")
                checksums = checksums and _comparable(source_version, cur.fetchone()[0])
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
        self.source_version = ""
        self.label: dict | None = None  # kept in the swap journal (restore())
        # _verify(): the results, the allowed mismatches as (plan, words), the manifest
        self.verified: tuple = ([], [], None)

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> RestoreResult:
        t0 = self.clock.monotonic()
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
            t_loaded = self.clock.monotonic()
            tables, mismatches = self._verify(manifest)
            t_verified = self.clock.monotonic()
            for p in self.plans:
                self._swap(p)
            t_swapped = self.clock.monotonic()
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
            mismatches=mismatches, seconds=self.clock.monotonic() - t0,
            load_seconds=t_loaded - t0, verify_seconds=t_verified - t_loaded,
            swap_seconds=t_swapped - t_verified, bytes_read=reader.bytes_read,
            rows=sum(t.rows_loaded for t in tables), manifest=manifest, started_at=started,
            finished_at=self.clock.now(), warnings=self.warnings,
            allowed_mismatches=self.allowed_mismatches, source_version=manifest.server_version,
            target_version=self._server_version())

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

    # -- loading -----------------------------------------------------------------------------

    def _load(self, reader: FrameReader) -> DumpManifest:
        tables = {tid: (p.staging, t) for p in self.plans for tid, t in p.tables.items()}
        self.loaders = Loaders(self.spec, self.threads, tables, self.use_load_data,
                               self.verify_checksums, self.timeouts,
                               content=self._content_tables())
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
        results, fatal = [], []
        target_version = self._server_version()
        comparable = _comparable(manifest.server_version, target_version)
        for p, tid, name, ti in jobs:
            r = TableResult(database=p.target, table=name, rows_expected=ti.rows,
                            rows_loaded=self.loaders.rows.get(tid, 0), checksum_expected=None,
                            checksum_actual=None, method=BY_ROWS)
            results.append(r)
            if r.rows_loaded != r.rows_expected:
                fatal.append((p, name, f"{p.source}.{name}: {r.rows_loaded} rows loaded, the "
                                       f"backup has {r.rows_expected}"))
            if p.tables[tid].get("kind") == "SEQUENCE":
                r.method = None  # no checksum: its options and state (_sequence_mismatches)
                continue
            if not self.verify_checksums:
                continue
            if comparable and ti.checksum is not None:
                r.method, r.checksum_expected = BY_CHECKSUM, ti.checksum
                r.checksum_actual = self.loaders.checks.get(tid)
                if r.checksum_actual is None and tid in self.loaders.contents:
                    r.checksum_actual = self._staging_checksum(p, name)
                if r.checksum_actual != ti.checksum:
                    fatal.append((p, name, f"{p.source}.{name}: checksum {r.checksum_actual}, "
                                           f"the backup has {ti.checksum}"))
            elif tid in self.loaders.contents:
                r.method = BY_CONTENT
                r.content_expected = self.loaders.streamed.get(tid, 0)
                r.content_actual = self.loaders.contents[tid]
                if r.content_actual != r.content_expected:
                    fatal.append((p, name, f"{p.source}.{name}: content hash "
                                           f"{r.content_actual}, the backup's rows have "
                                           f"{r.content_expected}"))
        fatal += self._sequence_mismatches(manifest)
        unverified = [r.table for r in results if r.method == BY_ROWS and self.verify_checksums]
        if unverified:
            self.warnings.append(
                f"only the row counts of {len(unverified)} table(s) were compared "
                f"({', '.join(unverified[:5])}{', ...' if len(unverified) > 5 else ''}): "
                "the backup has no checksum comparable on this server for them "
                f"({manifest.server_version} → {target_version})")
        allowed = [(p, m) for p, name, m in fatal if self._allowed(p, name)]
        refused = [m for p, name, m in fatal if not self._allowed(p, name)]
        self.allowed_mismatches = [m for _, m in allowed]
        self.verified = (results, allowed, manifest)
        if refused:
            raise VerificationFailed(
                f"the restored data does not match the backup ({len(refused)} mismatch"
                f"{'es' if len(refused) != 1 else ''}: {'; '.join(refused[:5])}): the target "
                "was left as it was", refused,
                hint=None if not allowed else
                f"{len(allowed)} other mismatch(es) were allowed")
        return results, list(self.allowed_mismatches)

    def _staging_checksum(self, p: _Plan, name: str) -> int | None:
        with self.coord.cursor() as cur:
            cur.execute(f"CHECKSUM TABLE {quote_ident(p.staging)}.{quote_ident(name)}")
            return cur.fetchone()[1]

    def _content_tables(self) -> set[int]:
        """The tables to check by content hash (content.py) instead of CHECKSUM TABLE: all of
        them when the dump's server (its header says) is of another family or major.minor
        version than this one (CHECKSUM TABLE is not comparable then); else those the dump has
        no CHECKSUM TABLE for (system-versioned tables). Never sequences."""
        other = not _comparable(self.source_version, self._server_version())
        return {tid for p in self.plans for tid, t in p.tables.items()
                if t.get("kind") != "SEQUENCE"
                and (other or t.get("kind") == "SYSTEM VERSIONED")}

    def _server_version(self) -> str:
        if not hasattr(self, "_version"):
            with self.coord.cursor() as cur:
                cur.execute("SELECT VERSION()")
                self._version = cur.fetchone()[0]
        return self._version

    # -- swap --------------------------------------------------------------------------------

    def _swap(self, p: _Plan) -> None:
        """Swap p's staging database in, journaled (swap.py). With the verification result
        in the journal, a crash after the RENAME leaves a swap that a rerun finishes and can
        report as this restore."""
        done = [asdict(r) for r in self.verified[0] if r.database == p.target]
        note = {"label": self.label, "result": {
            "databases": {p.source: p.target}, "tables": done,
            "mismatches": [m for q, m in self.verified[1] if q is p],
            "manifest": self.verified[2].to_dict(), "source_version": self.source_version,
            "target_version": self._server_version()}}
        move = Swap(self.coord, target=p.target, staging=p.staging, schema=p.schema,
                    force=self.force, note=note,
                    connect=lambda: connect(self.spec, timeouts=self.timeouts))
        try:
            move.run()
        except swap.SwapInterrupted:
            # the journal holds the staging database now: a rerun finishes or rolls back
            self.staging_made = [db for db in self.staging_made if db != p.staging]
            raise
        finally:
            self.coord = move.conn  # a new connection if the old one broke
        if move.recovered is not None:
            self.warnings.append(move.recovered.describe())

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
