"""A real PowerDNS Authoritative for the RFC 2136 provider: the zone of tests/support/bind.py on 127.0.0.1.

    from tests.support.pdns import pdns  # noqa: F401   (in a test module: the fixture)

    def test_x(pdns):
        pdns.dig("www.example.test.")          # -> ["192.0.2.1", "192.0.2.2"]

The server runs as `pdns_server --config-dir=DIR` (as the user running the tests; no root needed)
with the gsqlite3 backend: a fresh SQLite database under the temp dir, made from the packaged
schema and filled with `pdnsutil --config-dir=DIR` (load-zone, import-tsig-key, set-meta), on
127.0.0.1 on a free port ($DR_PDNS_PORT forces one). `dnsupdate=yes`; the zone's metadata
`ALLOW-DNSUPDATE-FROM` is 127.0.0.0/8 (the global allow-dnsupdate-from is emptied) and
`TSIG-ALLOW-DNSUPDATE` is `dr-test-key` (and `SOA-EDIT-DNSUPDATE` INCREASE: each update adds 1
to the serial, as on BIND and Knot). `dr-read-key` ($DR_TEST_TSIG_READ) is in the key table (it
may sign queries) but not in TSIG-ALLOW-DNSUPDATE: its updates are REFUSED. Caches are off
(TTL 0) so a test sees each change, and metadata at once. The fixture skips, with the apt-get line
to fix it, when PowerDNS or its SQLite backend is not installed.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.support.bind import ZONE_FILE, DnsTestServer, _which, serve

INSTALL_HINT = "PowerDNS not installed: apt-get install -y pdns-server pdns-backend-sqlite3 dnsutils"
SCHEMA = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")


class PdnsServer(DnsTestServer):
    """One pdns_server process serving example.test. from a fresh SQLite database under `base`."""

    kind = "pdns"
    program = "pdns_server"
    install_hint = INSTALL_HINT
    port_env, preferred_port = "DR_PDNS_PORT", None
    update_setting = "TSIG-ALLOW-DNSUPDATE"
    log_name = "pdns.log"
    output_to_log = True

    @classmethod
    def missing(cls) -> str | None:
        if _which(cls.program) is None or _which("pdnsutil") is None or not SCHEMA.is_file():
            return INSTALL_HINT
        return None

    def __init__(self, base: Path):
        super().__init__(base)
        if self.missing():
            raise RuntimeError(self.missing())
        self.pdnsutil = _which("pdnsutil")
        self.database = self.base / "pdns.sqlite3"

    def write_config(self) -> None:
        b = self.base
        (b / "pdns.conf").write_text(f"""\
launch=gsqlite3
gsqlite3-database={self.database}
local-address=127.0.0.1
local-port={self.port}
socket-dir={b}
daemon=no
guardian=no
write-pid=no
disable-syslog=yes
loglevel=6
api=no
webserver=no
dnsupdate=yes
allow-dnsupdate-from=
zone-metadata-cache-ttl=0
cache-ttl=0
negquery-cache-ttl=0
query-cache-ttl=0
receiver-threads=1
distributor-threads=1
""")
        with sqlite3.connect(self.database) as db:
            db.executescript(SCHEMA.read_text())
        (b / "example.test.zone").write_text(ZONE_FILE)
        self.pdnsutil_run("load-zone", "example.test", str(b / "example.test.zone"))
        self.pdnsutil_run("import-tsig-key", self.key_name, "hmac-sha256", self.secret)
        self.pdnsutil_run("import-tsig-key", self.read_key_name, "hmac-sha256", self.read_secret)
        self.set_meta("TSIG-ALLOW-DNSUPDATE", self.key_name)
        self.set_meta("ALLOW-DNSUPDATE-FROM", "127.0.0.0/8")
        self.set_meta("SOA-EDIT-DNSUPDATE", "INCREASE")  # serial + 1 per update, as BIND and Knot do

    def pdnsutil_run(self, *args: str) -> str:
        out = subprocess.run([self.pdnsutil, f"--config-dir={self.base}", *args],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"pdnsutil {' '.join(args)} failed ({out.returncode}): {out.stdout}{out.stderr}")
        return out.stdout

    def set_meta(self, kind: str, *values: str) -> None:
        """Set (no values: delete) the zone's metadata `kind`; the server sees it at once."""
        self.pdnsutil_run("set-meta", "example.test", kind, *values)

    def command(self) -> list[str]:
        return [self.binary, f"--config-dir={self.base}"]


@pytest.fixture
def pdns(tmp_path_factory, monkeypatch):
    """A fresh PowerDNS per test; $DR_TEST_TSIG holds dr-test-key's secret, $DR_TEST_TSIG_READ the
    secret of dr-read-key (not in the zone's TSIG-ALLOW-DNSUPDATE)."""
    yield from serve(PdnsServer, tmp_path_factory, monkeypatch)
