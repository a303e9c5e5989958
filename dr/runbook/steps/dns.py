"""dns.flip (move traffic to a healthy target) and dns.restore (put the saved values back).

Safety rules, enforced here (and in dns_safety.py) and not left to runbook authors:

* **Health first, and fresh.** dns.flip points a record only at a host that passed
  `http.wait_healthy` in this run, *in this session* and at most `health_max_age` ago (default
  15m): some earlier step's outputs (ctx.outputs) hold `verified_by: http.wait_healthy`,
  `healthy: true`, a `url` whose host is the target's host (for an address target: the same
  address), `session` equal to this session and a recent `passed_at`; ctx.types, when it names
  that step, says it is an http.wait_healthy step. A pass from before a crash does not count:
  on `--resume` the health step runs again (it is `fresh_per_session`). `health_step: ID`
  narrows the search to one step. There is no switch to skip it. dns.restore (failback) needs
  the same fresh pass of a health step of this run, unless `require_healthy: false` (an undo).
* **Drills never touch production.** In a drill (ctx.drill) the record defaults to
  `drill-<run id suffix>.<zone>`; any record that is the production record (dns.record) or
  whose first label does not start with `drill-` is refused before anything is read.
* **Exact restore.** Before changing anything, dns.flip saves the record as it is (every set:
  type, TTL, values, routing) to the state store under `dns/<record>/previous-<run_id>.json`
  (written once per run, so a rerun after a crash never overwrites the true previous values
  with its own flip) and returns it as its `previous` output. dns.restore, drill teardown and
  failback put exactly that back.
* **Traffic moved, not only DNS changed.** Both steps output `in_sync_at` (the change is served
  by every name server) and `traffic_moved_at` = that plus the TTL of the values replaced
  (`previous_ttl`: resolvers may keep answering the old values that long); the run's second RTO
  ends there. A drill flips a drill record that had no TTL, so it uses the production record's
  TTL (read, never changed) to rehearse the real number.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from dr.dns import make_provider
from dr.dns.base import MODES, FlipPlan, RecordState, absolute, flip_state, parse_target, plan_changes
from dr.errors import ConfigError, OperationFailed
from dr.runbook.steps.base import Param, StepContext, StepType
from dr.runbook.steps.dns_safety import (DEFAULT_HEALTH_MAX_AGE, dns_settings, fresh_pass, guard_drill,
                                         health_max_age, health_refusal, load_previous, previous_key,
                                         resolve_record, save_previous)
from dr.runbook.steps.http import seconds_of, unresolved
from dr.clock import iso

ALIAS_TTL = 60  # Route 53 answers an alias with the target's TTL: 60 s for ELB and CloudFront

_READ = ("route53:ListHostedZonesByName", "route53:ListResourceRecordSets")
_WRITE = ("route53:ChangeResourceRecordSets", "route53:GetChange")
_HEALTH = ("route53:ListHealthChecks", "route53:CreateHealthCheck", "route53:GetHealthCheckStatus",
           "route53:DeleteHealthCheck")


def _provider(ctx: StepContext):
    return make_provider(dns_settings(ctx), session=ctx.session, wait=ctx.wait)


def ttl_of(state: RecordState) -> int | None:
    """How long resolvers may keep the values of `state`: its longest TTL (an alias: ALIAS_TTL)."""
    ttls = [s.ttl if s.ttl is not None else ALIAS_TTL for s in state.sets]
    return max(ttls) if ttls else None


def traffic(ctx: StepContext, provider, previous: RecordState) -> dict[str, Any]:
    """When the change is served everywhere (now: the steps wait for INSYNC first) and when the
    old answers have expired from caches too. A drill's record had no values, so the production
    record's TTL is used (read only) to rehearse the real figure."""
    in_sync = ctx.clock.now()
    ttl, source = ttl_of(previous), "previous values"
    if ttl is None and ctx.drill and ctx.config.dns is not None:
        try:
            ttl, source = ttl_of(provider.current(absolute(ctx.config.dns.record))), "production record"
        except Exception as exc:  # noqa: BLE001 - the figure is still useful with a stated source
            ctx.log(f"could not read the production record's TTL ({exc}); counting none")
    if ttl is None:
        ttl, source = 0, "no previous values"
    return {"in_sync_at": iso(in_sync), "previous_ttl": ttl, "ttl_from": source,
            "traffic_moved_at": iso(in_sync + timedelta(seconds=ttl))}


# --- dns.flip -------------------------------------------------------------------------------------


class DnsFlip(StepType):
    name = "dns.flip"
    description = ("Point a DNS record at a target that passed http.wait_healthy in this run (Route 53 simple, "
                   "failover or weighted; RFC 2136 with TSIG), saving the previous values for restore.")
    params = (
        Param("target", "str", required=True,
              help="IP address, host name (an ELB DNS name) or URL whose host is taken, "
                   "usually ${steps.health.host}"),
        Param("record", "str", help="the record to change; default dns.record (in a drill: drill-<id>.<zone>, "
                                    "and the production record is refused)"),
        Param("mode", "str", default="simple", help="simple | failover | weighted (failover and weighted: "
                                                    "route53 only)"),
        Param("ttl", "int", help="TTL of the new values (default dns.ttl)"),
        Param("set_identifier", "str", help="failover/weighted: the target's set identifier "
                                            "(default dr-<region>)"),
        Param("weight", "int", default=100, help="weighted: the target's weight"),
        Param("others_weight", "int", default=0, help="weighted: the weight left to every other set"),
        Param("health_check", "str", help="failover: a Route 53 health check id for the new PRIMARY, or "
                                          "`auto` to create one on the http.wait_healthy url"),
        Param("secondary", "str", help="failover: the SECONDARY target (default: the old PRIMARY stands by)"),
        Param("health_step", "str", help="only accept the health check of this step id"),
        Param("health_max_age", "duration", default=DEFAULT_HEALTH_MAX_AGE,
              help="the health pass must be from this session and at most this old"),
        Param("wait", "bool", default=True, help="wait until the change is served (Route 53 INSYNC)"),
        Param("sync_timeout", "duration", default="10m", help="how long to wait for that"),
    )
    outputs = ("record", "target", "type", "mode", "values", "previous", "previous_key", "provider",
               "health_step", "health_check_id", "health_check_created", "health_check_status",
               "in_sync_at", "previous_ttl", "ttl_from", "traffic_moved_at")
    iam_actions = _READ + _WRITE + _HEALTH
    example = """\
- id: flip
  type: dns.flip
  needs: [health]
  with:
    target: ${steps.health.host}   # must have passed http.wait_healthy in this run
    mode: failover                 # simple | failover | weighted (route53)
    health_check: auto             # a Route 53 health check on the new PRIMARY
"""

    def validate(self, params: Mapping[str, Any], config) -> list[str]:
        problems = []
        if config.dns is None:
            return ["dr.yaml has no dns section: dns.flip needs one (provider, zone, record)"]
        mode = params.get("mode") or "simple"
        from dr.dns import PROVIDERS

        provider = PROVIDERS.get(config.dns.provider)
        if not unresolved(mode):
            if mode not in MODES:
                problems.append(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
            elif provider is not None and mode not in provider.modes:
                problems.append(f"mode: {mode} records need provider route53; dns.provider "
                                f"{config.dns.provider} has only {', '.join(provider.modes)}")
        target = params.get("target")
        if isinstance(target, str) and not unresolved(target):
            try:
                parse_target(target)
            except ConfigError as exc:
                problems.append(f"target: {exc.message}")
        record = params.get("record")
        if isinstance(record, str) and not unresolved(record):
            zone = absolute(config.dns.zone)
            if absolute(record) != zone and not absolute(record).endswith("." + zone):
                problems.append(f"record: {record} is not inside the zone {zone}")
        for key in ("weight", "others_weight"):
            value = params.get(key)
            if value is not None and not unresolved(value) and not (isinstance(value, int) and 0 <= value <= 255):
                problems.append(f"{key}: expected a whole number from 0 to 255, got {value!r}")
        if mode != "failover":
            problems += [f"{key}: only for mode: failover" for key in ("health_check", "secondary")
                         if params.get(key)]
        if mode != "weighted":
            problems += [f"{key}: only for mode: weighted" for key in ("weight", "others_weight")
                         if params.get(key) not in (None, self._default(key))]
        return problems

    def _default(self, key: str) -> Any:
        return next(p.default for p in self.params if p.name == key)

    def _plan(self, params, ctx, provider, *, create: bool) -> tuple[FlipPlan, bool]:
        mode = params.get("mode") or "simple"
        if mode not in provider.modes:
            raise ConfigError(f"dns.flip mode {mode} is not available with dns.provider {provider.name} "
                              f"(it has {', '.join(provider.modes)})")
        check_id, created = params.get("health_check") or None, False
        if check_id == "auto":
            reference = f"dr-{ctx.run_id}-{ctx.step_id}"[:64]
            if create:
                url = self._health_url(params, ctx)
                if ctx.drill:  # the drill's teardown deletes it: the ledger knows it first
                    ctx.created("route53-health-check", reference, "global")
                check_id, created = provider.ensure_health_check(url, reference), True
            else:
                check_id = provider.find_health_check(reference)
                created = check_id is not None
        secondary = params.get("secondary")
        plan = FlipPlan(
            target=parse_target(params["target"]), mode=mode,
            ttl=int(params.get("ttl") or dns_settings(ctx).ttl),
            set_identifier=params.get("set_identifier") or (f"dr-{ctx.region}" if ctx.region else "dr"),
            weight=int(params.get("weight") if params.get("weight") is not None else 100),
            others_weight=int(params.get("others_weight") or 0),
            health_check_id=check_id, secondary=parse_target(secondary) if secondary else None)
        return plan, created

    def _health_url(self, params, ctx) -> str:
        host = parse_target(params["target"]).host
        step = fresh_pass(ctx, host, params.get("health_step"), health_max_age(params))
        return str(ctx.outputs[step]["url"])

    def _outputs(self, record, plan, provider, after, previous, health_step, created, ctx) -> dict[str, Any]:
        status = ""
        if plan.health_check_id and hasattr(provider, "health_check_status"):
            status = provider.health_check_status(plan.health_check_id)
            if status == "unhealthy":
                ctx.log(f"dns.flip: warning: Route 53 health check {plan.health_check_id} reports {plan.target.host} "
                        "unhealthy; Route 53 answers with the SECONDARY until it passes")
        return {"record": record, "target": plan.target.value, "type": plan.target.type, "mode": plan.mode,
                "values": after.values(), "previous": previous.to_json(),
                "previous_key": previous_key(record, ctx.run_id), "provider": provider.name,
                "health_step": health_step or "", "health_check_id": plan.health_check_id or "",
                "health_check_created": created, "health_check_status": status,
                **traffic(ctx, provider, previous)}

    def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        record = resolve_record(params, ctx)
        target = parse_target(params["target"])
        health_step = fresh_pass(ctx, target.host, params.get("health_step"), health_max_age(params))
        if health_step is None:
            raise health_refusal(ctx, record, target.host, params.get("health_step"), health_max_age(params))
        provider = _provider(ctx)
        current = provider.current(record)
        flip_state(current, self._plan(params, ctx, provider, create=False)[0])  # refuse before any change
        previous = save_previous(ctx, record, current)
        if ctx.drill:
            ctx.created("dns-record", record, "global", provider=provider.name)
        plan, created = self._plan(params, ctx, provider, create=True)
        desired = flip_state(current, plan)
        ctx.log(f"dns.flip: {record}: {current.describe()} -> {desired.describe()}")
        provider.apply(desired)
        if params["wait"]:
            provider.wait_in_sync(seconds_of(params.get("sync_timeout") or "10m", "sync_timeout"))
        after = provider.current(record)
        if not after.same_as(desired):
            raise OperationFailed(f"{record}: after the change {provider.name} serves {after.describe()}, "
                                  f"not {desired.describe()}", hint="rerun the step (it is idempotent)")
        return self._outputs(record, plan, provider, after, previous, health_step, created, ctx)

    def check(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any] | None:
        record = resolve_record(params, ctx)
        provider = _provider(ctx)
        current = provider.current(record)
        try:
            plan, created = self._plan(params, ctx, provider, create=False)
            desired = flip_state(current, plan)
        except ConfigError:
            return None
        if plan_changes(current, desired) or (params.get("health_check") == "auto" and not created):
            return None
        previous = load_previous(ctx, record, ctx.run_id) or current
        health_step = fresh_pass(ctx, plan.target.host, params.get("health_step"), health_max_age(params))
        return self._outputs(record, plan, provider, current, previous, health_step, created, ctx)

    def teardown(self, params: Mapping[str, Any], outputs: Mapping[str, Any], ctx: StepContext) -> None:
        """Drills: put the drill record back as it was (usually: delete it) and delete the Route 53
        health check this step created. Refuses the production record."""
        record = absolute(outputs.get("record") or resolve_record(params, ctx))
        guard_drill(record, ctx)
        provider = _provider(ctx)
        if outputs.get("previous"):
            previous = RecordState.from_json(outputs["previous"])
        else:
            previous = load_previous(ctx, record, ctx.run_id) or RecordState(record)
        provider.apply(previous)
        provider.wait_in_sync()
        check_id = outputs.get("health_check_id")
        if check_id and outputs.get("health_check_created") and hasattr(provider, "delete_health_check"):
            provider.delete_health_check(check_id)
        ctx.log(f"dns.flip teardown: {record} is back to {previous.describe()}")


# --- dns.restore ----------------------------------------------------------------------------------


class DnsRestore(StepType):
    name = "dns.restore"
    description = ("Put a record back exactly as dns.flip found it (undo, failback): type, TTL, every value "
                   "and the Route 53 routing.")
    params = (
        Param("record", "str", help="the record; default dns.record (in a drill: drill-<id>.<zone>)"),
        Param("previous", "dict", help="the saved values: the `previous` output of a dns.flip step, "
                                       "e.g. ${steps.flip.previous}"),
        Param("run", "str", help="instead: the id of the run whose dns.flip saved them (failback after "
                                 "`dr restore`); default this run"),
        Param("require_healthy", "bool", default=True,
              help="refuse unless an http.wait_healthy step of this run passed in this session within "
                   "health_max_age (false: an undo that must not wait for health)"),
        Param("health_step", "str", help="only accept the health check of this step id"),
        Param("match_targets", "bool", default=False,
              help="also require every address in the saved values to be the host that passed"),
        Param("health_max_age", "duration", default=DEFAULT_HEALTH_MAX_AGE,
              help="the health pass must be from this session and at most this old"),
        Param("wait", "bool", default=True, help="wait until the change is served (Route 53 INSYNC)"),
        Param("sync_timeout", "duration", default="10m", help="how long to wait for that"),
    )
    outputs = ("record", "values", "restored", "replaced", "provider", "health_step", "in_sync_at",
               "previous_ttl", "ttl_from", "traffic_moved_at")
    iam_actions = _READ + _WRITE
    example = """\
- id: undo-dns
  type: dns.restore
  needs: [flip]
  with:
    previous: ${steps.flip.previous}   # or run: <id of the failover run>, for failback
"""

    def validate(self, params: Mapping[str, Any], config) -> list[str]:
        if config.dns is None:
            return ["dr.yaml has no dns section: dns.restore needs one"]
        previous = params.get("previous")
        if previous is not None and not unresolved(previous) and not isinstance(previous, Mapping):
            return [f"previous: expected the `previous` output of a dns.flip step, got {previous!r}"]
        return []

    def _saved(self, params, ctx, record) -> RecordState:
        if params.get("previous"):
            state = RecordState.from_json(params["previous"])
        else:
            run = params.get("run") or ctx.run_id
            state = load_previous(ctx, record, run)
            if state is None:
                raise OperationFailed(f"no saved previous values of {record} from run {run} "
                                      f"(looked for {previous_key(record, run)} in {ctx.store.description})",
                                      hint="pass previous: ${steps.<flip id>.previous}, or run: <the run "
                                           "that flipped it> (see `dr runs list`)")
        if state.name != record:
            raise ConfigError(f"the saved values are for {state.name}, not {record}",
                              hint="set `record` to the record the dns.flip step changed")
        return state

    def _health(self, params: Mapping[str, Any], ctx: StepContext, record: str, state: RecordState) -> str:
        """The health step that allows this restore ("" when require_healthy is false)."""
        if not params["require_healthy"]:
            return ""
        only, age = params.get("health_step"), health_max_age(params)
        hosts = [parse_target(v).host for v in state.values()] if params["match_targets"] else [None]
        found = ""
        for host in hosts or [None]:
            step = fresh_pass(ctx, host, only, age)
            if step is None:
                raise health_refusal(ctx, record, host, only, age)
            found = step
        return found

    def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        record = resolve_record(params, ctx)
        state = self._saved(params, ctx, record)
        health_step = self._health(params, ctx, record, state)
        provider = _provider(ctx)
        before = provider.current(record)
        ctx.log(f"dns.restore: {record}: {before.describe()} -> {state.describe()}")
        provider.apply(state)
        if params["wait"]:
            provider.wait_in_sync(seconds_of(params.get("sync_timeout") or "10m", "sync_timeout"))
        after = provider.current(record)
        if not after.same_as(state):
            raise OperationFailed(f"{record}: after restoring, {provider.name} serves {after.describe()}, "
                                  f"not {state.describe()}", hint="rerun the step (it is idempotent)")
        return {"record": record, "values": after.values(), "restored": state.to_json(),
                "replaced": before.to_json(), "provider": provider.name, "health_step": health_step,
                **traffic(ctx, provider, before)}

    def check(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any] | None:
        record = resolve_record(params, ctx)
        state = self._saved(params, ctx, record)
        provider = _provider(ctx)
        current = provider.current(record)
        if not current.same_as(state):
            return None
        return {"record": record, "values": current.values(), "restored": state.to_json(),
                "replaced": current.to_json(), "provider": provider.name, "health_step": "",
                **traffic(ctx, provider, RecordState(record))}


STEP_TYPES = (DnsFlip, DnsRestore)
