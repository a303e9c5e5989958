"""`dr drill` and `dr restore --to-region`: rehearse the failover, or do it."""

from __future__ import annotations

import argparse
import sys

from dr.cli.app import App, Outcome
from dr.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser(
        "drill", help="rehearse failover in the DR region without touching production",
        description="Run runbooks/drill.yaml: restore the newest copy and relaunch the stack in the "
                    "DR region under drill names, check health, flip a drill DNS record, measure "
                    "RTO and RPO, tear everything down (unless --keep). Exit 3 if an objective "
                    "was missed.\n\nExample:\n  dr drill\n  dr drill --resume drill-20261126T130000Z-3f9a",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runbook", metavar="PATH", help="another drill runbook")
    p.add_argument("--keep", action="store_true", help="leave what the drill made (billing!)")
    p.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted drill")
    p.set_defaults(handler=drill)


def register_restore(p: argparse.ArgumentParser) -> None:
    p.add_argument("--to-region", metavar="REGION", help="fail over to REGION (the DR region)")
    p.add_argument("--runbook", metavar="PATH", help="another failover runbook")
    p.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--accept-data-loss", action="store_true",
                   help="go ahead even though the newest copy is older than the RPO objective")
    p.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted failover")
    p.add_argument("--failback", action="store_true",
                   help="run runbooks/failback.yaml (move back to the primary region)")


def drill(args: argparse.Namespace, app: App) -> Outcome:
    from dr import failover

    ctx = app.context()
    _, result, measured = failover.run(ctx, name="drill", runbook=args.runbook, drill=True,
                                       keep=args.keep, resume=args.resume)
    return _outcome(result, measured, drill=True)


def restore_region(args: argparse.Namespace, app: App) -> Outcome:
    from dr import failover
    from dr.cli.runbook import plan_data, plan_text

    ctx = app.context()
    name = "failback" if args.failback else "failover"
    region = args.to_region
    if not args.failback and region != ctx.config.regions.dr:
        raise UsageError(f"--to-region {region}: dr.yaml's DR region is {ctx.config.regions.dr}",
                         hint="fail over to the DR region, or change regions.dr")
    params = {"accept_data_loss": True} if args.accept_data_loss else {}
    book, result, _ = failover.run(ctx, name=name, runbook=args.runbook, drill=False,
                                   params=params, region=region, dry_run=True,
                                   resume=args.resume)
    plan = plan_text(plan_data(book, ctx.config))
    if args.dry_run:
        return Outcome(data={"plan": plan_data(book, ctx.config), "dry_run": True},
                       text=f"Plan (dry run: nothing was changed)\n{plan}")
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("a real failover needs confirmation", hint="pass --yes")
        print(plan, file=sys.stderr)
        answer = input(f"Move production to {region}? Type the region name to go ahead: ")
        if answer.strip() != region:
            raise UsageError("not confirmed; nothing was done")
    _, result, measured = failover.run(ctx, name=name, runbook=args.runbook, drill=False,
                                       params=params, region=region, resume=args.resume)
    return _outcome(result, measured, drill=False)


def _outcome(result, measured, drill: bool) -> Outcome:
    from dr import failover

    lines = [f"Run {result.run_id}: {result.status}"]
    for step in result.steps.values():
        took = f"{step.seconds:.1f}s" if step.seconds is not None else "-"
        lines.append(f"  {step.id:<14} {step.type:<18} {step.status:<11} {took:>8}"
                     + (f"  {step.error}" if step.error else ""))
    if measured is not None:
        m = measured
        rto = f"{m.rto_seconds:.1f}s" if m.rto_seconds is not None else "<not reached>"
        rpo = f"{m.rpo_seconds:.0f}s" if m.rpo_seconds is not None else "<unknown>"
        lines.append(f"RTO {rto} (objective {m.rto_objective_seconds:.0f}s), "
                     f"RPO {rpo} (objective {m.rpo_objective_seconds:.0f}s): "
                     + ("met" if m.met else "MISSED"))
    if result.status == "interrupted":
        lines.append(f"Resume with --resume {result.run_id}.")
    data = {"run": result.to_dict(), "measured": measured.to_dict() if measured else None}
    return Outcome(data=data, text="\n".join(lines),
                   exit_code=failover.exit_code(result, measured, drill))
