"""Ownership is proven, never assumed: what this run may update or delete, and what to say when not.

A run owns a resource when both hold:

* **its ledger says so**: the step wrote `kind id region` to the run's journal (`ctx.created`)
  before asking AWS to create it, and
* **the world confirms it**: the resource carries `dr:run=<this run>` and, in a drill,
  `dr:drill=true` (dr sets those tags only when it creates something, never on an update of a
  resource it did not create), and where an id was recorded (a stack's StackId) it matches.

Nothing a drill did not create is ever updated; teardown deletes only what it owns and fails
loudly, naming the resource, when the ledger names something the world does not confirm. When
a run finds a resource made by another run, the message says which run and the way on (resume
that run: it adopts what it made) and never suggests deleting it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dr.runbook.steps.base import StepContext

TAG_RUN, TAG_STEP, TAG_DRILL = "dr:run", "dr:step", "dr:drill"
FINISHED = ("completed",)


def run_tags(ctx: StepContext) -> dict[str, str]:
    """The tags a step puts on what it creates (never on what it only updates)."""
    return {TAG_RUN: ctx.run_id, TAG_STEP: ctx.step_id, TAG_DRILL: "true" if ctx.drill else "false"}


def in_ledger(ctx: StepContext, kind: str, ident: str, region: str) -> dict[str, Any] | None:
    for entry in ctx.ledger():
        if (entry.get("kind"), entry.get("id"), entry.get("region")) == (kind, ident, region):
            return entry
    return None


def tags_say_ours(tags: Mapping[str, str], ctx: StepContext) -> str | None:
    """None when the tags prove this run made it; else why not."""
    run = tags.get(TAG_RUN)
    if run != ctx.run_id:
        return f"it carries dr:run={run}" if run else "it carries no dr:run tag (dr did not make it)"
    if ctx.drill and tags.get(TAG_DRILL) != "true":
        return "it is not tagged dr:drill=true"
    return None


def owned(ctx: StepContext, kind: str, ident: str, region: str, tags: Mapping[str, str],
          world_id: str | None = None) -> str | None:
    """None when this run owns the resource (ledger and world agree); else why not."""
    entry = in_ledger(ctx, kind, ident, region)
    if entry is None:
        return "this run's journal does not record creating it"
    why = tags_say_ours(tags, ctx)
    if why:
        return why
    if world_id and entry.get("world_id") and entry["world_id"] != world_id:
        return f"it is {world_id}, not {entry['world_id']}, which this run created"
    return None


def run_summary(ctx: StepContext, run_id: str) -> dict[str, Any]:
    """What the journal of another run says about it (status, kind, drill, region), or {}."""
    try:
        doc = ctx.store.get_json(f"journals/{run_id}.json") or {}
    except Exception:  # noqa: BLE001 - a malformed id or document: unknown
        doc = {}
    return {k: doc.get(k) for k in ("status", "kind", "drill", "region")} if doc else {}


def resume_command(run_id: str, drill: bool, region: str) -> str:
    """The command that continues a run (global options such as --config go before it)."""
    if drill:
        return f"dr drill --resume {run_id}"
    return f"dr restore --resume {run_id} --to-region {region} --yes"


def made_elsewhere(ctx: StepContext, what: str, region: str, tags: Mapping[str, str]) -> tuple[str, str]:
    """(message, hint) for a resource this run did not make, by who made it. Never 'delete it'."""
    run = tags.get(TAG_RUN)
    if not run:
        return (f"{what} already exists in {region} and was not made by dr; nothing was changed",
                "pass `identifier:` (or `name:`) to restore under another name beside it")
    other = run_summary(ctx, run)
    status = other.get("status") or "unknown"
    label = f"run {run} ({other.get('kind') or 'dr'}, {status})"
    if status in FINISHED:
        return (f"{what} already exists in {region}: restored by {label}, which completed and may be "
                "serving production now; nothing was changed",
                "pass `identifier:` (or `name:`) to restore another copy beside it")
    drill = bool(other.get("drill")) if other else tags.get(TAG_DRILL) == "true"
    return (f"{what} already exists in {region}: it was made by {label}, which did not finish; nothing "
            "was changed",
            f"resume that run instead, which adopts what it made: "
            f"{resume_command(run, drill, other.get('region') or region)}")
