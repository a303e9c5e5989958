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
from collections.abc import Collection
from dataclasses import asdict
from typing import BinaryIO

import pymysql

from dr.clock import Clock
from dr.errors import DrError
from dr.mysql.conn import ConnectionSpec, Timeouts, connect, query_error
from dr.mysql.errors import RestoreError, StreamFormatError
from dr.mysql.frames import DONE, END, MANIFEST, ROWS, FrameReader, damaged, parse_json, read_done, rows_table_id
from dr.mysql.manifest import DumpManifest
from dr.mysql.load import Loaders
from dr.mysql import swap
from dr.mysql.restore_plan import DatabasePlan, RestorePlanning
from dr.mysql.restore_result import RestoreResult, TableResult
from dr.mysql.restore_verify import RestoreVerification
from dr.mysql.schema import sequence_problems, write_sequence
from dr.mysql.sqltext import quote_ident
from dr.mysql.swap import Swap
from dr.mysql.swap_journal import FINISHED, Recovery, SwapInterrupted

log = logging.getLogger("dr.mysql")

_PACKET_TOO_LARGE = 1153


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
    if recovery.outcome != FINISHED or not done:
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


class _Restore(RestorePlanning, RestoreVerification):
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
        self.plans: list[DatabasePlan] = []
        self.by_id: dict[int, DatabasePlan] = {}
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

    def _sequence_mismatches(self, manifest: DumpManifest) -> list[tuple[DatabasePlan, str, str]]:
        """Each staged sequence compared with its row in the manifest (or the schema frame):
        (plan, table, mismatch in words)."""
        out: list[tuple[DatabasePlan, str, str]] = []
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

    # -- swap --------------------------------------------------------------------------------

    def _swap(self, p: DatabasePlan) -> None:
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
        except SwapInterrupted:
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
