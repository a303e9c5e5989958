"""`${...}` references in step parameters: parsing, finding, and resolving them.

Grammar: `${<namespace>.<name>[.<name>...]}` where the namespace is `steps`, `config`, `run` or
`params` and each name is letters, digits, `_` or `-` (a number indexes a list); `${steps.<id>}`
alone is the mapping of all that step's outputs. `$${` writes a literal `${`. A string that is exactly one reference takes the referenced value with its type
(a number stays a number, a mapping a mapping); references embedded in a longer string are
interpolated as text (durations as `1h30m`, booleans as `true`/`false`, mappings as JSON).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

NAMESPACES = ("steps", "config", "run", "params")
_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_NAME = re.compile(r"[A-Za-z0-9_-]+")


class RefError(ValueError):
    """A reference that is malformed or cannot be resolved; the message says which and why."""


@dataclass(frozen=True)
class Ref:
    namespace: str
    path: tuple[str, ...]

    @property
    def text(self) -> str:
        return "${" + ".".join((self.namespace, *self.path)) + "}"

    def __str__(self) -> str:
        return self.text


def undefer(value: Any) -> Any:
    """A preview with each Deferred turned back into its `${...}` text (what validate sees)."""
    if isinstance(value, Deferred):
        return value.ref.text
    if isinstance(value, dict):
        return {k: undefer(v) for k, v in value.items()}
    if isinstance(value, list):
        return [undefer(v) for v in value]
    return value


class Deferred:
    """Stands for a value known only at run time (a step's output) during load-time validation."""

    def __init__(self, ref: Ref):
        self.ref = ref

    def __repr__(self) -> str:
        return self.ref.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Deferred) and other.ref == self.ref

    def __hash__(self) -> int:
        return hash(self.ref)


def parse_ref(body: str) -> Ref:
    parts = body.strip().split(".")
    if parts[0] not in NAMESPACES:
        raise RefError(f"${{{body}}}: a reference starts with one of {', '.join(NAMESPACES)} "
                       f"(like ${{steps.db.endpoint}} or ${{config.regions.dr}})")
    if len(parts) < 2 or not all(_NAME.fullmatch(p) for p in parts[1:]):
        raise RefError(f"${{{body}}}: expected {parts[0]}.<name>[.<name>...] with names of letters, "
                       "digits, '_' or '-'")
    return Ref(parts[0], tuple(parts[1:]))


def split(text: str) -> list[str | Ref]:
    """The literal pieces and references of a string, in order; raises RefError."""
    pieces: list[str | Ref] = []
    pos = 0
    literal = ""
    for m in _REF.finditer(text):
        literal += text[pos:m.start()]
        pos = m.end()
        if m.group(0) == "$${":
            literal += "${"
        elif m.group(1) is None:
            raise RefError(f"{text!r}: '${{' is not closed by '}}' (write $${{ for a literal ${{)")
        else:
            if literal:
                pieces.append(literal)
                literal = ""
            pieces.append(parse_ref(m.group(1)))
    literal += text[pos:]
    if literal:
        pieces.append(literal)
    return pieces


def find_refs(value: Any) -> list[Ref]:
    """Every reference inside a parameter value (strings inside lists and mappings too);
    raises RefError for the first malformed one."""
    refs, errors = scan(value)
    if errors:
        raise RefError(errors[0])
    return refs


def scan(value: Any) -> tuple[list[Ref], list[str]]:
    """(every well-formed reference, a message for each malformed string) inside a value."""
    refs: list[Ref] = []
    errors: list[str] = []
    if isinstance(value, str):
        try:
            refs.extend(p for p in split(value) if isinstance(p, Ref))
        except RefError as e:
            errors.append(str(e))
    elif isinstance(value, (dict, list)):
        for item in value.values() if isinstance(value, dict) else value:
            more, bad = scan(item)
            refs.extend(more)
            errors.extend(bad)
    return refs, errors


def whole_ref(value: Any) -> Ref | None:
    """The reference if `value` is a string that is exactly one reference, else None."""
    if not isinstance(value, str):
        return None
    pieces = split(value)
    return pieces[0] if len(pieces) == 1 and isinstance(pieces[0], Ref) else None


def resolve(value: Any, lookup: Callable[[Ref], Any]) -> Any:
    """`value` with every reference replaced by `lookup(ref)` (deep; whole refs keep their type)."""
    if isinstance(value, str):
        pieces = split(value)
        if len(pieces) == 1 and isinstance(pieces[0], Ref):
            return lookup(pieces[0])
        return "".join(p if isinstance(p, str) else as_text(lookup(p), p) for p in pieces)
    if isinstance(value, dict):
        return {k: resolve(v, lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, lookup) for v in value]
    return value


def as_text(value: Any, ref: Ref) -> str:
    """How a referenced value reads inside a longer string."""
    from dr.config.durations import format_duration

    if isinstance(value, Deferred):
        return value.ref.text
    if value is None:
        raise RefError(f"{ref.text} is null and cannot be part of a string")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)
