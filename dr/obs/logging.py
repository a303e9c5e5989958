"""The one logging set-up of dr: the CLI and the scheduler daemon both call `configure`.

One rule holds at every verbosity: the AWS, HTTP and database client libraries never log at
DEBUG. The AWS SDK's debug log prints whole request and response bodies, and KMS GenerateDataKey /
Decrypt responses carry plaintext data keys; pymongo's and urllib3's can carry credentials. With
`-v`, dr's own loggers go to DEBUG and those libraries to INFO at most.

Two output styles: plain messages (the CLI: progress shown on a terminal, warnings only when
piped) and timestamped lines or one JSON object per line (the scheduler: its log is its output).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import TextIO

from dr.aws import LIBRARY_LOGGERS

# Never below INFO, whatever -v says: their DEBUG output holds secrets (data keys, passwords).
QUIET_LIBRARIES = LIBRARY_LOGGERS + ("werkzeug", "pymongo", "pymysql", "schedule", "dns")
FIELDS = ("event", "job", "slot", "run_id", "status", "duration_seconds", "missed_slots", "owner",
          "error", "key")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the scheduler's fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                doc[name] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


def configure(*, verbose: bool = False, style: str = "plain", level: int | None = None,
              stream: TextIO | None = None) -> None:
    """Set up the root logger once per process (a later call replaces the handler).

    style: `plain` (message only), `timestamped` or `json`. level: the root level; by default
    DEBUG with `verbose`, else INFO on a terminal and WARNING when piped (plain), INFO for the
    daemon styles."""
    stream = stream or sys.stderr
    if level is None:
        if verbose:
            level = logging.DEBUG
        elif style == "plain":
            level = logging.INFO if stream.isatty() else logging.WARNING
        else:
            level = logging.INFO
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if style == "json" else logging.Formatter(
        "%(message)s" if style == "plain" else "%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
    handler._dr_handler = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_dr_handler", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet()


def quiet() -> None:
    """The libraries in QUIET_LIBRARIES at WARNING, or INFO when dr itself is at DEBUG: never DEBUG."""
    verbose = logging.getLogger().getEffectiveLevel() <= logging.DEBUG
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)


def silence(name: str) -> None:
    """Only errors from `name`: for a library whose warnings are noise to dr's user (the sandbox's
    embedded web server warns that it is a development server)."""
    logging.getLogger(name).setLevel(logging.ERROR)
