"""The dump's work list and its output thread.

A TableJob is one table: its chunks (a Chunker cuts them) and its CHECKSUM TABLE. The TaskQueue
hands tasks to the worker connections; the AsyncWriter writes frames from one thread.
"""

from __future__ import annotations

import queue
import threading

from dr.errors import DrError
from dr.mysql.chunks import Chunker, Range
from dr.mysql.errors import DumpError
from dr.mysql.frames import ROWS, FrameWriter
from dr.mysql.schema import TableDef
from dr.mysql.sqltext import quote_ident


class TableJob:
    """One table's work: its chunks and its checksum, with counters."""

    def __init__(self, table_id: int, db: str, table: TableDef, chunker: Chunker,
                 checksum: bool):
        self.id = table_id
        self.db = db
        self.table = table
        self.chunker = chunker
        self.src = f"{quote_ident(db)}.{quote_ident(table.name)}"
        self.checksum_pending = checksum
        self.checksum: int | None = None
        self.inflight = 0
        self.complete = False
        self.rows = 0
        self.bytes = 0
        self.chunks = 0
        self.lock = threading.Lock()
        self.row_sql = table.row_sql().encode("utf-8")
        self.force_index = (f" FORCE INDEX ({quote_ident(table.key_index)})"
                            if table.key_index else "")

    def add(self, rows: int, nbytes: int) -> None:
        with self.lock:
            self.rows += rows
            self.bytes += nbytes
            self.chunks += 1


class TaskQueue:
    """Hands tasks to workers: non-transactional tables first (the lock waits for them), then
    the table with the fewest tasks running, biggest first. Workers thus spread over tables,
    and the stream interleaves them, which lets a restore load tables side by side (loading
    one InnoDB table from two connections is no faster than from one)."""

    def __init__(self, jobs: list[TableJob]):
        self.jobs = sorted(jobs, key=lambda j: (j.table.transactional,
                                                -j.table.rows_estimate * max(
                                                    j.table.avg_row_length, 1)))
        self.lock = threading.Lock()
        self.nontrans_left = sum(1 for j in jobs if not j.table.transactional)
        self.nontrans_done = threading.Event()
        if not self.nontrans_left:
            self.nontrans_done.set()
        self.completed: list[TableJob] = []  # done, its DONE frame not written yet

    def take_completed(self) -> list[TableJob]:
        with self.lock:
            done, self.completed = self.completed, []
        return done

    def next(self, cur) -> tuple[str, TableJob, Range | None] | None:
        with self.lock:
            order = sorted((j for j in self.jobs if not j.complete),
                           key=lambda j: (j.table.transactional, j.inflight))  # stable: size
        for job in order:
            with self.lock:
                if job.checksum_pending:
                    job.checksum_pending = False
                    job.inflight += 1
                    return "checksum", job, None
            if not job.chunker.done:
                rng = job.chunker.next(cur, job.src)
                if rng is not None:
                    with self.lock:
                        job.inflight += 1
                    return "chunk", job, rng
            with self.lock:
                self._maybe_complete(job)
        return None

    def finished(self, job: TableJob) -> None:
        with self.lock:
            job.inflight -= 1
            self._maybe_complete(job)

    def _maybe_complete(self, job: TableJob) -> None:
        if job.complete or job.inflight or job.checksum_pending or not job.chunker.done:
            return
        job.complete = True
        self.completed.append(job)
        if not job.table.transactional:
            self.nontrans_left -= 1
            if self.nontrans_left == 0:
                self.nontrans_done.set()


class AsyncWriter:
    """Frames go to the sink from one thread, so workers send their next query while the
    last chunk is checksummed, compressed and written (the caller's out.write)."""

    def __init__(self, writer: FrameWriter, depth: int = 4):
        self.writer = writer
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="dr-dump-writer")
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is not None:
                continue  # drain after a failure
            kind, a, b = item
            try:
                if kind == ROWS:
                    self.writer.rows(a, b)
                else:
                    self.writer.json(kind, a)
            except BaseException as e:  # noqa: BLE001 - re-raised in the workers
                self.error = e

    def _raise(self) -> None:
        e = self.error
        if isinstance(e, DrError):
            raise e
        raise DumpError(f"writing the dump output failed: {type(e).__name__}: {e}") from e

    def put(self, kind: bytes, a, b=None) -> None:
        while True:
            if self.error is not None:
                self._raise()
            try:
                self.queue.put((kind, a, b), timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Write everything queued; raise the sink's error if it failed."""
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            self._raise()
