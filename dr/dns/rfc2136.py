"""RFC 2136 dynamic updates signed with TSIG: BIND, Knot, PowerDNS, and GSLBs that take them.

Reads and writes go to the one server in dr.yaml (`dns.server`, `dns.port`) over TCP, signed
with `dns.tsig`. `current` asks that server directly (no recursion, no cache) for each managed
type. `apply` sends one UPDATE message, which the server applies atomically: prerequisites
that the record is still what `current` saw (so a concurrent edit fails instead of being
overwritten), then the deletions, then the replacements. After the server says NOERROR, the
record is read back and compared with what was asked (a GSLB may accept and ignore).

Only simple records exist here: RFC 2136 has no failover or weighted routing.
"""

from __future__ import annotations

import time

from dr.dns.base import MANAGED_TYPES, DnsProvider, RecordSet, RecordState, absolute, plan_changes
from dr.errors import ConfigError, OperationFailed

_RCODE_HINTS = {
    "REFUSED": "the server refused the update: check that the zone's update-policy (or allow-update) "
               "grants the TSIG key named in dns.tsig.name, and that the record is inside dns.zone",
    "NOTAUTH": "the server does not accept the TSIG signature: check dns.tsig.name, dns.tsig.secret and "
               "dns.tsig.algorithm against the key configured on the server, and the clock of both hosts",
    "NOTZONE": "the record is not inside dns.zone",
    "YXRRSET": "the record changed after dr read it (someone else edited it); rerun to read it again",
    "NXRRSET": "the record changed after dr read it (someone else edited it); rerun to read it again",
    "YXDOMAIN": "the record changed after dr read it (someone else edited it); rerun to read it again",
    "NXDOMAIN": "the record changed after dr read it (someone else edited it); rerun to read it again",
    "SERVFAIL": "the server failed to apply the update: see its log (is the zone loaded and writable?)",
}


def _dns():
    try:
        import dns.exception  # noqa: F401
        import dns.flags  # noqa: F401
        import dns.message  # noqa: F401
        import dns.name  # noqa: F401
        import dns.query  # noqa: F401
        import dns.rcode  # noqa: F401
        import dns.rdataset  # noqa: F401
        import dns.rdatatype  # noqa: F401
        import dns.tsig  # noqa: F401
        import dns.update  # noqa: F401
    except ImportError:  # pragma: no cover - dnspython is a dependency
        raise ConfigError("dns.provider rfc2136 needs the dnspython package",
                          hint="pip install 'dnspython>=2.4'") from None
    import dns

    return dns


class Rfc2136Provider(DnsProvider):
    name = "rfc2136"
    modes = ("simple",)
    timeout = 10.0  # seconds per query or update
    poll_interval = 1.0

    def __init__(self, settings, *, session=None, wait=None):
        super().__init__(settings, session=session, wait=wait)
        if not settings.server:
            raise ConfigError("dns.server is missing: rfc2136 needs the name server that takes updates")
        if settings.tsig is None:
            raise ConfigError("dns.tsig is missing: dynamic updates must be signed",
                              hint="add tsig: {name: KEYNAME, algorithm: hmac-sha256, secret: {env: DR_TSIG_SECRET}}")
        self.server, self.port = settings.server, settings.port
        self._key = None
        self._last: RecordState | None = None

    @property
    def where(self) -> str:
        return f"{self.server}:{self.port}"

    def key(self):
        if self._key is None:
            dns = _dns()
            tsig = self.settings.tsig
            try:
                self._key = dns.tsig.Key(tsig.name, tsig.secret.resolve(), tsig.algorithm)
            except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError
                raise ConfigError(f"dns.tsig.secret is not a base64 TSIG secret ({exc})",
                                  hint="use the `secret` line of `tsig-keygen NAME`") from None
        return self._key

    def _send(self, message, what: str):
        dns = _dns()
        try:
            return dns.query.tcp(message, self.server, timeout=self.timeout, port=self.port)
        except dns.tsig.PeerError as exc:
            raise OperationFailed(f"{what}: {self.where} rejected dr's TSIG key "
                                  f"{self.settings.tsig.name!r} ({type(exc).__name__}: {exc})",
                                  hint=_RCODE_HINTS["NOTAUTH"]) from None
        except dns.message.UnknownTSIGKey as exc:
            raise OperationFailed(f"{what}: {self.where} signed its answer with an unknown key ({exc})",
                                  hint=_RCODE_HINTS["NOTAUTH"]) from None
        except dns.exception.Timeout:
            raise OperationFailed(f"{what}: {self.where} did not answer within {self.timeout:.0f}s",
                                  hint="check dns.server and dns.port, and that TCP to it is allowed") from None
        except OSError as exc:
            raise OperationFailed(f"{what}: cannot reach the name server {self.where} ({exc})",
                                  hint="check dns.server and dns.port in dr.yaml") from None

    def current(self, record: str) -> RecordState:
        dns = _dns()
        name = dns.name.from_text(absolute(record))
        sets = []
        for rtype in MANAGED_TYPES:
            query = dns.message.make_query(name, rtype)
            query.flags &= ~dns.flags.RD
            query.use_tsig(self.key())
            reply = self._send(query, f"read {record} {rtype}")
            rcode = dns.rcode.to_text(reply.rcode())
            if rcode not in ("NOERROR", "NXDOMAIN"):
                raise OperationFailed(f"read {record} {rtype}: {self.where} answered {rcode}",
                                      hint=_RCODE_HINTS.get(rcode))
            if not reply.flags & dns.flags.AA:
                raise OperationFailed(f"read {record}: {self.where} is not authoritative for {self.settings.zone}",
                                      hint="dns.server must be the primary name server of dns.zone")
            for rrset in reply.answer:
                if rrset.name == name and dns.rdatatype.to_text(rrset.rdtype) == rtype:
                    sets.append(RecordSet(name=absolute(record), type=rtype, ttl=rrset.ttl,
                                          values=tuple(sorted(r.to_text().lower() for r in rrset))))
        return RecordState(absolute(record), tuple(sets))

    def apply(self, change: RecordState) -> None:
        dns = _dns()
        for s in change.sets:
            if s.set_identifier or s.alias:
                raise ConfigError(f"{change.name}: rfc2136 has only simple records, not {s.routing} or alias")
        before = self.current(change.name)
        self._last = change
        ops = plan_changes(before, change)
        if not ops:
            return
        if any(s.type == "CNAME" for s in change.sets):
            self._check_cname_alone(change.name)
        update = dns.update.UpdateMessage(absolute(self.settings.zone), keyring=self.key())
        name = dns.name.from_text(change.name)
        have = {s.type: s for s in before.sets}
        for rtype in MANAGED_TYPES:  # the record is still what we read, or nothing happens
            if rtype in have:
                update.present(name, dns.rdataset.from_text("IN", rtype, 0, *have[rtype].values))
            else:
                update.absent(name, rtype)
        for action, s in ops:  # deletions first: a CNAME cannot be added next to an A record
            if action == "DELETE":
                update.delete(name, s.type)
        for action, s in ops:
            if action == "UPSERT":
                update.replace(name, s.ttl, s.type, *s.values)
        reply = self._send(update, f"update {change.name}")
        rcode = dns.rcode.to_text(reply.rcode())
        if rcode != "NOERROR":
            raise OperationFailed(f"update {change.name} on {self.where}: the server answered {rcode}",
                                  hint=_RCODE_HINTS.get(rcode))
        after = self.current(change.name)
        if not after.same_as(change):
            self._roll_back(before, after)
            raise OperationFailed(f"update {change.name} on {self.where}: accepted, but the server now answers "
                                  f"{after.describe()} instead of {change.describe()}",
                                  hint="the server (or GSLB) rewrote the update; dr put the previous values "
                                       "back; check the server's policy and log")

    def _check_cname_alone(self, record: str) -> None:
        """A CNAME cannot share its name with other data (RFC 1034 3.6.2); a server ignores such an
        add after deleting the address records, which would leave the name with no address."""
        dns = _dns()
        query = dns.message.make_query(dns.name.from_text(record), "ANY")
        query.flags &= ~dns.flags.RD
        query.use_tsig(self.key())
        reply = self._send(query, f"read {record} ANY")
        others = sorted({dns.rdatatype.to_text(r.rdtype) for r in reply.answer
                         if dns.rdatatype.to_text(r.rdtype) not in (*MANAGED_TYPES, "RRSIG", "NSEC", "NSEC3")})
        if others:
            raise OperationFailed(f"{record} also holds {', '.join(others)} records, so it cannot become a CNAME "
                              "(a CNAME must be alone at its name); nothing was changed",
                              hint="flip to an IP address target instead, or move those records off the name")

    def _roll_back(self, before: RecordState, after: RecordState) -> None:
        if after.same_as(before):
            return
        try:
            self._last = None
            self.apply(before)
        except Exception:  # noqa: BLE001 - the first error is the one to report
            pass

    def wait_in_sync(self, timeout: float = 60.0) -> None:
        if self._last is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            now = self.current(self._last.name)
            if now.same_as(self._last):
                return
            if time.monotonic() >= deadline:
                raise OperationFailed(f"{self.where} still answers {now.describe()} for {self._last.name} "
                                      f"after {timeout:.0f}s, not {self._last.describe()}")
            self.wait(self.poll_interval)
