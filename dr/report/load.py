"""Reading run records for the report and the scheduler, defensively.

A malformed record (not JSON, wrong shape, unparseable times) is skipped; the warning that
names it is returned (the caller prints or logs it) and everything else still counts. Records
are found by key (`runs/<kind>-<stamp>-<hex>`), so a report over 30 days reads the backups and
drills of those days (plus the few older ones that hold each resource's newest copy before the
period), not the whole history.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from dr.clock import parse_iso_or_none
from dr.config import Config
from dr.report.compute import copy_events, verifications
from dr.report.model import CopyEvent
from dr.state.base import StateStore
from dr.state.local import LocalStore
from dr.state.records import RunRecord

UTC = timezone.utc
RUNS = "runs/"
_RUN_KEY = re.compile(r"runs/(?P<kind>[a-z0-9][a-z0-9-]*?)-(?P<stamp>\d{8}T\d{6}Z)-[0-9a-f]{4}\.json")
SLACK = timedelta(days=1)  # a run that started the day before the period may finish inside it
MAX_OLDER_READS = 500  # how far back to look for each resource's newest copy before the period


class MalformedRecord(ValueError):
    pass


@dataclass
class Loaded:
    records: list[RunRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    read: int = 0


def parse_record(document: dict, key: str) -> RunRecord:
    """A RunRecord from its stored document, or MalformedRecord saying what is wrong."""
    try:
        record = RunRecord.from_dict(document)
    except Exception as exc:  # noqa: BLE001 - any shape error means "malformed"
        raise MalformedRecord(f"{type(exc).__name__}: {exc}") from None
    for name in ("run_id", "kind", "status", "started_at"):
        if not isinstance(getattr(record, name), str):
            raise MalformedRecord(f"{name} is not a string")
    if parse_iso_or_none(record.started_at) is None:
        raise MalformedRecord(f"started_at {record.started_at!r} is not an ISO time with a timezone")
    if not isinstance(record.summary, dict):
        raise MalformedRecord("summary is not an object")
    for i, r in enumerate(record.results):
        if not isinstance(r.name, str) or not isinstance(r.status, str):
            raise MalformedRecord(f"results[{i}] has no name or status")
        if not isinstance(r.recovery_points, list) or not all(isinstance(p, dict) for p in r.recovery_points):
            raise MalformedRecord(f"results[{i}].recovery_points is not a list of objects")
    return record


def _read(store: StateStore, key: str) -> tuple[RunRecord | None, str | None]:
    try:
        document = store.get_json(key)
        if document is None:  # pruned since the listing
            return None, None
        return parse_record(document, key), None
    except Exception as exc:  # noqa: BLE001 - skip, name it, go on
        reason = str(exc).splitlines()[0]
        return None, f"skipped malformed run record {key} in {store.description}: {reason}"


def _read_many(store: StateStore, keys: list[str], out: Loaded) -> list[RunRecord]:
    workers = 1 if isinstance(store, LocalStore) or len(keys) < 8 else 16
    if workers == 1:
        results = [_read(store, k) for k in keys]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dr-report") as pool:
            results = list(pool.map(lambda k: _read(store, k), keys))
    got = []
    for record, warning in results:
        out.read += 1
        if warning:
            out.warnings.append(warning)
        elif record is not None:
            got.append(record)
    return got


def run_keys(store: StateStore, prefix: str = RUNS) -> list[tuple[str, str | None, str | None]]:
    """(key, kind, start stamp `YYYYmmddTHHMMSSZ`) of every run record under `prefix`; kind and
    stamp are None when the key does not follow the run-id pattern. Stamps sort as times do."""
    out = []
    for key in store.list_keys(prefix):
        if not key.endswith(".json") or "/" in key[len(RUNS):]:
            continue
        m = _RUN_KEY.fullmatch(key)
        out.append((key, m["kind"], m["stamp"]) if m else (key, None, None))
    return out


def _stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def load_records(store: StateStore, config: Config, now: datetime, days: int) -> Loaded:
    """Backup, verify and drill records for the report over the `days` before `now`."""
    start = now - timedelta(days=days)
    first = _stamp(start - SLACK)
    out = Loaded()
    keys = [k for k in run_keys(store) if k[1] in ("backup", "drill", "verify", None)]
    recent = [k for k, _, stamp in keys if stamp is None or stamp >= first]
    out.records = _read_many(store, recent, out)

    older = sorted(((s, k, kind) for k, kind, s in keys if s is not None and s < first), reverse=True)
    wanted = {r.name for r in (*config.rds, *config.s3, *config.mysql)}
    covered = _covered_before(out.records, config.regions.dr, start)
    backups = [k for _, k, kind in older if kind == "backup"][:MAX_OLDER_READS]
    for i in range(0, len(backups), 32):
        if wanted <= covered:
            break
        batch = _read_many(store, backups[i:i + 32], out)
        out.records += batch
        covered |= _covered_before(batch, config.regions.dr, start)
    proven = {v.resource for r in out.records if r.kind == "verify" for v in verifications(r)
              if v.status == "verified"}
    wanted_checks = {m.name for m in config.mysql} - proven
    older_checks = [k for _, k, kind in older if kind == "verify"][:MAX_OLDER_READS]
    for i in range(0, len(older_checks), 32):  # the newest verified backup may predate the period
        if not wanted_checks:
            break
        batch = _read_many(store, older_checks[i:i + 32], out)
        out.records += batch
        wanted_checks -= {v.resource for r in batch for v in verifications(r)
                          if v.status == "verified"}
    if not any(r.kind == "drill" for r in out.records):
        for _, key, kind in older:
            if kind == "drill":
                found = _read_many(store, [key], out)
                if found:
                    out.records += found
                    break
    return out


def _covered_before(records: Iterable[RunRecord], dr_region: str, start: datetime) -> set[str]:
    return {e.resource for r in records if r.kind == "backup"
            for e in copy_events(r, dr_region) if e.available_at <= start}


def newest_copies(store: StateStore, config: Config, now: datetime,
                  max_reads: int = 400) -> tuple[dict[str, CopyEvent], list[str]]:
    """The newest DR copy of each resource, reading as few records as it can: today's and
    yesterday's backups first, then this and last month's, then all of them (newest first)."""
    wanted = {r.name for r in (*config.rds, *config.s3, *config.mysql)}
    newest: dict[str, CopyEvent] = {}
    out = Loaded()
    seen: set[str] = set()
    day = timedelta(days=1)
    prefixes = [f"{RUNS}backup-{now:%Y%m%d}", f"{RUNS}backup-{now - day:%Y%m%d}",
                f"{RUNS}backup-{now:%Y%m}", f"{RUNS}backup-{(now.replace(day=1) - day):%Y%m}",
                f"{RUNS}backup-"]
    for prefix in prefixes:
        keys = [k for k, _, s in sorted(run_keys(store, prefix), key=lambda t: t[2] or "", reverse=True)
                if k not in seen]
        for i in range(0, len(keys), 32):
            if wanted <= newest.keys() or out.read >= max_reads:
                return newest, out.warnings
            batch = keys[i:i + 32]
            seen.update(batch)
            for record in _read_many(store, batch, out):
                for e in copy_events(record, config.regions.dr):
                    if e.available_at <= now and (e.resource not in newest
                                                  or e.point_time > newest[e.resource].point_time):
                        newest[e.resource] = e
        if wanted <= newest.keys():
            break
    return newest, out.warnings
