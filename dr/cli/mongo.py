"""`dr mongo status`: replica-set health across regions; --watch polls, --metrics-port exports."""

from __future__ import annotations

import argparse
import json
import sys

from dr.cli.app import App, Outcome
from dr.errors import ConfigError, UsageError

DESCRIPTION = """\
Check each MongoDB replica set in dr.yaml: member states, replication lag (from one
replSetGetStatus document), each member's oplog window, and what losing each region would leave
(votes, an electable primary, w:majority acknowledgements). Exit 3 if any finding is critical.

With --watch, poll every SECONDS and print what changed; with --output json each poll is one JSON
document on stdout. --metrics-port serves Prometheus metrics while watching.

Example:
  dr mongo status
  dr mongo status --name app-rs --output json
  dr mongo status --watch 30 --metrics-port 9216
"""


def register(sub) -> None:
    from dr.cli import describe

    p = sub.add_parser("mongo", help="MongoDB replica-set health across regions", description=describe(
        "Watch what MongoDB replicates by itself across regions: each member's lag, the oplog window, "
        "and whether losing a region still leaves a majority.", "dr mongo status",
        "dr mongo status --name app-rs --watch 30s"))
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    sp = verbs.add_parser("status", help="replica-set health across regions (exit 3 if at risk)",
                          description=DESCRIPTION,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    sp.add_argument("--name", help="only this mongo entry of dr.yaml")
    sp.add_argument("--watch", type=_seconds, metavar="SECONDS",
                    help="poll every SECONDS (e.g. 30 or 1m) and print what changed; Ctrl-C stops")
    sp.add_argument("--metrics-port", type=int, metavar="PORT",
                    help="with --watch: serve Prometheus metrics on http://ADDRESS:PORT/metrics")
    sp.add_argument("--metrics-address", default="127.0.0.1", metavar="ADDRESS",
                    help="address for --metrics-port (default 127.0.0.1)")
    sp.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                    help="per-member connect/answer timeout (default: mongo[].timeout, 5s)")
    sp.add_argument("--polls", type=int, help=argparse.SUPPRESS)  # tests: stop after N polls
    sp.set_defaults(handler=status)


def _seconds(text: str) -> float:
    from dr.config import parse_duration

    try:
        value = float(text)
    except ValueError:
        try:
            value = parse_duration(text).total_seconds()
        except Exception:
            raise argparse.ArgumentTypeError(
                f"expected seconds or a duration like 30s, 1m: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive duration, got {text!r}")
    return value


def status(args: argparse.Namespace, app: App) -> Outcome:
    from dr.clock import Clock
    from dr.mongo.service import check_sets, results_dict, results_exit_code
    from dr.render.mongo import results_text

    config = app.config()
    resources = _selected(config, args.name)
    if args.metrics_port is not None and args.watch is None:
        raise UsageError("--metrics-port serves metrics while --watch polls",
                         hint="add --watch SECONDS, e.g. --watch 30")
    clock = app.clock or Clock()

    def check():
        return check_sets(resources, config.regions.primary, dr_region=config.regions.dr,
                          timeout=args.timeout, clock=clock)

    if args.watch is None:
        results = check()
        if len(results) == 1 and results[0].error is not None:
            raise results[0].error
        return Outcome(data=results_dict(results), text=results_text(results),
                       exit_code=results_exit_code(results))
    return _watch(args, app, check, clock)


def _selected(config, name: str | None):
    if not config.mongo:
        raise ConfigError(f"no mongo replica sets in {config.source}",
                          hint="add a `mongo:` entry (see `dr init` for a commented example)")
    if name is None:
        return list(config.mongo)
    chosen = [r for r in config.mongo if r.name == name]
    if not chosen:
        known = ", ".join(r.name for r in config.mongo)
        raise ConfigError(f"no mongo entry named {name!r} in {config.source} (known: {known})")
    return chosen


def _watch(args: argparse.Namespace, app: App, check, clock) -> Outcome:
    """Each poll is printed as it happens; the last one is returned (and so emitted by the App)."""
    from dr.mongo.metrics import MetricsServer
    from dr.mongo.service import results_exit_code
    from dr.mongo.watch import watch
    from dr.render.mongo import poll_text, results_text

    server = None
    if args.metrics_port is not None:
        server = MetricsServer(args.metrics_port, args.metrics_address).start()
        print(f"serving Prometheus metrics on {server.url}", file=sys.stderr, flush=True)
    final: dict = {}

    def on_poll(poll, last: bool) -> None:
        if server is not None:
            server.update(poll.results)
        text = results_text(poll.results) if poll.index == 1 else poll_text(poll)
        if last:
            final.update(poll=poll, text=text)
        elif app.output == "json":
            json.dump(poll.to_dict(), sys.stdout, indent=2, sort_keys=True, default=str)
            sys.stdout.write("\n")
            sys.stdout.flush()
        else:
            print(text, flush=True)

    if app.output == "text" and sys.stderr.isatty():
        print(f"Watching every {args.watch:g}s; you may safely press Ctrl-C.", file=sys.stderr)
    try:
        watch(check, args.watch, clock=clock, on_poll=on_poll, polls=args.polls)
    finally:
        if server is not None:
            server.stop()
    poll = final["poll"]
    return Outcome(data=poll.to_dict(), text=final["text"], exit_code=results_exit_code(poll.results))
