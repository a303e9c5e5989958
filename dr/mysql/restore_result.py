"""What a restore returns: per table, how its content was checked and whether it matched."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


from dr.mysql.manifest import DumpManifest


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
               f"{self.target_version}" if not checksums_comparable(self.source_version,
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


def checksums_comparable(source_version: str, target_version: str) -> bool:
    """CHECKSUM TABLE is only comparable between servers of the same family and major.minor."""
    def key(v: str) -> tuple[str, str]:
        family = "mariadb" if "mariadb" in v.lower() else "mysql"
        return family, ".".join(v.split("-")[0].split(".")[:2])
    return key(source_version) == key(target_version)
