"""Simulated MongoDB replica sets: the documents a real set returns, and servers that speak them.

`SimSet` describes a set member by member (region, state, votes, priority, lag, oplog window...)
and builds the documents a real `mongod` would answer with: `hello`, `replSetGetStatus`,
`replSetGetConfig`, and the first/last `local.oplog.rs` entries. Unit tests evaluate those
documents directly; `WireReplicaSet` serves them over the MongoDB wire protocol, one `mockupdb`
server per member on 127.0.0.1, so integration tests and `dr demo` drive real pymongo against
them. mockupdb is imported only when a wire set starts (a test/demo dependency).

The documents are rebuilt on every request from the (mutable) member specs, so a test can change
a member's state or lag between two polls. `simulated_report()` checks a simulated set the way
`dr mongo status` checks a real one (for `dr demo`).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from bson import Int64, ObjectId, Timestamp

from dr.clock import Clock

if TYPE_CHECKING:
    from dr.mongo.model import MongoReport

STATE_CODES = {"STARTUP": 0, "PRIMARY": 1, "SECONDARY": 2, "RECOVERING": 3, "STARTUP2": 5,
               "UNKNOWN": 6, "ARBITER": 7, "DOWN": 8, "ROLLBACK": 9, "REMOVED": 10}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Commands answered at once whatever the injected latency: the connection handshake and cleanup.
_HANDSHAKE = {"hello", "ismaster", "saslstart", "saslcontinue", "endsessions", "killcursors"}


@dataclass
class SimMember:
    """One simulated member. `host` is filled in by the set (a name, or 127.0.0.1:PORT on the wire)."""

    region: str | None = None
    state: str = "SECONDARY"          # PRIMARY, SECONDARY, ARBITER, ROLLBACK, RECOVERING, ...
    priority: float = 1.0
    votes: int = 1
    hidden: bool = False
    delay: int = 0                    # secondaryDelaySecs
    lag: float = 0.0                  # seconds behind the primary's last write
    oplog_window: float = 172800.0    # seconds (48h) from the first to the last oplog entry
    latency: float = 0.0              # seconds before each (non-handshake) answer, on the wire
    down: bool = False                # the set sees it DOWN; on the wire nothing listens
    hang: bool = False                # on the wire: accepts connections, never answers
    tag_region: bool = True           # False: the region is not in the member's tags
    tags: dict[str, str] = field(default_factory=dict)
    host: str = ""

    @property
    def arbiter(self) -> bool:
        return self.state == "ARBITER"


class SimSet:
    """A replica set's documents, built from member specs; `now` fixes the time (default: wall)."""

    def __init__(self, members: list[SimMember], name: str = "rs0", *, now: datetime | None = None,
                 region_tag: str = "region", domain: str = "example.net"):
        self.members = members
        self.name = name
        self.region_tag = region_tag
        self.fixed_now = now
        self.config_version = 3
        self.term = 7
        for i, m in enumerate(members):
            if not m.host:
                m.host = f"db{i + 1}.{m.region or 'nowhere'}.{domain}:27017"

    # -- time and optimes --

    def now(self) -> datetime:
        return self.fixed_now or datetime.now(timezone.utc).replace(microsecond=0)

    def last_write(self) -> datetime:
        return self.now() - timedelta(seconds=1)

    def optime(self, m: SimMember) -> datetime:
        return self.last_write() - timedelta(seconds=m.lag)

    @staticmethod
    def _ts(when: datetime, inc: int = 1) -> Timestamp:
        return Timestamp(int(when.timestamp()), inc)

    # -- documents --

    def config_member(self, i: int, m: SimMember) -> dict[str, Any]:
        tags = dict(m.tags)
        if m.region and m.tag_region:
            tags[self.region_tag] = m.region
        return {"_id": i, "host": m.host, "arbiterOnly": m.arbiter, "buildIndexes": True,
                "hidden": m.hidden, "priority": 0.0 if m.arbiter else float(m.priority),
                "tags": tags, "secondaryDelaySecs": Int64(m.delay), "votes": m.votes}

    def config_doc(self) -> dict[str, Any]:
        """The reply to replSetGetConfig."""
        return {"config": {
            "_id": self.name, "version": self.config_version, "term": self.term,
            "protocolVersion": Int64(1), "writeConcernMajorityJournalDefault": True,
            "members": [self.config_member(i, m) for i, m in enumerate(self.members)],
            "settings": {"chainingAllowed": True, "heartbeatIntervalMillis": 2000,
                         "heartbeatTimeoutSecs": 10, "electionTimeoutMillis": 10000,
                         "catchUpTimeoutMillis": -1, "replicaSetId": ObjectId("65a1b2c3d4e5f60718293a4b")},
        }, "ok": 1.0}

    def _status_member(self, i: int, m: SimMember, me: int) -> dict[str, Any]:
        doc: dict[str, Any] = {"_id": i, "name": m.host}
        if m.down:
            doc.update(health=0.0, state=8, stateStr="(not reachable/healthy)", uptime=0,
                       optime={"ts": Timestamp(0, 0), "t": Int64(-1)}, optimeDate=EPOCH,
                       lastHeartbeatMessage=f"Error connecting to {m.host} :: caused by :: "
                                            "Connection refused",
                       configVersion=-1)
            return doc
        doc.update(health=1.0, state=STATE_CODES[m.state], stateStr=m.state, uptime=86400,
                   configVersion=self.config_version, configTerm=self.term)
        if not m.arbiter:
            when = self.optime(m)
            doc.update(optime={"ts": self._ts(when), "t": Int64(self.term)}, optimeDate=when,
                       optimeDurable={"ts": self._ts(when), "t": Int64(self.term)},
                       optimeDurableDate=when, lastAppliedWallTime=when, lastDurableWallTime=when)
        if i == me:
            doc["self"] = True
        else:
            doc.update(lastHeartbeat=self.now(), lastHeartbeatRecv=self.now(), pingMs=Int64(1))
        return doc

    def status_doc(self, me: int | None = None) -> dict[str, Any]:
        """The reply to replSetGetStatus as member `me` (default: the primary) sees the set."""
        me = self._default_self() if me is None else me
        voting = [m for m in self.members if m.votes > 0]
        majority = len(voting) // 2 + 1
        writable = [m for m in voting if not m.arbiter]
        primary = self.primary()
        last = self.last_write()
        return {
            "set": self.name, "date": self.now(), "myState": STATE_CODES[self.members[me].state],
            "term": Int64(self.term), "syncSourceHost": "" if primary is self.members[me] else
            (primary.host if primary else ""), "heartbeatIntervalMillis": Int64(2000),
            "majorityVoteCount": majority, "writeMajorityCount": min(majority, len(writable)),
            "votingMembersCount": len(voting), "writableVotingMembersCount": len(writable),
            "optimes": {"lastCommittedOpTime": {"ts": self._ts(last), "t": Int64(self.term)},
                        "lastCommittedWallTime": last, "appliedOpTime": {"ts": self._ts(last),
                                                                         "t": Int64(self.term)}},
            "members": [self._status_member(i, m, me) for i, m in enumerate(self.members)],
            "ok": 1.0,
        }

    def _default_self(self) -> int:
        for i, m in enumerate(self.members):
            if m.state == "PRIMARY" and not m.down:
                return i
        return next(i for i, m in enumerate(self.members) if not m.down)

    def primary(self) -> SimMember | None:
        return next((m for m in self.members if m.state == "PRIMARY" and not m.down), None)

    def hello_doc(self, i: int) -> dict[str, Any]:
        """The reply to hello/isMaster from member i."""
        m = self.members[i]
        primary = self.primary()
        visible = [x for x in self.members if not x.hidden]
        # No topologyVersion: pymongo then polls instead of streaming (mockupdb cannot stream).
        doc = {
            "isWritablePrimary": m.state == "PRIMARY",
            "ismaster": m.state == "PRIMARY", "secondary": m.state == "SECONDARY",
            "setName": self.name, "setVersion": self.config_version,
            "hosts": [x.host for x in visible if not x.arbiter and x.priority > 0],
            "passives": [x.host for x in visible if not x.arbiter and x.priority == 0],
            "arbiters": [x.host for x in visible if x.arbiter],
            "me": m.host, "tags": self.config_member(i, m)["tags"],
            "lastWrite": {"opTime": {"ts": self._ts(self.optime(m)), "t": Int64(self.term)},
                          "lastWriteDate": self.optime(m)},
            **_server_basics(self.now()),
        }
        if primary is not None:
            doc["primary"] = primary.host
        if m.arbiter:
            doc["arbiterOnly"] = True
        if m.hidden:
            doc["hidden"] = True
        if m.priority == 0 and not m.arbiter:
            doc["passive"] = True
        if m.state == "PRIMARY":
            doc["electionId"] = ObjectId("7fffffff0000000000000007")
        return doc

    def oplog_entry(self, m: SimMember, first: bool) -> dict[str, Any]:
        last = self.optime(m)
        when = last - timedelta(seconds=m.oplog_window) if first else last
        return {"op": "n", "ns": "", "o": {"msg": "periodic noop"}, "ts": self._ts(when),
                "t": Int64(self.term), "v": Int64(2), "wall": when}


def _server_basics(now: datetime) -> dict[str, Any]:
    return {"maxBsonObjectSize": 16 * 1024 * 1024, "maxMessageSizeBytes": 48_000_000,
            "maxWriteBatchSize": 100_000, "localTime": now, "logicalSessionTimeoutMinutes": 30,
            "connectionId": 1, "minWireVersion": 0, "maxWireVersion": 21, "readOnly": False,
            "helloOk": True, "ok": 1.0}


# --- the wire ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WireReplicaSet:
    """One mockupdb server per member on 127.0.0.1, answering as the SimSet describes.

    mode: "replset" (default), "standalone" (a lone mongod without --replSet) or "mongos"
    (a sharded cluster's router); auth_fail: every authentication attempt fails.
    Use as a context manager; `uri` is a seed list of every listening member.
    """

    def __init__(self, members: list[SimMember], name: str = "rs0", *, mode: str = "replset",
                 auth_fail: bool = False, region_tag: str = "region"):
        self.sim = SimSet(members, name, region_tag=region_tag)
        self.mode = mode
        self.auth_fail = auth_fail
        self._servers: list[Any] = []
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()
        self.events: list[tuple[str, str, str]] = []  # ("in"|"out", host, command), in order

    @property
    def members(self) -> list[SimMember]:
        return self.sim.members

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(host, command name) of every request received, in order."""
        with self._lock:
            return [(host, name) for event, host, name in self.events if event == "in"]

    def _log(self, event: str, host: str, name: str) -> None:
        with self._lock:
            self.events.append((event, host, name))

    def start(self) -> WireReplicaSet:
        from mockupdb import MockupDB

        for i, m in enumerate(self.members):
            port = free_port()
            m.host = f"127.0.0.1:{port}"
            if m.down:
                continue  # nothing listens there: connection refused
            server = MockupDB(port=port, request_timeout=int(1e6), max_wire_version=21)
            server.autoresponds(self._handler(i))
            server.run()
            self._servers.append(server)
        return self

    def stop(self) -> None:
        with self._lock:
            for timer in self._timers:
                timer.cancel()
        stoppers = [threading.Thread(target=server.stop) for server in self._servers]
        for t in stoppers:  # each stop waits up to 1 s for its accept loop: stop them together
            t.start()
        for t in stoppers:
            t.join()
        self._servers.clear()

    def __enter__(self) -> WireReplicaSet:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def uri(self) -> str:
        hosts = ",".join(m.host for m in self.members if not m.down)
        return f"mongodb://{hosts}/?replicaSet={self.sim.name}" if self.mode == "replset" \
            else f"mongodb://{hosts}/"

    def uri_with_credentials(self, user: str = "monitor", password: str = "secret") -> str:
        return self.uri.replace("mongodb://", f"mongodb://{user}:{password}@", 1)

    # -- answering --

    def _handler(self, i: int):
        def handle(request) -> bool:
            m = self.members[i]
            name = (request.command_name or "").lower() if request.is_command else "query"
            self._log("in", m.host, name)
            if m.hang:
                return True  # swallow it: the client times out
            reply = self._answer(i, name, request)
            delay = 0.0 if name in _HANDSHAKE else m.latency
            if delay <= 0:
                self._reply(request, reply, m.host, name)
            else:
                self._later(delay, request, reply, m.host, name)
            return True
        return handle

    def _reply(self, request, reply: dict, host: str, name: str) -> None:
        self._log("out", host, name)
        _send(request, reply)

    def _later(self, delay: float, request, reply: dict, host: str, name: str) -> None:
        def fire():
            with self._lock:
                self._timers.discard(timer)
            self._reply(request, reply, host, name)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        with self._lock:
            self._timers.add(timer)
        timer.start()

    def _answer(self, i: int, name: str, request) -> dict:
        sim = self.sim
        if name in ("hello", "ismaster"):
            return self._hello(i)
        if name in ("saslstart", "saslcontinue"):
            if self.auth_fail:
                return _error(18, "Authentication failed.", "AuthenticationFailed")
            return _error(334, "SCRAM is not simulated: leave credentials out of the URI",
                          "MechanismUnavailable")
        if name in ("ping", "endsessions", "killcursors"):
            return {"ok": 1.0}
        if name == "buildinfo":
            return {"version": "7.0.14", "versionArray": [7, 0, 14, 0], "ok": 1.0}
        if self.mode == "standalone" and name.startswith("replset"):
            return _error(76, "not running with --replSet", "NoReplicationEnabled")
        if self.mode == "mongos" and name.startswith("replset"):
            return _error(59, f"no such cmd: {name}", "CommandNotFound")
        if name == "replsetgetstatus":
            return sim.status_doc(i)
        if name == "replsetgetconfig":
            return sim.config_doc()
        if name == "find" and request.doc.get("find") == "oplog.rs":
            return self._oplog(i, request.doc)
        return _error(59, f"no such command: '{name}'", "CommandNotFound")

    def _hello(self, i: int) -> dict:
        if self.mode == "standalone":
            return {"ismaster": True, "isWritablePrimary": True, **_server_basics(self.sim.now())}
        if self.mode == "mongos":
            return {"ismaster": True, "isWritablePrimary": True, "msg": "isdbgrid",
                    **_server_basics(self.sim.now())}
        return self.sim.hello_doc(i)

    def _oplog(self, i: int, doc: dict) -> dict:
        m = self.members[i]
        if m.arbiter:
            batch: list = []
        else:
            first = (doc.get("sort") or {}).get("$natural", 1) == 1
            batch = [self.sim.oplog_entry(m, first)]
        return {"cursor": {"id": Int64(0), "ns": "local.oplog.rs", "firstBatch": batch}, "ok": 1.0}


def _error(code: int, message: str, name: str) -> dict:
    return {"ok": 0.0, "errmsg": message, "code": code, "codeName": name}


def _send(request, reply: dict) -> None:
    try:
        request.replies(reply)
    except OSError:
        pass  # the client hung up (timeout, close): nothing to answer


# --- the demo set -------------------------------------------------------------------------------------


def demo_members() -> list[SimMember]:
    """A 2-2-1 set over three regions, as a startup might run it; one member's oplog is short."""
    return [
        SimMember("us-east-1", "PRIMARY", priority=2),
        SimMember("us-east-1", "SECONDARY", priority=2, lag=0.4),
        SimMember("us-west-2", "SECONDARY", priority=1, lag=1.8),
        SimMember("us-west-2", "SECONDARY", priority=1, lag=2.1, oplog_window=6 * 3600),
        SimMember("eu-west-1", "SECONDARY", priority=0, lag=3.0),
        SimMember("us-west-2", "SECONDARY", priority=0, votes=0, hidden=True, delay=3600,
                  lag=3602),
    ]


# --- a simulated report (dr demo) ---------------------------------------------------------------


def simulated_report(primary_region: str = "us-east-1", *, members=None, dr_region: str | None = None,
                     wire: bool = True, clock: Clock | None = None) -> MongoReport:
    """A report on a SIMULATED set (default: `demo_members()`, 2-2-1 over three regions), marked
    `simulated=True`. With mockupdb installed it goes through the real probe over the wire (one
    fake mongod per member on 127.0.0.1); without, the same documents are evaluated directly."""
    from dr.config import MongoResource, Secret
    from dr.mongo.evaluate import MemberProbe, evaluate
    from dr.mongo.model import Settings
    from dr.mongo.service import check_replica_set

    members = members if members is not None else demo_members()
    if wire:
        try:
            import mockupdb  # noqa: F401
        except ImportError:
            wire = False
    if wire:
        with WireReplicaSet(members, "rs-demo") as fake:
            resource = MongoResource(name="demo-rs", uri=Secret(literal=fake.uri),
                                     timeout=timedelta(seconds=3))
            report = check_replica_set(resource, primary_region, dr_region=dr_region, clock=clock)
        return replace(report, simulated=True)
    sim = SimSet(members, "rs-demo")
    probes = {m.host: MemberProbe(m.host, True, rtt_ms=0.0,
                                  oplog_first=sim.oplog_entry(m, True)["wall"],
                                  oplog_last=sim.oplog_entry(m, False)["wall"])
              for m in members if not m.down and not m.arbiter}
    settings = Settings(name="demo-rs", primary_region=primary_region, dr_region=dr_region)
    return evaluate(sim.status_doc(), sim.config_doc(), probes, settings,
                    checked_at=(clock or Clock()).now(), source="(documents only)", simulated=True)
