"""`dr runbook describe|plan|validate`: the step types, and a runbook's DAG before it runs."""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path
from typing import Any

from dr.cli.app import App, Outcome
from dr.errors import UsageError
from dr.render.runbook import plan_text, step_type_text, validated_text

DEFAULT_RUNBOOK = "the shipped failover.yaml"


def register(sub) -> None:
    p = sub.add_parser("runbook", help="runbook step types, plans and validation",
                       description="Runbooks are YAML DAGs of typed steps (runbooks/FORMAT.md).\n\n"
                                   "Example:\n  dr runbook describe rds.restore\n"
                                   "  dr runbook plan --runbook runbooks/drill.yaml\n"
                                   "  dr runbook validate runbooks/failover.yaml",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    from dr.cli import describe as text

    dp = verbs.add_parser("describe", help="step types: parameters, IAM actions, an example", description=text(
        "Every step type a runbook may use (or one): what it does, its parameters with their types and "
        "defaults, its outputs, the IAM actions it needs, and an example.", "dr runbook describe",
        "dr runbook describe dns.flip"))
    dp.add_argument("type", nargs="?", help="one step type (default: all)")
    dp.set_defaults(handler=describe)
    pp = verbs.add_parser("plan", help="the runbook's DAG in batches, references resolved where known",
                          description=text("The steps of a runbook in the batches they can run in, with "
                                           "what each needs and the references resolved where they are "
                                           "known before the run.", "dr runbook plan",
                                           "dr runbook plan --runbook runbooks/failover.yaml"))
    pp.add_argument("--runbook", default=None, metavar="PATH",
                    help=f"the runbook (default: {DEFAULT_RUNBOOK})")
    pp.set_defaults(handler=plan)
    vp = verbs.add_parser("validate", help="check a runbook: exit 0 if valid, 2 with every problem",
                          description=text("Check a runbook against dr.yaml without running anything: "
                                           "exit 0 if it is valid, 2 with every problem, its file and line.",
                                           "dr runbook validate runbooks/drill.yaml"))
    vp.add_argument("path", help="the runbook file")
    vp.set_defaults(handler=validate)


# -- describe ---------------------------------------------------------------------------------


def type_info(cls: Any) -> dict[str, Any]:
    return {"name": cls.name, "description": cls.description,
            "params": [{"name": p.name, "type": p.type, "required": p.required, "default": p.default,
                        "help": p.help} for p in cls.params],
            "outputs": list(cls.outputs), "iam_actions": list(cls.iam_actions), "example": cls.example}


def describe(args: argparse.Namespace, app: App) -> Outcome:
    from dr.runbook.steps import REGISTRY

    if args.type is None:
        chosen = [REGISTRY[name] for name in sorted(REGISTRY)]
    elif args.type in REGISTRY:
        chosen = [REGISTRY[args.type]]
    else:
        close = difflib.get_close_matches(args.type, list(REGISTRY), n=1)
        raise UsageError(f"unknown step type {args.type!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                         hint=f"known types: {', '.join(sorted(REGISTRY))}")
    text = "\n\n".join(step_type_text(cls) for cls in chosen)
    return Outcome(data=[type_info(cls) for cls in chosen], text=text)


# -- plan and validate --------------------------------------------------------------------------


def _config_or_none(app: App):
    """The config when there is one (a broken one is an error); None when there is no file."""
    if app._config is None and not Path(app.config_path).exists():
        return None
    return app.config()


def plan(args: argparse.Namespace, app: App) -> Outcome:
    from dr.runbook import load_runbook

    from dr.failover.service import runbook_path

    config = _config_or_none(app)
    data = plan_data(load_runbook(runbook_path("failover", args.runbook), config), config)
    return Outcome(data=data, text=plan_text(data))


def plan_data(runbook: Any, config: Any) -> dict[str, Any]:
    """The plan as data (`--output json`; `dr drill` / `dr restore --dry-run` can print it with
    plan_text): batches of steps with parameters resolved where known before the run."""
    from dr.runbook import plan_batches

    return {"runbook": runbook.name, "source": runbook.source, "config": config.source if config else None,
            "batches": [[_step_data(s, runbook, config) for s in batch] for batch in plan_batches(runbook)],
            "hooks": [{"id": h.id, "type": h.type, "at": h.phase} for h in runbook.hooks],
            "rto_gates": list(runbook.rto_gates())}


def _step_data(step: Any, runbook: Any, config: Any) -> dict[str, Any]:
    from dr.config import format_duration
    from dr.runbook.refs import RefError, resolve, undefer
    from dr.runbook.scope import Scope

    scope = Scope(config=config, params=runbook.params, preview=True)
    try:
        shown = undefer(resolve(step.params, scope.lookup))
    except RefError:
        shown = step.params
    return {"id": step.id, "type": step.type, "needs": list(step.needs),
            "implied_needs": [n for n in step.needs if n not in step.explicit_needs], "with": shown,
            "timeout": format_duration(step.timeout) if step.timeout else None, "retries": step.retries,
            "teardown": step.has_teardown, "rto_end": step.rto_end}


def validate(args: argparse.Namespace, app: App) -> Outcome:
    from dr.runbook import load_runbook, plan_batches

    config = _config_or_none(app)
    runbook = load_runbook(args.path, config)
    batches = plan_batches(runbook)
    text = validated_text(args.path, runbook, len(batches), config is not None)
    return Outcome(data={"valid": True, "runbook": runbook.name, "path": str(args.path),
                         "steps": len(runbook.steps), "batches": len(batches), "hooks": len(runbook.hooks),
                         "config_checked": config is not None}, text=text)
