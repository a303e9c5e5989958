"""A throwaway MariaDB server (temp datadir, 127.0.0.1, a free port) for the demo and the tests.

Debian's `mariadb-server` provides the binaries; `binaries()` is None where it is missing, and
callers say so instead of failing."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

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
    """(mariadb-install-db, mariadbd), or None."""
    install = _which("mariadb-install-db", "mysql_install_db")
    server = _which("mariadbd", "mysqld")
    return (install, server) if install and server else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MariaDBServer:
    """One mariadbd process on 127.0.0.1 with a fresh datadir under `base`; root, no password."""

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
        self.log_bin, self.server_id = log_bin, server_id
        self.extra_args, self.buffer_pool = tuple(extra_args), buffer_pool
        self.proc: subprocess.Popen | None = None
        self.error_log = self.base / "error.log"

    @property
    def spec(self):
        """root over TCP, no password, TLS off (the throwaway server has no certificate)."""
        from dr.mysql.conn import ConnectionSpec

        return ConnectionSpec(host="127.0.0.1", port=self.port, user="root", tls="off",
                              connect_timeout=5)

    def start(self, timeout: float = 60) -> MariaDBServer:
        self.base.mkdir(parents=True, exist_ok=True)
        # its own tmpdir: a starting mariadbd deletes every `#sql*` file in its tmpdir, which
        # in a shared /tmp are the temporary tables of the other servers running there
        (self.base / "tmp").mkdir(exist_ok=True)
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
                "--innodb-flush-log-at-trx-commit=2", "--skip-name-resolve",
                f"--tmpdir={self.base / 'tmp'}"]
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
                raise RuntimeError(f"mariadbd exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root",
                                connect_timeout=2).close()
                return
            except pymysql.MySQLError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"mariadbd did not accept connections within {timeout}s:"
                                       f"\n{self.log_tail()}") from None
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
