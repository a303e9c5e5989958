"""The step-type registry: a plain name -> class map, filled explicitly, here and only here.

Each step module lists its types in a module-level tuple `STEP_TYPES`; this module imports the
modules named in STEP_MODULES and registers every type they list. A module that is not there
yet is skipped (the concrete AWS/DNS/HTTP modules land separately); a module that is there but
fails to import is an error, as is a duplicate name.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from types import ModuleType

from dr.runbook.steps.base import StepType

STEP_MODULES = (
    "dr.runbook.steps.generic",
    "dr.runbook.steps.aws_steps",
    "dr.runbook.steps.stack",
    "dr.runbook.steps.teardown",
    "dr.runbook.steps.dns_steps",
    "dr.runbook.steps.http_steps",
    "dr.runbook.steps.mysql_steps",
)

REGISTRY: dict[str, type[StepType]] = {}


def register(cls: type[StepType], registry: dict[str, type[StepType]] | None = None) -> type[StepType]:
    """Add a step type; a second type with the same name is an error."""
    target = REGISTRY if registry is None else registry
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"step type {cls.__qualname__} has no name")
    if name in target and target[name] is not cls:
        raise ValueError(f"duplicate step type {name!r}: {target[name].__module__}."
                         f"{target[name].__qualname__} and {cls.__module__}.{cls.__qualname__}")
    target[name] = cls
    return cls


def step_types_of(module: ModuleType) -> tuple[type[StepType], ...]:
    """The module's STEP_TYPES; failing that, the concrete StepType classes it defines."""
    listed = getattr(module, "STEP_TYPES", None)
    if listed is not None:
        return tuple(listed)
    return tuple(cls for _, cls in inspect.getmembers(module, inspect.isclass)
                 if issubclass(cls, StepType) and cls is not StepType
                 and cls.__module__ == module.__name__ and "name" in cls.__dict__)


def _load() -> None:
    for module_name in STEP_MODULES:
        if importlib.util.find_spec(module_name) is None:
            continue  # not written yet
        for cls in step_types_of(importlib.import_module(module_name)):
            register(cls)


def get(name: str) -> type[StepType]:
    return REGISTRY[name]


_load()
