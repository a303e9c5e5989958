"""`dr drill` and `dr restore --to-region`: rehearse the failover, or do it."""

from __future__ import annotations

import argparse
import sys

from dr.cli.app import App, Outcome
from dr.errors import UsageError
from dr.render.runbook import failover_text


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
    p.add_argument("--resume", metavar="RUN_ID", help="continue a drill that did not finish")
    p.add_argument("--take-over", action="store_true",
                   help="with --resume: take the run's lease now, before it expires (if the other "
                        "session is alive after all, it stops at its next renewal)")
    p.set_defaults(handler=drill)


def register_restore(p: argparse.ArgumentParser) -> None:
    p.add_argument("--to-region", metavar="REGION", help="fail over to REGION (the DR region)")
    p.add_argument("--runbook", metavar="PATH", help="another failover runbook")
    p.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--accept-data-loss", action="store_true",
                   help="go ahead even though the newest copy is older than the RPO objective")
    p.add_argument("--resume", metavar="RUN_ID", help="continue a failover that did not finish, from "
                                                     "any machine")
    p.add_argument("--take-over", action="store_true",
                   help="with --resume: take the run's lease now, before it expires (if the other "
                        "session is alive after all, it stops at its next renewal)")
    p.add_argument("--failback", action="store_true",
                   help="run runbooks/failback.yaml (move back to the primary region)")
    p.add_argument("--from-run", metavar="RUN_ID",
                   help="with --failback: the failover run whose saved DNS values to put back "
                        "(default: the newest completed failover)")


def drill(args: argparse.Namespace, app: App) -> Outcome:
    from dr.failover import service as failover

    _needs_resume(args)
    ctx = app.context()
    _, result, measured = failover.run(ctx, name="drill", runbook=args.runbook, drill=True,
                                       keep=args.keep, resume=args.resume, take_over=args.take_over)
    return _outcome(result, measured, drill=True, again=_again(app, "drill", result))


def restore_region(args: argparse.Namespace, app: App) -> Outcome:
    from dr.failover import service as failover
    from dr.cli.runbook import plan_data, plan_text

    _needs_resume(args)
    ctx = app.context()
    name = "failback" if args.failback else "failover"
    region = args.to_region
    if not args.failback and region != ctx.config.regions.dr:
        raise UsageError(f"--to-region {region}: dr.yaml's DR region is {ctx.config.regions.dr}",
                         hint="fail over to the DR region, or change regions.dr")
    if args.from_run and not args.failback:
        raise UsageError("--from-run is for --failback")
    params = {"accept_data_loss": True} if args.accept_data_loss else {}
    if args.failback and not args.resume:
        params = {"failover_run": failover.failover_to_undo(ctx, args.from_run)}
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
                                       params=params, region=region, resume=args.resume,
                                       take_over=args.take_over)
    verb = f"restore{' --failback' if args.failback else ''}"
    return _outcome(result, measured, drill=False, again=_again(app, verb, result))


def _needs_resume(args: argparse.Namespace) -> None:
    if args.take_over and not args.resume:
        raise UsageError("--take-over goes with --resume RUN_ID (it takes over that run's lease)")


def _again(app: App, verb: str, result) -> str | None:
    """The exact command that continues this run, or None when there is nothing to continue."""
    if result.status == "completed" or result.dry_run:
        return None
    options = "" if app.config_path == "dr.yaml" else f" --config {app.config_path}"
    if app.endpoint_url:
        options += f" --endpoint-url {app.endpoint_url}"
    if verb == "drill":
        return f"dr{options} drill --resume {result.run_id}"
    return f"dr{options} {verb} --resume {result.run_id} --to-region {result.region} --yes"


def _outcome(result, measured, drill: bool, again: str | None = None) -> Outcome:
    from dr.failover import service as failover

    data = {"run": result.to_dict(), "measured": measured.to_dict() if measured else None,
            "resume_command": again}
    return Outcome(data=data, text=failover_text(result, measured, again),
                   exit_code=failover.exit_code(result, measured, drill))
