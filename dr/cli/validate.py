"""`dr validate`: check dr.yaml (and, with --readiness, that the DR region can take over)."""

from __future__ import annotations

import argparse

from dr.cli.app import App, Outcome
from dr.errors import EXIT_BREACH


def register(sub) -> None:
    p = sub.add_parser("validate", help="check dr.yaml",
                       description="Check dr.yaml: exit 0 if valid, 2 with every problem listed "
                                   "if not.\n\nExample:\n  dr --config prod.yaml validate",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--readiness", action="store_true",
                   help="also check the DR region can take over: the DR key, the state store, fresh "
                        "copies, the stack template and its parameters (secrets read there), and DNS "
                        "(readable, writable with the configured key, a routing policy the flip can change)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, app: App) -> Outcome:
    from dr.config import advice, format_duration

    config = app.config()
    notes = advice(config)
    data = {"valid": True, "config": config.source, "warnings": notes,
            "regions": {"primary": config.regions.primary, "dr": config.regions.dr},
            "rds": [r.name for r in config.rds]}
    lines = [f"{config.source}: valid",
             f"  regions: primary {config.regions.primary}, dr {config.regions.dr}",
             f"  objectives: rpo {format_duration(config.objectives.rpo)}, "
             f"rto {format_duration(config.objectives.rto)}",
             f"  rds: {', '.join(r.name for r in config.rds) or '<none>'}"]
    lines += [f"  warning: {w}" for w in notes]
    code = 0
    if args.readiness:
        from dr.failover.readiness import check_readiness

        checks = check_readiness(app.context())
        data["readiness"] = [c.to_dict() for c in checks]
        lines.append("readiness:")
        lines += [f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in checks]
        if not all(c.ok for c in checks):
            code = EXIT_BREACH
            lines.append("The DR region is not ready: fix the failing checks above.")
    return Outcome(data=data, text="\n".join(lines), exit_code=code)
