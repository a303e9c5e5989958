"""Checking restored tables against the backup: row counts, CHECKSUM TABLE (same server family and
major.minor only), content hashes, sequences; `verify` does it for a database at rest."""

from __future__ import annotations

from collections.abc import Mapping

import pymysql

from dr.mysql import objects as obj_ops
from dr.mysql.conn import ConnectionSpec, Timeouts, connect, query_error
from dr.mysql.errors import StreamFormatError, VerificationFailed
from dr.mysql.manifest import DumpManifest, TableInfo
from dr.mysql.restore_plan import DatabasePlan
from dr.mysql.restore_result import BY_CHECKSUM, BY_CONTENT, BY_ROWS, TableResult, checksums_comparable
from dr.mysql.schema import sequence_problems
from dr.mysql.sqltext import quote_ident


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
                checksums = checksums and checksums_comparable(source_version, cur.fetchone()[0])
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




class RestoreVerification:
    """The verification step of a restore (mixed into restore._Restore, whose state it uses)."""

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
        comparable = checksums_comparable(manifest.server_version, target_version)
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

    def _staging_checksum(self, p: DatabasePlan, name: str) -> int | None:
        with self.coord.cursor() as cur:
            cur.execute(f"CHECKSUM TABLE {quote_ident(p.staging)}.{quote_ident(name)}")
            return cur.fetchone()[1]

    def _content_tables(self) -> set[int]:
        """The tables to check by content hash (content.py) instead of CHECKSUM TABLE: all of
        them when the dump's server (its header says) is of another family or major.minor
        version than this one (CHECKSUM TABLE is not comparable then); else those the dump has
        no CHECKSUM TABLE for (system-versioned tables). Never sequences."""
        other = not checksums_comparable(self.source_version, self._server_version())
        return {tid for p in self.plans for tid, t in p.tables.items()
                if t.get("kind") != "SEQUENCE"
                and (other or t.get("kind") == "SYSTEM VERSIONED")}

    def _server_version(self) -> str:
        if not hasattr(self, "_version"):
            with self.coord.cursor() as cur:
                cur.execute("SELECT VERSION()")
                self._version = cur.fetchone()[0]
        return self._version
