"""Backup kinds: a plain name -> kind registry, filled here and only here.

    for kind in KINDS.values():
        for resource in kind.resources(config): ...

The contract is dr/backup/kind.py. Adding a kind is one module in this package and one entry in
the tuple below; the service, the CLI, the scheduler, the IAM policy, readiness and the report
pick it up from here.
"""

from __future__ import annotations

from dr.backup.kind import BackupKind
from dr.backup.kinds.mysql import MysqlBackupKind
from dr.backup.kinds.rds import RdsBackupKind
from dr.backup.kinds.s3 import S3BackupKind

__all__ = ["KINDS", "BackupKind", "kind_of", "register", "unregister"]

KINDS: dict[str, BackupKind] = {}


def register(kind: BackupKind) -> BackupKind:
    """Add a kind under its `name`; a second kind with the same name is an error."""
    if kind.name in KINDS:
        raise ValueError(f"backup kind {kind.name!r} is registered twice "
                         f"({type(KINDS[kind.name]).__qualname__} and {type(kind).__qualname__})")
    KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind (tests that register a toy kind take it out again)."""
    KINDS.pop(name, None)


def kind_of(config, name: str) -> BackupKind | None:
    """The kind of the configured resource `name` (None: no backup kind has it)."""
    for kind in KINDS.values():
        if any(r.name == name for r in kind.resources(config)):
            return kind
    return None


for _kind in (RdsBackupKind(), S3BackupKind(), MysqlBackupKind()):
    register(_kind)
