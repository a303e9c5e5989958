"""The step-type registry: a plain name -> class map, filled here and only here.

Each step family is one module holding its type(s) and their helpers, and lists its types in a
module-level tuple `STEP_TYPES`; this module imports every family by name and registers what it
lists (a duplicate name is an error), like dr/dns/__init__.py does for DNS providers. Adding a
step type: a module (or a class in one) and its line below.
"""

from __future__ import annotations

from dr.runbook.steps import dns, generic, http, mysql, rds_restore, readiness, stack, teardown
from dr.runbook.steps.base import StepType

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


def get(name: str) -> type[StepType]:
    return REGISTRY[name]


for _family in (generic, readiness, rds_restore, stack, teardown, dns, http, mysql):
    for _cls in _family.STEP_TYPES:
        register(_cls)
