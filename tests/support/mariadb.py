"""A throwaway MariaDB server for tests and benchmarks: own datadir, socket and port, no config.

    from tests.support.mariadb import mariadb  # noqa: F401   (in a test module: the session fixture)

    with MariaDBServer(tmp_dir, log_bin=True) as server:   # in scripts and benchmarks
        conn = connect(server.spec)

The fixtures skip (with the apt-get line to fix it) when the MariaDB binaries are not installed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dr.mysql.conn import ConnectionSpec
from dr.sandbox.mariadb import INSTALL_HINT, MariaDBServer, _which, binaries, free_port

__all__ = ["INSTALL_HINT", "MariaDBServer", "binaries", "client_binary", "free_port"]


def client_binary(name: str) -> str | None:
    """A client tool (mariadb, mysqldump, mydumper, ...) or None."""
    return _which(name)


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
