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
from dr.errors import DrError
from dr.mysql.errors import DumpError
from dr.mysql.frames import DONE, HEAD, MANIFEST, ROWS, SCHEMA, FrameWriter
from dr.mysql.tasks import AsyncWriter, TableJob, TaskQueue
from dr.mysql.manifest import BinlogPosition, DatabaseInfo, DumpManifest, TableInfo
from dr.mysql.schema import (
    TRANSACTIONAL_ENGINES,
    DatabaseDef,
    existing_databases,
    is_access_denied,
    list_tables,
    read_database,
    table_to_dict,
)
from dr.mysql.sqltext import quote_ident

log = logging.getLogger("dr.mysql")

#: Restore sessions use this sql_mode for data, as mysqldump's output does.
RESTORE_SQL_MODE = "NO_AUTO_VALUE_ON_ZERO"
CHUNK_BYTES = 4 << 20
#: A GROUP_CONCAT result this long may be cut: the chunk is then streamed row by row instead.
#: Keeps every INSERT well under the default max_allowed_packet (16 MB) of the restoring server.
MAX_CHUNK_BYTES = 8 << 20
#: How long the dump waits for a lock (and so how long writers may queue behind it), seconds.
DEFAULT_LOCK_TIMEOUT = 2.0
#: Tries to start consistently (lock, snapshots, metadata locks), and the pauses between them.
LOCK_ATTEMPTS = 3
LOCK_PAUSES = (1.0, 3.0)
#: MariaDB's BACKUP STAGE (10.4+) is used when the account may (RELOAD). Tests switch it off to
#: take the FLUSH TABLES WITH READ LOCK path that MySQL and older MariaDB servers take.
USE_BACKUP_STAGE = True

_ER_LOCK_WAIT_TIMEOUT = 1205
_ER_STATEMENT_TIMEOUT = 1969
_ER_NO_SUCH_TABLE = 1146
_ER_TABLE_DEF_CHANGED = 1412
_ER_PARSE_ERROR = 1064
_ER_QUERY_INTERRUPTED = 1317


def dump(spec: ConnectionSpec, databases: Sequence[str], out: BinaryIO, *, threads: int = 2,
         clock: Clock | None = None, checksums: bool = True, chunk_bytes: int = CHUNK_BYTES,
         lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> DumpManifest:
    """Dump `databases` from the server at `spec` to `out` (a binary writer) as one consistent
    snapshot; return the manifest (also written at the end of the stream).

    `threads` worker connections read in parallel; `chunk_bytes` is the target size of one
    chunk (one multi-row INSERT); `checksums` runs CHECKSUM TABLE per table in the snapshot (a
    restore compares them); `lock_timeout` bounds each wait for a lock or a metadata lock at the
    start (writers may queue behind a read lock that waits, never longer than this); the start
    is tried LOCK_ATTEMPTS times before the dump fails or goes on with one connection.

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


_LOCK_NAMES = {"backup-stage": "BACKUP STAGE", "ftwrl": "FLUSH TABLES WITH READ LOCK",
               "lock-tables": "LOCK TABLES ... READ"}


class _Busy(Exception):
    """This try at a consistent start met a conflict (a lock not granted in time, a long query,
    DDL on a dumped table): undo it and try again."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Refused(Exception):
    """The server or the account does not offer this kind of lock."""


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

    # -- consistency -------------------------------------------------------------------------
    #
    # The invariant: from before a worker's snapshot opens until the dump ends, nothing can
    # change a dumped table's definition, because a shared metadata lock on every dumped table
    # is held from before the snapshot, or taken while a lock that keeps DDL out is held.
    #
    # * MDL first (one connection, or BACKUP STAGE): each worker takes the metadata locks in a
    #   plain transaction (SELECT ... LIMIT 0: no snapshot yet), then BACKUP STAGE BLOCK_DDL /
    #   BLOCK_COMMIT if needed, then each worker's snapshot opens at its first read. BACKUP
    #   STAGE waits for no running write, and, unlike FLUSH TABLES WITH READ LOCK, not for an
    #   ALTER queued behind the dump's metadata locks.
    # * Lock first (FLUSH TABLES WITH READ LOCK, LOCK TABLES): the lock waits for running DDL,
    #   then every worker opens WITH CONSISTENT SNAPSHOT and takes the metadata locks under it.
    #
    # DDL on a dumped table then waits for the dump; the schema is read after.

    consistency = "snapshot"

    def _start(self, log_bin: bool) -> tuple[dict[str, dict[str, tuple[str, str]]],
                                              BinlogPosition | None]:
        """Open the workers' snapshots with every dumped table metadata-locked; return the
        tables and the snapshot's binlog position. Leaves `self.held` set when the lock must be
        held until the non-transactional tables are dumped."""
        reasons: list[str] = []
        nontrans: list[tuple[str, str]] = []
        if self.threads > 1 or self._nontrans(list_tables(self.coord, self.databases)):
            for attempt in range(LOCK_ATTEMPTS):
                self._pause(attempt)
                nontrans = self._nontrans(list_tables(self.coord, self.databases))  # advisory
                try:
                    started = self._start_locked(bool(nontrans), log_bin)
                except _Busy as b:
                    self._undo()
                    reasons.append(b.reason)
                    log.info("%s: locked start, try %d: %s", self.spec.address, attempt + 1,
                             b.reason)
                    continue
                if started is None:
                    reasons.append("no privilege for a read lock (RELOAD or LOCK TABLES)")
                    break
                return started
            why = reasons[-1]
            if nontrans:
                names = ", ".join(f"{d}.{t}" for d, t in nontrans[:5])
                raise DumpError(
                    f"could not lock MySQL at {self.spec.address} for a consistent dump "
                    f"({len(reasons)} tries, {self.lock_timeout:g}s each): {why}; the "
                    f"non-transactional (MyISAM/Aria) tables {names} need the lock",
                    hint="run again when the long statement has ended, raise "
                         "mysql[].lock_timeout, grant RELOAD, or convert the tables to InnoDB")
            self.warnings.append(f"{why}: dumped with one connection")
            self.threads = 1
            for conn in self.conns[1:]:
                conn.close()
            del self.conns[1:]
        reasons = []
        stage = log_bin and self._backup_stage_usable()  # for the exact binlog position
        for attempt in range(LOCK_ATTEMPTS):
            self._pause(attempt)
            try:
                return self._start_mdl_first(self.conns, "wanted" if stage else None, False,
                                             log_bin)
            except _Busy as b:
                self._undo()
                reasons.append(b.reason)
                log.info("%s: start, try %d: %s", self.spec.address, attempt + 1, b.reason)
        raise DumpError(f"could not open a consistent snapshot on MySQL at {self.spec.address} "
                        f"in {len(reasons)} tries: {'; '.join(reasons)}",
                        hint="DDL kept changing the dumped tables: run again later, or raise "
                             "mysql[].lock_timeout")

    def _backup_stage_usable(self) -> bool:
        return USE_BACKUP_STAGE and self.mariadb and "backup-stage" not in self.refused

    @staticmethod
    def _nontrans(tables) -> list[tuple[str, str]]:
        return [(db, t) for db, ts in tables.items() for t, (kind, engine) in ts.items()
                if engine.lower() not in TRANSACTIONAL_ENGINES and kind != "SEQUENCE"]

    def _pause(self, attempt: int) -> None:
        if attempt:
            self.clock.sleep(LOCK_PAUSES[min(attempt, len(LOCK_PAUSES)) - 1])

    def _undo(self) -> None:
        """After a failed try: end the workers' transactions and release any lock."""
        for conn in self.conns:
            try:
                with conn.cursor() as cur:
                    cur.execute("ROLLBACK")
            except pymysql.MySQLError:
                pass
        if self.held:
            self._unlock_quietly()

    def _start_locked(self, nontrans: bool, log_bin: bool):
        """Several snapshots, or non-transactional tables: under the first lock the server and
        the account offer. None when there is none."""
        if self._backup_stage_usable():
            try:
                return self._start_mdl_first(self.conns, "needed", nontrans, log_bin)
            except _Refused:
                self.refused.add("backup-stage")
                self._undo()
        for kind in ("ftwrl", "lock-tables"):
            if kind in self.refused:
                continue
            try:
                return self._start_under_lock(kind, nontrans, log_bin)
            except _Refused:
                self.refused.add(kind)
                self._undo()
        return None

    def _start_mdl_first(self, conns, stage: str | None, nontrans: bool, log_bin: bool):
        """Metadata locks first, in plain transactions; then BACKUP STAGE (`stage` "needed": a
        failure to get it is the try's failure; "wanted": only for the exact binlog position,
        so go on without it); then every snapshot opens at its worker's first read."""
        names = self._names()
        self._all_metadata_locks(conns, names)
        held = False
        if stage:
            try:
                self._lock("backup-stage", names)
                held = True
            except (_Busy, _Refused) as e:
                self._unlock_quietly()
                if stage == "needed":
                    raise
                if isinstance(e, _Refused):
                    self.refused.add("backup-stage")
        tables = self._engines(names, nontrans)
        if held and (len(conns) > 1 or log_bin):  # one moment for every snapshot: no commits
            self._stage("BLOCK_COMMIT")
        for conn in conns:
            self._open_snapshot(conn, tables)
        self._same_names(names)  # after the snapshots: a table created before them is caught
        binlog = self._binlog(conns[0], log_bin, exact=held, snapshot=False)
        self.consistency = "snapshot+backup-stage" if held else "snapshot"
        if held and not nontrans:
            self._unlock()
        return tables, binlog

    def _start_under_lock(self, kind: str, nontrans: bool, log_bin: bool):
        """FLUSH TABLES WITH READ LOCK or LOCK TABLES first (each waits for running DDL), then
        every worker's snapshot and metadata locks under it."""
        names = self._names()
        self._lock(kind, names)
        if kind == "ftwrl":  # DDL is blocked now: this list is the snapshot's
            names = self._names()
        for conn in self.conns:
            self._start_snapshot(conn)
            self._metadata_locks(conn, names)
        self._same_names(names)  # LOCK TABLES lets CREATE TABLE through
        tables = self._engines(names, nontrans)
        binlog = self._binlog(self.conns[0], log_bin, exact=kind == "ftwrl")
        self.consistency = f"snapshot+{kind}"
        if not nontrans:
            self._unlock()
        return tables, binlog

    def _names(self) -> dict[str, dict[str, str]]:
        """{db: {table: kind}}. Names and kinds only: information_schema skips (after
        lock_wait_timeout) a table it must open while DDL holds it, and names need no open."""
        marks = ",".join(["%s"] * len(self.databases))
        found: dict[str, dict[str, str]] = {db: {} for db in self.databases}
        with self.coord.cursor() as cur:
            cur.execute("SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM "
                        f"information_schema.TABLES WHERE TABLE_SCHEMA IN ({marks}) "
                        "AND TABLE_TYPE <> 'VIEW'", self.databases)
            for db, name, kind in cur.fetchall():
                found[db][name] = kind
        return found

    def _same_names(self, names) -> None:
        """No table was created, dropped or renamed since `names` was read."""
        if self._names() != names:
            raise _Busy("a table was created, dropped or renamed meanwhile")

    def _engines(self, names, nontrans: bool) -> dict[str, dict[str, tuple[str, str]]]:
        """The locked tables with their engines (information_schema can read them now); the
        start's mode assumed `nontrans` (a non-transactional table among them) rightly."""
        found = list_tables(self.coord, self.databases)
        tables = {db: {t: v for t, v in found.get(db, {}).items() if t in ts}
                  for db, ts in names.items()}
        if any(set(tables[db]) != set(ts) for db, ts in names.items()):
            raise _Busy("a table's definition could not be read")
        if bool(self._nontrans(tables)) != nontrans:
            raise _Busy("the set of non-transactional tables changed")
        return tables

    def _all_metadata_locks(self, conns, names) -> None:
        """Every worker takes the metadata locks in a new plain transaction, all at once (a DDL
        that queues between two workers' locks waits for the first and blocks the second). A
        worker still waiting once another holds every lock waits behind such a DDL for nothing:
        its wait is cut short, and the try fails at once instead of after lock_timeout (with
        that table's readers queued behind the DDL meanwhile)."""
        if len(conns) == 1:
            self._metadata_locks(conns[0], names, begin=True)
            return
        errors: list[BaseException] = []
        done: set[int] = set()

        def run(conn):
            try:
                self._metadata_locks(conn, names, begin=True)
                done.add(int(conn.thread_id()))
            except BaseException as e:  # noqa: BLE001 - re-raised below
                errors.append(e)

        threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in conns]
        for t in threads:
            t.start()
        ids = {int(c.thread_id()) for c in conns}
        while alive := [t for t in threads if t.is_alive()]:
            alive[0].join(0.02)
            if done and not errors:
                self._cut_futile_waits(ids - done)
        if errors:
            raise next((e for e in errors if not isinstance(e, _Busy)), errors[0])

    def _cut_futile_waits(self, ids: set[int]) -> None:
        with self.coord.cursor() as cur:
            cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE STATE = "
                        "'Waiting for table metadata lock'")
            for (pid,) in cur.fetchall():
                if int(pid) in ids:
                    cur.execute(f"KILL QUERY {int(pid)}")

    def _open_snapshot(self, conn, tables) -> None:
        """Open `conn`'s snapshot: the first read of a table of each transactional engine."""
        first: dict[str, tuple[str, str]] = {}
        for db, ts in tables.items():
            for t, (kind, engine) in ts.items():
                if kind != "SEQUENCE" and engine.lower() in TRANSACTIONAL_ENGINES:
                    first.setdefault(engine.lower(), (db, t))
        with conn.cursor() as cur:
            for db, t in first.values():
                cur.execute(f"SELECT 1 FROM {quote_ident(db)}.{quote_ident(t)} LIMIT 1")
                cur.fetchall()

    def _stage(self, stage: str) -> None:
        with self.coord.cursor() as cur:
            try:
                cur.execute(f"BACKUP STAGE {stage}")
            except pymysql.MySQLError as e:
                if e.args and e.args[0] in (_ER_LOCK_WAIT_TIMEOUT, _ER_STATEMENT_TIMEOUT):
                    raise _Busy(f"BACKUP STAGE {stage} was not granted within "
                                f"{self.lock_timeout:g}s (a commit or DDL held it off)") from None
                raise query_error(self.spec, e, f"BACKUP STAGE {stage}") from None

    def _lock(self, kind: str, names) -> None:
        """Take `kind` on the coordinator within lock_timeout, or raise _Busy / _Refused.
        BACKUP STAGE stops at BLOCK_DDL (DDL and non-transactional writes wait; InnoDB writes
        and commits go on: _stage("BLOCK_COMMIT") stops commits when needed)."""
        if kind in ("ftwrl", "lock-tables"):
            self._long_query_guard()
        tables = [f"{quote_ident(db)}.{quote_ident(t)} READ"
                  for db, ts in names.items() for t in ts]
        if kind == "backup-stage":
            steps = ["BACKUP STAGE START", "BACKUP STAGE BLOCK_DDL"]
        elif kind == "ftwrl":
            steps = ["FLUSH TABLES WITH READ LOCK"]
        elif tables:
            steps = ["LOCK TABLES " + ", ".join(tables)]
        else:
            raise _Refused()
        self.held = kind
        with self.coord.cursor() as cur:
            for sql in steps:
                try:
                    cur.execute(sql)
                except pymysql.MySQLError as e:
                    code = e.args[0] if e.args else None
                    if is_access_denied(e) or code == _ER_PARSE_ERROR:
                        self._unlock_quietly()
                        raise _Refused() from None
                    if code in (_ER_LOCK_WAIT_TIMEOUT, _ER_STATEMENT_TIMEOUT):
                        raise _Busy(f"{_LOCK_NAMES[kind]} was not granted within "
                                    f"{self.lock_timeout:g}s (a long statement or DDL holds "
                                    "it off)") from None
                    raise query_error(self.spec, e, f"taking {_LOCK_NAMES[kind]}") from None

    def _unlock_quietly(self) -> None:
        try:
            self._unlock()
        except pymysql.MySQLError:
            pass
        self.held = None

    def _long_query_guard(self) -> None:
        """Do not ask for a read lock while a statement has run long: the lock would wait for
        it, and every writer would queue behind the lock (mydumper's --long-query-guard). Only
        statements the account may see count (all of them with the PROCESS privilege)."""
        limit = min(1.0, self.lock_timeout / 2)
        ours = [int(c.thread_id()) for c in self.conns]
        with self.coord.cursor() as cur:
            try:
                cur.execute("SELECT ID, TIME_MS / 1000, LEFT(INFO, 60) FROM "
                            "information_schema.PROCESSLIST WHERE COMMAND IN ('Query','Execute') "
                            "AND ID <> CONNECTION_ID() AND TIME_MS >= %s", (limit * 1000,))
            except pymysql.MySQLError:  # MySQL: whole seconds only
                cur.execute("SELECT ID, TIME, LEFT(INFO, 60) FROM information_schema.PROCESSLIST "
                            "WHERE COMMAND IN ('Query','Execute') AND ID <> CONNECTION_ID() "
                            "AND TIME >= %s", (math.ceil(limit),))
            long = [r for r in cur.fetchall() if int(r[0]) not in ours]
        if long:
            pid, seconds, info = max(long, key=lambda r: float(r[1] or 0))
            raise _Busy(f"{len(long)} statement(s) running for over {limit:g}s would hold the "
                        f"read lock off (e.g. id {pid}, {float(seconds or 0):.1f}s: "
                        f"{(info or '').strip()!r})")

    def _unlock(self) -> None:
        kind, self.held = self.held, None
        with self.coord.cursor() as cur:
            cur.execute("BACKUP STAGE END" if kind == "backup-stage" else "UNLOCK TABLES")

    def _metadata_locks(self, conn, names, begin: bool = False) -> None:
        """A shared metadata lock on every table, held until the transaction ends (`begin`: in
        a new plain transaction, whose snapshot opens at its first read). One statement reading
        nothing (LIMIT 0): all the locks are granted before it could read anything."""
        parts = [f"(SELECT 1 FROM {quote_ident(db)}.{quote_ident(t)} LIMIT 0)"
                 for db, ts in names.items() for t in ts]
        with conn.cursor() as cur:
            if begin:
                cur.execute("START TRANSACTION READ ONLY")
            if not parts:
                return
            try:
                cur.execute(" UNION ALL ".join(parts))
                cur.fetchall()
            except pymysql.MySQLError as e:
                code = e.args[0] if e.args else None
                if code in (_ER_LOCK_WAIT_TIMEOUT, _ER_STATEMENT_TIMEOUT):
                    raise _Busy(f"the metadata locks were not granted within "
                                f"{self.lock_timeout:g}s (DDL on a dumped table)") from None
                if code == _ER_QUERY_INTERRUPTED:
                    raise _Busy("DDL on a dumped table queued between the workers' metadata "
                                "locks") from None
                if code in (_ER_NO_SUCH_TABLE, _ER_TABLE_DEF_CHANGED):
                    raise _Busy(f"a table changed meanwhile ({e.args[1]})") from None
                raise query_error(self.spec, e, "locking the dumped tables") from None

    def _columns(self, conn) -> list[tuple]:
        """Every dumped table's column definitions, to check nothing changed by the end."""
        marks = ",".join(["%s"] * len(self.databases))
        with conn.cursor() as cur:
            cur.execute("SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION, c.COLUMN_NAME, "
                        "c.COLUMN_TYPE, c.IS_NULLABLE, c.COLUMN_DEFAULT, c.EXTRA "
                        "FROM information_schema.COLUMNS c JOIN information_schema.TABLES t "
                        "ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME "
                        f"WHERE c.TABLE_SCHEMA IN ({marks}) AND t.TABLE_TYPE <> 'VIEW' "
                        "ORDER BY 1, 2, 3", self.databases)
            return list(cur.fetchall())

    def _start_snapshot(self, conn) -> None:
        with conn.cursor() as cur:
            try:
                cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            except pymysql.MySQLError:
                cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")

    def _binlog(self, conn, log_bin: bool, exact: bool,
                snapshot: bool = True) -> BinlogPosition | None:
        """The binlog position of the snapshot: MariaDB reports it per transaction opened WITH
        CONSISTENT SNAPSHOT (binlog_snapshot_*, `snapshot`); otherwise SHOW MASTER STATUS,
        `exact` while no commit can happen (FLUSH TABLES WITH READ LOCK, BACKUP STAGE
        BLOCK_COMMIT), approximate otherwise (and then said in a warning)."""
        if not log_bin:
            return None
        if snapshot:
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
        file, pos = info.get("file"), int(info.get("position") or 0)
        gtid = info.get("executed_gtid_set") or None
        if gtid is None and self.mariadb:
            try:
                with self.coord.cursor() as cur:
                    cur.execute("SELECT BINLOG_GTID_POS(%s, %s)", (file, pos))
                    gtid = cur.fetchone()[0] or None
            except pymysql.MySQLError:
                pass
        if not exact:
            self.warnings.append("binlog position read without a global lock: approximate "
                                 "(grant RELOAD for the snapshot's exact position)")
        return BinlogPosition(file=file, position=pos, gtid=gtid)

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
