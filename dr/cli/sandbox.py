"""`dr sandbox start|stop|status`: a local two-region AWS for trying every command."""

from __future__ import annotations

import argparse
from pathlib import Path

from dr.cli.app import App, Outcome
from dr.errors import EXIT_FAILED, EXIT_OK, UsageError


def register(sub) -> None:
    p = sub.add_parser(
        "sandbox", help="a local two-region AWS simulation (no AWS account needed)",
        description="Run a local AWS simulation (moto) on 127.0.0.1 in the background.\n\n"
                    "Example:\n  dr sandbox start --seed\n"
                    "  dr --config dr.sandbox.yaml backup run\n  dr sandbox stop",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    from dr.cli import describe

    sp = verbs.add_parser("start", help="start it (no-op if running); prints the endpoint", description=describe(
        "Start the two-region AWS simulation in the background (nothing happens if it runs already) and "
        "print its endpoint. With --seed, also create the demo world (seeding again changes nothing) and "
        "write dr.sandbox.yaml for it.", "dr sandbox start --seed", "dr sandbox start --port 4600"))
    sp.add_argument("--port", type=int, default=4566, help="the port on 127.0.0.1 to listen on (default 4566)")
    sp.add_argument("--seed", action="store_true",
                    help="create the demo world and write dr.sandbox.yaml for it")
    sp.set_defaults(handler=start)
    verbs.add_parser("stop", help="stop it", description=describe(
        "Stop the background simulation (what it held is gone).", "dr sandbox stop")).set_defaults(handler=stop)
    verbs.add_parser("status", help="is it running, and where", description=describe(
        "Say whether the simulation runs, and its endpoint; exit 1 when it does not.",
        "dr sandbox status")).set_defaults(handler=status)


def start(args: argparse.Namespace, app: App) -> Outcome:
    from dr.sandbox import server

    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: expected 1-65535")
    st = server.start(args.port)
    lines = [f"dr sandbox running at {st.endpoint} (pid {st.pid})",
             "Put this in dr.yaml to use it:", f'  aws: {{endpoint_url: "{st.endpoint}"}}']
    data = st.to_dict()
    if args.seed:
        from dr.aws import AwsSession
        from dr.sandbox import world

        w = world.seed(AwsSession(endpoint_url=st.endpoint))
        path = Path("dr.sandbox.yaml")
        path.write_text(world.config_text(st.endpoint, "./.dr-state"))
        data.update(seeded=True, config=str(path), dr_key=w.dr_key_arn)
        lines += [f"Seeded: RDS instance {world.INSTANCE} and Aurora cluster {world.CLUSTER} in "
                  f"{world.PRIMARY}, key {world.DR_KEY_ALIAS} in {world.DR}.",
                  f"Wrote {path}. Try: dr --config {path} backup run"]
    return Outcome(data=data, text="\n".join(lines))


def stop(args: argparse.Namespace, app: App) -> Outcome:
    from dr.sandbox import server

    st = server.stop()
    return Outcome(data=st.to_dict(), text="dr sandbox stopped" if st.pid else
                   "dr sandbox was not running")


def status(args: argparse.Namespace, app: App) -> Outcome:
    from dr.sandbox import server

    st = server.status()
    text = f"running at {st.endpoint} (pid {st.pid})" if st.running else "not running"
    return Outcome(data=st.to_dict(), text=text, exit_code=EXIT_OK if st.running else EXIT_FAILED)
