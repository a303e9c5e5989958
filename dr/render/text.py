"""Text helpers every command's human output uses: tables, ages, times, durations, key ids.

Pure functions over plain values; nothing here imports a domain package, so any renderer (and
the CLI) may use them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dr.render import human_time
from dr.config.durations import format_duration


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
    return human_time(value)


def duration_text(seconds: float) -> str:
    """'0.4s', '45s', '1h30m': lags and windows for humans."""
    if 0 < seconds < 1:
        return f"{seconds:.1f}s"
    return format_duration(timedelta(seconds=round(seconds)))


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


def indent(text: str, prefix: str = "  ") -> str:
    """Every line of `text` behind `prefix` (blank lines too, unlike textwrap.indent)."""
    return "\n".join(prefix + line for line in text.splitlines())
