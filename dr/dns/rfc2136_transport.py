"""Talking to an RFC 2136 server: TSIG-signed messages over TCP, and what a rejection means.

The transport of the rfc2136 provider (rfc2136.py): every answer's signature is checked here,
not by dnspython alone, and each way a server can refuse dr's key (a TSIG error, an unsigned
NOTAUTH or REFUSED, a timeout, a closed connection) becomes one clear DrError or probe detail.
"""

from __future__ import annotations

import socket
import time

from dr.dns.base import AccessDenied, DnsProvider, with_fix
from dr.errors import ConfigError, DrError, OperationFailed

RCODE_HINTS = {
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
READ_HINT = ("dns.server must be the primary name server of dns.zone, with the zone loaded, and the record "
              "inside dns.zone")
TSIG_ERRORS = {"PeerBadKey": "BADKEY", "PeerBadSignature": "BADSIG", "PeerBadTime": "BADTIME",
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


def dnspython():
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


class Rfc2136Transport(DnsProvider):
    """The signed exchanges of an RFC 2136 provider with `dns.server`; the record logic is in
    Rfc2136Provider."""

    timeout = 10.0  # seconds per query or update

    def __init__(self, settings, *, session=None, wait=None):
        super().__init__(settings, session=session, wait=wait)
        if not settings.server:
            raise ConfigError("dns.server is missing: rfc2136 needs the name server that takes updates")
        if settings.tsig is None:
            raise ConfigError("dns.tsig is missing: dynamic updates must be signed",
                              hint="add tsig: {name: KEYNAME, algorithm: hmac-sha256, secret: {env: DR_TSIG_SECRET}}")
        self.server, self.port = settings.server, settings.port
        self._key = None

    @property
    def where(self) -> str:
        return f"{self.server}:{self.port}"

    def key(self):
        if self._key is None:
            dns = dnspython()
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
        dns = dnspython()
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
        dns = dnspython()
        if isinstance(exc, dns.tsig.PeerError):
            return f"NOTAUTH (TSIG error {TSIG_ERRORS.get(type(exc).__name__, type(exc).__name__)})"
        if isinstance(exc, UnsignedAnswer) and exc.rcode in (("NOTAUTH", "REFUSED") if update else ("NOTAUTH",)):
            return f"{exc.rcode}, unsigned"
        return None

    def _failure(self, exc: Exception, what: str, *, update: bool = False) -> Exception:
        """The DrError to raise for a failed exchange (`exc` itself when it is none of dr's business)."""
        dns = dnspython()
        name = self.settings.tsig.name
        if isinstance(exc, dns.tsig.PeerError):
            return AccessDenied(f"{what}: {self.where} rejected dr's TSIG key {name!r} ({type(exc).__name__}: {exc})",
                                hint=RCODE_HINTS["NOTAUTH"])
        if isinstance(exc, UnsignedAnswer):
            if self._rejection(exc, update=update):
                return AccessDenied(f"{what}: {self.where} rejected dr's TSIG key {name!r} ({exc.rcode}, unsigned: "
                                    "the server knows no key of that name and algorithm, or its secret differs)",
                                    hint=RCODE_HINTS["NOTAUTH"])
            if exc.rcode in ("NOERROR", "NXDOMAIN"):
                return AccessDenied(f"{what}: {self.where} answered {exc.rcode} without a TSIG signature to dr's "
                                    "signed query, so its answer cannot be trusted",
                                    hint=f"check that {self.where} is the server that holds TSIG key {name!r} and "
                                         "that it supports TSIG (RFC 8945)")
            return OperationFailed(f"{what}: {self.where} answered {exc.rcode} without a TSIG signature",
                                   hint=READ_HINT if exc.rcode == "REFUSED" else RCODE_HINTS.get(exc.rcode))
        if isinstance(exc, dns.message.UnknownTSIGKey):
            return AccessDenied(f"{what}: {self.where} signed its answer with an unknown key ({exc})",
                                hint=RCODE_HINTS["NOTAUTH"])
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

    def _tsig_trouble(self, exc: Exception, what: str) -> str:
        """A probe detail for a failed signed exchange with the server."""
        dns = dnspython()
        tsig = self.settings.tsig
        key = f"TSIG key {tsig.name!r} ({tsig.algorithm})"
        if isinstance(exc, dns.tsig.PeerBadSignature):
            return with_fix(f"{what}: {self.where} rejected the signature of {key}: the secret or the "
                            f"algorithm in dr.yaml do not match the server's key {tsig.name!r} "
                            f"({type(exc).__name__})", RCODE_HINTS["NOTAUTH"])
        if isinstance(exc, dns.tsig.PeerBadKey):
            return with_fix(f"{what}: {self.where} has no {key}: the server knows no key of that name and "
                            f"algorithm ({type(exc).__name__}; Knot also answers so for a key no acl of the zone "
                            "names)", RCODE_HINTS["NOTAUTH"])
        if isinstance(exc, dns.tsig.PeerBadTime):
            return with_fix(f"{what}: {self.where} rejected {key} because the clocks of dr's host and the "
                            f"server differ by more than the signature's fudge ({type(exc).__name__})",
                            "synchronise both clocks (NTP); " + RCODE_HINTS["NOTAUTH"])
        if isinstance(exc, UnsignedAnswer) and exc.rcode == "NOTAUTH":
            return with_fix(f"{what}: {self.where} rejected {key}: it answered NOTAUTH without signing the answer, "
                            "so it knows no key of that name and algorithm or the secret in dr.yaml differs from "
                            "the server's (such an answer does not say which)", RCODE_HINTS["NOTAUTH"])
        if isinstance(exc, UnsignedAnswer):
            return with_fix(f"{what}: {self.where} answered {exc.rcode} without a TSIG signature, so dr cannot tell "
                            f"whether it accepts the key {tsig.name!r}",
                            READ_HINT if exc.rcode == "REFUSED" else
                            f"check that {self.where} supports TSIG (RFC 8945)")
        if isinstance(exc, (dns.tsig.PeerError, dns.message.UnknownTSIGKey, dns.tsig.BadSignature,
                            dns.tsig.BadTime)):
            return with_fix(f"{what}: the signed exchange with {self.where} failed for {key} "
                            f"({type(exc).__name__}: {exc})", RCODE_HINTS["NOTAUTH"])
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
        dns = dnspython()
        try:
            return self._tcp(message), None
        except (DrError, OSError, UnsignedAnswer, dns.exception.DNSException) as exc:
            return None, self._tsig_trouble(exc, what)
