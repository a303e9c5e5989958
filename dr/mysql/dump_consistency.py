"""How a dump starts consistently: locks, metadata locks, snapshots and the binlog position.

The `_Dump` of dump.py takes this as a base class; its module docstring says the rules for
users, the comment below says the invariant.
"""

from __future__ import annotations

import logging
import math
import threading

import pymysql
import pymysql.cursors

from dr.mysql.conn import query_error
from dr.mysql.errors import DumpError
from dr.mysql.manifest import BinlogPosition
from dr.mysql.schema import TRANSACTIONAL_ENGINES, is_access_denied, list_tables
from dr.mysql.sqltext import quote_ident

log = logging.getLogger("dr.mysql")

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


class ConsistentStart:
    """The consistent start of a dump (mixed into dump._Dump, whose state it uses)."""

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
