"""Loading chunks into the staging database: `threads` connections, LOAD DATA LOCAL from memory
(or multi-row INSERTs), one table per connection at a time, tables finished as soon as their last
chunk is in (deferred indexes, CHECKSUM TABLE)."""

from __future__ import annotations

import queue
import threading
import time

import pymysql

from dr.mysql import content
from dr.mysql.conn import LOCAL_INFILE_FROM_MEMORY, ConnectionSpec, connect
from dr.mysql.frames import TABLE_ID
from dr.mysql.sqltext import quote_ident

_RETRYABLE = {1213, 1205}  # deadlock, lock wait timeout
_RETRIES = 8


class Loaders:
    """`threads` connections loading chunks: LOAD DATA LOCAL from memory when the server allows
    it (less parsing than INSERT), else multi-row INSERTs.

    A table's chunks go to one loader at a time (two connections loading one InnoDB table are
    no faster than one, measured); a table with nothing pending goes to the least busy loader.
    """

    def __init__(self, spec: ConnectionSpec, n: int, tables: dict[int, tuple[str, dict]],
                 use_load_data: bool | None, checksums: bool, *,
                 content: frozenset[int] | set[int] = frozenset()):
        self.spec = spec
        self.tables = tables
        self.checksums = checksums
        # tables checked by content hash (content.py) instead of CHECKSUM TABLE: all of them
        # for a dump from another server version
        self.content = set(content) if checksums else set()
        self.checks: dict[int, int | None] = {}  # table id → CHECKSUM TABLE in staging
        self.contents: dict[int, int] = {}  # table id → content hash of the loaded table
        self.streamed: dict[int, int] = {}  # table id → content hash of its rows in the stream
        self.finished: set[int] = set()
        self.queues: list[queue.Queue] = [queue.Queue(maxsize=2) for _ in range(n)]
        self.backlog = [0] * n  # bytes queued or loading, per loader
        self.pending: dict[int, list[int]] = {}  # table id → [loader, chunks pending]
        self.rows: dict[int, int] = {}
        self.lock = threading.Lock()
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.conns: list[pymysql.Connection] = []
        try:
            for _ in range(n):
                self.conns.append(self._open())
        except BaseException:
            self.close()
            raise
        if use_load_data is None:
            with self.conns[0].cursor() as cur:
                cur.execute("SELECT @@GLOBAL.local_infile")
                use_load_data = bool(int(cur.fetchone()[0])) and LOCAL_INFILE_FROM_MEMORY
        self.load_data = bool(use_load_data)
        self.statements = {tid: (load_sql if self.load_data else insert_sql)(db, t)
                           for tid, (db, t) in tables.items()}
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True,
                                         name=f"dr-restore-{i}") for i in range(n)]
        for t in self.threads:
            t.start()

    def _open(self) -> pymysql.Connection:
        conn = connect(self.spec, local_infile=True)
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode=%s, SESSION unique_checks=0, "
                        "SESSION foreign_key_checks=0, SESSION time_zone='+00:00'",
                        ("NO_AUTO_VALUE_ON_ZERO",))
            # no gap locks between loaders inserting into one table
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            for opt in ("SET SESSION sql_log_bin=0", "SET SESSION max_statement_time=0"):
                try:
                    cur.execute(opt)
                except pymysql.MySQLError:
                    pass  # no privilege: the restore is written to the binlog
        return conn

    def finish_table(self, table_id: int, checksum: bool) -> None:
        """After the table's last chunk (same loader, FIFO): add its deferred indexes, then
        CHECKSUM TABLE (for the tables in `content`: their content hash instead), while other
        tables still load."""
        if table_id in self.finished:
            return
        self.finished.add(table_id)
        self._route(table_id, ("finish", table_id, checksum and self.checksums), 0)

    def put(self, table_id: int, payload: bytes) -> None:
        """Queue a ROWS frame's payload (table id + chunk) for loading."""
        self._route(table_id, ("rows", table_id, payload), len(payload))

    def _route(self, table_id: int, item: tuple, size: int) -> None:
        with self.lock:
            slot = self.pending.get(table_id)
            if slot is None or slot[1] == 0:
                slot = [min(range(len(self.queues)), key=self.backlog.__getitem__), 0]
                self.pending[table_id] = slot
            slot[1] += 1
            self.backlog[slot[0]] += size
        q = self.queues[slot[0]]
        while True:
            if self.error is not None:
                raise self.error
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self, index: int) -> None:
        conn, q = self.conns[index], self.queues[index]
        while True:
            item = q.get()
            if item is None or self.stop.is_set():
                return
            what, table_id, arg = item
            try:
                hashed = 0
                if what == "finish":
                    n, size = 0, 0
                    self._finish(conn, table_id, checksum=arg)
                else:
                    if table_id in self.content:
                        hashed = content.chunk_sum(memoryview(arg)[TABLE_ID.size:])
                    n, size = self._load(conn, table_id, arg), len(arg)
            except BaseException as e:  # noqa: BLE001 - handed to the reader thread
                if self.error is None:
                    self.error = e
                self.stop.set()
                self._drain()
                return
            with self.lock:
                self.rows[table_id] = self.rows.get(table_id, 0) + n
                if table_id in self.content:
                    self.streamed[table_id] = self.streamed.get(table_id, 0) + hashed
                self.pending[table_id][1] -= 1
                self.backlog[index] -= size

    def _finish(self, conn, table_id: int, checksum: bool) -> None:
        db, t = self.tables[table_id]
        src = f"{quote_ident(db)}.{quote_ident(t['name'])}"
        with conn.cursor() as cur:
            if t.get("deferred_indexes"):
                cur.execute(f"ALTER TABLE {src} " + ", ".join(
                    "ADD " + d for d in t["deferred_indexes"]))
            if table_id in self.content:
                self.contents[table_id] = content.table_hash(conn, db, t["name"])
            elif checksum:
                cur.execute(f"CHECKSUM TABLE {src}")
                self.checks[table_id] = cur.fetchone()[1]

    def _load(self, conn, table_id: int, payload: bytes) -> int:
        """One chunk; a deadlock or lock timeout between loaders rolls the statement back
        whole (autocommit), so it is simply run again."""
        values = memoryview(payload)[TABLE_ID.size:]
        statement = self.statements[table_id]
        for attempt in range(_RETRIES):
            try:
                if self.load_data:
                    conn.dr_infile = (values, b",")  # every row ends with "),"
                    try:
                        return conn.query(statement)
                    finally:
                        conn.dr_infile = None
                return conn.query(statement + values)
            except pymysql.MySQLError as e:
                if not (e.args and e.args[0] in _RETRYABLE) or attempt == _RETRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def _drain(self) -> None:
        for q in self.queues:
            try:
                while True:
                    q.get_nowait()
            except queue.Empty:
                pass

    def finish(self) -> None:
        """Wait for every queued chunk; raise the first loader error."""
        for q in self.queues:
            self._put_sentinel(q)
        for t in self.threads:
            t.join()
        if self.error is not None:
            raise self.error

    def _put_sentinel(self, q: queue.Queue) -> None:
        while True:
            try:
                q.put(None, timeout=0.1)
                return
            except queue.Full:
                if self.stop.is_set():
                    self._drain()

    def abort(self) -> None:
        self.stop.set()
        self._drain()
        for q in self.queues:
            try:
                q.put_nowait(None)
            except queue.Full:
                pass
        for t in self.threads:
            t.join(timeout=60)

    def close(self) -> None:
        for c in self.conns:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass


def insert_sql(db: str, t: dict) -> bytes:
    cols = ",".join(quote_ident(c) for c in t["columns"])
    return f"INSERT INTO {quote_ident(db)}.{quote_ident(t['name'])} ({cols}) VALUES ".encode()


def load_sql(db: str, t: dict) -> bytes:
    """LOAD DATA reading the chunk `(v,v),(v,v),` as lines "(" ... ")," of ','-separated fields,
    optionally enclosed in ' with \\ escapes: exactly what QUOTE() wrote. BIT columns arrive as
    numbers and go through a variable (LOAD DATA would store the digits' characters)."""
    bits = set(t.get("bit_columns", ()))
    names, sets = [], []
    for i, c in enumerate(t["columns"]):
        if c in bits:
            names.append(f"@dr_b{i}")
            sets.append(f"{quote_ident(c)} = CAST(@dr_b{i} AS UNSIGNED)")
        else:
            names.append(quote_ident(c))
    sql = (f"LOAD DATA LOCAL INFILE 'dr-chunk' INTO TABLE {quote_ident(db)}."
           f"{quote_ident(t['name'])} CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' "
           "OPTIONALLY ENCLOSED BY '\\'' ESCAPED BY '\\\\' LINES STARTING BY '(' "
           f"TERMINATED BY '),' ({','.join(names)})")
    if sets:
        sql += " SET " + ", ".join(sets)
    return sql.encode("utf-8")
