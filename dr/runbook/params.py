"""Step parameters against a type's declared `Param`s: unknown, missing, wrong type; defaults.

The same checks run twice: at load time on a preview (step outputs still `Deferred`) and right
before a step runs on the resolved values, so a `${...}` that turns out to hold the wrong type
fails the step with a clear message before `execute` is called.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from dr.runbook.refs import Deferred
from dr.runbook.scope import as_seconds
from dr.runbook.steps.base import Param, StepType

_EXPECTED = {"str": "a string", "int": "a whole number", "float": "a number", "bool": "true or false",
             "duration": "a duration like 30s, 15m, 1h (or a number of seconds)",
             "list": "a list", "dict": "a mapping"}


def convert(param: Param, value: Any) -> Any:
    """`value` checked against `param.type` (durations become timedelta); raises ValueError."""
    kind = param.type
    if isinstance(value, Deferred):
        return value
    ok = {
        "str": lambda v: isinstance(v, str),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "list": lambda v: isinstance(v, list),
        "dict": lambda v: isinstance(v, Mapping),
    }
    if kind == "duration":
        try:
            return as_seconds(value)
        except (ValueError, TypeError):
            raise ValueError(f"expected {_EXPECTED[kind]}, got {value!r}") from None
    if kind not in ok:
        raise ValueError(f"parameter type {kind!r} is not one of {', '.join(_EXPECTED)}")
    if not ok[kind](value):
        shown = "a mapping" if isinstance(value, Mapping) else "a list" if isinstance(value, list) \
            else repr(value)
        quote = " (quote it to make it a string)" if kind == "str" and not isinstance(value, (list, Mapping)) \
            else ""
        raise ValueError(f"expected {_EXPECTED[kind]}, got {shown}{quote}")
    return float(value) if kind == "float" else dict(value) if kind == "dict" else value


def unknown_names(type_cls: type[StepType], given: Mapping[str, Any]) -> dict[str, str]:
    """Parameters given but not declared -> a did-you-mean hint."""
    declared = [p.name for p in type_cls.params]
    found = {}
    for name in given:
        if name not in declared:
            close = difflib.get_close_matches(name, declared, n=1)
            found[name] = (f"did you mean {close[0]!r}?" if close
                           else f"{type_cls.name} takes: {', '.join(declared) or 'no parameters'}")
    return found


def apply(type_cls: type[StepType], given: Mapping[str, Any],
          skip: frozenset[str] = frozenset()) -> tuple[dict[str, Any], dict[str, str]]:
    """(params with defaults filled in and values converted, {name: problem}). Names in `skip`
    are passed through unchecked (their value is only known at run time)."""
    params: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for param in type_cls.params:
        value = given.get(param.name)
        if value is None:
            if param.required:
                problems[param.name] = f"required parameter is missing ({param.type}" \
                                       f"{': ' + param.help if param.help else ''})"
                continue
            params[param.name] = _default(param)
            continue
        if param.name in skip:
            params[param.name] = value
            continue
        try:
            params[param.name] = convert(param, value)
        except ValueError as e:
            problems[param.name] = str(e)
    return params, problems


def _default(param: Param) -> Any:
    """A declared default as the step receives it: durations converted, the rest as written
    by the step type (a tuple stays a tuple)."""
    if param.default is None:
        return None
    try:
        return convert(param, param.default)
    except ValueError:
        return param.default
