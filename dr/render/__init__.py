"""Rendering helpers shared by every command's text output (never by JSON, which keeps ISO 8601).

One human time format for all text: `2026-12-08 00:41:07 UTC`.
"""

from __future__ import annotations

from datetime import datetime, timezone

HUMAN_TIME = "%Y-%m-%d %H:%M:%S UTC"


def human_time(value: datetime | str | None, missing: str = "<none>") -> str:
    """A time for people: an aware datetime, or ISO text as stored in run records (shown as
    it is when it is not a time)."""
    if value is None or value == "":
        return missing
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if parsed.tzinfo is None:
            return value
        value = parsed
    return value.astimezone(timezone.utc).strftime(HUMAN_TIME)
