"""Loading chunks into the staging database: `threads` connections, LOAD DATA LOCAL from memory
(or multi-row INSERTs), one table per connection at a time, tables finished as soon as their last
chunk is in (deferred indexes, CHECKSUM TABLE, or for the tables in `content` the content hash
of content.py, on both sides: the chunks as they arrive, and the loaded table).

Shutdown is deterministic. Each loader owns its queue and is the only one to take from it; a
loader that fails records its error (the first one wins), raises the shared `failed` flag and
returns. Nobody ever takes from another loader's queue. Everyone else looks at that flag: the
reader before and while it queues an item (and while `finish()` queues the stop sentinels and
waits), every loader before each item and while it waits for one. On the flag, the pool KILLs
the connections of the loaders still running (their statement ends on the server at once),
joins them for at most `_STOP_GRACE` seconds (then shuts their sockets and joins as long again),
and `finish()` raises the first error. Every statement, read and write is bounded by the
connections' `Timeouts`, so waiting for a loader that works is bounded too.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time

import pymysql

from dr.mysql import content
from dr.mysql.conn import LOCAL_INFILE_FROM_MEMORY, ConnectionSpec, Timeouts, connect
from dr.mysql.frames import TABLE_ID
from dr.mysql.sqltext import quote_ident

log = logging.getLogger("dr.mysql")

_RETRYABLE = {1213, 1205}  # deadlock, lock wait timeout
_RETRIES = 8
_PACKET_TOO_LARGE = 1153  # ER_NET_PACKET_TOO_LARGE
_QUEUED = 2  # items waiting per loader (chunks are ≤ 8 MB: memory stays bounded)
_POLL = 0.05  # seconds between looks at the `failed` flag while waiting on a queue
_STOP_GRACE = 10.0  # after KILL, how long loaders get to return before their sockets are shut
_KILL_TIMEOUTS = Timeouts(statement=10.0, read=15.0, write=15.0)


class LoaderStopped(Exception):
    """The pool was stopped (abort) before an item could be queued."""


class Loaders:
    """`threads` connections loading chunks: LOAD DATA LOCAL from memory when the server allows
    it (less parsing than INSERT), else multi-row INSERTs.

    A table's chunks go to one loader at a time (two connections loading one InnoDB table are
    no faster than one, measured); a table with nothing pending goes to the least busy loader.
    """

    def __init__(self, spec: ConnectionSpec, n: int, tables: dict[int, tuple[str, dict]],
                 use_load_data: bool | None, checksums: bool, timeouts: Timeouts | None = None,
                 *, content: frozenset[int] | set[int] = frozenset()):
        self.spec = spec
        self.tables = tables
        self.checksums = checksums
        self.timeouts = timeouts if timeouts is not None else Timeouts()
        # tables checked by content hash (content.py) instead of CHECKSUM TABLE: all of them
        # for a dump from another server version
        self.content = set(content) if checksums else set()
        self.checks: dict[int, int | None] = {}  # table id → CHECKSUM TABLE in staging
        self.contents: dict[int, int] = {}  # table id → content hash of the loaded table
        self.streamed: dict[int, int] = {}  # table id → content hash of its rows in the stream
        self.finished: set[int] = set()
        self.queues: list[queue.Queue] = [queue.Queue(maxsize=_QUEUED) for _ in range(n)]
        self.backlog = [0] * n  # bytes queued or loading, per loader
        self.pending: dict[int, list[int]] = {}  # table id → [loader, chunks pending]
        self.rows: dict[int, int] = {}
        self.lock = threading.Lock()
        self.error: BaseException | None = None  # the first loader error
        self.failed = threading.Event()  # a loader failed, or abort(): everyone stops
        self.conns: list[pymysql.Connection] = []
        self.threads: list[threading.Thread] = []
        try:
            for _ in range(n):
                self.conns.append(self._open())
            with self.conns[0].cursor() as cur:
                cur.execute("SELECT @@GLOBAL.local_infile, @@SESSION.max_allowed_packet")
                local_infile, max_packet = cur.fetchone()
        except BaseException:
            self.close()
            raise
        if use_load_data is None:
            use_load_data = bool(int(local_infile)) and LOCAL_INFILE_FROM_MEMORY
        self.load_data = bool(use_load_data)
        self.max_packet = int(max_packet)
        self.statements = {tid: (load_sql if self.load_data else insert_sql)(db, t)
                           for tid, (db, t) in tables.items()}
        self.thread_ids = [c.thread_id() for c in self.conns]
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True,
                                         name=f"dr-restore-{i}") for i in range(n)]
        for t in self.threads:
            t.start()

    def _open(self) -> pymysql.Connection:
        conn = connect(self.spec, local_infile=True, timeouts=self.timeouts)
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode=%s, SESSION unique_checks=0, "
                        "SESSION foreign_key_checks=0, SESSION time_zone='+00:00'",
                        ("NO_AUTO_VALUE_ON_ZERO",))
            # no gap locks between loaders inserting into one table
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            try:
                cur.execute("SET SESSION sql_log_bin=0")
            except pymysql.MySQLError:
                pass  # no privilege: the restore is written to the binlog
        return conn

    # -- the reader's side -------------------------------------------------------------------

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
        self._raise_if_failed()
        with self.lock:
            slot = self.pending.get(table_id)
            if slot is None or slot[1] == 0:
                slot = [min(range(len(self.queues)), key=self.backlog.__getitem__), 0]
                self.pending[table_id] = slot
            slot[1] += 1
            self.backlog[slot[0]] += size
        if not self._offer(self.queues[slot[0]], item):
            self._raise_if_failed()

    def _offer(self, q: queue.Queue, item) -> bool:
        """Put `item` into a loader's queue; False (not queued) once the pool has failed."""
        while not self.failed.is_set():
            try:
                q.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _raise_if_failed(self) -> None:
        if self.failed.is_set():
            if self.error is not None:
                raise self.error
            raise LoaderStopped("the restore's loaders were stopped")

    def finish(self) -> None:
        """Wait for every queued item; on the first loader error, stop the others and raise it."""
        for q in self.queues:
            if not self._offer(q, None):
                break
        for t in self.threads:
            while t.is_alive() and not self.failed.is_set():
                t.join(_POLL)
        if self.failed.is_set():
            self._stop()
            self._raise_if_failed()

    def abort(self) -> None:
        """Stop every loader now (the reader failed, or Ctrl-C): nothing more is loaded."""
        with self.lock:
            self.failed.set()
        self._stop()

    # -- the loaders -------------------------------------------------------------------------

    def _fail(self, e: BaseException) -> None:
        with self.lock:
            if self.error is None and not self.failed.is_set():
                self.error = e  # the first error wins; errors caused by the stop do not count
            self.failed.set()

    def _run(self, index: int) -> None:
        conn, q = self.conns[index], self.queues[index]
        try:
            while not self.failed.is_set():
                try:
                    item = q.get(timeout=_POLL)
                except queue.Empty:
                    continue
                if item is None or self.failed.is_set():
                    return
                what, table_id, arg = item
                hashed = 0
                if what == "finish":
                    n, size = 0, 0
                    self._finish(conn, table_id, checksum=arg)
                else:
                    if table_id in self.content:
                        hashed = content.chunk_sum(memoryview(arg)[TABLE_ID.size:])
                    n, size = self._load(conn, table_id, arg), len(arg)
                with self.lock:
                    self.rows[table_id] = self.rows.get(table_id, 0) + n
                    if table_id in self.content:
                        self.streamed[table_id] = self.streamed.get(table_id, 0) + hashed
                    self.pending[table_id][1] -= 1
                    self.backlog[index] -= size
        except BaseException as e:  # noqa: BLE001 - handed to the reader thread
            self._fail(e)

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
        if not self.load_data and 1 + len(statement) + len(values) > self.max_packet:
            # The server would answer with an error and hang up while the packet is still being
            # sent, and the client would see only "connection reset": say it before sending.
            db, t = self.tables[table_id]
            raise pymysql.err.OperationalError(
                _PACKET_TOO_LARGE,
                f"a chunk of table {t['name']} is an INSERT of {1 + len(statement) + len(values)}"
                f" bytes, more than this server's max_allowed_packet ({self.max_packet}), and "
                "local_infile is off")
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
                if self.failed.wait(0.05 * (attempt + 1)):
                    raise
        raise AssertionError("unreachable")

    # -- stopping ----------------------------------------------------------------------------

    def _stop(self) -> None:
        """After `failed` is set: end what the loaders still run on the server, join them."""
        alive = [i for i, t in enumerate(self.threads) if t.is_alive()]
        if not alive:
            return
        self._kill(alive)
        deadline = time.monotonic() + _STOP_GRACE
        for i in alive:
            self.threads[i].join(max(0.0, deadline - time.monotonic()))
        stuck = [i for i in alive if self.threads[i].is_alive()]
        for i in stuck:  # the KILL did not reach the server: cut the connection here
            sock = getattr(self.conns[i], "_sock", None)
            try:
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for i in stuck:
            self.threads[i].join(_STOP_GRACE)
            if self.threads[i].is_alive():
                log.error("restore loader %d did not stop; leaving it behind", i)

    def _kill(self, loaders: list[int]) -> None:
        """KILL the loaders' connections from a fresh one: the server aborts their statements
        (an ALTER TABLE, a CHECKSUM TABLE, a LOAD DATA) at once and hangs up on them."""
        try:
            conn = connect(self.spec, timeouts=_KILL_TIMEOUTS)
        except Exception as e:  # noqa: BLE001 - the sockets are shut instead
            log.warning("could not connect to stop the restore's loaders: %s", e)
            return
        try:
            with conn.cursor() as cur:
                for i in loaders:
                    try:
                        cur.execute(f"KILL CONNECTION {int(self.thread_ids[i])}")
                    except pymysql.MySQLError:
                        pass  # gone already
        except Exception as e:  # noqa: BLE001
            log.warning("could not stop the restore's loaders: %s", e)
        finally:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass

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
    optionally enclosed in ' with \\ escapes: exactly what QUOTE() wrote. BIT columns, and ENUM
    and SET (index_columns: their index or bitmap) arrive as numbers and go through a variable
    (LOAD DATA would store the digits' characters); hex_columns arrive as 0x<hex> (or '')."""
    numbers = set(t.get("bit_columns", ())) | set(t.get("index_columns", ()))
    hexed = set(t.get("hex_columns", ()))
    names, sets = [], []
    for i, c in enumerate(t["columns"]):
        if c in numbers:
            names.append(f"@dr_b{i}")
            sets.append(f"{quote_ident(c)} = CAST(@dr_b{i} AS UNSIGNED)")
        elif c in hexed:
            names.append(f"@dr_b{i}")
            sets.append(f"{quote_ident(c)} = UNHEX(SUBSTRING(@dr_b{i}, 3))")
        else:
            names.append(quote_ident(c))
    sql = (f"LOAD DATA LOCAL INFILE 'dr-chunk' INTO TABLE {quote_ident(db)}."
           f"{quote_ident(t['name'])} CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' "
           "OPTIONALLY ENCLOSED BY '\\'' ESCAPED BY '\\\\' LINES STARTING BY '(' "
           f"TERMINATED BY '),' ({','.join(names)})")
    if sets:
        sql += " SET " + ", ".join(sets)
    return sql.encode("utf-8")
