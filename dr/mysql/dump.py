"""Consistent, parallel, server-formatted logical dump to a byte stream (FORMAT.md).

How a dump stays consistent (FORMAT.md, "How a dump is consistent", says it for users):
* every worker connection reads from its own REPEATABLE READ snapshot and holds a shared
  metadata lock on every dumped table from a moment when no DDL can have slipped in after its
  snapshot opened: it takes them (one `SELECT ... LIMIT 0` statement, which reads nothing) in a
  plain transaction whose snapshot opens at a later read (one connection; MariaDB's BACKUP
  STAGE), or it opens `WITH CONSISTENT SNAPSHOT` and takes them under a lock that keeps DDL out
  (FLUSH TABLES WITH READ LOCK, LOCK TABLES). The schema is read after that, so schema, rows
  and CHECKSUM TABLE (a consistent read in the same transaction) describe one state, and DDL on
  a dumped table waits for the dump;
* several snapshots (or non-transactional tables) need commits (or writes) stopped while they
  open: MariaDB's BACKUP STAGE BLOCK_COMMIT (it waits for no running write), else FLUSH TABLES
  WITH READ LOCK, else LOCK TABLES ... READ; each is asked for with a short timeout
  (`lock_timeout`, so writers never queue behind it for longer), never while a long statement
  runs that it would have to wait for, and tried again a few times;
* when no lock can be had, an InnoDB-only dump goes on with one connection (still consistent);
  with non-transactional tables it fails, saying why.

The consistent start (locks, metadata locks, snapshots, binlog position) is in dump_consistency.py.

How it is fast: the server formats rows (see chunks.py); Python only moves whole chunks of
a few MB from the socket to the output.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from typing import BinaryIO

import pymysql
import pymysql.cursors

from dr import __version__
from dr.clock import Clock
from dr.mysql.chunks import Range, chunker_for
from dr.mysql.conn import ConnectionSpec, connect, query_error
from dr.mysql.dump_consistency import ConsistentStart
from dr.errors import DrError
from dr.mysql.errors import DumpError
from dr.mysql.frames import DONE, HEAD, MANIFEST, ROWS, SCHEMA, FrameWriter
from dr.mysql.tasks import AsyncWriter, TableJob, TaskQueue
from dr.mysql.manifest import DatabaseInfo, DumpManifest, TableInfo
from dr.mysql.schema import DatabaseDef, existing_databases, read_database, table_to_dict

log = logging.getLogger("dr.mysql")

#: Restore sessions use this sql_mode for data, as mysqldump's output does.
RESTORE_SQL_MODE = "NO_AUTO_VALUE_ON_ZERO"
CHUNK_BYTES = 4 << 20
#: A GROUP_CONCAT result this long may be cut: the chunk is then streamed row by row instead.
#: Keeps every INSERT well under the default max_allowed_packet (16 MB) of the restoring server.
MAX_CHUNK_BYTES = 8 << 20
#: How long the dump waits for a lock (and so how long writers may queue behind it), seconds.
DEFAULT_LOCK_TIMEOUT = 2.0


def dump(spec: ConnectionSpec, databases: Sequence[str], out: BinaryIO, *, threads: int = 2,
         clock: Clock | None = None, checksums: bool = True, chunk_bytes: int = CHUNK_BYTES,
         lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> DumpManifest:
    """Dump `databases` from the server at `spec` to `out` (a binary writer) as one consistent
    snapshot; return the manifest (also written at the end of the stream).

    `threads` worker connections read in parallel; `chunk_bytes` is the target size of one
    chunk (one multi-row INSERT); `checksums` runs CHECKSUM TABLE per table in the snapshot (a
    restore compares them); `lock_timeout` bounds each wait for a lock or a metadata lock at the
    start (writers may queue behind a read lock that waits, never longer than this); the start
    is tried dump_consistency.LOCK_ATTEMPTS times before the dump fails or goes on with one connection.

    Raises DumpError (or another MysqlError) on any failure; `out` then holds a partial stream
    without its end frame, which a restore rejects: discard it.
    """
    if not databases:
        raise DumpError("no database to dump", hint="list at least one database")
    if len(set(databases)) != len(databases):
        raise DumpError(f"a database is listed twice: {', '.join(databases)}")
    if not lock_timeout or lock_timeout <= 0:
        raise DumpError(f"lock_timeout must be > 0 seconds, got {lock_timeout!r}")
    return _Dump(spec, list(databases), out, max(1, int(threads)), clock or Clock(), checksums,
                 chunk_bytes, float(lock_timeout)).run()


class _Dump(ConsistentStart):
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
        self.held: str | None = None  # the lock still held (non-transactional tables)
        self.refused: set[str] = set()  # lock kinds the server or the account does not offer
        self.mariadb = False

    # -- connections -------------------------------------------------------------------------

    def _session(self, conn) -> None:
        with conn.cursor() as cur:
            cur.execute(
                "SET SESSION sql_mode='', SESSION group_concat_max_len=%s, "
                "SESSION net_write_timeout=3600, SESSION net_read_timeout=3600, "
                "SESSION wait_timeout=86400, SESSION sql_quote_show_create=1, "
                "SESSION lock_wait_timeout=%s",
                (self.cap, max(1, math.ceil(self.lock_timeout))))
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
        t0 = self.clock.monotonic()
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
        self.mariadb = "mariadb" in str(version).lower()
        present = existing_databases(coord, self.databases)
        missing = [db for db in self.databases if db not in present]
        if missing:
            raise DumpError(f"database {', '.join(missing)} does not exist on MySQL at "
                            f"{self.spec.address}", hint="check mysql[].databases")
        for _ in range(self.threads):  # before any lock: connecting (TLS) takes a while
            self.conns.append(self._open())
        tables, binlog = self._start(bool(log_bin))
        w0 = self.conns[0]
        defs: list[DatabaseDef] = []
        for db in self.databases:  # every table is metadata-locked: its definition holds still
            try:
                defs.append(read_database(w0, db))
            except PermissionError as e:
                raise DumpError(f"cannot read the definition of {e}: the account lacks the "
                                "privilege", hint="grant SHOW CREATE ROUTINE (MariaDB ≥ 10.11) "
                                                  "or SELECT on mysql.proc") from None
            except pymysql.MySQLError as e:
                raise query_error(self.spec, e, f"reading the schema of {db}") from None
        read = {d.name: {t.name for t in d.tables} for d in defs}
        if read != {db: set(ts) for db, ts in tables.items()}:  # cannot happen: tables locked
            raise DumpError("the tables changed while the dump started (DDL got past the "
                            "metadata locks)", hint="run again")
        jobs = self._jobs(defs)
        columns = self._columns(coord)
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
        self._run_workers(jobs, self.held is not None)
        if self._columns(coord) != columns:  # a last check: DDL is locked out, so never
            raise DumpError("a dumped table's definition changed during the dump (DDL got past "
                            "the metadata locks): this dump would not restore", hint="run again")

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
            seconds=self.clock.monotonic() - t0, bytes_written=writer.bytes_written,
            consistency=self.consistency, threads=self.threads, warnings=self.warnings)
        writer.json(MANIFEST, manifest.to_dict())
        writer.end()
        for conn in self.conns:
            with conn.cursor() as cur:
                cur.execute("COMMIT")
        return manifest

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
        tasks = TaskQueue(jobs)
        workers = [threading.Thread(target=self._worker, args=(conn, tasks), daemon=True,
                                    name=f"dr-dump-{i}") for i, conn in enumerate(self.conns)]
        for w in workers:
            w.start()
        try:
            if locked:
                while not tasks.nontrans_done.wait(0.05):
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

    def _worker(self, conn, tasks: TaskQueue) -> None:
        try:
            with conn.cursor() as cur:
                while not self.failed.is_set():
                    task = tasks.next(cur)
                    self._done_frames(tasks)
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
                    tasks.finished(job)
                    self._done_frames(tasks)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            self._fail(e)

    def _done_frames(self, tasks: TaskQueue) -> None:
        """Tell the restore a table is complete, so it can index and check it right away."""
        for job in tasks.take_completed():
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
