"""Which MySQL backups were proven restorable: one document per resource in the state store.

`verify/mysql/<resource>.json` maps each backup id to the outcome of its newest verification:
`verified` (restored into a scratch database, row counts and checksums equal to the manifest) or
`failed` (it did not restore, or did not match), with when, by which run, and what it cost. An
attempt that could not judge the backup (the verify server unreachable, no verify server) leaves
the backup unverified: that is the verify server's failure, not the backup's.

Why the state store and not a sidecar next to the backup: the report reads the state store only
(no access to the backups needed), verification needs only read access to the backups (a
destination can be write-once, e.g. S3 Object Lock), and every attempt is a `verify` run record
there anyway; this document is the per-backup index of those records, updated with a
compare-and-swap so two verifications never lose each other's result. Prune removes the entries
of the backups it deletes.
"""

from __future__ import annotations

import re
from typing import Any

from dr.errors import OperationFailed
from dr.state.base import StateStore, validate_key

PREFIX = "verify/mysql/"
FORMAT = "dr-mysql-verified/1"
VERIFIED, FAILED = "verified", "failed"


def key(resource: str) -> str:
    return validate_key(PREFIX + re.sub(r"[^A-Za-z0-9._-]", "-", resource) + ".json")


def load(store: StateStore, resource: str) -> dict[str, dict[str, Any]]:
    """backup id → {status, at, run_id, restore_seconds, verify_seconds, error}; {} if none."""
    doc = store.get_json(key(resource))
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return {}
    backups = doc.get("backups")
    return {k: v for k, v in backups.items() if isinstance(v, dict)} if isinstance(backups, dict) else {}


def record(store: StateStore, resource: str, backup_id: str, entry: dict[str, Any]) -> None:
    """Set the outcome of `backup_id`'s newest verification."""
    _update(store, resource, lambda backups: backups.__setitem__(backup_id, entry))


def forget(store: StateStore, resource: str, backup_ids: list[str]) -> None:
    """Drop the entries of backups that no longer exist (prune)."""
    if backup_ids:
        _update(store, resource, lambda backups: [backups.pop(i, None) for i in backup_ids])


def _update(store: StateStore, resource: str, change) -> None:
    k = key(resource)
    for _ in range(8):
        found = store.get_json_versioned(k)
        doc, version = found if found else ({}, None)
        backups = dict(doc.get("backups") or {}) if doc.get("format") == FORMAT else {}
        change(backups)
        if store.put_json_if(k, {"format": FORMAT, "resource": resource, "backups": backups},
                             version) is not None:
            return
    raise OperationFailed(f"could not update {k} in {store.description}: it keeps changing",
                          hint="another verification or prune is writing it; run again")
