"""`dr` command line: parse, build a context, call a service, render, map the outcome to an exit code.

This module is the one place where errors (DrError and anything unexpected) become messages and
exit codes. A run that finished but found a breach (RPO/RTO over objective, a replica set at
risk, copies that differ) is not an error: its service judges it and names the code from
dr/errors.py's table (EXIT_BREACH), and the handler passes it on. Heavy imports (boto3, services)
happen inside command handlers so `dr --version` stays fast.
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


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions wrapped to the terminal paragraph by paragraph; indented lines (examples)
    kept as they are."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        out = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            if lines and not any(line.startswith(" ") for line in lines[1:]) and not lines[0].startswith(" "):
                out.append(textwrap.fill(" ".join(lines), width, initial_indent=indent, subsequent_indent=indent))
            else:
                out.append("\n".join(indent + line for line in lines))
        return "\n\n".join(out)


def describe(summary: str, *examples: str) -> str:
    """A command's description: what it does, then `Example:` lines (one command each)."""
    return summary + "\n\nExample:\n" + "\n".join(f"  {e}" for e in examples)


class UsageExit(Exception):
    """The command line is wrong (argparse's verdict); main() turns it into exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own exit code 2 matches our usage code
        self.print_usage(sys.stderr)
        raise UsageExit(message)


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every command takes. Also added to each command's parser, without defaults,
    so they may come after the command too (`dr backup list --config x.yaml`)."""
    default = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    parser.add_argument("--config", metavar="PATH", default=default(None),
                        help="dr.yaml to use (default: $DR_CONFIG or ./dr.yaml)")
    parser.add_argument("--output", choices=("text", "json"), default=default("text"),
                        help="json: one JSON document on stdout; logs stay on stderr")
    parser.add_argument("--profile", default=default(None), help="AWS profile (overrides aws.profile)")
    parser.add_argument("--endpoint-url", metavar="URL", default=default(None),
                        help="AWS endpoint, e.g. a `dr sandbox` (overrides aws.endpoint_url and "
                             "$DR_ENDPOINT_URL)")
    parser.add_argument("-v", "--verbose", action="store_true", default=default(False),
                        help="debug logs on stderr")


def _commands(parser: argparse.ArgumentParser):
    """Every command and sub-command parser under `parser`."""
    for action in parser._actions:  # argparse has no public walk
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield child
                yield from _commands(child)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dr", description="Disaster recovery and cross-region replication for AWS.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dr {__version__}")
    _global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in COMMANDS:
        module.register(sub)
    for command in _commands(parser):
        command.formatter_class = HelpFormatter
        group = command.add_argument_group("global options (also accepted before the command)")
        _global_options(group, top=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageExit as exc:
        print(f"dr: error: {exc}", file=sys.stderr)
        if _wants_json(argv):  # "one JSON document on stdout, also on errors"
            App(output="json").emit(Outcome(data={"error": str(exc), "exit_code": EXIT_USAGE}))
        return EXIT_USAGE
    from dr.obs.logging import configure

    configure(verbose=args.verbose)
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


def _wants_json(argv: Sequence[str]) -> bool:
    return any(a == "--output=json" or (a == "--output" and argv[i + 1:i + 2] == ["json"])
               for i, a in enumerate(argv))


def _fail(app: App, message: str, code: int) -> int:
    print(f"dr: error: {message}", file=sys.stderr)
    if app.output == "json":
        app.emit(Outcome(data={"error": message, "exit_code": code}, exit_code=code))
    return code
