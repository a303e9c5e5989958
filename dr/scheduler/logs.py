"""Scheduler logging: timestamped lines on stderr, or one JSON object per line (`--json-logs`)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

FIELDS = ("event", "job", "slot", "run_id", "status", "duration_seconds", "missed_slots", "owner",
          "error", "key")


class JsonFormatter(logging.Formatter):
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


def configure(json_logs: bool, verbose: bool = False) -> None:
    """A long-running scheduler logs at INFO even when piped: its log is its output."""
    handler = logging.StreamHandler(sys.stderr)
    if json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "schedule"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
