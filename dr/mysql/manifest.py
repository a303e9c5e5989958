"""What a dump contains: per table rows/checksum/bytes, the objects, the binlog position, timings.

The manifest is returned by `dump()` (the caller stores it beside the dump) and is also the last
section of the dump stream, so a restore can verify from the stream alone. `to_dict`/`from_dict`
round-trip through JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

FORMAT = "dr-mysql/1"


@dataclass
class TableInfo:
    """One table as dumped. `checksum` is CHECKSUM TABLE in the dump's snapshot (None if not
    computed); `bytes` counts the row data (SQL VALUES text) this table put in the stream.
    `sequence` is a SEQUENCE's row (its options and state: what a restore compares instead of
    a checksum); None for tables, and in manifests of dr versions that did not record it."""

    rows: int
    checksum: int | None
    bytes: int
    engine: str
    chunks: int = 0
    columns: int = 0
    sequence: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.sequence is None:
            del d["sequence"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TableInfo:
        seq = d.get("sequence")
        return cls(rows=int(d["rows"]), checksum=None if d.get("checksum") is None
                   else int(d["checksum"]), bytes=int(d.get("bytes", 0)),
                   engine=str(d.get("engine", "")), chunks=int(d.get("chunks", 0)),
                   columns=int(d.get("columns", 0)),
                   sequence=None if seq is None else {str(k): int(v) for k, v in seq.items()})


@dataclass
class DatabaseInfo:
    charset: str = "utf8mb4"
    collation: str = "utf8mb4_general_ci"
    tables: dict[str, TableInfo] = field(default_factory=dict)
    views: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    routines: list[str] = field(default_factory=list)  # "PROCEDURE name" / "FUNCTION name"
    events: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"charset": self.charset, "collation": self.collation,
                "tables": {name: t.to_dict() for name, t in self.tables.items()},
                "views": list(self.views), "triggers": list(self.triggers),
                "routines": list(self.routines), "events": list(self.events)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatabaseInfo:
        return cls(charset=d.get("charset", "utf8mb4"),
                   collation=d.get("collation", "utf8mb4_general_ci"),
                   tables={n: TableInfo.from_dict(t) for n, t in d.get("tables", {}).items()},
                   views=list(d.get("views", [])), triggers=list(d.get("triggers", [])),
                   routines=list(d.get("routines", [])), events=list(d.get("events", [])))


@dataclass
class BinlogPosition:
    """Where the dump's snapshot sits in the source's binary log (for point-in-time recovery)."""

    file: str
    position: int
    gtid: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BinlogPosition:
        return cls(file=d["file"], position=int(d["position"]), gtid=d.get("gtid"))


@dataclass
class DumpManifest:
    server_version: str
    databases: dict[str, DatabaseInfo]
    binlog: BinlogPosition | None
    started_at: datetime
    finished_at: datetime
    seconds: float
    bytes_written: int  # stream bytes before the manifest section
    format: str = FORMAT
    source: str = ""  # user@host:port (never a password)
    consistency: str = ""  # how the snapshot was made, e.g. "snapshot", "snapshot+ftwrl"
    threads: int = 1
    warnings: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(t.rows for db in self.databases.values() for t in db.tables.values())

    @property
    def data_bytes(self) -> int:
        return sum(t.bytes for db in self.databases.values() for t in db.tables.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format, "server_version": self.server_version, "source": self.source,
            "databases": {name: db.to_dict() for name, db in self.databases.items()},
            "binlog": self.binlog.to_dict() if self.binlog else None,
            "consistency": self.consistency, "threads": self.threads,
            "started_at": self.started_at.isoformat(), "finished_at": self.finished_at.isoformat(),
            "seconds": round(self.seconds, 3), "bytes_written": self.bytes_written,
            "rows": self.rows, "data_bytes": self.data_bytes, "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DumpManifest:
        if d.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} manifest (format {d.get('format')!r})")
        return cls(
            format=d["format"], server_version=d.get("server_version", ""),
            source=d.get("source", ""),
            databases={n: DatabaseInfo.from_dict(x) for n, x in d.get("databases", {}).items()},
            binlog=BinlogPosition.from_dict(d["binlog"]) if d.get("binlog") else None,
            consistency=d.get("consistency", ""), threads=int(d.get("threads", 1)),
            started_at=datetime.fromisoformat(d["started_at"]),
            finished_at=datetime.fromisoformat(d["finished_at"]),
            seconds=float(d.get("seconds", 0)), bytes_written=int(d.get("bytes_written", 0)),
            warnings=list(d.get("warnings", [])),
        )
