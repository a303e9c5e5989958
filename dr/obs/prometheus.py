"""The Prometheus text exposition (format 0.0.4): the one place that writes it.

    family(name, kind, help, [(labels, value), ...]) -> lines   # HELP, TYPE, one line per sample
    exposition(lines) -> str                                    # the body a scrape gets

A sample whose value is None is left out (the figure is not known yet). Values are written in
full (`1765432100.5`, `1209600`), never in exponent notation that loses digits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Sample = tuple[Mapping[str, object], object]


def escape(value: object) -> str:
    """A label value: backslash, newline and double quote escaped; None is empty."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def number(value: object) -> str:
    """A sample value: bools and whole floats as integers, text (already formatted) as it is."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def sample(name: str, labels: Mapping[str, object], value: object) -> str:
    inner = ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {number(value)}" if inner else f"{name} {number(value)}"


def family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> list[str]:
    """One metric family: its HELP and TYPE lines, then its samples (None values left out)."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [sample(name, labels, value) for labels, value in samples if value is not None]
    return lines


def exposition(lines: Iterable[str]) -> str:
    return "\n".join(lines) + "\n"
