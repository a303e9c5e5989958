"""`dr keygen PATH`: a local key for encrypting MySQL backups offline (instead of KMS)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dr.cli.app import App, Outcome
from dr.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser(
        "keygen", help="write a new local backup key (mode 0600) for offline use",
        description="Write a new random 256-bit key to PATH (mode 0600; never overwritten, never "
                    "printed). Point mysql[].key_file at it to encrypt backups without KMS.\n\n"
                    "Keep a copy somewhere safe and OFF this machine: without it the backups "
                    "cannot be read.\n\nExample:\n  dr keygen ~/.config/dr/office.key",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, app: App) -> Outcome:
    from dr.crypto import generate_key_file

    path = Path(args.path).expanduser()
    if path.exists() or path.is_symlink():
        raise UsageError(f"{path} already exists; dr never overwrites a key",
                         hint="choose another path (a lost key means lost backups)")
    key_id = generate_key_file(path)
    return Outcome(data={"path": str(path), "key_id": key_id},
                   text=f"Wrote {path} (key id {key_id}, mode 0600).\n"
                        "Keep a copy off this machine: backups encrypted with it cannot be read "
                        "without it.")
