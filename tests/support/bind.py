"""A real BIND 9 for the RFC 2136 provider: one TSIG-protected zone on 127.0.0.1, in a temp dir.

    from tests.support.bind import bind  # noqa: F401   (in a test module: the fixture)

    def test_x(bind):
        bind.dig("www.example.test.")          # -> ["192.0.2.1"]  (dig @127.0.0.1 -p PORT +short)

The server runs as `named -c CONF -u root -f -p PORT` (`-u root` only when running as root),
listening on 127.0.0.1:5353 (or a free port when 5353 is taken, e.g. by an mDNS daemon;
$DR_BIND_PORT forces one). The zone `example.test.` takes updates signed with the key
`dr-test-key` (update-policy { grant dr-test-key zonesub ANY; }). A second key, `dr-read-key`
($DR_TEST_TSIG_READ), is known to the server (it may sign queries) but the update-policy does not
grant it: its updates are REFUSED. The fixture skips, with the apt-get line to fix it, when BIND
or dig is not installed.

`DnsTestServer` is what the three servers the RFC 2136 tests run (BIND here, Knot DNS in
tests/support/knot.py, PowerDNS in tests/support/pdns.py) have in common: the same zone, the same two keys (one
granted updates, one that may only read), `dig`, `config_yaml`, start and stop.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

INSTALL_HINT = "BIND 9 not installed: apt-get install -y bind9 dnsutils"
ZONE = "example.test."
KEY_NAME = "dr-test-key"
READ_KEY_NAME = "dr-read-key"  # known to the server, not granted by the zone's update-policy
PRODUCTION = "www.example.test."
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(_SBIN))


def _port_free(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def pick_port(env: str = "DR_BIND_PORT", preferred: int | None = 5353) -> int:
    """$`env` when set, else `preferred` when free (TCP and UDP), else any free port."""
    if os.environ.get(env):
        return int(os.environ[env])
    if preferred is not None and _port_free(preferred):
        return preferred
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if _port_free(port):
            return port


# `legacy` points at a name in mixed case: what a server serves must come back exactly after a
# failback (BIND and PowerDNS keep the case; Knot lowercases names in rdata when it loads a zone).
ZONE_FILE = """\
$ORIGIN example.test.
$TTL 300
@       IN SOA ns1.example.test. hostmaster.example.test. (1 3600 600 86400 60)
        IN NS  ns1.example.test.
ns1     IN A   127.0.0.1
www     120 IN A   192.0.2.1
www     120 IN A   192.0.2.2
www     IN TXT "not managed by dr"
app     IN CNAME primary-lb.example.net.
legacy  90 IN CNAME Prod-LB.Example.NET.
"""


class DnsTestServer:
    """One private name server process serving example.test. from a fresh copy under `base`.

    Subclasses set the class attributes and write `write_config` and `command`."""

    kind = "?"                     # bind | knot | pdns: the test ids
    program = "?"                  # the daemon, found on $PATH or in an sbin directory
    install_hint = "?"
    port_env, preferred_port = "?", None
    update_setting = "?"           # what grants a key updates on this server (dr's messages name it)
    log_name = "server.log"
    output_to_log = False          # the daemon logs to stdout/stderr: send them to `log`, not a pipe

    def __init__(self, base: Path):
        self.binary = _which(self.program)
        if self.binary is None:
            raise RuntimeError(self.install_hint)
        self.base = Path(base)
        self.port = pick_port(self.port_env, self.preferred_port)
        self.zone = ZONE
        self.key_name = KEY_NAME
        self.secret = base64.b64encode(os.urandom(32)).decode()
        self.read_key_name = READ_KEY_NAME
        self.read_secret = base64.b64encode(os.urandom(32)).decode()
        self.log = self.base / self.log_name
        self.proc: subprocess.Popen | None = None

    @classmethod
    def missing(cls) -> str | None:
        """Why this server cannot run here (with the apt-get line), or None."""
        return cls.install_hint if _which(cls.program) is None else None

    def write_config(self) -> None:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 20):
        self.base.mkdir(parents=True, exist_ok=True)
        self.write_config()
        output = open(self.log, "ab") if self.output_to_log else subprocess.PIPE  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(self.command(), stdout=output, stderr=subprocess.STDOUT,
                                         start_new_session=True, cwd=self.base)
        finally:
            if self.output_to_log:
                output.close()
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                output = (self.proc.stdout.read().decode(errors="replace")
                          if self.proc.stdout and self.proc.poll() is not None else "")
                self.stop()
                raise RuntimeError(f"{self.program} did not start on 127.0.0.1:{self.port}:\n{output}\n"
                                   f"{self.log_tail()}{self.start_failure_hint()}")
            time.sleep(0.1)
        return self

    def start_failure_hint(self) -> str:
        return ""

    def _answers(self) -> bool:
        import dns.message
        import dns.query

        try:
            reply = dns.query.tcp(dns.message.make_query(self.zone, "SOA"), "127.0.0.1",
                                  port=self.port, timeout=1)
        except (OSError, Exception):  # noqa: BLE001 - not up yet
            return False
        return bool(reply.answer)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return f"(no {self.log.name})"

    def dig(self, name: str, rtype: str = "A", *, full: bool = False, exact: bool = False) -> list[str]:
        """What `dig @127.0.0.1 -p PORT +norecurse NAME TYPE` answers: values (+short), or with
        `full` the answer lines `name ttl class type value`; lowercased unless `exact`."""
        dig = _which("dig")
        if dig is None:
            pytest.skip(self.install_hint + " (and dig: apt-get install -y dnsutils)")
        style = ["+noall", "+answer"] if full else ["+short"]
        out = subprocess.run([dig, "@127.0.0.1", "-p", str(self.port), "+norecurse", "+tcp", *style,
                              name, rtype], capture_output=True, text=True, timeout=15)
        if out.returncode != 0:
            raise AssertionError(f"dig failed ({out.returncode}): {out.stdout}{out.stderr}")
        lines = (line.strip() for line in out.stdout.splitlines() if line.strip())
        return sorted(lines if exact else (line.lower() for line in lines))

    def config_yaml(self, state_path: Path | str, *, secret_env: str = "DR_TEST_TSIG",
                    key_name: str | None = None, record: str = PRODUCTION, ttl: int = 60,
                    algorithm: str = "hmac-sha256") -> str:
        return f"""\
version: 1
regions: {{primary: us-east-1, dr: us-west-2}}
objectives: {{rpo: 1h, rto: 30m}}
kms: {{dr_key: alias/dr-backups}}
state: {{path: "{state_path}"}}
dns:
  provider: rfc2136
  zone: {self.zone}
  record: {record}
  ttl: {ttl}
  server: 127.0.0.1
  port: {self.port}
  tsig: {{name: {key_name or self.key_name}, algorithm: {algorithm}, secret: {{env: {secret_env}}}}}
"""


def serve(cls, tmp_path_factory, monkeypatch):
    """The body of a server fixture: skip when the server is not installed, start a fresh one,
    put its secrets in $DR_TEST_TSIG and $DR_TEST_TSIG_READ, yield it, stop it."""
    if cls.missing():
        pytest.skip(cls.missing())
    server = cls(tmp_path_factory.mktemp(cls.kind))
    server.start()
    monkeypatch.setenv("DR_TEST_TSIG", server.secret)
    monkeypatch.setenv("DR_TEST_TSIG_READ", server.read_secret)
    try:
        yield server
    finally:
        server.stop()


class BindServer(DnsTestServer):
    """One named process serving example.test. with a fresh zone file under `base`."""

    kind = "bind"
    program = "named"
    install_hint = INSTALL_HINT
    port_env, preferred_port = "DR_BIND_PORT", 5353
    update_setting = "update-policy"
    log_name = "named.log"

    def __init__(self, base: Path):
        super().__init__(base)
        self.named = self.binary
        self.conf = self.base / "named.conf"

    def write_config(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "example.test.zone").write_text(ZONE_FILE)
        b = self.base
        self.conf.write_text(f"""\
options {{
    directory "{b}";
    pid-file "{b}/named.pid";
    session-keyfile "{b}/session.key";
    managed-keys-directory "{b}";
    listen-on {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    allow-query {{ any; }};
    dnssec-validation no;
    notify no;
}};
controls {{ }};
key "{self.key_name}" {{ algorithm hmac-sha256; secret "{self.secret}"; }};
key "{self.read_key_name}" {{ algorithm hmac-sha256; secret "{self.read_secret}"; }};
zone "example.test" {{
    type primary;
    file "{b}/example.test.zone";
    update-policy {{ grant {self.key_name} zonesub ANY; }};
}};
logging {{
    channel to_file {{ file "{self.log}"; severity info; print-time yes; }};
    category default {{ to_file; }};
    category update {{ to_file; }};
    category update-security {{ to_file; }};
}};
""")

    def command(self) -> list[str]:
        args = [self.named, "-c", str(self.conf), "-f", "-p", str(self.port)]
        if os.geteuid() == 0:
            args[3:3] = ["-u", "root"]
        return args

    def start_failure_hint(self) -> str:
        return ("\n(on Ubuntu, AppArmor confines /usr/sbin/named to /etc/bind and /var/cache/bind: "
                "`sudo aa-complain /usr/sbin/named`)")

    def start(self, timeout: float = 20) -> BindServer:
        return super().start(timeout)


@pytest.fixture
def bind(tmp_path_factory, monkeypatch):
    """A fresh BIND 9 per test (about 0.3 s to start); $DR_TEST_TSIG holds its key's secret,
    $DR_TEST_TSIG_READ the secret of dr-read-key (which the update-policy does not grant)."""
    yield from serve(BindServer, tmp_path_factory, monkeypatch)
