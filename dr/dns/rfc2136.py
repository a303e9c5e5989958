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

Answers are checked (in rfc2136_transport.py), not by dnspython alone: a server that rejects dr's key answers NOTAUTH
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

from datetime import datetime, timezone

from dr.dns.base import (MANAGED_TYPES, AccessDenied, Probe, RecordSet, RecordState, absolute, not_run, outside_zone,
                         plan_changes, with_fix)
from dr.dns.rfc2136_transport import (READ_HINT, RCODE_HINTS, Rfc2136Transport, UnsignedAnswer, dnspython,
                                       grant_hint)
from dr.errors import ConfigError, DrError, OperationFailed
from dr.wait import Backoff, poll

PROBE_LABEL = "_dr-readiness"  # dns-write adds and deletes a TXT record `_dr-readiness.<zone>`

# Types a CNAME cannot share its name with, asked one by one when an ANY answer may be minimal
# (RFC 8482; Knot answers ANY with a single record set, over TCP too).
OTHER_TYPES = ("TXT", "MX", "SRV", "NS", "DS", "CAA", "HINFO", "NAPTR", "PTR", "SSHFP", "TLSA", "LOC", "SPF",
               "HTTPS", "SVCB", "URI", "DNAME", "RP", "CERT", "OPENPGPKEY", "SMIMEA", "AFSDB")


class Rfc2136Provider(Rfc2136Transport):
    name = "rfc2136"
    modes = ("simple",)
    poll_interval = 1.0

    def __init__(self, settings, *, session=None, wait=None):
        super().__init__(settings, session=session, wait=wait)
        self._last: RecordState | None = None  # what the last apply asked for: wait_in_sync reads it back

    def _send(self, message, what: str, *, zone: str | None = None):
        """One signed exchange; raises a DrError saying what went wrong. With `zone`, `message`
        is an UPDATE of that zone: a refusal of it says whether the key may read the zone."""
        dns = dnspython()
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
            raise AccessDenied(f"{what} on {self.where}: the server answered {rcode}", hint=RCODE_HINTS[rcode])
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
        dns = dnspython()
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
                                      hint=READ_HINT if rcode == "REFUSED" else RCODE_HINTS.get(rcode))
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
        dns = dnspython()
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
                                  hint=RCODE_HINTS.get(rcode))
        after = self.current(change.name)
        if not after.same_as(change):
            self._roll_back(before, after)
            raise OperationFailed(f"update {change.name} on {self.where}: accepted, but the server now answers "
                                  f"{after.describe()} instead of {change.describe()}",
                                  hint="the server (or GSLB) rewrote the update; dr put the previous values "
                                       "back; check the server's policy and log")

    def _types_at(self, record: str, rtype: str) -> set[str]:
        """The types of the record sets a signed, non-recursive query of `record` `rtype` answers."""
        dns = dnspython()
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
        dns = dnspython()
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

    def _probe_read(self, zone: str) -> Probe:
        """dns-read: a TSIG-signed SOA query for the zone, answered NOERROR, authoritatively, signed
        by the server with dr's key and verified (dnspython checks the answer's signature)."""
        dns = dnspython()
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
                "host ask" if rcode == "REFUSED" else RCODE_HINTS.get(rcode)))
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
        dns = dnspython()
        query = dns.message.make_query(name, "TXT")
        query.flags &= ~dns.flags.RD
        query.use_tsig(self.key())
        reply, trouble = self._exchange(query, f"read {name} TXT")
        if trouble:
            raise OperationFailed(trouble)
        rcode = dns.rcode.to_text(reply.rcode())
        if rcode not in ("NOERROR", "NXDOMAIN"):
            raise OperationFailed(f"read {name} TXT: {self.where} answered {rcode}", hint=RCODE_HINTS.get(rcode))
        return sorted(r.to_text() for rrset in reply.answer
                      if rrset.name == dns.name.from_text(name) and rrset.rdtype == dns.rdatatype.TXT
                      for r in rrset)

    def _update(self, zone: str, what: str, build) -> str | None:
        """Send one signed UPDATE of `zone` made by `build(update)`: None when the server says
        NOERROR, else a probe detail saying what the answer means and how to fix it."""
        dns = dnspython()
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
                        RCODE_HINTS.get(rcode) or "see the server's log")

    @staticmethod
    def _denied_detail(denied: tuple[str, str], zone: str) -> str:
        message, fix = denied
        return with_fix(message, f"{fix}; a policy granting only some names must also grant {PROBE_LABEL}.{zone} TXT")

    def _probe_write(self, zone: str) -> Probe:
        """dns-write: add TXT `_dr-readiness.<zone>` (one UPDATE), delete it (a second UPDATE), and
        read back that it is gone. Only that name and type are ever touched."""
        dns = dnspython()
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
