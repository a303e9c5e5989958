"""The I/O of `dr mongo status`: direct pymongo connections to every member, in parallel.

1. `isMaster` on every seed of the URI at once; the first answer says what this is (a replica
   set member; a standalone mongod or a mongos are refused) and lists the visible members;
2. oplog probes start at once for those members while `replSetGetStatus` and `replSetGetConfig`
   are read (in parallel) from the primary, or from any member when there is none;
3. members only the config lists (hidden ones) are probed too. Each probe reads the first and last
   entry of `local.oplog.rs` (`$natural` order) on its own direct connection; the round-trip time
   is pymongo's measured `isMaster` time.

Every connection uses the URI's credentials and TLS options (replicaSet and read preference are
dropped: each connection is direct) and the check's timeout for server selection, connect and
socket reads, so an unreachable member costs one timeout, in parallel with the others.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from dr.errors import ConfigError, OperationFailed
from dr.mongo.evaluate import MemberProbe

_DROP_OPTIONS = {"replicaset", "directconnection", "loadbalanced", "srvservicename", "srvmaxhosts",
                 "readpreference", "readpreferencetags", "maxstalenessseconds"}
AUTH_FAILED, UNAUTHORIZED = 18, 13


@dataclass(frozen=True)
class Observation:
    status: dict
    config: dict
    source: str                     # host:port the documents came from
    probes: dict[str, MemberProbe]  # host:port -> what dr saw


# --- URIs -------------------------------------------------------------------------------------------


def seed_list(uri: str, name: str) -> tuple[list[str], dict[str, Any]]:
    """The URI's seed hosts ("host:port") and its parsed form; ConfigError if it is not a URI."""
    from pymongo import uri_parser
    from pymongo.errors import ConfigurationError, InvalidURI

    try:
        parsed = uri_parser.parse_uri(uri)
    except (InvalidURI, ConfigurationError, ValueError) as exc:
        raise ConfigError(f"mongo {name}: the uri is not a usable MongoDB URI: {scrub(str(exc), uri)}",
                          hint="mongodb://user:password@host1:27017,host2:27017/?replicaSet=rs0 "
                               "(percent-encode @ : / in the password)") from None
    return [_hostport(h, p) for h, p in parsed["nodelist"]], parsed


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def member_uri(uri: str, host: str, parsed: dict[str, Any] | None = None) -> str:
    """The same URI (credentials, TLS and auth options) aimed at one member only."""
    scheme, _, rest = uri.partition("://")
    head, slash, tail = rest.partition("/")
    if slash:
        path, _, query = tail.partition("?")
    else:
        head, _, query = rest.partition("?")
        path = ""
    userinfo = head.rpartition("@")[0]
    params = [p for p in re.split(r"[&;]", query)
              if p and p.split("=", 1)[0].lower() not in _DROP_OPTIONS]
    if scheme == "mongodb+srv":  # SRV implies TLS; its TXT record may carry authSource
        names = {p.split("=", 1)[0].lower() for p in params}
        if not names & {"tls", "ssl"}:
            params.append("tls=true")
        source = (parsed or {}).get("options", {}).get("authSource")
        if source and "authsource" not in names:
            params.append(f"authSource={source}")
    auth = f"{userinfo}@" if userinfo else ""
    return f"mongodb://{auth}{host}/{path}" + (f"?{'&'.join(params)}" if params else "")


def scrub(text: str, uri: str) -> str:
    """`text` without the URI's password (pymongo messages may quote parts of the URI)."""
    m = re.match(r"[^:]+://([^@/]*)@", uri)
    if m and ":" in m.group(1):
        secret = m.group(1).split(":", 1)[1]
        if secret:
            text = text.replace(secret, "****")
    return text


# --- connections --------------------------------------------------------------------------------------


class _Clients:
    """One direct MongoClient per member, made on first use, all closed together."""

    def __init__(self, uri: str, parsed: dict[str, Any], timeout: float):
        self._uri, self._parsed, self._timeout = uri, parsed, timeout
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._closed = False

    def get(self, host: str):
        with self._lock:
            if self._closed:
                raise RuntimeError("the probe is over")
            client = self._clients.get(host)
            if client is None:
                client = self._make(host)
                self._clients[host] = client
            return client

    def _make(self, host: str):
        from pymongo import MongoClient
        from pymongo.errors import ConfigurationError, InvalidURI

        ms = max(1, int(self._timeout * 1000))
        try:
            return MongoClient(member_uri(self._uri, host, self._parsed), directConnection=True,
                               serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms,
                               retryReads=False, tz_aware=True, appname="dr mongo status")
        except (ConfigurationError, InvalidURI, ValueError, TypeError) as exc:
            raise ConfigError(f"the uri's options do not work for {host}: "
                              f"{scrub(str(exc), self._uri)}") from None

    def rtt_ms(self, host: str) -> float | None:
        client = self._clients.get(host)
        if client is None:
            return None
        rtts = [d.round_trip_time for d in client.topology_description.server_descriptions().values()
                if d.round_trip_time is not None]
        return rtts[0] * 1000 if rtts else None

    def close(self) -> None:
        """Close every client at once (each close may wait for an endSessions answer)."""
        with self._lock:
            self._closed = True
            clients = list(self._clients.values())
        threads = [threading.Thread(target=c.close, daemon=True) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(self._timeout)


def describe(exc: BaseException, timeout: float, uri: str = "") -> str:
    """A short, secret-free reason for a connection or command failure."""
    from pymongo.errors import OperationFailure

    if isinstance(exc, OperationFailure):
        if exc.code == AUTH_FAILED:
            return "authentication failed"
        if exc.code == UNAUTHORIZED:
            return f"not authorized: {scrub(str(exc.details.get('errmsg', exc)), uri)}"
        return scrub(str((exc.details or {}).get("errmsg") or exc), uri)[:200]
    text = str(exc)
    for needle, reason in (("Connection refused", "connection refused"),
                           ("Name or service not known", "the host name does not resolve"),
                           ("nodename nor servname", "the host name does not resolve"),
                           ("No route to host", "no route to host"),
                           ("timed out", f"no answer within {timeout:g}s"),
                           ("SSL", "TLS handshake failed")):
        if needle in text:
            return reason
    return scrub(text.split(", Timeout:")[0], uri)[:200]


def _is_auth_failure(exc: BaseException) -> bool:
    from pymongo.errors import OperationFailure

    return isinstance(exc, OperationFailure) and exc.code == AUTH_FAILED


# --- the observation ---------------------------------------------------------------------------------


def observe(uri: str, *, name: str, timeout: float, uri_source: str = "the uri") -> Observation:
    """Read one replica set's status and config, and probe every member, in parallel."""
    seeds, parsed = seed_list(uri, name)
    clients = _Clients(uri, parsed, timeout)
    pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="dr-mongo")
    try:
        hello, seed_host = _first_hello(pool, clients, seeds, name, timeout, uri, parsed, uri_source)
        probing = _Probing(pool, clients, timeout, uri)
        for host in hello.get("hosts", []) + hello.get("passives", []):
            probing.start(host, arbiter=False)
        for host in hello.get("arbiters", []):
            probing.start(host, arbiter=True)
        status, config, source = _read_documents(pool, clients, hello, seed_host, name, timeout,
                                                 uri, parsed, uri_source)
        for member in config.get("config", {}).get("members", []):
            probing.start(member["host"], arbiter=bool(member.get("arbiterOnly")))
        return Observation(status=status, config=config, source=source, probes=probing.results())
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        clients.close()


def _hello(clients: _Clients, host: str) -> dict:
    return clients.get(host).admin.command("isMaster")


def _first_hello(pool, clients, seeds, name, timeout, uri, parsed, uri_source) -> tuple[dict, str]:
    """The first seed to answer (preferring none in particular); refuses non-replica-sets."""
    futures = {pool.submit(_hello, clients, host): host for host in seeds}
    errors: dict[str, BaseException] = {}
    pending = set(futures)
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for fut in done:
            host = futures[fut]
            if isinstance(fut.exception(), ConfigError):
                raise fut.exception()
            if fut.exception() is not None:
                errors[host] = fut.exception()
                continue
            _refuse_non_replica_set(fut.result(), host, name, parsed)
            return fut.result(), host
    raise _connect_failure(errors, name, timeout, uri, parsed, uri_source)


def _refuse_non_replica_set(hello: dict, host: str, name: str, parsed: dict) -> None:
    supported = "dr mongo status needs a replica set"
    if hello.get("msg") == "isdbgrid":
        raise ConfigError(f"found a mongos (a sharded cluster's router) at {host}; {supported}",
                          hint=f"point mongo {name}'s uri at the members of one shard's replica "
                               "set (or the config servers'), and add one mongo entry per shard")
    if not hello.get("setName"):
        if hello.get("isreplicaset"):
            raise ConfigError(f"{host} runs with --replSet but its replica set is not initiated; "
                              f"{supported}", hint="run rs.initiate() on it")
        raise ConfigError(f"found a standalone mongod at {host}; {supported}",
                          hint=f"convert it to a replica set (start it with --replSet and run "
                               f"rs.initiate()), or remove mongo {name} from dr.yaml")
    wanted = parsed.get("options", {}).get("replicaSet")
    if wanted and hello["setName"] != wanted:
        raise ConfigError(f"{host} belongs to replica set {hello['setName']!r}, but mongo "
                          f"{name}'s uri asks for replicaSet={wanted}",
                          hint="fix the hosts or the replicaSet option in the uri")


def _connect_failure(errors, name, timeout, uri, parsed, uri_source) -> OperationFailed:
    if errors and all(_is_auth_failure(e) for e in errors.values()):
        user = parsed.get("username") or "<none>"
        source = parsed.get("options", {}).get("authSource") or parsed.get("database") or "admin"
        return OperationFailed(
            f"mongo {name}: authentication failed for user {user!r} (authSource {source})",
            hint=f"check the user name and password in {uri_source}, and that the user exists "
                 f"in the {source} database")
    tried = "; ".join(f"{host}: {describe(exc, timeout, uri)}" for host, exc in errors.items())
    return OperationFailed(f"mongo {name}: cannot reach any member ({tried})",
                           hint=f"check the hosts in {uri_source} and the network from here; each "
                                f"attempt waits {timeout:g}s (mongo[].timeout)")


def _read_documents(pool, clients, hello, seed_host, name, timeout, uri, parsed,
                    uri_source) -> tuple[dict, dict, str]:
    """replSetGetStatus and replSetGetConfig, in parallel, from the primary or else any member."""
    candidates = [h for h in [hello.get("primary"), seed_host, *hello.get("hosts", []),
                              *hello.get("passives", []), *hello.get("arbiters", [])] if h]
    errors: dict[str, BaseException] = {}
    for host in dict.fromkeys(candidates):
        admin = clients.get(host).admin
        status_f = pool.submit(admin.command, "replSetGetStatus")
        config_f = pool.submit(admin.command, "replSetGetConfig")
        failure = status_f.exception() or config_f.exception()
        if failure is None:
            return status_f.result(), config_f.result(), host
        if _is_auth_failure(failure):
            raise _connect_failure({host: failure}, name, timeout, uri, parsed, uri_source)
        if getattr(failure, "code", None) == UNAUTHORIZED:
            raise OperationFailed(
                f"mongo {name}: the user may not read the replica-set status on {host} "
                f"({describe(failure, timeout, uri)})",
                hint="grant it the clusterMonitor role and read on the local database")
        errors[host] = failure
    tried = "; ".join(f"{h}: {describe(e, timeout, uri)}" for h, e in errors.items())
    raise OperationFailed(f"mongo {name}: could not read replSetGetStatus/replSetGetConfig ({tried})")


class _Probing:
    """Per-member probes, each started once, all running at the same time."""

    def __init__(self, pool: ThreadPoolExecutor, clients: _Clients, timeout: float, uri: str):
        self._pool, self._clients, self._timeout, self._uri = pool, clients, timeout, uri
        self._tasks: dict[str, tuple[bool, list[Future]]] = {}

    def start(self, host: str, *, arbiter: bool) -> None:
        if host in self._tasks:
            return
        if arbiter:  # arbiters hold no oplog: a ping says whether dr can reach them
            tasks = [self._pool.submit(self._run, host, lambda c: c.admin.command("ping"))]
        else:
            tasks = [self._pool.submit(self._run, host, _oplog_end(1)),
                     self._pool.submit(self._run, host, _oplog_end(-1))]
        self._tasks[host] = (arbiter, tasks)

    def _run(self, host: str, action: Callable):
        return action(self._clients.get(host))

    def results(self) -> dict[str, MemberProbe]:
        out = {}
        for host, (arbiter, tasks) in self._tasks.items():
            failure = next((t.exception() for t in tasks if t.exception() is not None), None)
            if failure is not None:
                out[host] = MemberProbe(host, False, describe(failure, self._timeout, self._uri),
                                        self._clients.rtt_ms(host))
            elif arbiter:
                out[host] = MemberProbe(host, True, rtt_ms=self._clients.rtt_ms(host))
            else:
                first, last = (t.result() for t in tasks)
                out[host] = MemberProbe(host, True, rtt_ms=self._clients.rtt_ms(host),
                                        oplog_first=_entry_time(first), oplog_last=_entry_time(last))
        return out


def _oplog_end(direction: int) -> Callable:
    def read(client):
        return client.local["oplog.rs"].find_one({}, sort=[("$natural", direction)],
                                                 projection={"ts": 1, "wall": 1, "_id": 0})
    return read


def _entry_time(entry: dict | None):
    if not entry or entry.get("ts") is None:
        return None
    return entry["ts"].as_datetime()
