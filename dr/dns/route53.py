"""Route 53: simple, failover (PRIMARY/SECONDARY with health checks) and weighted records.

Every change is one ChangeResourceRecordSets batch (atomic: all or nothing): the exact current
sets that go away are DELETEd, the new ones UPSERTed. `wait_in_sync` polls GetChange until the
change is INSYNC on all Route 53 name servers. Route 53 is global; its API lives in us-east-1.

Health checks dr creates carry a deterministic CallerReference (`dr-<run>-<step>`), and are
looked up by it before creating, so a rerun after a crash finds the one it made.

`readiness` only reads: the hosted zone exists and dr's credentials can list its record sets
(dns-read), the record exists (dns-record), and its routing policy suits the flip's mode
(dns-routing). It has no dns-write probe: a production hosted zone has no harmless write that
IAM evaluates the same way as the flip (a policy may grant ChangeResourceRecordSets only for
some names and types), and every change there is live at once; dr's IAM policy is checked by
`dr permissions --check` instead.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from typing import Any
from urllib.parse import urlsplit

from dr.clock import Clock
from dr.dns.base import (MANAGED_TYPES, DnsProvider, Probe, RecordSet, RecordState, absolute, not_run, outside_zone,
                         plan_changes)
from dr.errors import ConfigError, DrError
from dr.wait import Backoff, poll


_KNOWN_KEYS = {"Name", "Type", "TTL", "ResourceRecords", "SetIdentifier", "Failover", "Weight",
               "HealthCheckId", "AliasTarget"}
_ESCAPE = re.compile(r"\\(\d{3})")


def _unescape(name: str) -> str:
    """Route 53 returns `*` and other special characters as octal escapes (`\\052`)."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), name)


def from_route53(rrset: dict[str, Any]) -> RecordSet:
    return RecordSet(
        name=absolute(_unescape(rrset["Name"])), type=rrset["Type"], ttl=rrset.get("TTL"),
        values=tuple(r["Value"] for r in rrset.get("ResourceRecords", ())),
        set_identifier=rrset.get("SetIdentifier"), failover=rrset.get("Failover"),
        weight=rrset.get("Weight"), health_check_id=rrset.get("HealthCheckId"),
        alias=dict(rrset["AliasTarget"]) if "AliasTarget" in rrset else None,
        extra={k: v for k, v in rrset.items() if k not in _KNOWN_KEYS})


def to_route53(s: RecordSet) -> dict[str, Any]:
    rrset: dict[str, Any] = {"Name": s.name, "Type": s.type, **dict(s.extra)}
    if s.alias is not None:
        rrset["AliasTarget"] = dict(s.alias)
    else:
        rrset["TTL"] = s.ttl
        rrset["ResourceRecords"] = [{"Value": v} for v in s.values]
    for key, value in (("SetIdentifier", s.set_identifier), ("Failover", s.failover),
                       ("Weight", s.weight), ("HealthCheckId", s.health_check_id)):
        if value is not None:
            rrset[key] = value
    return rrset


class Route53Provider(DnsProvider):
    name = "route53"
    modes = ("simple", "failover", "weighted")
    poll_interval = 5.0

    def __init__(self, settings, *, session=None, wait=None):
        super().__init__(settings, session=session, wait=wait)
        if session is None:
            raise ValueError("the route53 provider needs an AwsSession")
        self.r53 = session.route53()
        self._zone_id: str | None = None
        self.last_change_id: str | None = None

    def zone_id(self) -> str:
        if self._zone_id is None:
            zone = absolute(self.settings.zone)
            found = [zone_id for zone_id, name in self.r53.zones_named(zone) if absolute(name) == zone]
            if not found:
                raise ConfigError(f"Route 53 has no hosted zone {zone} (dns.zone in dr.yaml)",
                                  hint="check the zone name, and that dr's role may route53:ListHostedZonesByName")
            if len(found) > 1:
                raise ConfigError(f"Route 53 has {len(found)} hosted zones named {zone} ({', '.join(found)}): "
                                  "dr cannot tell which one serves the record",
                                  hint="remove the extra zone (public and private split-horizon zones are "
                                       "not supported yet)")
            self._zone_id = found[0].rsplit("/", 1)[-1]
        return self._zone_id

    def current(self, record: str) -> RecordState:
        name = absolute(record)
        sets: list[RecordSet] = []
        start: dict[str, str] | None = None
        while True:
            page, start = self.r53.record_sets(self.zone_id(), name, start)
            for rrset in page:
                if absolute(_unescape(rrset["Name"])) != name:
                    return RecordState(name, tuple(sets))
                if rrset["Type"] in MANAGED_TYPES:
                    sets.append(from_route53(rrset))
            if start is None:
                return RecordState(name, tuple(sets))

    def apply(self, change: RecordState) -> None:
        ops = plan_changes(self.current(change.name), change)
        if not ops:
            self.last_change_id = None
            return
        batch = {"Comment": f"dr: {change.name} -> {change.describe()}"[:256],
                 "Changes": [{"Action": action, "ResourceRecordSet": to_route53(s)} for action, s in ops]}
        self.last_change_id = self.r53.change(self.zone_id(), change.name, batch)

    def wait_in_sync(self, timeout: float = 600.0) -> None:
        if self.last_change_id is None:
            return
        change_id = self.last_change_id
        poll(lambda: self.r53.change_status(change_id), ready=lambda status: status == "INSYNC",
             what=f"Route 53 change {change_id}", clock=_WaitClock(self.wait), timeout=timeout,
             backoff=Backoff(self.poll_interval, 1.0, self.poll_interval),
             hint="Route 53 usually syncs within 60s; check https://health.aws.amazon.com, then rerun "
                  "(the change is idempotent)")

    # -- readiness -------------------------------------------------------------------------------

    def readiness(self, record: str, mode: str = "simple") -> list[Probe]:
        """dns-read, dns-record, dns-routing; read-only (see the module docstring for why there is
        no dns-write probe). When dns-read fails the others are not run (reported not ok)."""
        zone = absolute(self.settings.zone)
        try:
            zone_id = self.zone_id()
            self.r53.record_sets(zone_id, zone, max_items="1")
        except DrError as exc:  # dr.aws turns every SDK error (credentials, network) into one
            why = "dns-read failed, so dr did not read the record; fix dns-read first"
            return [Probe("dns-read", False, f"read the Route 53 hosted zone {zone}: {exc}"),
                    not_run("dns-record", why), not_run("dns-routing", why)]
        read = Probe("dns-read", True, f"Route 53 hosted zone {zone} is {zone_id}, and dr's credentials can "
                                       "list its record sets")
        current: RecordState | None = None
        problem = outside_zone(record, zone)
        if problem is not None:
            found = Probe("dns-record", False, problem)
        else:
            try:
                current = self.current(record)
                found = self.record_probe(current, mode)
            except DrError as exc:
                found = Probe("dns-record", False, f"read {absolute(record)}: {exc}")
        return [read, found, self.routing_probe(current, mode)]

    # -- health checks (failover records) ------------------------------------------------------

    def find_health_check(self, reference: str) -> str | None:
        return self.r53.find_health_check(reference)

    def ensure_health_check(self, url: str, reference: str) -> str:
        """A Route 53 HTTP(S) health check on `url`, made once per reference (idempotent)."""
        found = self.find_health_check(reference)
        if found:
            return found
        parts = urlsplit(url)
        secure = parts.scheme == "https"
        host = parts.hostname or ""
        try:
            where = {"IPAddress": str(ipaddress.ip_address(host))}
        except ValueError:
            where = {"FullyQualifiedDomainName": host}
        config = {"Type": "HTTPS" if secure else "HTTP", **where, "Port": parts.port or (443 if secure else 80),
                  "ResourcePath": (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                  "RequestInterval": 10, "FailureThreshold": 3}
        return self.r53.create_health_check(url, reference, config)

    def delete_health_check(self, check_id: str) -> None:
        self.r53.delete_health_check(check_id)

    def health_check_status(self, check_id: str) -> str:
        """healthy | unhealthy | unknown: what most Route 53 checkers report now."""
        reports = self.r53.health_check_reports(check_id)
        if not reports:
            return "unknown"
        good = sum(r.startswith("Success") for r in reports)
        return "healthy" if good * 2 > len(reports) else "unhealthy"


class _WaitClock(Clock):
    """The provider's `wait` (StepContext.wait: Ctrl-C ends it) as the sleep of the one wait loop."""

    def __init__(self, wait):
        self._wait = wait

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        self._wait(seconds)
        return False
