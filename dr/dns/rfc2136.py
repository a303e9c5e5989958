"""RFC 2136 dynamic updates signed with TSIG: BIND, Knot, PowerDNS, and GSLBs that take them.

Reads and writes go to the one server in dr.yaml (`dns.server`, `dns.port`) over TCP, signed
with `dns.tsig`. `current` asks that server directly (no recursion, no cache) for each managed
type. `apply` sends one UPDATE message, which the server applies atomically: prerequisites
that the record is still what `current` saw (so a concurrent edit fails instead of being
overwritten), then the deletions, then the replacements. After the server says NOERROR, the
record is read back and compared with what was asked (a GSLB may accept and ignore).

Only simple records exist here: RFC 2136 has no failover or weighted routing.

`readiness` proves, long before a failover reaches its dns.flip step, what that step needs:
the server answers dr's TSIG-signed queries for the zone (dns-read), what the record holds
(dns-record), that the mode is simple (dns-routing), and that the key may update the zone
(dns-write: a TXT record `_dr-readiness.<zone>` is added in one signed UPDATE and deleted in a
second, then read back as gone; no other name is touched). Each run of it bumps the zone's SOA
serial twice. An update-policy that grants the key only some names must also grant it
`_dr-readiness.<zone>` TXT for dns-write to pass; the probe proves the key, the secret and
the zone's policy for that name, not for each record.

Answers are checked here, not by dnspython alone: a server that rejects dr's key answers NOTAUTH
with a TSIG error (BIND, Knot: BADSIG, BADKEY) or without any signature (PowerDNS: NOTAUTH to a
query, REFUSED to an update), and both become the same clear `AccessDenied` naming the server and
the key, which the runbook runner does not retry. A refused UPDATE (REFUSED; Knot answers BADKEY
for a key its acl lets query but not update) is followed by a signed read with the same key:
when that works, the error says the key may read but not update, and names the setting that
grants updates on BIND, Knot and PowerDNS.

Values are kept exactly as served (letter case too), so a failback writes back what was there.
Knot answers a query of type ANY with one record set (RFC 8482), so when an ANY answer holds at
most one type, the other types a CNAME cannot sit next to are asked one by one.
"""

from __future__ import annotations

import socket
import time
from datetime import datetime, timezone

from dr.dns.base import (MANAGED_TYPES, AccessDenied, DnsProvider, Probe, RecordSet, RecordState, absolute, not_run,
                         outside_zone, plan_changes, with_fix)
from dr.errors import ConfigError, DrError, OperationFailed
from dr.wait import Backoff, poll

PROBE_LABEL = "_dr-readiness"  # dns-write adds and deletes a TXT record `_dr-readiness.<zone>`

# Types a CNAME cannot share its name with, asked one by one when an ANY answer may be minimal
# (RFC 8482; Knot answers ANY with a single record set, over TCP too).
OTHER_TYPES = ("TXT", "MX", "SRV", "NS", "DS", "CAA", "HINFO", "NAPTR", "PTR", "SSHFP", "TLSA", "LOC", "SPF",
               "HTTPS", "SVCB", "URI", "DNAME", "RP", "CERT", "OPENPGPKEY", "SMIMEA", "AFSDB")

_RCODE_HINTS = {
    "REFUSED": "the server refused the update: check that the zone grants the TSIG key named in dns.tsig.name "
               "updates (BIND: update-policy; Knot: an acl with action: update; PowerDNS: TSIG-ALLOW-DNSUPDATE "
               "and ALLOW-DNSUPDATE-FROM), and that the record is inside dns.zone",
    "NOTAUTH": "the server does not accept the TSIG signature: check dns.tsig.name, dns.tsig.secret and "
               "dns.tsig.algorithm against the key configured on the server, and the clock of both hosts",
    "NOTZONE": "the record is not inside dns.zone",
    "YXRRSET": "the record changed after dr read it (someone else edited it); rerun to read it again",
    "NXRRSET": "the record changed after dr read it (someone else edited it); rerun to read it again",
    "YXDOMAIN": "the record changed after dr read it (someone else edited it); rerun to read it again",
    "NXDOMAIN": "the record changed after dr read it (someone else edited it); rerun to read it again",
    "SERVFAIL": "the server failed to apply the update: see its log (is the zone loaded and writable?)",
    "NOTIMP": "the server does not take dynamic updates for this zone (PowerDNS: dnsupdate=yes; a secondary "
              "server: set dns.server to the primary)",
}
_READ_HINT = ("dns.server must be the primary name server of dns.zone, with the zone loaded, and the record "
              "inside dns.zone")
_TSIG_ERRORS = {"PeerBadKey": "BADKEY", "PeerBadSignature": "BADSIG", "PeerBadTime": "BADTIME",
                "PeerBadTruncation": "BADTRUNC"}


def grant_hint(key: str, zone: str) -> str:
    """How to let TSIG key `key` update `zone`, on each server dr is tested against."""
    return (f"let the key update the zone on the server. BIND: `update-policy {{ grant {key} zonesub ANY; }};` "
            f"in the zone. Knot: an acl with `key: {key}` and `action: [query, update]` (`action: update` is "
            f"what allows updates), listed in the zone's `acl:`. PowerDNS: the zone's TSIG-ALLOW-DNSUPDATE "
            f"metadata (`pdnsutil set-meta {zone.rstrip('.')} TSIG-ALLOW-DNSUPDATE {key}`), with dnsupdate=yes "
            "and dr's address in allow-dnsupdate-from or the zone's ALLOW-DNSUPDATE-FROM")


class UnsignedAnswer(Exception):
    """The server answered a TSIG-signed message without a signature (dnspython alone raises a bare
    `FormError: response requires a TSIG but does not have one`, losing the answer). PowerDNS
    answers so when it rejects the key: NOTAUTH to a query, REFUSED to an update."""

    def __init__(self, reply, rcode: str):
        super().__init__(f"answered {rcode} without a TSIG signature")
        self.reply = reply
        self.rcode = rcode


def _dns():
    try:
        import dns.exception  # noqa: F401
        import dns.flags  # noqa: F401
        import dns.message  # noqa: F401
        import dns.name  # noqa: F401
        import dns.query  # noqa: F401
        import dns.rcode  # noqa: F401
        import dns.rdata  # noqa: F401
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

    def _tcp(self, message):
        """Send `message` over TCP and return the answer, its TSIG checked here: PeerBadKey,
        PeerBadSignature... when the server's TSIG record carries an error, BadSignature when the
        answer's signature does not verify, UnsignedAnswer when a signed message got an unsigned
        answer; dns.exception.Timeout; OSError when the server cannot be reached."""
        dns = _dns()
        wire = message.to_wire()  # signs it: message.mac is what the answer's signature covers
        expiration = time.time() + self.timeout
        try:
            sock = socket.create_connection((self.server, self.port), timeout=self.timeout)
        except socket.timeout:
            raise dns.exception.Timeout(timeout=self.timeout) from None
        with sock:
            sock.setblocking(False)
            dns.query.send_tcp(sock, wire, expiration)
            try:  # keyring=False: parsed without any TSIG check, which follows
                reply, _ = dns.query.receive_tcp(sock, expiration, keyring=False)
            except EOFError:
                raise ConnectionResetError("it closed the connection without answering") from None
        if not (message.is_response(reply) or (reply.id == message.id and reply.flags & dns.flags.QR
                                               and not reply.question)):
            raise dns.query.BadResponse
        if message.keyring is None:
            return reply
        if not reply.had_tsig:
            raise UnsignedAnswer(reply, dns.rcode.to_text(reply.rcode()))
        return dns.message.from_wire(reply.wire, keyring=message.keyring, request_mac=message.mac)

    def _rejection(self, exc: Exception, *, update: bool) -> str | None:
        """How the server answered, when `exc` says it did not accept dr's key for the message:
        `NOTAUTH (TSIG error BADKEY)`, `NOTAUTH, unsigned`, ...; None for any other failure."""
        dns = _dns()
        if isinstance(exc, dns.tsig.PeerError):
            return f"NOTAUTH (TSIG error {_TSIG_ERRORS.get(type(exc).__name__, type(exc).__name__)})"
        if isinstance(exc, UnsignedAnswer) and exc.rcode in (("NOTAUTH", "REFUSED") if update else ("NOTAUTH",)):
            return f"{exc.rcode}, unsigned"
        return None

    def _failure(self, exc: Exception, what: str, *, update: bool = False) -> Exception:
        """The DrError to raise for a failed exchange (`exc` itself when it is none of dr's business)."""
        dns = _dns()
        name = self.settings.tsig.name
        if isinstance(exc, dns.tsig.PeerError):
            return AccessDenied(f"{what}: {self.where} rejected dr's TSIG key {name!r} ({type(exc).__name__}: {exc})",
                                hint=_RCODE_HINTS["NOTAUTH"])
        if isinstance(exc, UnsignedAnswer):
            if self._rejection(exc, update=update):
                return AccessDenied(f"{what}: {self.where} rejected dr's TSIG key {name!r} ({exc.rcode}, unsigned: "
                                    "the server knows no key of that name and algorithm, or its secret differs)",
                                    hint=_RCODE_HINTS["NOTAUTH"])
            if exc.rcode in ("NOERROR", "NXDOMAIN"):
                return AccessDenied(f"{what}: {self.where} answered {exc.rcode} without a TSIG signature to dr's "
                                    "signed query, so its answer cannot be trusted",
                                    hint=f"check that {self.where} is the server that holds TSIG key {name!r} and "
                                         "that it supports TSIG (RFC 8945)")
            return OperationFailed(f"{what}: {self.where} answered {exc.rcode} without a TSIG signature",
                                   hint=_READ_HINT if exc.rcode == "REFUSED" else _RCODE_HINTS.get(exc.rcode))
        if isinstance(exc, dns.message.UnknownTSIGKey):
            return AccessDenied(f"{what}: {self.where} signed its answer with an unknown key ({exc})",
                                hint=_RCODE_HINTS["NOTAUTH"])
        if isinstance(exc, dns.exception.Timeout):
            return OperationFailed(f"{what}: {self.where} did not answer within {self.timeout:.0f}s",
                                   hint="check dns.server and dns.port, and that TCP to it is allowed")
        if isinstance(exc, OSError):
            return OperationFailed(f"{what}: cannot reach the name server {self.where} ({exc})",
                                   hint="check dns.server and dns.port in dr.yaml")
        if isinstance(exc, dns.exception.DNSException):
            return OperationFailed(f"{what}: {self.where} sent an answer dr cannot use ({type(exc).__name__}: {exc})",
                                   hint=f"check that {self.where} is a DNS server that supports TSIG (RFC 8945)")
        return exc

    def _send(self, message, what: str, *, zone: str | None = None):
        """One signed exchange; raises a DrError saying what went wrong. With `zone`, `message`
        is an UPDATE of that zone: a refusal of it says whether the key may read the zone."""
        dns = _dns()
        try:
            reply = self._tcp(message)
        except Exception as exc:  # noqa: BLE001 - _failure re-raises what it does not know
            answered = self._rejection(exc, update=True) if zone is not None else None
            denied = self._update_denied(what, zone, answered) if answered else None
            if denied is not None:
                raise AccessDenied(denied[0], hint=denied[1]) from None
            raise self._failure(exc, what, update=zone is not None) from None
        if zone is not None and dns.rcode.to_text(reply.rcode()) in ("REFUSED", "NOTAUTH"):
            rcode = dns.rcode.to_text(reply.rcode())
            denied = self._update_denied(what, zone, rcode)
            if denied is not None:
                raise AccessDenied(denied[0], hint=denied[1])
            raise AccessDenied(f"{what} on {self.where}: the server answered {rcode}", hint=_RCODE_HINTS[rcode])
        return reply

    def _update_denied(self, what: str, zone: str, answered: str) -> tuple[str, str] | None:
        """When the server refused an UPDATE of `zone` (it `answered` REFUSED, NOTAUTH with a TSIG
        error, ...) but a signed read with the same key works: the message and the fix saying that
        the key may read but not update. None when the read fails too (the key itself is rejected)."""
        if not self._probe_read(zone).ok:
            return None
        name = self.settings.tsig.name
        return (f"{what}: {self.where} answered {answered} to the signed UPDATE: TSIG key {name!r} may read {zone} "
                "(a signed query with it is answered and verified) but not update it", grant_hint(name, zone))

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
                                      hint=_READ_HINT if rcode == "REFUSED" else _RCODE_HINTS.get(rcode))
            if not reply.flags & dns.flags.AA:
                raise OperationFailed(f"read {record}: {self.where} is not authoritative for {self.settings.zone}",
                                      hint="dns.server must be the primary name server of dns.zone")
            for rrset in reply.answer:
                if rrset.name == name and dns.rdatatype.to_text(rrset.rdtype) == rtype:
                    # exactly as served: a failback writes these back (comparisons ignore case)
                    sets.append(RecordSet(name=absolute(record), type=rtype, ttl=rrset.ttl,
                                          values=tuple(sorted(r.to_text() for r in rrset))))
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
        reply = self._send(update, f"update {change.name}", zone=absolute(self.settings.zone))
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

    def _types_at(self, record: str, rtype: str) -> set[str]:
        """The types of the record sets a signed, non-recursive query of `record` `rtype` answers."""
        dns = _dns()
        name = dns.name.from_text(record)
        query = dns.message.make_query(name, rtype)
        query.flags &= ~dns.flags.RD
        query.use_tsig(self.key())
        reply = self._send(query, f"read {record} {rtype}")
        return {dns.rdatatype.to_text(r.rdtype) for r in reply.answer if r.name == name
                and not (r.rdtype == dns.rdatatype.HINFO and any(b"RFC8482" in h.cpu for h in r))}

    def _other_types(self, record: str) -> list[str]:
        """The types other than A, AAAA and CNAME (and DNSSEC's) that `record` holds. An ANY answer
        with at most one type may be minimal (RFC 8482: Knot's is, over TCP too), so then each
        of OTHER_TYPES is asked for as well."""
        found = self._types_at(record, "ANY")
        if len(found - {"RRSIG"}) <= 1:
            for rtype in OTHER_TYPES:
                if rtype not in found:
                    found |= self._types_at(record, rtype) & {rtype}
        return sorted(found - {*MANAGED_TYPES, "RRSIG", "NSEC", "NSEC3"})

    def _check_cname_alone(self, record: str) -> None:
        """A CNAME cannot share its name with other data (RFC 1034 3.6.2); a server ignores such an
        add after deleting the address records, which would leave the name with no address."""
        others = self._other_types(record)
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
        want, started = self._last, self.clock.monotonic()

        def give_up(now: RecordState) -> None:
            if self.clock.monotonic() - started >= timeout:
                raise OperationFailed(f"{self.where} still answers {now.describe()} for {want.name} "
                                      f"after {timeout:.0f}s, not {want.describe()}")

        poll(lambda: self.current(want.name), ready=lambda now: now.same_as(want), failed=give_up,
             what=f"{self.where} to serve {want.name}", clock=self.clock, timeout=timeout,
             backoff=Backoff(self.poll_interval, 1.0, self.poll_interval))

    # -- readiness -------------------------------------------------------------------------------

    def readiness(self, record: str, mode: str = "simple") -> list[Probe]:
        """dns-read, dns-record, dns-routing, dns-write (see the module docstring). When dns-read
        fails the others are not run (reported not ok, saying so): nothing the server says can be
        trusted until it answers dr's signed queries."""
        dns = _dns()
        zone = absolute(self.settings.zone)
        read = self._probe_read(zone)
        if not read.ok:
            why = f"dns-read failed, so dr did not ask {self.where} anything more; fix dns-read first"
            return [read, not_run("dns-record", why), not_run("dns-routing", why), not_run("dns-write", why)]
        current: RecordState | None = None
        problem = outside_zone(record, zone)
        if problem is not None:
            found = Probe("dns-record", False, problem)
        else:
            try:
                current = self.current(record)
                found = self.record_probe(current, mode)
                found = self._note_other_types(found, current)
            except DrError as exc:
                found = Probe("dns-record", False, str(exc))
            except dns.exception.DNSException as exc:  # an answer dnspython cannot use
                found = Probe("dns-record", False, self._tsig_trouble(exc, f"read {absolute(record)}"))
        return [read, found, self.routing_probe(current, mode), self._probe_write(zone)]

    def _tsig_trouble(self, exc: Exception, what: str) -> str:
        """A probe detail for a failed signed exchange with the server."""
        dns = _dns()
        tsig = self.settings.tsig
        key = f"TSIG key {tsig.name!r} ({tsig.algorithm})"
        if isinstance(exc, dns.tsig.PeerBadSignature):
            return with_fix(f"{what}: {self.where} rejected the signature of {key}: the secret or the "
                            f"algorithm in dr.yaml do not match the server's key {tsig.name!r} "
                            f"({type(exc).__name__})", _RCODE_HINTS["NOTAUTH"])
        if isinstance(exc, dns.tsig.PeerBadKey):
            return with_fix(f"{what}: {self.where} has no {key}: the server knows no key of that name and "
                            f"algorithm ({type(exc).__name__}; Knot also answers so for a key no acl of the zone "
                            "names)", _RCODE_HINTS["NOTAUTH"])
        if isinstance(exc, dns.tsig.PeerBadTime):
            return with_fix(f"{what}: {self.where} rejected {key} because the clocks of dr's host and the "
                            f"server differ by more than the signature's fudge ({type(exc).__name__})",
                            "synchronise both clocks (NTP); " + _RCODE_HINTS["NOTAUTH"])
        if isinstance(exc, UnsignedAnswer) and exc.rcode == "NOTAUTH":
            return with_fix(f"{what}: {self.where} rejected {key}: it answered NOTAUTH without signing the answer, "
                            "so it knows no key of that name and algorithm or the secret in dr.yaml differs from "
                            "the server's (such an answer does not say which)", _RCODE_HINTS["NOTAUTH"])
        if isinstance(exc, UnsignedAnswer):
            return with_fix(f"{what}: {self.where} answered {exc.rcode} without a TSIG signature, so dr cannot tell "
                            f"whether it accepts the key {tsig.name!r}",
                            _READ_HINT if exc.rcode == "REFUSED" else
                            f"check that {self.where} supports TSIG (RFC 8945)")
        if isinstance(exc, (dns.tsig.PeerError, dns.message.UnknownTSIGKey, dns.tsig.BadSignature,
                            dns.tsig.BadTime)):
            return with_fix(f"{what}: the signed exchange with {self.where} failed for {key} "
                            f"({type(exc).__name__}: {exc})", _RCODE_HINTS["NOTAUTH"])
        if isinstance(exc, dns.exception.Timeout):
            return with_fix(f"{what}: {self.where} did not answer within {self.timeout:.0f}s",
                            "check dns.server and dns.port, and that TCP to it is allowed")
        if isinstance(exc, OSError):
            return with_fix(f"{what}: cannot reach the name server {self.where} ({exc})",
                            "check dns.server and dns.port in dr.yaml, and that the server is running")
        if isinstance(exc, DrError):
            return f"{what}: {exc}"
        return with_fix(f"{what}: {self.where} sent an answer dr cannot use ({type(exc).__name__}: {exc})",
                        f"check that {self.where} is a DNS server that supports TSIG (RFC 8945)")

    def _exchange(self, message, what: str):
        """Send a signed message; (reply, None) or (None, a probe detail saying what went wrong)."""
        dns = _dns()
        try:
            return self._tcp(message), None
        except (DrError, OSError, UnsignedAnswer, dns.exception.DNSException) as exc:
            return None, self._tsig_trouble(exc, what)

    def _probe_read(self, zone: str) -> Probe:
        """dns-read: a TSIG-signed SOA query for the zone, answered NOERROR, authoritatively, signed
        by the server with dr's key and verified (dnspython checks the answer's signature)."""
        dns = _dns()
        tsig = self.settings.tsig
        what = f"read the SOA of {zone}"
        try:
            key = self.key()
        except DrError as exc:  # an unset environment variable, a secret that is not base64
            return Probe("dns-read", False, f"{what}: {exc}")
        query = dns.message.make_query(zone, "SOA")
        query.flags &= ~dns.flags.RD
        query.use_tsig(key)
        reply, trouble = self._exchange(query, what)
        if trouble:
            return Probe("dns-read", False, trouble)
        rcode = dns.rcode.to_text(reply.rcode())
        if rcode != "NOERROR":
            return Probe("dns-read", False, with_fix(
                f"{what}: {self.where} answered {rcode}",
                "dns.server must be the primary name server of dns.zone, and its allow-query must let dr's "
                "host ask" if rcode == "REFUSED" else _RCODE_HINTS.get(rcode)))
        if not reply.flags & dns.flags.AA:
            return Probe("dns-read", False, with_fix(
                f"{what}: {self.where} is not authoritative for {zone}",
                "dns.server must be the primary name server of dns.zone"))
        soa = next((r for r in reply.answer if r.name == dns.name.from_text(zone)
                    and r.rdtype == dns.rdatatype.SOA), None)
        if soa is None:
            return Probe("dns-read", False, with_fix(
                f"{what}: {self.where} has no zone {zone} (its answer holds no SOA for that name)",
                "set dns.zone to the zone's apex (the name with the SOA record) served by dns.server"))
        serial = soa[0].serial
        return Probe("dns-read", True, f"{self.where} answered the SOA of {zone} (serial {serial}) "
                                       f"authoritatively; the query and the answer were signed with TSIG key "
                                       f"{tsig.name!r} ({tsig.algorithm}) and the answer's signature verified")

    def _note_other_types(self, found: Probe, current: RecordState) -> Probe:
        """Add to dns-record that a name holding other data (TXT, MX, ...) cannot become a CNAME."""
        if not found.ok:
            return found
        others = self._other_types(current.name)
        if not others:
            return found
        return Probe(found.name, True, f"{found.detail}; it also holds {', '.join(others)} records, so a flip "
                                       "can point it at an IP address but not at a host name (a CNAME must be "
                                       "alone at its name)")

    def _txt(self, name: str) -> list[str]:
        """The TXT values the server has at `name` now (a signed, non-recursive query)."""
        dns = _dns()
        query = dns.message.make_query(name, "TXT")
        query.flags &= ~dns.flags.RD
        query.use_tsig(self.key())
        reply, trouble = self._exchange(query, f"read {name} TXT")
        if trouble:
            raise OperationFailed(trouble)
        rcode = dns.rcode.to_text(reply.rcode())
        if rcode not in ("NOERROR", "NXDOMAIN"):
            raise OperationFailed(f"read {name} TXT: {self.where} answered {rcode}", hint=_RCODE_HINTS.get(rcode))
        return sorted(r.to_text() for rrset in reply.answer
                      if rrset.name == dns.name.from_text(name) and rrset.rdtype == dns.rdatatype.TXT
                      for r in rrset)

    def _update(self, zone: str, what: str, build) -> str | None:
        """Send one signed UPDATE of `zone` made by `build(update)`: None when the server says
        NOERROR, else a probe detail saying what the answer means and how to fix it."""
        dns = _dns()
        update = dns.update.UpdateMessage(zone, keyring=self.key())
        build(update)
        try:
            reply = self._tcp(update)
        except (DrError, OSError, UnsignedAnswer, dns.exception.DNSException) as exc:
            answered = self._rejection(exc, update=True)
            denied = self._update_denied(what, zone, answered) if answered else None
            return self._denied_detail(denied, zone) if denied else self._tsig_trouble(exc, what)
        rcode = dns.rcode.to_text(reply.rcode())
        if rcode == "NOERROR":
            return None
        if rcode in ("REFUSED", "NOTAUTH"):
            denied = self._update_denied(what, zone, rcode)
            if denied:
                return self._denied_detail(denied, zone)
        return with_fix(f"{what}: {self.where} answered {rcode}",
                        _RCODE_HINTS.get(rcode) or "see the server's log")

    @staticmethod
    def _denied_detail(denied: tuple[str, str], zone: str) -> str:
        message, fix = denied
        return with_fix(message, f"{fix}; a policy granting only some names must also grant {PROBE_LABEL}.{zone} TXT")

    def _probe_write(self, zone: str) -> Probe:
        """dns-write: add TXT `_dr-readiness.<zone>` (one UPDATE), delete it (a second UPDATE), and
        read back that it is gone. Only that name and type are ever touched."""
        dns = _dns()
        name = f"{PROBE_LABEL}.{zone}"
        value = f"dr readiness probe {datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}"
        rdata = dns.rdata.from_text("IN", "TXT", f'"{value}"')
        owner = dns.name.from_text(name)
        tsig = self.settings.tsig
        key = f"TSIG key {tsig.name!r}"
        by_hand = (f"delete it by hand: `nsupdate -y {tsig.algorithm}:{tsig.name}:SECRET`, then "
                   f"`server {self.server} {self.port}`, `update delete {name} TXT`, `send`")

        failed = self._update(zone, f"add TXT {name}", lambda u: u.add(owner, 60, rdata))
        if failed is None:
            try:
                served = self._txt(name)
            except DrError as exc:
                failed = f"read back TXT {name} after adding it: {exc}"
            else:
                if f'"{value}"' not in served:
                    failed = with_fix(f"add TXT {name}: {self.where} answered NOERROR but does not serve the "
                                      f"added TXT (it answers {', '.join(served) or 'nothing'}): the update was "
                                      "accepted and ignored",
                                      "check the server's (or GSLB's) policy and log: a flip would be ignored "
                                      "the same way")
        # delete in any case: an add whose answer was lost may still have been applied
        removed = self._update(zone, f"delete TXT {name}", lambda u: u.delete(owner, "TXT"))
        try:
            left = self._txt(name)
        except DrError as exc:
            gone = with_fix(f"read back TXT {name} after deleting it: {exc}", f"if it is still there, {by_hand}")
        else:
            gone = with_fix(f"after the delete, {self.where} still serves TXT {name} ({', '.join(left)})",
                            by_hand) if left else None
        problems = [p for p in (failed or removed, gone) if p]
        if problems:
            return Probe("dns-write", False, "\n  also: ".join(problems))
        return Probe("dns-write", True, f"{key} may update {zone}: {self.where} accepted a signed UPDATE adding "
                                        f'TXT {name} "{value}" and a second deleting it, and no longer serves it')
