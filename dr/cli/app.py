"""What a command handler gets (the App) and returns (an Outcome); rendering helpers."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dr.clock import Clock
    from dr.config import Config
    from dr.context import Context


@dataclass
class Outcome:
    """A finished command: `data` for --output json, `text` for humans, and the exit code."""

    data: Any = None
    text: str = ""
    exit_code: int = 0


@dataclass
class App:
    config_path: str = "dr.yaml"
    output: str = "text"
    profile: str | None = None
    endpoint_url: str | None = None
    command: str = "dr"
    clock: Clock | None = None
    _config: Config | None = field(default=None, repr=False)

    def config(self) -> Config:
        if self._config is None:
            from dr.config import load_config

            self._config = load_config(self.config_path)
        return self._config

    def context(self) -> Context:
        from dr.context import make_context

        return make_context(self.config(), endpoint_url=self.endpoint_url, profile=self.profile,
                            clock=self.clock, command=self.command)

    def emit(self, outcome: Outcome) -> None:
        if self.output == "json":
            json.dump(outcome.data, sys.stdout, indent=2, sort_keys=True, default=str)
            sys.stdout.write("\n")
        elif outcome.text:
            sys.stdout.write(outcome.text.rstrip("\n") + "\n")
        sys.stdout.flush()


def human_age(delta: timedelta | None) -> str:
    """'3d4h', '2h5m', '45s'; '<never>' for None."""
    if delta is None:
        return "<never>"
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "in the future"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def short_time(value: datetime | str | None) -> str:
    from dr.render import human_time

    return human_time(value)


def table(headers: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return ""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return "\n".join(lines)


def short_key(kms_key_id: str | None) -> str:
    """The key id part of a KMS ARN, for narrow tables."""
    if not kms_key_id:
        return "<none>"
    return kms_key_id.rsplit("/", 1)[-1][:8] + "…" if "/" in kms_key_id else kms_key_id
