"""`dr init`: write a commented starter dr.yaml."""

from __future__ import annotations

import argparse
from pathlib import Path

from dr.cli.app import App, Outcome
from dr.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser("init", help="write a commented starter dr.yaml",
                       description="Write a commented starter dr.yaml (to --config, default ./dr.yaml).")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, app: App) -> Outcome:
    from dr.config import STARTER_CONFIG

    path = Path(app.config_path)
    if path.exists() and not args.force:
        raise UsageError(f"{path} already exists; nothing written",
                         hint="pass --force to overwrite it, or --config OTHER.yaml")
    path.write_text(STARTER_CONFIG)
    return Outcome(
        data={"written": str(path)},
        text=f"Wrote {path}. Edit it, then run `dr validate`.\n"
             f"To try dr without AWS: `dr sandbox start`, and set aws.endpoint_url to the "
             f"endpoint it prints.",
    )
