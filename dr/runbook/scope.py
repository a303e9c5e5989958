"""What references resolve against: config values, the run, runbook params and step outputs.

Config paths walk the typed Config: `${config.regions.dr}`, `${config.stack.name}`,
`${config.health.timeout}` (a duration), `${config.rds.app-db.instance}` (a list of named
resources is indexed by name, or by position: `${config.rds.0.instance}`),
`${config.stack.parameters.InstanceType}` (key/value pairs read as a mapping). Secrets cannot be
referenced: a step that needs one reads it from the config itself.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from dr.runbook.refs import Deferred, Ref, RefError

RUN_KEYS = ("id", "name", "kind", "region", "drill", "started", "status")


def _close(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; known: {', '.join(choices)}" if choices else ""


# --- config values --------------------------------------------------------------------------


def config_value(config: Any, path: tuple[str, ...]) -> Any:
    """The value at `path` in a Config, converted for use as a parameter; raises RefError."""
    from dr.config import Secret

    value: Any = config
    for i, seg in enumerate(path):
        here = "config." + ".".join(path[:i]) if i else "config"
        if value is None:
            raise RefError(f"${{config.{'.'.join(path)}}}: {here} is not set in the config")
        value = _config_child(value, seg, here)
        if isinstance(value, Secret):
            raise RefError(f"${{config.{'.'.join(path)}}} is a secret; secrets cannot be referenced "
                           "(the step reads them from the config itself)")
    return _plain(value)


def _config_child(value: Any, seg: str, here: str) -> Any:
    if dataclasses.is_dataclass(value):
        names = [f.name for f in dataclasses.fields(value)]
        if seg not in names:
            raise RefError(f"{here} has no {seg!r}{_close(seg, names)}")
        return getattr(value, seg)
    if isinstance(value, tuple) and _is_pairs(value):
        return _child(dict(value), seg, here)
    if isinstance(value, (tuple, list)):
        if seg.isdigit() and not value and here.count(".") == 1:  # config.rds, config.mysql, ...
            section = here.split(".", 1)[1]
            raise RefError(f"{here}.{seg}: dr.yaml has no entry under `{section}:`, and this step needs "
                           "one; add one, or run a runbook without this step (copy the shipped one and "
                           "remove the step)")
        if seg.isdigit():
            return _child(list(value), seg, here)
        named = {getattr(v, "name", None): v for v in value}
        if seg not in named:
            raise RefError(f"{here} has no item named {seg!r}"
                           f"{_close(seg, [n for n in named if isinstance(n, str)])}")
        return named[seg]
    return _child(value, seg, here)


def _is_pairs(value: tuple) -> bool:
    return bool(value) and all(isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str)
                               for v in value)


def _plain(value: Any) -> Any:
    """Config objects as parameter values: mappings, lists, strings, numbers, timedelta."""
    from dr.config import Secret

    if isinstance(value, Secret):
        return str(value)  # never the secret itself
    if dataclasses.is_dataclass(value):
        text = getattr(value, "text", None)  # a Schedule reads as its text
        if isinstance(text, str):
            return text
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and _is_pairs(value):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def check_config_type_path(path: tuple[str, ...]) -> str | None:
    """Without a config at hand: does `path` exist in the Config model? A message if not."""
    from dr.config import Config

    tp: Any = Config
    for i, seg in enumerate(path):
        here = "config." + ".".join(path[:i]) if i else "config"
        tp = _unoptional(tp)
        if dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp)
            names = [f.name for f in dataclasses.fields(tp)]
            if seg not in names:
                return f"${{config.{'.'.join(path)}}}: {here} has no {seg!r}{_close(seg, names)}"
            tp = hints[seg]
        elif typing.get_origin(tp) is tuple:
            args = typing.get_args(tp)
            if len(args) == 2 and args[1] is Ellipsis and typing.get_origin(args[0]) is tuple:
                return None  # key/value pairs: any key may be set
            tp = args[0] if args else Any
        elif tp in (dict, Any) or typing.get_origin(tp) is dict:
            return None
        else:
            name = getattr(tp, "__name__", str(tp))
            return f"${{config.{'.'.join(path)}}}: {here} is a {name} and has no {seg!r}"
    return None


def _unoptional(tp: Any) -> Any:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else Any
    return tp


# --- generic descent ------------------------------------------------------------------------


def _child(value: Any, seg: str, here: str) -> Any:
    if isinstance(value, Mapping):
        if seg not in value:
            raise RefError(f"{here} has no {seg!r}{_close(seg, [str(k) for k in value])}")
        return value[seg]
    if isinstance(value, list):
        if not seg.isdigit() or int(seg) >= len(value):
            raise RefError(f"{here} is a list of {len(value)}; {seg!r} is not an index in it")
        return value[int(seg)]
    raise RefError(f"{here} is a {type(value).__name__} and has no {seg!r}")


def descend(value: Any, path: tuple[str, ...], here: str) -> Any:
    for seg in path:
        value = _child(value, seg, here)
        here = f"{here}.{seg}"
    return value


# --- the scope ------------------------------------------------------------------------------


@dataclasses.dataclass
class Scope:
    """Everything a reference can see. `outputs` holds completed steps only; in a load-time
    preview (`preview=True`) step references and unknown run values become Deferred."""

    config: Any = None
    run: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    outputs: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    preview: bool = False

    def lookup(self, ref: Ref) -> Any:
        if ref.namespace == "steps":
            return self._step(ref)
        if ref.namespace == "config":
            if self.config is None:
                return Deferred(ref)
            return config_value(self.config, ref.path)
        if ref.namespace == "run":
            if ref.path[0] not in self.run:
                if self.preview and ref.path[0] in RUN_KEYS:
                    return Deferred(ref)
                raise RefError(f"{ref.text}: run has no {ref.path[0]!r}{_close(ref.path[0], list(RUN_KEYS))}")
            return descend(self.run[ref.path[0]], ref.path[1:], f"run.{ref.path[0]}")
        return descend(self.params, ref.path, "params")

    def _step(self, ref: Ref) -> Any:
        step = ref.path[0]
        if step not in self.outputs:
            if self.preview:
                return Deferred(ref)
            raise RefError(f"{ref.text}: step {step!r} has not completed")
        outputs = self.outputs[step]
        if len(ref.path) == 1:
            return dict(outputs)
        output, rest = ref.path[1], ref.path[2:]
        if output not in outputs:
            raise RefError(f"{ref.text}: step {step!r} did not output {output!r}"
                           f"{_close(output, sorted(outputs))}")
        return descend(outputs[output], rest, f"steps.{step}.{output}")


def as_seconds(value: Any) -> timedelta:
    """A duration from `30s`/`1h30m`, a number of seconds, or a timedelta; raises ValueError."""
    from dr.config.durations import parse_duration

    if isinstance(value, timedelta):
        if value.total_seconds() <= 0:
            raise ValueError(f"expected a duration greater than zero, got {value}")
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError(f"expected a duration greater than zero, got {value!r}")
        return timedelta(seconds=value)
    return parse_duration(value)
