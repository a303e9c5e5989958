"""`dr permissions`: the least-privilege IAM policy for what dr.yaml enables, as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dr.cli.app import App, Outcome
from dr.errors import EXIT_BREACH, UsageError

EPILOG = """\
The policy covers what the config enables: the DR key, the state bucket, each rds/s3/mysql
entry, notify.sns_topic, and (with a `stack` section) the step types of the shipped runbooks.
Resources are ARNs from dr.yaml; `*` only where AWS has no resource-level permissions.

Examples:
  dr permissions --account 123456789012 > dr-policy.json   # for terraform/modules/foundation
  dr permissions --check dr-policy.json                     # CI: exit 3 if the file drifted
  dr permissions --runbook runbooks/custom.yaml             # also a custom runbook's step types
  dr permissions --all                                      # every feature dr has
"""


def register(sub) -> None:
    p = sub.add_parser("permissions", help="the IAM policy (JSON) for the features dr.yaml enables",
                       description="Print a least-privilege IAM policy document for the features "
                                   "enabled in dr.yaml (stdout holds only the JSON).",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--account", metavar="ID",
                   help="AWS account id for the ARNs (default: the account in dr.yaml's ARNs, else *)")
    p.add_argument("--all", action="store_true",
                   help="every feature and step type, not only those dr.yaml enables")
    p.add_argument("--runbook", action="append", default=[], metavar="PATH",
                   help="also cover the step types of this runbook (repeatable)")
    p.add_argument("--check", metavar="FILE",
                   help="compare with a policy file instead of printing: exit 0 if it matches, "
                        "3 if it differs (each difference is listed)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, app: App) -> Outcome:
    from dr.permissions import diff_policies, policy_for, render, runbook_step_types

    config = app.config()
    step_types = [t for path in args.runbook for t in runbook_step_types(path)]
    policy = policy_for(config, args.account, all_features=args.all, step_types=step_types)
    if args.check is None:
        return Outcome(data=policy, text=render(policy))
    path = Path(args.check)
    try:
        on_file = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--check: cannot read {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"--check: {path} is not JSON: {exc}") from None
    if not isinstance(on_file, dict):
        raise UsageError(f"--check: {path} is not an IAM policy document (a JSON object)")
    differences = diff_policies(policy, on_file)
    command = "dr permissions" + (f" --account {args.account}" if args.account else "") + \
        (" --all" if args.all else "") + "".join(f" --runbook {r}" for r in args.runbook)
    if not differences:
        return Outcome(data={"file": str(path), "in_sync": True, "differences": []},
                       text=f"{path} matches what {app.config_path} needs")
    text = "\n".join([f"{path} differs from what {app.config_path} needs:"]
                     + [f"  {line}" for line in differences]
                     + [f"fix: {command} > {path}"])
    return Outcome(data={"file": str(path), "in_sync": False, "differences": differences},
                   text=text, exit_code=EXIT_BREACH)
