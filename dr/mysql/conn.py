"""Connections to MySQL/MariaDB: one spec type, one connect(), pymysql errors → DrErrors.

`ConnectionSpec` is plain data (no dependency on dr.config); the password never appears in its
repr, in log lines or in error messages. `connect()` returns a pymysql connection with binary-safe
settings: utf8mb4, autocommit on (transactions are always explicit), UTC session time zone.
Restores and verifications pass `Timeouts`, so that no statement and no wait for the server can
last forever.
"""

from __future__ import annotations

import logging
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pymysql
import pymysql.connections
from pymysql.constants import CLIENT

from dr.identifiers import mysql_database_name_problem
from dr.mysql.errors import (
    MysqlAuthError,
    MysqlError,
    MysqlTlsError,
    MysqlUnreachable,
    MysqlUriError,
)

log = logging.getLogger("dr.mysql")

TLS_MODES = ("required", "preferred", "off")

#: What dr asks of every session it opens: no client-side surprises in how values are read back.
BASE_SESSION = {"time_zone": "'+00:00'"}

# Client error codes (CR_*) and server error codes (ER_*) that get their own message.
_CR_CONN_HOST_ERROR = 2003
_CR_SERVER_GONE = 2006
_CR_SERVER_LOST = 2013
_CR_SSL_CONNECTION_ERROR = 2026
_ER_ACCESS_DENIED = 1045
_ER_DBACCESS_DENIED = 1044
_ER_BAD_DB = 1049
_ER_HOST_NOT_PRIVILEGED = 1130
_ER_STATEMENT_TIMEOUT = 1969  # MariaDB: max_statement_time exceeded
_ER_QUERY_TIMEOUT = 3024  # MySQL: max_execution_time exceeded


@dataclass(frozen=True)
class ConnectionSpec:
    """Where and how to reach one MySQL/MariaDB server."""

    host: str
    port: int = 3306
    user: str = "root"
    password: str | None = field(default=None, repr=False, compare=False)
    unix_socket: str | None = None
    tls: str = "preferred"  # "required" | "preferred" | "off"
    ca_file: str | None = None  # verify the server certificate (and host name) against this CA
    connect_timeout: float = 10.0

    def __post_init__(self):
        if self.tls not in TLS_MODES:
            raise MysqlUriError(f"tls must be one of {', '.join(TLS_MODES)}, got {self.tls!r}")
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise MysqlUriError(f"port must be a number from 1 to 65535, got {self.port!r}")
        if self.connect_timeout <= 0:
            raise MysqlUriError(f"connect_timeout must be > 0, got {self.connect_timeout!r}")

    @property
    def address(self) -> str:
        """`host:port` or `socket /path`, for messages."""
        if self.unix_socket:
            return f"socket {self.unix_socket}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def describe(self) -> str:
        """`user@host:port`: how logs and errors name this server."""
        return f"{self.user}@{self.address}"


#: Restore and verification: the longest one statement may run (a chunk's LOAD DATA, one
#: table's deferred ALTER TABLE, a CHECKSUM TABLE, the swap's RENAME TABLE waiting for locks).
STATEMENT_TIMEOUT = 3600.0
#: How much longer the client waits for an answer than the server lets a statement run, so
#: that the server's own "max_statement_time exceeded" normally comes first.
READ_TIMEOUT_MARGIN = 60.0


@dataclass(frozen=True)
class Timeouts:
    """Bounds on everything one connection does after it is open (seconds; None: no bound).

    `statement`: the server aborts a statement that runs longer: MariaDB's session
    `max_statement_time` (every statement); on MySQL `max_execution_time`, which bounds only
    SELECTs, so there `read` is the bound. `read`: the client gives up waiting for the server's
    answer (a hung server, a lost network; pymysql's read_timeout). `write`: the client gives up
    when the server takes no data (pymysql's write_timeout). TCP keepalive (60 s idle, then every
    10 s, 6 probes) notices a dead peer long before `read` runs out.

    The default is `Timeouts.for_statements(STATEMENT_TIMEOUT)`: one hour per statement, read
    and write one minute more.
    """

    statement: float | None = STATEMENT_TIMEOUT
    read: float | None = STATEMENT_TIMEOUT + READ_TIMEOUT_MARGIN
    write: float | None = STATEMENT_TIMEOUT + READ_TIMEOUT_MARGIN

    def __post_init__(self):
        for name in ("statement", "read", "write"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"timeouts: {name} must be > 0 seconds or None, got {value!r}")

    @classmethod
    def for_statements(cls, seconds: float | None) -> Timeouts:
        """`seconds` per statement, and a little more for reads and writes (None: unbounded)."""
        if seconds is None:
            return cls(None, None, None)
        return cls(seconds, seconds + READ_TIMEOUT_MARGIN, seconds + READ_TIMEOUT_MARGIN)

    def describe(self) -> str:
        def fmt(v):
            return "none" if v is None else f"{v:g}s"
        return f"statement {fmt(self.statement)}, read {fmt(self.read)}, write {fmt(self.write)}"


class _Connection(pymysql.connections.Connection):
    """pymysql's connection, failing closed when TLS is required but not offered.

    The check runs after the server's greeting and before anything (user name, password hash) is
    sent, whatever pymysql version: older ones silently fall back to plaintext.
    """

    def __init__(self, *args, dr_tls: str = "preferred", **kwargs):
        self._dr_tls = dr_tls
        super().__init__(*args, **kwargs)

    def _request_authentication(self):
        offered = bool(self.server_capabilities & CLIENT.SSL)
        if self._dr_tls == "required" and not offered:
            raise _TlsUnavailable()
        if self._dr_tls == "preferred" and not offered:
            self.ssl = False
            self._ssl_required = False
        return super()._request_authentication()


class _TlsUnavailable(Exception):
    pass


# LOAD DATA LOCAL from memory. pymysql sends a local file by name; for dr's connections the
# "file" is always the buffer the caller set in `conn.dr_infile` (a tuple of byte chunks), and
# never a file from disk, whatever name a server asks for.
_send_local_file = getattr(pymysql.connections, "_send_local_file", None)
LOCAL_INFILE_FROM_MEMORY = _send_local_file is not None


def _send_infile(filename, conn):
    if not isinstance(conn, _Connection):
        return _send_local_file(filename, conn)
    parts, conn.dr_infile = getattr(conn, "dr_infile", None) or (), None
    step = 1 << 20
    for part in parts:
        view = memoryview(part)
        for i in range(0, len(view), step):
            conn.write_packet(view[i:i + step])


if LOCAL_INFILE_FROM_MEMORY:
    pymysql.connections._send_local_file = _send_infile


def _ssl_context(spec: ConnectionSpec) -> ssl.SSLContext | None:
    if spec.tls == "off":
        return None
    if spec.ca_file:
        try:
            ctx = ssl.create_default_context(cafile=spec.ca_file)
        except (OSError, ssl.SSLError) as e:
            raise MysqlTlsError(f"cannot read the CA file {spec.ca_file}: {e}",
                                hint="point ca at a PEM file with the server's CA certificate")
        ctx.check_hostname = not spec.unix_socket
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # encrypted, not authenticated: give a CA to verify
    return ctx


def connect(spec: ConnectionSpec, database: str | None = None, *,
            timeouts: Timeouts | None = None, **kw: Any) -> pymysql.Connection:
    """Open a connection; failures become MysqlError subclasses with a clear message.

    `kw` goes to pymysql (e.g. `cursorclass`, `local_infile`); the session always uses utf8mb4,
    autocommit (dr opens transactions explicitly) and the UTC time zone. `spec.connect_timeout`
    bounds the handshake. After it, without `timeouts`, reads and writes wait as long as a
    statement runs (a dump's queries may rightly take long); with `timeouts`, statements, reads
    and writes are bounded by them (restores and verifications).
    """
    ctx = _ssl_context(spec)
    params: dict[str, Any] = dict(
        host=spec.host, port=spec.port, user=spec.user,
        password=(spec.password or "").encode("utf-8"),
        unix_socket=spec.unix_socket, database=database,
        charset="utf8mb4", autocommit=True,
        connect_timeout=spec.connect_timeout,
        read_timeout=spec.connect_timeout, write_timeout=spec.connect_timeout,
        max_allowed_packet=1 << 30,
        ssl=ctx, ssl_disabled=(ctx is None), dr_tls=spec.tls,
        init_command="SET " + ", ".join(f"SESSION {k} = {v}" for k, v in BASE_SESSION.items()),
    )
    params.update(kw)
    try:
        conn = _Connection(**params)
    except _TlsUnavailable:
        raise MysqlTlsError(
            f"MySQL at {spec.address} does not offer TLS and tls is 'required': "
            "refusing to connect without encryption",
            hint="enable TLS on the server (ssl_cert, ssl_key) or set tls: preferred",
        ) from None
    except pymysql.MySQLError as e:
        raise connect_error(spec, e, database) from None
    except (OSError, ssl.SSLError) as e:
        raise connect_error(spec, e, database) from None
    if spec.tls == "required" and not isinstance(conn._sock, ssl.SSLSocket):
        conn.close()
        raise MysqlTlsError(f"MySQL at {spec.address}: TLS was required but not negotiated")
    try:
        _apply_timeouts(conn, timeouts)
    except pymysql.MySQLError as e:
        conn.close()
        raise query_error(spec, e, "setting the session's timeouts") from None
    return conn


def _apply_timeouts(conn: pymysql.Connection, timeouts: Timeouts | None) -> None:
    """The connect timeout guarded the handshake only; from now on `timeouts` (or none)."""
    read = timeouts.read if timeouts else None
    write = timeouts.write if timeouts else None
    conn._read_timeout, conn._write_timeout = read, write
    conn._current_timeout = read
    sock = conn._sock
    if sock is not None:
        sock.settimeout(read)
        if timeouts is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            _keepalive(sock)
    if timeouts is None:
        return
    seconds = timeouts.statement or 0  # None: no bound, whatever the server's global value
    with conn.cursor() as cur:
        try:  # MariaDB: every statement; the server-wide value is replaced by ours
            cur.execute("SET SESSION max_statement_time = %s", (float(seconds),))
            return
        except pymysql.MySQLError as e:
            if not _server_refused(e):
                raise
        try:  # MySQL: SELECTs only (the read timeout bounds the rest)
            cur.execute("SET SESSION max_execution_time = %s", (int(seconds * 1000),))
        except pymysql.MySQLError as e:
            if not _server_refused(e):
                raise
            log.debug("the server has no statement timeout; reads are bounded by %s",
                      timeouts.describe())


def _server_refused(e: pymysql.MySQLError) -> bool:
    """A server error (unknown variable, ...), not a lost connection."""
    return bool(e.args) and isinstance(e.args[0], int) and 1000 <= e.args[0] < 2000


def _keepalive(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 6)):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    except OSError:
        pass  # keepalive is a help, not a requirement


def connect_error(spec: ConnectionSpec, e: BaseException, database: str | None = None) -> MysqlError:
    """The user-facing error for a failed connection attempt."""
    code = e.args[0] if isinstance(e, pymysql.MySQLError) and e.args else None
    text = str(e.args[1]) if isinstance(e, pymysql.MySQLError) and len(e.args) > 1 else str(e)
    low = text.lower()
    if code == _ER_ACCESS_DENIED:
        return MysqlAuthError(
            f"access denied for user {spec.user}@{spec.address}: check the password "
            "(mysql[].password)",
            hint="check mysql[].user and mysql[].password, and that the account may connect "
                 "from this machine",
        )
    if code in (_ER_DBACCESS_DENIED, _ER_HOST_NOT_PRIVILEGED):
        return MysqlAuthError(f"MySQL at {spec.address} refused user {spec.user}: {text}",
                              hint="grant the account access (see the README's MySQL section)")
    if code == _ER_BAD_DB:
        return MysqlError(f"database {database!r} does not exist on MySQL at {spec.address}")
    if code == _CR_SSL_CONNECTION_ERROR or "ssl" in low or "certificate" in low or \
            isinstance(e, ssl.SSLError):
        what = f"against {spec.ca_file}" if spec.ca_file else "with the server"
        return MysqlTlsError(f"TLS with MySQL at {spec.address} failed ({what}): {text}",
                             hint="check ca (the CA that signed the server certificate) and that "
                                  "the host name matches the certificate")
    if code in (_CR_CONN_HOST_ERROR, _CR_SERVER_LOST, _CR_SERVER_GONE) or \
            isinstance(e, (OSError, socket.timeout)):
        reason = "timed out" if "timed out" in low else (
            "connection refused" if "refused" in low else text)
        return MysqlUnreachable(
            f"cannot reach MySQL at {spec.address} within {spec.connect_timeout:g}s: {reason}",
            hint="check mysql[].host and port, that the server runs and listens on that "
                 "address (bind-address), and that no firewall is in the way",
        )
    return MysqlError(f"MySQL at {spec.address}: {text}")


def query_error(spec: ConnectionSpec, e: BaseException, doing: str) -> MysqlError:
    """The user-facing error for a failure while `doing` something on an open connection."""
    if isinstance(e, MysqlError):
        return e
    if isinstance(e, pymysql.MySQLError) and e.args and isinstance(e.args[0], int):
        code, text = e.args[0], (e.args[1] if len(e.args) > 1 else "")
        if code in (_CR_SERVER_LOST, _CR_SERVER_GONE) and "timed out" in str(text).lower():
            return MysqlError(f"MySQL at {spec.address} did not answer in time while {doing} "
                              "(read/write timeout): gave up",
                              hint="check the server is up and not stuck (SHOW PROCESSLIST); "
                                   "if a statement rightly runs this long, raise the timeouts")
        if code in (_ER_STATEMENT_TIMEOUT, _ER_QUERY_TIMEOUT):
            return MysqlError(f"MySQL at {spec.address} failed while {doing}: ({code}) {text}",
                              hint="a statement ran longer than the statement timeout (dr's "
                                   f"default {STATEMENT_TIMEOUT:g}s): look for locks held by "
                                   "other sessions (SHOW PROCESSLIST), or raise the timeout")
        if code in (_CR_SERVER_LOST, _CR_SERVER_GONE) or 2000 <= code < 3000:
            return MysqlError(f"lost the connection to MySQL at {spec.address} while {doing}: "
                              f"{text}", hint="check the server is up (its error log says why "
                                              "it went away) and run again")
        return MysqlError(f"MySQL at {spec.address} failed while {doing}: ({code}) {text}")
    return MysqlError(f"lost the connection to MySQL at {spec.address} while {doing}: "
                      f"{type(e).__name__}: {e}")


_URI_PARAMS = {"tls", "ca", "socket", "connect_timeout", "timeout"}


def parse_uri(uri: str, password: str | None = None) -> tuple[ConnectionSpec, str | None]:
    """`mysql://user[:password]@host[:port]/DB[?tls=required&ca=/path&socket=/path]`.

    `password` (e.g. from the environment) wins over one in the URI. The database is optional.
    Errors never repeat the password.
    """
    try:
        parts = urlsplit(uri.strip())
        port = parts.port
    except ValueError as e:
        raise MysqlUriError(f"invalid MySQL URI {_redact(uri)}: {e}",
                            hint="use mysql://user@host:3306/database") from None
    if parts.scheme not in ("mysql", "mariadb"):
        raise MysqlUriError(f"invalid MySQL URI {_redact(uri)}: it must start with mysql://",
                            hint="use mysql://user@host:3306/database")
    params: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _URI_PARAMS:
            raise MysqlUriError(f"invalid MySQL URI {_redact(uri)}: unknown option {key!r}",
                                hint="known options: " + ", ".join(sorted(_URI_PARAMS)))
        params[key] = value
    host = parts.hostname or ""
    sock = params.get("socket") or None
    if not host and not sock:
        raise MysqlUriError(f"invalid MySQL URI {_redact(uri)}: no host",
                            hint="use mysql://user@host:3306/database or ?socket=/path")
    raw_path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if "/" in raw_path:
        raise MysqlUriError(f"invalid MySQL URI {_redact(uri)}: the path must be one database name",
                            hint="percent-encode a / in a database name as %2F")
    try:
        path = unquote(raw_path, errors="strict") if raw_path else ""
    except UnicodeDecodeError:
        raise MysqlUriError(f"invalid MySQL URI {_redact(uri)}: the database name is not "
                            "percent-encoded UTF-8") from None
    problem = mysql_database_name_problem(path) if path else None
    if problem is not None:
        raise MysqlUriError(f"invalid MySQL URI {_redact(uri)}: {path!r} is not a database "
                            f"name: {problem}")
    timeout = params.get("connect_timeout") or params.get("timeout")
    try:
        seconds = float(timeout) if timeout else 10.0
    except ValueError:
        raise MysqlUriError(f"invalid MySQL URI {_redact(uri)}: connect_timeout must be a number "
                            f"of seconds, got {timeout!r}") from None
    spec = ConnectionSpec(
        host=host or "localhost",
        port=port or 3306,
        user=unquote(parts.username) if parts.username else "root",
        password=password if password is not None else (
            unquote(parts.password) if parts.password is not None else None),
        unix_socket=sock,
        tls=params.get("tls", "preferred"),
        ca_file=params.get("ca") or None,
        connect_timeout=seconds,
    )
    return spec, (path or None)


def _redact(uri: str) -> str:
    """The URI with any password replaced by ***."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return repr(uri) if len(uri) < 80 else repr(uri[:77] + "...")
    auth, at, tail = rest.rpartition("@")
    if at and ":" in auth:
        auth = auth.split(":", 1)[0] + ":***"
    return repr(f"{scheme}://{auth}{at}{tail}")
