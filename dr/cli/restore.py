"""`dr restore --to-region REGION` (failover) and `dr restore mysql` (a logical backup)."""

from __future__ import annotations

import argparse

from dr.cli import drill


def register(sub) -> None:
    p = sub.add_parser(
        "restore", help="fail over to the DR region, or restore a MySQL backup",
        description="Fail over for real: runbooks/failover.yaml restores the newest copy in the DR "
                    "region, relaunches the stack there, waits for health and moves DNS. Prints "
                    "the plan and asks first (or --yes). Refuses when the newest copy is older "
                    "than the RPO objective unless --accept-data-loss.\n\nExample:\n"
                    "  dr restore --to-region us-west-2 --dry-run\n"
                    "  dr restore --to-region us-west-2 --yes\n"
                    "  dr restore --resume failover-20261126T130000Z-3f9a --to-region us-west-2 --yes\n"
                    "  dr restore --failback --to-region us-east-1 --yes",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    drill.register_restore(p)
    p.set_defaults(handler=_dispatch)
    verbs = p.add_subparsers(dest="verb", metavar="KIND")
    verbs.required = False
    register_mysql(verbs)


def register_mysql(verbs) -> None:
    """Filled in by the MySQL backup support (dr restore mysql)."""


def _dispatch(args: argparse.Namespace, app):
    from dr.errors import UsageError

    if args.to_region is None:
        raise UsageError("dr restore needs --to-region REGION (or a kind, e.g. dr restore mysql)")
    return drill.restore_region(args, app)
