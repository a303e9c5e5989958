"""`dr schedule [--once]`: the scheduler daemon for the configured backup jobs."""

from __future__ import annotations

import argparse
import logging

from dr.cli.app import App, Outcome, table
from dr.errors import EXIT_FAILED, EXIT_INTERRUPTED, UsageError

DEFAULT_PORT = 9650
log = logging.getLogger("dr.scheduler")

DESCRIPTION = """\
Run each backup job of dr.yaml (every rds, s3 and mysql entry) at its schedule: `every 15m` or a
five-field cron, in UTC unless --timezone says otherwise.

Two schedulers (two machines, or a cron job next to a daemon) never run the same slot twice: each
slot is claimed with an exclusive create in the state store. After downtime a job runs once to
catch up, not once per missed slot. A failed job, or a resource whose newest copy is older than
objectives.rpo, publishes to notify.sns_topic once, and once more when it clears.

The daemon serves /healthz and Prometheus /metrics. SIGTERM or Ctrl-C: no new jobs; running
ones stop at their next step and record where they were (a rerun continues them).

Example:
  dr schedule                            # the daemon; /healthz and /metrics on :9650
  dr schedule --once                     # run what is due now, then exit (cron, EventBridge)
  dr schedule --jitter 2m --json-logs    # starts spread over 2 minutes; JSON log lines
  dr schedule --timezone Europe/Paris    # read cron fields in Paris time
"""


def register(sub) -> None:
    p = sub.add_parser("schedule", help="the scheduler daemon for the configured backup jobs",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--once", action="store_true", help="run the jobs that are due now, then exit")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"/healthz and /metrics port (default {DEFAULT_PORT}; 0: any free port)")
    p.add_argument("--bind", default="127.0.0.1", metavar="ADDRESS",
                   help="address the HTTP server listens on (default 127.0.0.1; 0.0.0.0 in a container)")
    p.add_argument("--no-http", action="store_true", help="no /healthz or /metrics server")
    p.add_argument("--jitter", metavar="DURATION", default=None,
                   help="delay each run by up to this much (e.g. 2m), at most half its interval")
    p.add_argument("--json-logs", action="store_true", help="one JSON object per log line on stderr")
    p.add_argument("--timezone", metavar="TZ", default=None,
                   help="IANA time zone in which cron fields and day boundaries are read (default UTC)")
    p.add_argument("--max-parallel", type=int, default=4, metavar="N",
                   help="jobs running at once, at most (default 4)")
    p.add_argument("--grace", type=float, default=120.0, metavar="SECONDS",
                   help="on SIGTERM/SIGINT, how long to let running jobs stop (default 120)")
    p.add_argument("--spool-dir", metavar="DIR", default=None,
                   help="where records wait while the state store is unreachable "
                        "(default $DR_SPOOL_DIR or ~/.local/state/dr/spool/...)")
    # For tests and rehearsals: a clock that starts at --clock-start and runs --clock-speed times
    # faster than real time, from the real Unix time --clock-anchor (default: when it starts).
    p.add_argument("--clock-start", help=argparse.SUPPRESS)
    p.add_argument("--clock-speed", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument("--clock-anchor", type=float, default=None, help=argparse.SUPPRESS)
    p.set_defaults(handler=run)


def _options(args: argparse.Namespace):
    from datetime import timedelta
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from dr.config import parse_duration
    from dr.scheduler.daemon import Options

    tz = None
    if args.timezone:
        try:
            tz = ZoneInfo(args.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(f"--timezone {args.timezone}: not a known IANA time zone",
                             hint="e.g. UTC, Europe/Paris, America/New_York") from None
    jitter = timedelta(0)
    if args.jitter:
        try:
            jitter = parse_duration(args.jitter)
        except ValueError as exc:
            raise UsageError(f"--jitter: {exc}") from None
    if args.max_parallel < 1:
        raise UsageError("--max-parallel must be at least 1")
    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be from 0 to 65535")
    return Options(tz=tz, jitter=jitter, max_parallel=args.max_parallel, grace=max(args.grace, 0.0))


def _clock(args: argparse.Namespace):
    if not args.clock_start:
        return None
    from dr.scheduler.clocks import ScaledClock
    from dr.clock import parse_iso

    try:
        return ScaledClock(parse_iso(args.clock_start), args.clock_speed, args.clock_anchor)
    except ValueError as exc:
        raise UsageError(f"--clock-start: {exc}") from None


def _signals(scheduler):
    """First SIGTERM/SIGINT: stop cleanly. A second one: interrupt at once (exit 130)."""
    from dr.interrupts import Interrupts

    return Interrupts(log.warning, first="{signal} received: finishing the current steps, then exiting "
                      "(again to force)", on_stop=scheduler.stop, second_forces=True)


def run(args: argparse.Namespace, app: App) -> Outcome:
    from dr.clock import Clock
    from dr.context import make_context, open_store
    from dr.errors import ConfigError
    from dr.obs.logging import configure
    from dr.scheduler.daemon import Scheduler
    from dr.scheduler.jobs import jobs_from_config
    from dr.scheduler.spool import SpoolingStore, default_spool_dir

    options = _options(args)
    configure(verbose=getattr(args, "verbose", False), style="json" if args.json_logs else "timestamped")
    clock = _clock(args)
    if clock is not None:
        app.clock = clock
    config = app.config()
    jobs = jobs_from_config(config)
    if not jobs:
        raise ConfigError(f"{config.source} has no rds, s3 or mysql entries: nothing to schedule")
    spool = args.spool_dir or default_spool_dir(config)
    clock = app.clock or Clock()
    ctx = make_context(config, endpoint_url=app.endpoint_url, profile=app.profile, clock=clock,
                       command=app.command,
                       store=SpoolingStore(lambda: open_store(config, ctx.aws), spool, now=clock.now))
    scheduler = Scheduler(ctx, jobs, options=options)
    if args.once:
        with _signals(scheduler):
            unfinished = scheduler.run_once()
        return _once_outcome(scheduler, unfinished)
    server = None
    if not args.no_http:
        from dr.scheduler.http import HealthServer

        try:
            server = HealthServer(args.bind, args.port, scheduler.health, scheduler.render_metrics).start()
        except OSError as exc:
            raise UsageError(f"cannot listen on {args.bind}:{args.port}: {exc.strerror or exc}",
                             hint="pick another --port, or --no-http") from None
        log.info("serving /healthz and /metrics on http://%s:%d", args.bind, server.port,
                 extra={"event": "http"})
    try:
        with _signals(scheduler):
            unfinished = scheduler.run_forever()
    finally:
        if server is not None:
            server.stop()
    if unfinished:
        return Outcome(data={"stopped": True, "unfinished_jobs": unfinished},
                       text=f"stopped; {unfinished} job(s) had not finished (a rerun continues them)",
                       exit_code=EXIT_INTERRUPTED)
    return Outcome(data={"stopped": True, "unfinished_jobs": 0}, text="stopped cleanly")


def _once_outcome(scheduler, unfinished: int) -> Outcome:
    """One row per job: what --once did with it."""
    from dr.scheduler.jobs import slot_start
    from dr.clock import iso

    now = scheduler.clock.now()
    last: dict[str, dict] = {}
    for event in scheduler.events:
        if event["event"] in ("started", "finished", "claimed-elsewhere", "busy", "store-unavailable",
                              "claimed-locally"):
            last[event["job"]] = {**last.get(event["job"], {}), **event}
    rows, data = [], []
    for name, st in sorted(scheduler.states.items()):
        e = last.get(name)
        if e is None:
            slot = slot_start(st.job.schedule, now, scheduler.options.tz)
            e = {"job": name, "slot": iso(slot), "event": "already-ran"}
        action = {"finished": e.get("status", "?"), "started": "running", "claimed-elsewhere":
                  "claimed by another scheduler", "busy": "previous run still running",
                  "store-unavailable": "state store unreachable", "already-ran": "already ran",
                  "claimed-locally": "running"}.get(e["event"], e["event"])
        rows.append([name, e["slot"], action, e.get("run_id") or "-"])
        data.append({"job": name, "slot": e["slot"], "outcome": action, "run_id": e.get("run_id"),
                     "missed_slots": e.get("missed_slots", 0)})
    failed = [d for d in data if d["outcome"] == "failed"]
    text = "\n".join(table(["JOB", "SLOT", "OUTCOME", "RUN"], rows).splitlines())
    code = EXIT_INTERRUPTED if unfinished or scheduler.stop_event.is_set() else (EXIT_FAILED if failed else 0)
    return Outcome(data={"now": iso(now), "owner": scheduler.options.owner, "jobs": data}, text=text,
                   exit_code=code)
