"""A real Knot DNS for the RFC 2136 provider: the zone of tests/support/bind.py on 127.0.0.1, in a temp dir.

    from tests.support.knot import knot  # noqa: F401   (in a test module: the fixture)

    def test_x(knot):
        knot.dig("www.example.test.")          # -> ["192.0.2.1", "192.0.2.2"]

The server runs as `knotd -c CONF` (as the user running the tests; no root needed), listening on
127.0.0.1 on a free port ($DR_KNOT_PORT forces one), with its zone file, journal, timer database
and control socket all under the temp dir. The zone `example.test.` takes updates signed with
`dr-test-key` (an acl with `action: [query, update]`); `dr-read-key` ($DR_TEST_TSIG_READ) is in an
acl with `action: query` only, so it may sign queries and Knot answers its updates NOTAUTH with
the TSIG error BADKEY. The fixture skips, with the apt-get line to fix it, when Knot is not
installed (dig, for the tests' own checks, comes from dnsutils).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.bind import ZONE_FILE, DnsTestServer, serve

INSTALL_HINT = "Knot DNS not installed: apt-get install -y knot knot-dnsutils dnsutils"


class KnotServer(DnsTestServer):
    """One knotd process serving example.test. from a fresh zone file under `base`."""

    kind = "knot"
    program = "knotd"
    install_hint = INSTALL_HINT
    port_env, preferred_port = "DR_KNOT_PORT", None
    update_setting = "action: update"
    log_name = "knot.log"

    def __init__(self, base: Path):
        super().__init__(base)
        self.conf = self.base / "knot.conf"

    def write_config(self) -> None:
        b = self.base
        (b / "db").mkdir(parents=True, exist_ok=True)
        (b / "example.test.zone").write_text(ZONE_FILE)
        self.conf.write_text(f"""\
server:
    rundir: "{b}"
    listen: 127.0.0.1@{self.port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: "{self.log}"
    any: info
database:
    storage: "{b}/db"
control:
    listen: "{b}/knot.sock"
key:
  - id: {self.key_name}
    algorithm: hmac-sha256
    secret: {self.secret}
  - id: {self.read_key_name}
    algorithm: hmac-sha256
    secret: {self.read_secret}
acl:
  - id: dr-update
    key: {self.key_name}
    action: [query, update]
  - id: dr-read
    key: {self.read_key_name}
    action: query
zone:
  - domain: example.test
    storage: "{b}"
    file: example.test.zone
    zonefile-sync: -1
    acl: [dr-update, dr-read]
""")

    def command(self) -> list[str]:
        return [self.binary, "-c", str(self.conf)]


@pytest.fixture
def knot(tmp_path_factory, monkeypatch):
    """A fresh Knot DNS per test; $DR_TEST_TSIG holds dr-test-key's secret, $DR_TEST_TSIG_READ
    the secret of dr-read-key (whose acl allows queries, not updates)."""
    yield from serve(KnotServer, tmp_path_factory, monkeypatch)
