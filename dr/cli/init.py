"""`dr init`: write a commented starter dr.yaml (or one filled from `terraform output -json`,
by dr.config.from_terraform)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dr.cli.app import App, Outcome
from dr.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser("init", help="write a commented starter dr.yaml",
                       description="Write a commented starter dr.yaml (to --config, default ./dr.yaml).\n\n"
                                   "Example:\n"
                                   "  dr init\n"
                                   "  terraform -chdir=terraform/examples/complete output -json > outputs.json\n"
                                   "  dr init --from-terraform outputs.json",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.add_argument("--from-terraform", metavar="OUTPUTS.json",
                   help="fill regions, kms.dr_key, state.bucket, notify.sns_topic (and commented "
                        "backup destinations) from `terraform output -json` of "
                        "terraform/examples/complete ('-' reads stdin)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, app: App) -> Outcome:
    from dr.config import STARTER_CONFIG
    from dr.config.from_terraform import config_from_terraform

    path = Path(app.config_path)
    if path.exists() and not args.force:
        raise UsageError(f"{path} already exists; nothing written",
                         hint="pass --force to overwrite it, or --config OTHER.yaml")
    if args.from_terraform:
        text, values = config_from_terraform(read_outputs(args.from_terraform), str(path))
        path.write_text(text)
        return Outcome(
            data={"written": str(path), "from_terraform": args.from_terraform, **values},
            text=f"Wrote {path} from the Terraform outputs in {args.from_terraform}: regions "
                 f"{values['primary_region']} -> {values['dr_region']}, key {values['dr_key']}, "
                 f"state bucket {values['state_bucket']}.\n"
                 f"Add what to protect (rds, s3, mysql: commented examples are in the file), then run "
                 f"`dr validate` and `dr permissions > dr-policy.json`.",
        )
    path.write_text(STARTER_CONFIG)
    return Outcome(
        data={"written": str(path)},
        text=f"Wrote {path}. Edit it, then run `dr validate`.\n"
             f"To try dr without AWS: `dr sandbox start`, and set aws.endpoint_url to the "
             f"endpoint it prints.",
    )


def read_outputs(source: str) -> dict[str, Any]:
    """`terraform output -json` from the file `source` ('-': stdin) as {name: value}."""
    from dr.config.from_terraform import parse_outputs

    try:
        raw = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--from-terraform: cannot read {source}: {exc.strerror or exc}") from None
    return parse_outputs(raw, source)
