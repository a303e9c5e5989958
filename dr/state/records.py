"""Run records: what every run planned, what happened, timings, errors, recovery points.

A record lives at `runs/<run_id>.json` and is saved (atomically replaced) every time it
changes, so a crash leaves the last state on disk for `dr runs show` and `--resume`.
Timestamps are ISO-8601 strings of aware UTC datetimes (`dr.clock.iso`, `parse_iso`). Statuses
and their transitions are the tables of dr.state.status; dr.state.recorder writes records.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from dr.clock import parse_iso_or_none
from dr.errors import OperationFailed, UsageError
from dr.state.base import StateStore, validate_key
from dr.state.status import RUN_STATUSES
RUNS_PREFIX = "runs/"
_RUN_ID = re.compile(r"(?P<kind>.+)-(?P<stamp>\d{8}T\d{6}Z)-[0-9a-f]{4}")
_STAMP = "%Y%m%dT%H%M%SZ"


def new_run_id(kind: str, now: datetime) -> str:
    """A sortable, unique id: 'backup-20240501T120000Z-3f9a'."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", kind):
        raise ValueError(f"run kind {kind!r} must be lowercase letters, digits and '-'")
    if now.tzinfo is None:
        raise ValueError("new_run_id needs an aware datetime")
    return f"{kind}-{now.astimezone(timezone.utc):{_STAMP}}-{secrets.token_hex(2)}"


@dataclass
class StepRecord:
    name: str
    status: str
    started_at: str
    finished_at: str | None = None
    detail: str | None = None
    error: str | None = None


@dataclass
class ResourceResult:
    name: str  # config name, e.g. "app-db"
    kind: str  # e.g. "rds-instance", "rds-cluster"
    status: str  # "completed" | "failed" | "skipped" | "interrupted"
    started_at: str
    finished_at: str | None = None
    error: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
    # each: {"id", "region", "arn", "created", "kms_key_id", "role"}
    recovery_points: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)  # kind-specific figures (e.g. S3: copied, bytes)


@dataclass
class RunRecord:
    run_id: str
    kind: str  # "backup", "prune", ...
    status: str  # one of RUN_STATUSES
    started_at: str
    finished_at: str | None = None
    command: str = ""  # e.g. "dr backup run --only rds"
    plan: list[dict] = field(default_factory=list)
    results: list[ResourceResult] = field(default_factory=list)
    error: str | None = None
    dr_version: str = ""
    # kind-specific figures; a drill: rto_seconds, rpo_seconds, rto_objective_seconds,
    # rpo_objective_seconds, recovery_point_time, met (bool)
    summary: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunRecord:
        """Build a record from its dict; unknown keys (from a newer dr) are ignored."""
        known = _known(cls, d)
        known["results"] = [
            ResourceResult(**{**_known(ResourceResult, r),
                              "steps": [StepRecord(**_known(StepRecord, s)) for s in r.get("steps", [])]})
            for r in d.get("results", [])
        ]
        return cls(**known)


def _known(cls: type, d: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


class RunStore:
    """Run records in a StateStore, under runs/<run_id>.json."""

    def __init__(self, store: StateStore):
        self.store = store

    def save(self, record: RunRecord) -> None:
        if record.status not in RUN_STATUSES:
            raise ValueError(f"run status {record.status!r} is not one of {RUN_STATUSES}")
        self.store.put_json(_key(record.run_id), record.to_dict())

    def load(self, run_id: str) -> RunRecord:
        try:
            key = _key(run_id)
        except ValueError:
            raise UsageError(f"{run_id!r} is not a run id; `dr runs list` shows the runs") from None
        document = self.store.get_json(key)
        if document is None:
            raise UsageError(f"run {run_id} not found in {self.store.description}; "
                             "`dr runs list` shows the runs")
        return _decode(document, key, self.store)

    def list(self, kind: str | None = None, limit: int | None = None) -> list[RunRecord]:
        """Runs, newest first (by the run id's timestamp, then started_at).

        With `limit`, only records that can make the cut are read (ids carry their start
        second), so listing the last few runs stays cheap as the history grows.
        """
        ids = [k[len(RUNS_PREFIX):-len(".json")] for k in self.store.list_keys(RUNS_PREFIX)
               if k.endswith(".json") and "/" not in k[len(RUNS_PREFIX):]]
        if kind is not None:
            ids = [i for i in ids if _id_kind(i) in (kind, None)]
        if limit is not None:
            stamps = sorted((s for s in map(_id_stamp, ids) if s), reverse=True)
            if len(stamps) >= limit > 0:
                cutoff = stamps[limit - 1]
                ids = [i for i in ids if (_id_stamp(i) or cutoff) >= cutoff]
        records = []
        for run_id in ids:
            document = self.store.get_json(_key(run_id))
            if document is not None:  # pruned since the listing
                records.append(_decode(document, _key(run_id), self.store))
        if kind is not None:
            records = [r for r in records if r.kind == kind]
        records.sort(key=_newest_first_key, reverse=True)
        return records if limit is None else records[:max(limit, 0)]


def _key(run_id: str) -> str:
    if "/" in run_id:
        raise ValueError(f"run id {run_id!r} must not contain '/'")
    return validate_key(f"{RUNS_PREFIX}{run_id}.json")


def _id_kind(run_id: str) -> str | None:
    m = _RUN_ID.fullmatch(run_id)
    return m["kind"] if m else None


def _id_stamp(run_id: str) -> str | None:
    m = _RUN_ID.fullmatch(run_id)
    return m["stamp"] if m else None


def _newest_first_key(record: RunRecord) -> tuple:
    started = parse_iso_or_none(record.started_at)
    stamp = _id_stamp(record.run_id)
    from_id = datetime.strptime(stamp, _STAMP).replace(tzinfo=timezone.utc) if stamp else started
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    return (from_id or epoch, started or epoch, record.run_id)


def _decode(document: dict, key: str, store: StateStore) -> RunRecord:
    try:
        return RunRecord.from_dict(document)
    except TypeError as exc:
        raise OperationFailed(f"run record {key} in {store.description} is malformed ({exc})",
                              hint="restore it from a backup or delete it") from exc
