"""DNS providers: a plain name -> class registry, filled here and only here.

    provider = make_provider(config.dns, session=ctx.session, wait=ctx.wait)
    before = provider.current("www.example.com.")
    for probe in provider.readiness("www.example.com.", mode="simple"):  # before any failover
        print(probe.name, "ok" if probe.ok else "NOT OK", probe.detail)

`route53` (AWS Route 53: simple, failover and weighted records) and `rfc2136` (any DNS server or
GSLB taking TSIG-signed dynamic updates: BIND, Knot, PowerDNS, Infoblox, ...). The contract is in
dr/dns/base.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from dr.dns.base import (DnsProvider, FlipPlan, Probe, RecordSet, RecordState, Target, flip_state, parse_target,
                         plan_changes, routing_problem)
from dr.dns.rfc2136 import Rfc2136Provider
from dr.dns.route53 import Route53Provider
from dr.errors import ConfigError

if TYPE_CHECKING:
    from dr.aws import AwsSession
    from dr.config import DnsSettings

__all__ = ["PROVIDERS", "DnsProvider", "FlipPlan", "Probe", "RecordSet", "RecordState", "Target", "flip_state",
           "make_provider", "parse_target", "plan_changes", "register", "routing_problem"]

PROVIDERS: dict[str, type[DnsProvider]] = {}


def register(cls: type[DnsProvider]) -> type[DnsProvider]:
    """Add a provider class under its `name`; a second class with the same name is an error."""
    if cls.name in PROVIDERS:
        raise ValueError(f"DNS provider {cls.name!r} is registered twice "
                         f"({PROVIDERS[cls.name].__qualname__} and {cls.__qualname__})")
    PROVIDERS[cls.name] = cls
    return cls


for _cls in (Route53Provider, Rfc2136Provider):
    register(_cls)


def make_provider(settings: DnsSettings | None, *, session: AwsSession | None = None,
                  wait: Callable[[float], None] | None = None) -> DnsProvider:
    if settings is None:
        raise ConfigError("dr.yaml has no dns section: a DNS step needs one",
                          hint="add e.g. dns: {provider: route53, zone: example.com., record: www.example.com.}")
    cls = PROVIDERS.get(settings.provider)
    if cls is None:
        raise ConfigError(f"dns.provider {settings.provider!r} is not known",
                          hint=f"use one of {', '.join(sorted(PROVIDERS))}")
    return cls(settings, session=session, wait=wait)
