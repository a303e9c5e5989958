"""The safety rules of dns.flip and dns.restore (dns.py): the records a drill may touch, the saved
previous values an exact restore needs, and the fresh-health gate.

See dns.py for the rules themselves; this module holds what enforces them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from dr.dns.base import RecordState, absolute, host_of
from dr.errors import ConfigError, OperationFailed
from dr.runbook.steps.base import AbortRun, StepContext
from dr.runbook.steps.http import VERIFIED_BY, seconds_of
from dr.clock import parse_iso_or_none

DEFAULT_HEALTH_MAX_AGE = "15m"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def drill_record(ctx: StepContext) -> str:
    """The record a drill uses: `drill-<run id suffix>.<zone>` (the suffix ctx.name uses)."""
    suffix = re.sub(r"[^a-z0-9-]", "-", ctx.run_id.rsplit("-", 1)[-1].lower()).strip("-") or "run"
    return f"drill-{suffix}.{absolute(dns_settings(ctx).zone)}"


def dns_settings(ctx: StepContext):
    if ctx.config.dns is None:
        raise ConfigError("dr.yaml has no dns section: DNS steps need one",
                          hint="add dns: {provider: route53, zone: example.com., record: www.example.com.}")
    return ctx.config.dns


def resolve_record(params: Mapping[str, Any], ctx: StepContext) -> str:
    """The record a DNS step works on, after the drill guard."""
    dns = dns_settings(ctx)
    given = params.get("record")
    record = absolute(given) if given else (drill_record(ctx) if ctx.drill else absolute(dns.record))
    zone = absolute(dns.zone)
    if record != zone and not record.endswith("." + zone):
        raise ConfigError(f"record {record} is not inside the zone {zone} (dns.zone)")
    if ctx.drill:
        guard_drill(record, ctx)
    return record


def guard_drill(record: str, ctx: StepContext) -> None:
    production = absolute(dns_settings(ctx).record)
    if absolute(record) == production:
        raise ConfigError(f"this is a drill: it must not change the production record {production}; nothing "
                          "was changed", hint=f"leave `record` out (the drill uses {drill_record(ctx)}) "
                                              "or name a drill-<id> record")
    if not absolute(record).startswith("drill-"):
        zone = absolute(dns_settings(ctx).zone)
        raise ConfigError(f"this is a drill: it changes only drill records (drill-<id>.{zone}),"
                          f" not {record}; nothing was changed", hint=f"use {drill_record(ctx)}")


def previous_key(record: str, run_id: str) -> str:
    return f"dns/{_UNSAFE.sub('_', absolute(record).rstrip('.'))}/previous-{_UNSAFE.sub('_', run_id)}.json"


def save_previous(ctx: StepContext, record: str, state: RecordState) -> RecordState:
    """Save `state` as this run's previous values of `record`, unless this run saved them already
    (then those win: they were read before this run changed anything)."""
    key = previous_key(record, ctx.run_id)
    doc = {"record": record, "run_id": ctx.run_id, "step_id": ctx.step_id, "provider": dns_settings(ctx).provider,
           "saved_at": ctx.clock.now().isoformat(), "state": state.to_json()}
    if ctx.store.create_json(key, doc):
        return state
    return load_previous(ctx, record, ctx.run_id) or state


def load_previous(ctx: StepContext, record: str, run_id: str) -> RecordState | None:
    doc = ctx.store.get_json(previous_key(record, run_id))
    return RecordState.from_json(doc["state"]) if doc else None


def passed_health(outputs: Mapping[str, Mapping[str, Any]], host: str | None, only: str | None = None,
                  types: Mapping[str, str] | None = None, *, session: int | None = None,
                  now: datetime | None = None, max_age: timedelta | None = None) -> str | None:
    """The id of an earlier step of this run that verified `host` healthy (any host when None),
    or None. `types` (StepContext.types: step id -> type of the completed steps) must say
    http.wait_healthy for that step when it names it; the `verified_by` output says so when it
    does not. With `session`, only a pass made in that session counts; with `now` and
    `max_age`, only one made at most `max_age` before `now`."""
    types = types or {}
    for step_id, out in outputs.items():
        if only and step_id != only:
            continue
        if step_id in types and types[step_id] != VERIFIED_BY:
            continue
        if not (isinstance(out, Mapping) and out.get("verified_by") == VERIFIED_BY and out.get("healthy") is True):
            continue
        if host is not None and host_of(str(out.get("url", ""))) != host:
            continue
        if session is not None and out.get("session") != session:
            continue
        if now is not None and max_age is not None:
            passed = _when(out.get("passed_at"))
            if passed is None or now - passed > max_age:
                continue
        return step_id
    return None


def _when(value: Any) -> datetime | None:
    """A `passed_at` output: ISO text as journaled, or a datetime straight from a step."""
    return value if isinstance(value, datetime) and value.tzinfo else parse_iso_or_none(value)


def health_max_age(params: Mapping[str, Any]) -> timedelta:
    return timedelta(seconds=seconds_of(params.get("health_max_age") or DEFAULT_HEALTH_MAX_AGE, "health_max_age"))


def fresh_pass(ctx: StepContext, host: str | None, only: str | None = None,
            max_age: timedelta | None = None) -> str | None:
    """A health pass of this run that counts now: this session, within max_age."""
    return passed_health(ctx.outputs, host, only, getattr(ctx, "types", None), session=ctx.run_session,
                         now=ctx.clock.now(), max_age=max_age or timedelta(minutes=15))


class FlipRefused(OperationFailed, AbortRun):
    """The health gate said no: exit 1 with the reason, and the engine ends the run `aborted`
    (retrying cannot make an earlier health check pass)."""


def health_refusal(ctx: StepContext, record: str, host: str | None, only: str | None,
                    max_age: timedelta) -> FlipRefused:
    seen, stale = [], False
    for sid, o in ctx.outputs.items():
        if not (isinstance(o, Mapping) and o.get("verified_by") == VERIFIED_BY and (not only or sid == only)):
            continue
        why = ""
        if o.get("session") != ctx.run_session:
            why = f", in session {o.get('session', '?')}, not this one ({ctx.run_session})"
        else:
            passed = _when(o.get("passed_at"))
            if passed is None or ctx.clock.now() - passed > max_age:
                why = f", at {o.get('passed_at', '?')}: older than {show_age(max_age)}"
        checked = host_of(str(o.get("url", ""))) or "?"
        stale = stale or (bool(why) and host in (None, checked))
        seen.append(f"{sid} ({checked}{why})")
    found = f"; health checks passed in this run were for: {', '.join(seen)}" if seen else \
        "; no http.wait_healthy step has passed in this run"
    what = (f"point {record} at {host}: it has not passed" if host else
            f"change {record}: no http.wait_healthy step of this run has passed")
    return FlipRefused(
        f"{ctx.step_id}: refusing to {what} http.wait_healthy in this session within "
        f"{show_age(max_age)}{found}. DNS was not changed",
        hint=(f"resume the run (--resume {ctx.run_id}): its health check runs again first, in the new session"
              if stale else f"add an http.wait_healthy step{' whose url is on ' + host if host else ''} and "
                            "list it in this step's needs"))


def show_age(age: timedelta) -> str:
    from dr.config.durations import format_duration

    return format_duration(age)
