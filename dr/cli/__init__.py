"""`dr` command line: parse, build a context, call a service, render, map the outcome to an exit code.

This module is the one place where errors become messages and exit codes. Heavy imports (boto3,
services) happen inside command handlers so `dr --version` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from dr import __version__
from dr.cli import (backup, demo, drill, init, keygen, mongo, permissions, report, restore,
                    runbook, runs, sandbox, schedule, validate)
from dr.cli.app import App, Outcome
from dr.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, DrError

COMMANDS = (init, validate, backup, schedule, report, mongo, drill, restore, runbook, runs, keygen,
            permissions, sandbox, demo)

EPILOG = """\
exit codes: 0 success, 1 the operation failed, 2 usage or config error (nothing was done),
            3 a check found a breach, 130 interrupted (rerun to continue)

Example:
  dr init                      # write a commented starter dr.yaml
  dr validate                  # check it
  dr backup run --dry-run      # what a backup pass would do
  dr backup run                # do it
  dr backup list               # recovery points in both regions, newest first
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own exit code 2 matches our usage code
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"dr: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dr", description="Disaster recovery and cross-region replication for AWS.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dr {__version__}")
    parser.add_argument("--config", metavar="PATH",
                        help="dr.yaml to use (default: $DR_CONFIG or ./dr.yaml)")
    parser.add_argument("--output", choices=("text", "json"), default="text",
                        help="json: one JSON document on stdout; logs stay on stderr")
    parser.add_argument("--profile", help="AWS profile (overrides aws.profile)")
    parser.add_argument("--endpoint-url", metavar="URL",
                        help="AWS endpoint, e.g. a `dr sandbox` (overrides aws.endpoint_url and "
                             "$DR_ENDPOINT_URL)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in COMMANDS:
        module.register(sub)
    return parser


def _setup_logging(verbose: bool) -> None:
    # Progress (INFO) shows on a terminal; piped or in cron, only warnings and errors.
    level = logging.DEBUG if verbose else (logging.INFO if sys.stderr.isatty() else logging.WARNING)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(message)s")
    # Never DEBUG for the AWS and HTTP libraries, even with -v: botocore's debug log prints
    # response bodies, which include the plaintext data keys KMS returns.
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug", "s3transfer", "pymongo"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    app = App(
        config_path=args.config or os.environ.get("DR_CONFIG") or "dr.yaml",
        output=args.output, profile=args.profile, endpoint_url=args.endpoint_url,
        command="dr " + " ".join(argv),
    )
    try:
        outcome: Outcome = args.handler(args, app)
    except DrError as exc:
        return _fail(app, str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _fail(app, "interrupted", EXIT_INTERRUPTED)
    except Exception as exc:  # a bug or an answer dr did not expect: still one message, exit 1
        logging.getLogger("dr").debug("internal error", exc_info=True)
        return _fail(app, f"internal error: {type(exc).__name__}: {exc} (rerun with -v for "
                          "the traceback; please report it)", EXIT_FAILED)
    app.emit(outcome)
    return outcome.exit_code


def _fail(app: App, message: str, code: int) -> int:
    print(f"dr: error: {message}", file=sys.stderr)
    if app.output == "json":
        app.emit(Outcome(data={"error": message, "exit_code": code}, exit_code=code))
    return code
