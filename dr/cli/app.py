"""What a command handler gets (the App) and returns (an Outcome).

The text helpers handlers use (table, human_age, short_time, short_key) live in dr/render/text.py;
they are imported here too so handlers find everything they need in one place.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dr.render.text import human_age, short_key, short_time, table  # noqa: F401 - for handlers

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
