"""The DNS provider contract, the record model, and the pure planning of a flip.

A provider sees one record name at a time and only the address-like types dr manages
(A, AAAA, CNAME); other types at the same name (TXT, MX, ...) are never read nor touched.

* `current(record) -> RecordState`: every managed record set at that name, as the provider has
  it (type, TTL, values, and for Route 53 the routing: failover role, weight, health check,
  alias target, and any other routing field verbatim).
* `apply(state) -> None`: make the name hold exactly `state`: an idempotent UPSERT of each set,
  and a DELETE of each set that is there but not in `state`. Applying the same state twice
  sends nothing the second time. `apply(RecordState(name, ()))` deletes the record.
* `wait_in_sync(timeout)`: return once the last change is served (Route 53: the change is
  INSYNC; RFC 2136: the server answers with the applied values).

* `readiness(record, mode) -> list[Probe]`: read-mostly checks, run long before a failover
  reaches its dns.flip step, that the flip will work: `dns-read` (the provider answers with
  dr's credentials), `dns-record` (what the record holds now), `dns-routing` (a flip in `mode`
  can change it: `routing_problem`) and, where a harmless write exists, `dns-write`.

A provider raises `AccessDenied` (an OperationFailed the runbook runner does not retry) when the
service rejects dr's credentials, or accepts them for reading but not for the change.

`current` returns values exactly as the service serves them (letter case included: a failback
must write back `Prod-LB.example.net.`, not `prod-lb.example.net.`); comparisons (`same_as`,
`points_at`, `plan_changes`) ignore case and order, as DNS does.

`RecordState.to_json()` / `from_json()` round-trip exactly, so a state saved before a flip is
what failback and undo put back. Everything in this module is pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from dr.clock import Clock, PausingClock
from dr.errors import ConfigError, OperationFailed

if TYPE_CHECKING:
    from dr.aws import AwsSession
    from dr.config import DnsSettings

class AccessDenied(OperationFailed, ConfigError):
    """The DNS service did not accept dr's credentials, or not for this change (a TSIG key the
    server rejects, a key that may read the zone but not update it). Nothing was changed, and
    retrying cannot help until dr.yaml or the server's configuration is fixed: it is also a
    ConfigError, so the runbook runner fails the step at once instead of retrying it. Exit code 1,
    as for OperationFailed."""


MANAGED_TYPES = ("A", "AAAA", "CNAME")
MODES = ("simple", "failover", "weighted")
STATE_FORMAT = 1
_HOST_RE = re.compile(r"(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*"
                      r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def absolute(name: str) -> str:
    """A DNS name in canonical form: lowercase, ending with a dot."""
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def _norm_value(rtype: str, value: str) -> str:
    return absolute(value) if rtype == "CNAME" else value.strip().lower()


@dataclass(frozen=True)
class RecordSet:
    """One resource record set. Simple records have no set_identifier; Route 53 routing sets do.

    `extra` carries Route 53 routing fields dr does not model (Region, GeoLocation,
    MultiValueAnswer, CidrRoutingConfig, ...) verbatim, so they survive a save and restore."""

    name: str
    type: str
    ttl: int | None
    values: tuple[str, ...] = ()
    set_identifier: str | None = None
    failover: str | None = None  # PRIMARY | SECONDARY
    weight: int | None = None
    health_check_id: str | None = None
    alias: Mapping[str, Any] | None = None  # {HostedZoneId, DNSName, EvaluateTargetHealth}
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        """What identifies a set at one name: its type and set identifier."""
        return (self.type, self.set_identifier or "")

    @property
    def routing(self) -> str:
        if self.failover:
            return "failover"
        if self.weight is not None:
            return "weighted"
        if self.extra:
            return "other:" + ",".join(sorted(self.extra))
        return "simple"

    def same_as(self, other: RecordSet) -> bool:
        """Equal as DNS sees it: value order and letter case do not matter."""
        return (self.key == other.key and self.ttl == other.ttl and self.failover == other.failover
                and self.weight == other.weight and self.health_check_id == other.health_check_id
                and _norm_alias(self.alias) == _norm_alias(other.alias)
                and dict(self.extra) == dict(other.extra)
                and sorted(_norm_value(self.type, v) for v in self.values)
                == sorted(_norm_value(other.type, v) for v in other.values))

    def points_at(self, target: Target) -> bool:
        return self.type == target.type and [_norm_value(self.type, v) for v in self.values] == [target.value]

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "type": self.type, "ttl": self.ttl,
                               "values": list(self.values)}
        for key in ("set_identifier", "failover", "weight", "health_check_id"):
            if getattr(self, key) is not None:
                doc[key] = getattr(self, key)
        if self.alias is not None:
            doc["alias"] = dict(self.alias)
        if self.extra:
            doc["extra"] = dict(self.extra)
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RecordSet:
        return cls(name=doc["name"], type=doc["type"], ttl=doc.get("ttl"),
                   values=tuple(doc.get("values") or ()), set_identifier=doc.get("set_identifier"),
                   failover=doc.get("failover"), weight=doc.get("weight"),
                   health_check_id=doc.get("health_check_id"), alias=doc.get("alias"),
                   extra=doc.get("extra") or {})


def _norm_alias(alias: Mapping[str, Any] | None) -> tuple | None:
    if alias is None:
        return None
    return (alias.get("HostedZoneId"), absolute(alias.get("DNSName", "")),
            bool(alias.get("EvaluateTargetHealth")))


@dataclass(frozen=True)
class RecordState:
    """Everything dr manages at one name: zero (no record) or more record sets."""

    name: str
    sets: tuple[RecordSet, ...] = ()

    @property
    def exists(self) -> bool:
        return bool(self.sets)

    def values(self) -> list[str]:
        out = []
        for s in self.sets:
            out.extend(s.values or ([s.alias.get("DNSName", "")] if s.alias else []))
        return out

    def same_as(self, other: RecordState) -> bool:
        return not plan_changes(self, other)

    def describe(self) -> str:
        """One line a person reads: `A 60s 192.0.2.1, 192.0.2.2` or `<none>`."""
        if not self.sets:
            return "<none>"
        parts = []
        for s in self.sets:
            role = ""
            if s.set_identifier:
                role = f"[{s.set_identifier}{' ' + s.failover if s.failover else ''}" \
                       f"{f' weight {s.weight}' if s.weight is not None else ''}] "
            shown = ", ".join(s.values) if s.values else f"alias {s.alias.get('DNSName') if s.alias else '?'}"
            parts.append(f"{role}{s.type} {s.ttl if s.ttl is not None else '-'}s {shown}")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"format": STATE_FORMAT, "name": self.name, "sets": [s.to_json() for s in self.sets]}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RecordState:
        if not isinstance(doc, Mapping) or doc.get("format") != STATE_FORMAT or "name" not in doc:
            raise OperationFailed(f"saved DNS record state is not in format {STATE_FORMAT}: {doc!r}"[:300],
                                  hint="pass the `previous` output of a dns.flip step of this version of dr")
        return cls(name=absolute(doc["name"]), sets=tuple(RecordSet.from_json(s) for s in doc["sets"]))


# --- targets and planning -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a record should point: an IPv4/IPv6 address (A/AAAA) or a host name (CNAME)."""

    host: str  # as a health-check URL would name it: lowercase, no trailing dot
    type: str
    value: str  # the record value: the address, or the host name with a trailing dot


def parse_target(text: str) -> Target:
    """`192.0.2.10`, `2001:db8::1`, `lb-1.us-west-2.elb.amazonaws.com` or a URL (its host is taken)."""
    raw = str(text).strip()
    host = raw
    if "://" in raw:
        host = urlsplit(raw).hostname or ""
    elif "/" in raw:
        host = raw.split("/", 1)[0]
    host = host.strip("[]").rstrip(".").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not _HOST_RE.fullmatch(host) or host.isdigit():
            raise ConfigError(f"dns target {text!r} is not an IP address, a host name or a URL",
                              hint="pass e.g. ${steps.stack.WebsiteURL} or an ELB DNS name") from None
        return Target(host=host, type="CNAME", value=host + ".")
    rtype = "A" if address.version == 4 else "AAAA"
    return Target(host=host, type=rtype, value=str(address))


def host_of(url_or_host: str) -> str:
    """The host part of a URL or name, in the form Target.host uses."""
    text = str(url_or_host).strip()
    host = urlsplit(text).hostname if "://" in text else text.split("/", 1)[0]
    return (host or "").strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class FlipPlan:
    """What a flip wants the record to be: the routing options of dns.flip."""

    target: Target
    mode: str = "simple"
    ttl: int = 60
    set_identifier: str = "dr"
    weight: int = 100
    others_weight: int = 0
    health_check_id: str | None = None
    secondary: Target | None = None


def _routing_conflict(current: RecordState, mode: str) -> tuple[ConfigError, RecordSet | None] | None:
    """Why a flip in `mode` cannot change `current`'s routing, whatever the target (pure): the
    error flip_state raises, and the record set in the way (None for an unknown mode)."""
    name = current.name
    routed = [s for s in current.sets if s.set_identifier]
    if mode == "simple":
        if routed:
            return (ConfigError(f"{name} has {routed[0].routing} record sets "
                                f"({current.describe()}); a simple flip would delete them",
                                hint=f"use mode: {routed[0].routing} on this record"), routed[0])
        return None
    if mode not in ("failover", "weighted"):
        return ConfigError(f"unknown dns.flip mode {mode!r}", hint=f"use one of {', '.join(MODES)}"), None
    other_kind = [s for s in routed if s.routing != mode]
    if other_kind:
        return (ConfigError(f"{name} has {other_kind[0].routing} record sets ({current.describe()}); "
                            f"mode {mode} cannot change them", hint=f"use mode: {other_kind[0].routing}"),
                other_kind[0])
    return None


def flip_state(current: RecordState, plan: FlipPlan) -> RecordState:
    """The record as it should be after the flip (pure). Raises ConfigError when the existing
    record cannot be moved in that mode without losing something (say which mode to use)."""
    name, t = current.name, plan.target
    routed = [s for s in current.sets if s.set_identifier]
    plain = [s for s in current.sets if not s.set_identifier]
    mine = RecordSet(name=name, type=t.type, ttl=plan.ttl, values=(t.value,))
    conflict = _routing_conflict(current, plan.mode)
    if conflict is not None:
        raise conflict[0]
    if plan.mode == "simple":
        return RecordState(name, (mine,))
    if plan.mode == "weighted":
        return _weighted(current, plan, mine, routed, plain)
    return _failover(current, plan, mine, routed, plain)


def _same_type(name: str, sets: list[RecordSet], rtype: str, mode: str) -> None:
    for s in sets:
        if s.type != rtype:
            raise ConfigError(f"{name}: the existing {s.type} record ({', '.join(s.values)}) cannot share a "
                              f"{mode} routing policy with a {rtype} target",
                              hint="flip to a target of the same kind (address or host name), "
                                   "or pass `secondary:`, or use mode: simple")


def _weighted(current, plan, mine, routed, plain) -> RecordState:
    mine = replace(mine, set_identifier=plan.set_identifier, weight=plan.weight)
    others = [s for s in routed if s.set_identifier != plan.set_identifier]
    others += [replace(s, set_identifier="previous") for s in plain]
    _same_type(current.name, others, mine.type, "weighted")
    return RecordState(current.name, (mine, *(replace(s, weight=plan.others_weight) for s in others)))


def _failover(current, plan, mine, routed, plain) -> RecordState:
    mine = replace(mine, set_identifier=plan.set_identifier, failover="PRIMARY",
                   health_check_id=plan.health_check_id)
    primary = next((s for s in routed if s.failover == "PRIMARY"), None)
    secondary = next((s for s in routed if s.failover == "SECONDARY"), None)
    if plan.secondary is not None:
        sid = "secondary" if plan.set_identifier != "secondary" else "secondary-2"
        standby = RecordSet(name=current.name, type=plan.secondary.type, ttl=plan.ttl,
                            values=(plan.secondary.value,), set_identifier=sid, failover="SECONDARY")
    elif primary is not None and primary.set_identifier != plan.set_identifier:
        standby = replace(primary, failover="SECONDARY")  # the old primary stands by
    elif primary is None and plain:
        standby = replace(plain[0], set_identifier="previous", failover="SECONDARY")
    else:
        standby = secondary
    if standby is not None and standby.set_identifier == mine.set_identifier:
        standby = replace(standby, set_identifier=f"{standby.set_identifier}-previous")
    if standby is not None:
        _same_type(current.name, [standby], mine.type, "failover")
    return RecordState(current.name, (mine,) if standby is None else (mine, standby))


# placeholder targets, one of each kind a flip can point at (documentation addresses, RFC 5737/3849/2606)
_PLACEHOLDERS = (Target("192.0.2.1", "A", "192.0.2.1"), Target("2001:db8::1", "AAAA", "2001:db8::1"),
                 Target("placeholder.invalid", "CNAME", "placeholder.invalid."))


def routing_problem(current: RecordState, mode: str) -> str | None:
    """Why a dns.flip in `mode` (simple | failover | weighted) could not be applied to `current`
    without losing record sets, with the fix; None when it can (pure).

    Uses flip_state's own rules: the record's routing kind must suit the mode (a simple flip
    would delete failover/weighted sets; a weighted flip cannot change failover sets, ...), and
    some target (an IPv4 or IPv6 address, or a host name) must be able to share the routing
    policy with the sets that stay. The runbook's target is not known before the stack runs, so
    a record is fine when a target of at least one kind would be."""
    conflict = _routing_conflict(current, mode)
    if conflict is not None:
        error, in_the_way = conflict
        if in_the_way is not None and in_the_way.routing.startswith("other:"):
            fields = in_the_way.routing.split(":", 1)[1]
            return with_fix(f"{error.message}: dr's dns.flip changes only simple, failover and weighted "
                            f"records, and these sets use {fields} routing",
                            "change the record to failover or weighted routing in Route 53 (then use that "
                            "mode in the dns.flip step), or flip it by hand")
        return with_fix(error.message, error.hint)
    errors = []
    for target in _PLACEHOLDERS:
        try:
            flip_state(current, FlipPlan(target, mode=mode))
            return None
        except ConfigError as exc:
            errors.append((target, exc))
    kinds = {s.type for s in current.sets}
    _, error = next(((t, e) for t, e in errors if t.type in kinds), errors[0])
    return with_fix(f"{error.message} (and a flip to a target of any other kind fails as well)", error.hint)


def plan_changes(current: RecordState, desired: RecordState) -> list[tuple[str, RecordSet]]:
    """The Route 53-style change list turning `current` into `desired`: DELETEs first (each the
    exact current set, as Route 53 requires), then UPSERTs. Empty when nothing needs to change.
    A set whose routing kind changes is deleted and written anew (Route 53 refuses to UPSERT a
    set into another routing policy)."""
    have = {s.key: s for s in current.sets}
    want = {s.key: s for s in desired.sets}
    deletes = [s for k, s in have.items() if k not in want or want[k].routing != s.routing]
    upserts = [s for k, s in want.items() if k not in have or not have[k].same_as(s)]
    return [("DELETE", s) for s in deletes] + [("UPSERT", s) for s in upserts]


# --- readiness probes -----------------------------------------------------------------------------

PROBE_NAMES = ("dns-read", "dns-record", "dns-routing", "dns-write")


@dataclass(frozen=True)
class Probe:
    """One readiness finding about DNS: `dns-read`, `dns-record`, `dns-routing` or `dns-write`.

    `detail` says what was found; when not ok, also what is wrong and how to fix it (the text
    after `fix:`), for a person who reads it in the middle of the night."""

    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def not_run(name: str, why: str) -> Probe:
    """A probe that was skipped because an earlier one failed (not ok: nothing was proven)."""
    return Probe(name, False, f"not run: {why}")


def with_fix(message: str, hint: str | None) -> str:
    """A probe detail in the same shape as a DrError: the finding, then `fix:` and the hint."""
    return str(ConfigError(message, hint=hint))


def outside_zone(record: str, zone: str) -> str | None:
    """Why `record` cannot be changed through `zone` (it is not at or under it), or None."""
    record, zone = absolute(record), absolute(zone)
    if record == zone or record.endswith("." + zone) or zone == ".":
        return None
    return with_fix(f"{record} is not inside the zone {zone} (dns.zone)",
                    "set dns.record (or the dns.flip step's `record:`) to a name in dns.zone, or dns.zone to "
                    "the zone that holds the record")


# --- the provider contract ------------------------------------------------------------------------


class DnsProvider(ABC):
    """One DNS service holding `settings.zone`. Made by `dr.dns.make_provider`."""

    name: ClassVar[str]
    modes: ClassVar[tuple[str, ...]] = ("simple",)

    def __init__(self, settings: DnsSettings, *, session: AwsSession | None = None,
                 wait: Callable[[float], None] | None = None):
        self.settings = settings
        self.session = session
        self.wait = wait or Clock().sleep  # pass StepContext.wait so Ctrl-C stops a wait
        self.clock = PausingClock(Clock(), self.wait)  # for dr.wait.poll

    @abstractmethod
    def current(self, record: str) -> RecordState:
        """Every managed record set at `record` (A, AAAA, CNAME), as served now."""

    @abstractmethod
    def apply(self, change: RecordState) -> None:
        """Make `change.name` hold exactly `change.sets` (idempotent)."""

    @abstractmethod
    def wait_in_sync(self, timeout: float = 600.0) -> None:
        """Return once the last `apply` is served; raise OperationFailed on timeout."""

    @abstractmethod
    def readiness(self, record: str, mode: str = "simple") -> list[Probe]:
        """Check, without changing the record, that a dns.flip of `record` in `mode` would work
        now: the PROBE_NAMES probes this provider can run, in that order. Never raises for what
        it finds (a wrong key, a missing zone, an unreachable server): each becomes a Probe
        that is not ok and says how to fix it."""

    def describe(self) -> str:
        return f"{self.name} zone {self.settings.zone}"

    # -- helpers for readiness (no I/O) ----------------------------------------------------------

    def record_probe(self, current: RecordState, mode: str) -> Probe:
        """dns-record: what the record holds now. A missing record is fine for a simple flip
        (it creates the record), not for failover or weighted (they need what they move from)."""
        where = f"{self.name} zone {absolute(self.settings.zone)}"
        if current.exists:
            return Probe("dns-record", True, f"{current.name} in {where} holds {current.describe()}")
        missing = f"{current.name} has no A, AAAA or CNAME record in {where}"
        if mode == "simple":
            return Probe("dns-record", True, f"{missing}; a simple flip will create it "
                                             "(if the record should exist, check the spelling of dns.record)")
        return Probe("dns-record", False, with_fix(
            f"{missing}; a {mode} flip needs the record it moves traffic from (the sets the primary "
            "region serves now)",
            f"create {current.name} with {mode} routing pointing at the primary region, check the spelling "
            "of dns.record, or use mode: simple in the dns.flip step"))

    def routing_probe(self, current: RecordState | None, mode: str) -> Probe:
        """dns-routing: a flip in `mode` can change `current` (None: the record could not be read)."""
        if mode not in MODES:
            return Probe("dns-routing", False, with_fix(f"unknown dns.flip mode {mode!r}",
                                                        f"use one of {', '.join(MODES)}"))
        if mode not in self.modes:
            return Probe("dns-routing", False, with_fix(
                f"mode {mode} is not available with dns.provider {self.name}: it has only "
                f"{' and '.join(self.modes)} records",
                f"use mode: {self.modes[0]} in the dns.flip step ({mode} records need provider route53)"))
        if current is None:
            return not_run("dns-routing", "the record could not be read (see dns-record), so dr cannot "
                                          f"tell whether a {mode} flip can change it")
        problem = routing_problem(current, mode)
        if problem is not None:
            return Probe("dns-routing", False, problem)
        if not current.exists:
            return Probe("dns-routing", True, f"a {mode} flip will create {current.name}")
        kinds = sorted({s.routing for s in current.sets})
        return Probe("dns-routing", True, f"{current.name} has {' and '.join(kinds)} routing, which a {mode} "
                                          "flip can change")
