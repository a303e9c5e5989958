"""The one shape of a planned backup item, whatever the kind, and the tables list/prune show.

`PlanItem` is what `dr backup run --dry-run` prints and what a run records as its plan: one item
per resource, with what would be done (`actions`), what is worth knowing (`notes`) and why it
cannot be done (`blocked`). `fields` holds the kind's own facts (a snapshot id, a bucket, a
backup id) as the run record stores them; `engine` is the kind's own plan for its executor and is
never shown or recorded.

`Table` is a kind's part of `dr backup list` / `dr backup prune`: typed cells (`Age`, `When`,
`KeyCell`, `Verb`) that the renderer turns into text, and the rows as data for `--output json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class PlanItem:
    name: str
    kind: str  # the registered kind's name (rds, s3, mysql, ...)
    record_kind: str  # the kind its ResourceResult records (rds-instance, s3, mysql, ...)
    summary: str  # one line: what is backed up to where (`<source> -> <destination>`)
    actions: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    blocked: str | None = None
    slot: datetime | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    engine: Any = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.record_kind, **self.fields,
                "actions": list(self.actions), "blocked": self.blocked}


@dataclass(frozen=True)
class Age:
    """A cell: how old something is (None: never)."""
    delta: timedelta | None


@dataclass(frozen=True)
class When:
    """A cell: a point in time (None: unknown)."""
    at: datetime | str | None


@dataclass(frozen=True)
class KeyCell:
    """A cell: the KMS key of a recovery point; `encrypted` False shows NOT ENCRYPTED."""
    key_id: str | None
    encrypted: bool = True


@dataclass(frozen=True)
class Verb:
    """A prune cell: keep, or delete (`would delete` in a dry run)."""
    keep: bool


@dataclass
class Table:
    """One kind's part of a listing or a prune plan: `key` names it in JSON output."""

    key: str
    headers: tuple[str, ...]
    rows: list[tuple] = field(default_factory=list)
    data: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # shown right after the table
    footer: list[str] = field(default_factory=list)  # shown after every kind's table
    extra: dict = field(default_factory=dict)  # more JSON keys
