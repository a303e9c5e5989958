"""A throwaway MariaDB server for tests and benchmarks: own datadir, socket and port, no config.

    from tests.mariadb import mariadb  # noqa: F401   (in a test module: the session fixture)

    with MariaDBServer(tmp_dir, log_bin=True) as server:   # in scripts and benchmarks
        conn = connect(server.spec)

The fixtures skip (with the apt-get line to fix it) when the MariaDB binaries are not installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from dr.mysql.conn import ConnectionSpec

INSTALL_HINT = "MariaDB not installed: apt-get install mariadb-server mariadb-client"
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/usr/libexec", "/usr/local/mysql/bin")


def _which(*names: str) -> str | None:
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(_SBIN)
    for name in names:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def binaries() -> tuple[str, str] | None:
    """(install-db, server) executables, or None when MariaDB is not installed."""
    install = _which("mariadb-install-db", "mysql_install_db")
    server = _which("mariadbd", "mysqld")
    return (install, server) if install and server else None


def client_binary(name: str) -> str | None:
    """A client tool (mariadb, mysqldump, mydumper, ...) or None."""
    return _which(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MariaDBServer:
    """One mariadbd process on 127.0.0.1 with a fresh datadir under `base`."""

    def __init__(self, base: Path, *, log_bin: bool = False, server_id: int = 1,
                 extra_args: tuple[str, ...] = (), buffer_pool: str = "256M"):
        found = binaries()
        if found is None:
            raise RuntimeError(INSTALL_HINT)
        self.install_db, self.mariadbd = found
        self.base = Path(base)
        self.datadir = self.base / "data"
        self.socket = str(self.base / "mysqld.sock")
        self.port = free_port()
        self.log_bin = log_bin
        self.server_id = server_id
        self.extra_args = tuple(extra_args)
        self.buffer_pool = buffer_pool
        self.proc: subprocess.Popen | None = None
        self.error_log = self.base / "error.log"

    @property
    def spec(self) -> ConnectionSpec:
        """root over TCP, no password, TLS off (the throwaway server has no certificate)."""
        return ConnectionSpec(host="127.0.0.1", port=self.port, user="root", tls="off",
                              connect_timeout=5)

    def start(self, timeout: float = 60) -> MariaDBServer:
        self.base.mkdir(parents=True, exist_ok=True)
        if not self.datadir.exists():
            out = subprocess.run(
                [self.install_db, "--no-defaults", f"--datadir={self.datadir}", "--user=root",
                 "--auth-root-authentication-method=normal", "--skip-test-db"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if out.returncode != 0:
                raise RuntimeError(f"mariadb-install-db failed:\n{out.stdout[-2000:]}")
        args = [self.mariadbd, "--no-defaults", "--user=root", f"--datadir={self.datadir}",
                f"--socket={self.socket}", f"--port={self.port}", "--bind-address=127.0.0.1",
                f"--log-error={self.error_log}", f"--pid-file={self.base / 'mysqld.pid'}",
                f"--innodb-buffer-pool-size={self.buffer_pool}",
                "--innodb-flush-log-at-trx-commit=2", "--skip-name-resolve"]
        if self.log_bin:
            args += [f"--log-bin={self.base / 'binlog'}", f"--server-id={self.server_id}",
                     "--binlog-format=ROW"]
        else:
            args += ["--skip-log-bin"]
        args += list(self.extra_args)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        import pymysql

        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited with {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root",
                                connect_timeout=2).close()
                return
            except pymysql.MySQLError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"mariadbd did not accept connections within {timeout}s:"
                                       f"\n{self.log_tail()}")
                time.sleep(0.1)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.error_log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no error log)"

    def client_args(self) -> list[str]:
        """Connection options for the mariadb/mysqldump/mydumper command-line tools."""
        return ["--host=127.0.0.1", f"--port={self.port}", "--user=root"]

    def kill(self) -> None:
        """SIGKILL: a crash, as far as clients can tell."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> MariaDBServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def start_or_skip(base: Path, **kwargs) -> MariaDBServer:
    if binaries() is None:
        pytest.skip(INSTALL_HINT)
    return MariaDBServer(base, **kwargs).start()


# One server per kind for the whole session. Test modules import these fixtures, and pytest
# then makes one fixture per module; the servers behind them are shared and reference-counted.
_SHARED: dict[str, MariaDBServer] = {}
_USERS: dict[str, int] = {}


def _acquire(kind: str, tmp_path_factory, **kwargs) -> MariaDBServer:
    if kind not in _SHARED:
        _SHARED[kind] = start_or_skip(tmp_path_factory.mktemp(f"mariadb-{kind}"), **kwargs)
        _USERS[kind] = 0
    _USERS[kind] += 1
    return _SHARED[kind]


def _release(kind: str) -> None:
    _USERS[kind] -= 1
    if _USERS[kind] == 0:
        _SHARED.pop(kind).stop()


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory):
    """The shared throwaway server (binary logging off)."""
    server = _acquire("plain", tmp_path_factory)
    yield server
    _release("plain")


@pytest.fixture(scope="session")
def mariadb(mariadb_server) -> ConnectionSpec:
    """A ConnectionSpec for root over TCP on 127.0.0.1 of the shared throwaway server."""
    return mariadb_server.spec


@pytest.fixture(scope="session")
def mariadb_binlog(tmp_path_factory) -> ConnectionSpec:
    """A second throwaway server with binary logging on (--log-bin --server-id=1)."""
    server = _acquire("binlog", tmp_path_factory, log_bin=True)
    yield server.spec
    _release("binlog")


def run_sql_file(server: MariaDBServer, path: Path, database: str | None = None) -> None:
    """Feed an SQL file (DELIMITER and all) to the `mariadb` command-line client."""
    client = client_binary("mariadb") or client_binary("mysql")
    if client is None:
        pytest.skip(INSTALL_HINT)
    args = [client, "--no-defaults", *server.client_args()] + ([database] if database else [])
    with open(path, "rb") as f:
        out = subprocess.run(args, stdin=f, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if out.returncode != 0:
        raise RuntimeError(f"loading {path} failed: {out.stdout.decode(errors='replace')}")


@pytest.fixture(scope="session")
def sakila(mariadb_server) -> str:
    """The Sakila sample database loaded from the shared fixtures into `sakila`; its name."""
    from tests.conftest import fixtures_dir

    base = fixtures_dir()
    folder = base / "sakila" if base else None
    if folder is None or not (folder / "sakila-schema.sql").is_file():
        pytest.skip("Sakila fixtures absent: expected ../shared/fixtures/sakila/"
                    "sakila-{schema,data}.sql (or set $DR_FIXTURES)")
    if not getattr(mariadb_server, "sakila_loaded", False):
        run_sql_file(mariadb_server, folder / "sakila-schema.sql")
        run_sql_file(mariadb_server, folder / "sakila-data.sql")
        mariadb_server.sakila_loaded = True
    return "sakila"
