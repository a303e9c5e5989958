"""Consistent, parallel, server-formatted logical dump to a byte stream (FORMAT.md).

How a dump stays consistent:
* every worker connection reads from its own `START TRANSACTION WITH CONSISTENT SNAPSHOT`
  (REPEATABLE READ); with more than one worker, or any non-transactional (MyISAM/Aria) table,
  a coordinator connection holds a global read lock (FLUSH TABLES WITH READ LOCK; LOCK TABLES
  ... READ without the RELOAD privilege) only while the workers open their snapshots, read the
  schema, the binlog position and - if there are any - dump the non-transactional tables;
* with one worker and only InnoDB tables no lock is taken at all;
* worker 0 touches every table inside its transaction, so DDL cannot change a table under the
  dump (it waits until the dump ends, as with mysqldump --single-transaction).

How it is fast: the server formats rows (see chunks.py); Python only moves whole chunks of
a few MB from the socket to the output.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import BinaryIO

import pymysql
import pymysql.cursors

from dr import __version__
from dr.clock import Clock
from dr.mysql.chunks import Range, chunker_for
from dr.mysql.conn import ConnectionSpec, connect, query_error
from dr.errors import DrError
from dr.mysql.errors import DumpError
from dr.mysql.frames import DONE, HEAD, MANIFEST, ROWS, SCHEMA, FrameWriter
from dr.mysql.tasks import AsyncWriter, Scheduler, TableJob
from dr.mysql.manifest import BinlogPosition, DatabaseInfo, DumpManifest, TableInfo
from dr.mysql.schema import (
    DatabaseDef,
    existing_databases,
    is_access_denied,
    list_tables,
    read_database,
    table_to_dict,
)
from dr.mysql.sqltext import quote_ident

#: Restore sessions use this sql_mode for data, as mysqldump's output does.
RESTORE_SQL_MODE = "NO_AUTO_VALUE_ON_ZERO"
CHUNK_BYTES = 4 << 20
#: A GROUP_CONCAT result this long may be cut: the chunk is then streamed row by row instead.
#: Keeps every INSERT well under the default max_allowed_packet (16 MB) of the restoring server.
MAX_CHUNK_BYTES = 8 << 20


def dump(spec: ConnectionSpec, databases: Sequence[str], out: BinaryIO, *, threads: int = 2,
         clock: Clock | None = None, checksums: bool = True, chunk_bytes: int = CHUNK_BYTES,
         lock_timeout: float = 60) -> DumpManifest:
    """Dump `databases` from the server at `spec` to `out` (a binary writer) as one consistent
    snapshot; return the manifest (also written at the end of the stream).

    `threads` worker connections read in parallel; `chunk_bytes` is the target size of one
    chunk (one multi-row INSERT); `checksums` runs CHECKSUM TABLE per table in the snapshot (a
    restore compares them); `lock_timeout` bounds the wait for the brief read lock.

    Raises DumpError (or another MysqlError) on any failure; `out` then holds a partial stream
    without its end frame, which a restore rejects: discard it.
    """
    if not databases:
        raise DumpError("no database to dump", hint="list at least one database")
    if len(set(databases)) != len(databases):
        raise DumpError(f"a database is listed twice: {', '.join(databases)}")
    return _Dump(spec, list(databases), out, max(1, int(threads)), clock or Clock(), checksums,
                 chunk_bytes, lock_timeout).run()


class _Dump:
    def __init__(self, spec, databases, out, threads, clock, checksums, chunk_bytes,
                 lock_timeout):
        self.spec = spec
        self.databases = databases
        self.out = out
        self.threads = threads
        self.clock = clock
        self.checksums = checksums
        self.lock_timeout = lock_timeout
        self.warnings: list[str] = []
        self.failed = threading.Event()
        self.error: BaseException | None = None
        self.conns: list[pymysql.Connection] = []
        self.coord: pymysql.Connection | None = None
        self.writer: FrameWriter | None = None
        self.cap = MAX_CHUNK_BYTES  # GROUP_CONCAT limit: set from max_allowed_packet
        self.chunk_target = chunk_bytes

    # -- connections -------------------------------------------------------------------------

    def _session(self, conn) -> None:
        with conn.cursor() as cur:
            cur.execute(
                "SET SESSION sql_mode='', SESSION group_concat_max_len=%s, "
                "SESSION net_write_timeout=3600, SESSION net_read_timeout=3600, "
                "SESSION wait_timeout=86400, SESSION sql_quote_show_create=1, "
                "SESSION lock_wait_timeout=%s",
                (self.cap, max(1, int(self.lock_timeout))))
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            try:
                cur.execute("SET SESSION max_statement_time=0")  # MariaDB: no query time cap
            except pymysql.MySQLError:
                pass

    def _open(self, first: bool = False) -> pymysql.Connection:
        conn = connect(self.spec)
        try:
            if first:  # results (one chunk each) cannot exceed the server's max_allowed_packet
                with conn.cursor() as cur:
                    cur.execute("SELECT @@max_allowed_packet")
                    packet = int(cur.fetchone()[0])
                self.cap = max(64 << 10, min(MAX_CHUNK_BYTES, packet - (64 << 10)))
                self.chunk_target = max(16 << 10, min(self.chunk_target, self.cap // 2))
            self._session(conn)
        except pymysql.MySQLError as e:
            conn.close()
            raise query_error(self.spec, e, "setting up the dump session") from None
        return conn

    def _close_all(self) -> None:
        for conn in [self.coord, *self.conns]:
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001 - closing a broken connection
                    pass

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> DumpManifest:
        started = self.clock.now()
        t0 = time.monotonic()
        self.coord = self._open(first=True)
        try:
            return self._run(started, t0)
        except DrError:
            raise
        except (pymysql.MySQLError, OSError) as e:
            raise self._error(e, "dumping") from None
        finally:
            self._close_all()

    def _run(self, started, t0) -> DumpManifest:
        coord = self.coord
        with coord.cursor() as cur:
            cur.execute("SELECT VERSION(), @@log_bin")
            version, log_bin = cur.fetchone()
        present = existing_databases(coord, self.databases)
        missing = [db for db in self.databases if db not in present]
        if missing:
            raise DumpError(f"database {', '.join(missing)} does not exist on MySQL at "
                            f"{self.spec.address}", hint="check mysql[].databases")
        tables = list_tables(coord, self.databases)
        nontrans = [(db, t) for db, ts in tables.items() for t, (kind, engine) in ts.items()
                    if engine.lower() not in ("innodb", "xtradb", "rocksdb", "tokudb")
                    and kind != "SEQUENCE"]
        locking = bool(nontrans) or self.threads > 1
        lock_kind, why = self._lock(tables, may_skip=not nontrans) if locking else (None, "")
        if locking and lock_kind is None:
            if self.threads > 1:
                self.warnings.append(f"{why}: dumped with one connection")
                self.threads = 1
            if nontrans:
                self.warnings.append(
                    f"{why}: non-transactional tables "
                    f"({', '.join(f'{d}.{t}' for d, t in nontrans[:5])}) may be inconsistent")
        for _ in range(self.threads):
            self.conns.append(self._open())
        for conn in self.conns:
            self._start_snapshot(conn)
        w0 = self.conns[0]
        binlog = self._binlog(w0, lock_kind) if log_bin else None
        defs: list[DatabaseDef] = []
        for db in self.databases:
            try:
                defs.append(read_database(w0, db))
            except PermissionError as e:
                raise DumpError(f"cannot read the definition of {e}: the account lacks the "
                                "privilege", hint="grant SHOW CREATE ROUTINE (MariaDB ≥ 10.11) "
                                                  "or SELECT on mysql.proc") from None
            except pymysql.MySQLError as e:
                raise query_error(self.spec, e, f"reading the schema of {db}") from None
        jobs = self._jobs(defs)
        with w0.cursor() as cur:  # hold a metadata lock on every table until the dump ends
            for job in jobs:
                cur.execute(f"SELECT 1 FROM {job.src} LIMIT 0")
        if lock_kind and not nontrans:
            self._unlock()
            lock_kind = None

        self.writer = writer = FrameWriter(self.out)
        writer.json(HEAD, {
            "format": "dr-mysql/1", "tool": f"dr {__version__}", "server_version": version,
            "source": self.spec.describe(), "started_at": started.isoformat(),
            "databases": self.databases,
            "session": {"time_zone": "+00:00", "sql_mode": RESTORE_SQL_MODE},
        })
        by_db: dict[str, list[TableJob]] = {}
        for job in jobs:
            by_db.setdefault(job.db, []).append(job)
        for d in defs:
            writer.json(SCHEMA, {
                "database": d.name, "charset": d.charset, "collation": d.collation,
                "tables": [table_to_dict(j.table, j.id) for j in by_db.get(d.name, [])],
                "views": [o.to_dict() for o in d.views],
                "triggers": [o.to_dict() for o in d.triggers],
                "routines": [o.to_dict() for o in d.routines],
                "events": [o.to_dict() for o in d.events],
            })
        self._run_workers(jobs, lock_kind is not None)

        finished = self.clock.now()
        manifest = DumpManifest(
            server_version=version, source=self.spec.describe(),
            databases={d.name: DatabaseInfo(
                charset=d.charset, collation=d.collation,
                tables={j.table.name: TableInfo(
                    rows=j.rows, checksum=j.checksum, bytes=j.bytes, engine=j.table.engine,
                    chunks=j.chunks, columns=len(j.table.data_columns), sequence=j.table.sequence)
                    for j in by_db.get(d.name, [])},
                views=[o.name for o in d.views], triggers=[o.name for o in d.triggers],
                routines=[f"{o.kind} {o.name}" for o in d.routines],
                events=[o.name for o in d.events]) for d in defs},
            binlog=binlog, started_at=started, finished_at=finished,
            seconds=time.monotonic() - t0, bytes_written=writer.bytes_written,
            consistency=self.consistency, threads=self.threads, warnings=self.warnings)
        writer.json(MANIFEST, manifest.to_dict())
        writer.end()
        for conn in self.conns:
            with conn.cursor() as cur:
                cur.execute("COMMIT")
        return manifest

    # -- consistency -------------------------------------------------------------------------

    consistency = "snapshot"

    def _lock(self, tables: dict[str, dict[str, tuple[str, str]]],
              may_skip: bool) -> tuple[str | None, str]:
        """(lock kind, or None and why not). Only InnoDB tables (`may_skip`): a lock that is
        not granted in time means one connection instead of a failed backup."""
        with self.coord.cursor() as cur:
            try:
                cur.execute("FLUSH TABLES WITH READ LOCK")
                self.consistency = "snapshot+ftwrl"
                return "ftwrl", ""
            except pymysql.MySQLError as e:
                if self._lock_timed_out(e, may_skip):
                    return None, self.timeout_reason
                if not is_access_denied(e):
                    raise query_error(self.spec, e, "taking the read lock") from None
            names = [f"{quote_ident(db)}.{quote_ident(t)} READ"
                     for db, ts in tables.items() for t in ts]
            if not names:
                return None, "no table to lock"
            try:
                cur.execute("LOCK TABLES " + ", ".join(names))
                self.consistency = "snapshot+lock-tables"
                return "lock-tables", ""
            except pymysql.MySQLError as e:
                if self._lock_timed_out(e, may_skip):
                    return None, self.timeout_reason
                if not is_access_denied(e):
                    raise query_error(self.spec, e, "taking the read lock") from None
        return None, "no privilege for a read lock (RELOAD or LOCK TABLES)"

    @property
    def timeout_reason(self) -> str:
        return f"the read lock was not granted within {self.lock_timeout:g}s (a long query?)"

    def _lock_timed_out(self, e: pymysql.MySQLError, may_skip: bool) -> bool:
        if not (e.args and e.args[0] == 1205):
            return False
        if may_skip:
            return True
        raise DumpError(f"could not take the read lock on MySQL at {self.spec.address} within "
                        f"{self.lock_timeout:g}s: a long query or DDL holds tables, and "
                        "non-transactional (MyISAM/Aria) tables need the lock",
                        hint="run again later, or raise the lock timeout") from None

    def _unlock(self) -> None:
        with self.coord.cursor() as cur:
            cur.execute("UNLOCK TABLES")

    def _start_snapshot(self, conn) -> None:
        with conn.cursor() as cur:
            try:
                cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            except pymysql.MySQLError:
                cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")

    def _binlog(self, conn, lock_kind: str | None) -> BinlogPosition | None:
        """The binlog position of the snapshot: MariaDB reports it per transaction
        (binlog_snapshot_*); otherwise SHOW MASTER STATUS under the lock."""
        with conn.cursor() as cur:
            cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
            status = {k.lower(): v for k, v in cur.fetchall()}
            file = status.get("binlog_snapshot_file")
            if file:
                pos = int(status.get("binlog_snapshot_position") or 0)
                gtid = None
                try:
                    cur.execute("SELECT BINLOG_GTID_POS(%s, %s)", (file, pos))
                    gtid = cur.fetchone()[0] or None
                except pymysql.MySQLError:
                    pass
                return BinlogPosition(file=file, position=pos, gtid=gtid)
        try:
            with self.coord.cursor() as cur:
                cur.execute("SHOW MASTER STATUS")
                row = cur.fetchone()
                names = [d[0].lower() for d in cur.description] if cur.description else []
        except pymysql.MySQLError as e:
            if is_access_denied(e):
                self.warnings.append("no privilege to read the binlog position "
                                     "(BINLOG MONITOR / REPLICATION CLIENT)")
                return None
            raise
        if not row:
            return None
        info = dict(zip(names, row))
        if lock_kind != "ftwrl":
            self.warnings.append("binlog position read without a global lock: approximate")
        return BinlogPosition(file=info.get("file"), position=int(info.get("position") or 0),
                              gtid=info.get("executed_gtid_set") or None)

    # -- the work ----------------------------------------------------------------------------

    def _jobs(self, defs: list[DatabaseDef]) -> list[TableJob]:
        jobs = []
        for d in defs:
            for t in d.tables:
                sequence = t.kind == "SEQUENCE"
                versioned = t.kind == "SYSTEM VERSIONED"
                if versioned:
                    self.warnings.append(f"{d.name}.{t.name} is system-versioned: only its "
                                         "current rows are dumped, not its history")
                chunker = chunker_for(t, self.chunk_target)
                if sequence:
                    chunker.done = True
                jobs.append(TableJob(len(jobs) + 1, d.name, t, chunker,
                                 self.checksums and not sequence and not versioned))
        return jobs

    def _run_workers(self, jobs: list[TableJob], locked: bool) -> None:
        self.output = AsyncWriter(self.writer)
        try:
            self._run_workers_writing(jobs, locked)
        except BaseException:
            try:
                self.output.close()
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
            raise
        self.output.close()

    def _run_workers_writing(self, jobs: list[TableJob], locked: bool) -> None:
        sched = Scheduler(jobs)
        workers = [threading.Thread(target=self._worker, args=(conn, sched), daemon=True,
                                    name=f"dr-dump-{i}") for i, conn in enumerate(self.conns)]
        for w in workers:
            w.start()
        try:
            if locked:
                while not sched.nontrans_done.wait(0.05):
                    if self.failed.is_set() or not any(w.is_alive() for w in workers):
                        break
                if not self.failed.is_set():
                    self._unlock()
            for w in workers:
                while w.is_alive():
                    w.join(0.2)
        except BaseException as e:  # Ctrl-C: stop the workers' queries, then go
            self._fail(e)
            raise
        if self.error is not None:
            raise self._error(self.error, "dumping")

    def _fail(self, e: BaseException) -> None:
        if self.failed.is_set():
            return
        self.error = e
        self.failed.set()
        try:  # stop the others' running queries so the failure is reported promptly
            with self.coord.cursor() as cur:
                for conn in self.conns:
                    if conn.open:
                        cur.execute(f"KILL QUERY {int(conn.thread_id())}")
        except Exception:  # noqa: BLE001 - the server may be gone; the workers will notice
            pass

    def _worker(self, conn, sched: Scheduler) -> None:
        try:
            with conn.cursor() as cur:
                while not self.failed.is_set():
                    task = sched.next(cur)
                    self._done_frames(sched)
                    if task is None:
                        return
                    kind, job, rng = task
                    try:
                        if kind == "checksum":
                            cur.execute(f"CHECKSUM TABLE {job.src}")
                            job.checksum = cur.fetchone()[1]
                        else:
                            self._chunk(conn, cur, job, rng)
                    except DrError:
                        raise
                    except Exception as e:  # noqa: BLE001 - pymysql, socket, struct errors
                        raise self._error(e, f"dumping {job.db}.{job.table.name}") from None
                    sched.finished(job)
                    self._done_frames(sched)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            self._fail(e)

    def _done_frames(self, sched: Scheduler) -> None:
        """Tell the restore a table is complete, so it can index and check it right away."""
        for job in sched.take_completed():
            self.output.put(DONE, {"id": job.id, "rows": job.rows, "checksum": job.checksum})

    def _error(self, e: BaseException, doing: str) -> DrError:
        if isinstance(e, DrError):
            return e
        err = query_error(self.spec, e, doing)
        return DumpError(err.message, hint=err.hint)

    def _emit(self, job: TableJob, data: bytes) -> None:
        self.output.put(ROWS, job.id, data)

    def _chunk(self, conn, cur, job: TableJob, rng: Range) -> None:
        if not job.table.key:
            return self._stream(conn, job, rng)
        conn.use_unicode = False  # the chunk is bytes (UTF-8 text and raw binary): no decoding
        try:
            cur.execute(b"SELECT COUNT(*), GROUP_CONCAT(" + job.row_sql + b" SEPARATOR ',') "
                        b"FROM " + (job.src + job.force_index).encode("utf-8") + b" WHERE " +
                        rng.where)
            rows, values = cur.fetchone()
            warnings = getattr(getattr(cur, "_result", None), "warning_count", 0)
        finally:
            conn.use_unicode = True
        if not rows:
            job.chunker.learned(rng, 0, 0)
            return
        if values is None or warnings or len(values) > self.cap - 4 or b"\x00" in values:
            # GROUP_CONCAT was cut (the chunk is too big for one INSERT) or a row is larger
            # than max_allowed_packet: this range goes row by row instead
            return self._stream(conn, job, rng)
        self._emit(job, values)
        job.add(rows, len(values))
        job.chunker.learned(rng, rows, len(values))

    def _stream(self, conn, job: TableJob, rng: Range) -> None:
        """Row by row (unbuffered): tables without a key, and chunks too big for one INSERT."""
        conn.use_unicode = False
        try:
            self._stream_rows(conn, job, rng)
        finally:
            conn.use_unicode = True

    def _stream_rows(self, conn, job: TableJob, rng: Range) -> None:
        total_rows = total_bytes = 0
        with conn.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(b"SELECT " + job.row_sql + b" FROM " + job.src.encode("utf-8") +
                        b" WHERE " + rng.where)
            batch: list[bytes] = []
            size = 0
            while True:
                rows = cur.fetchmany(1000)
                for (value,) in rows:
                    if value == b"\x00":
                        raise DumpError(
                            f"a row of {job.db}.{job.table.name} is larger than the server's "
                            "max_allowed_packet once written as SQL",
                            hint="raise max_allowed_packet (e.g. SET GLOBAL max_allowed_packet"
                                 "=1073741824) on this server and on the one you restore to")
                    batch.append(value)
                    size += len(value) + 1
                    if size >= self.chunk_target:
                        data = b",".join(batch)
                        self._emit(job, data)
                        job.add(len(batch), len(data))
                        total_rows += len(batch)
                        total_bytes += len(data)
                        batch, size = [], 0
                if not rows:
                    break
            if batch:
                data = b",".join(batch)
                self._emit(job, data)
                job.add(len(batch), len(data))
                total_rows += len(batch)
                total_bytes += len(data)
        job.chunker.learned(rng, total_rows, total_bytes)
