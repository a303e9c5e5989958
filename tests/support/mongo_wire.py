"""A fake MongoDB replica set on loopback for tests: one mockupdb server per member.

The servers live in `dr.sandbox.mongo` (the demo uses them too); this module adds what tests
need around them: a dr.yaml pointing at a fake set, and a CLI entry that has `dr mongo` registered
even before the CLI wires it in.

Each member answers hello/isMaster/ismaster (maxWireVersion 21, setName, hosts, primary, me,
tags...), replSetGetStatus, replSetGetConfig, ping, buildInfo, endSessions, and the oplog
queries (find on local.oplog.rs sorted by $natural 1/-1, limit 1), all built from `SimMember`
specs that a test may change between polls. Options: per-member `latency` (on everything but the
handshake), `down` (nothing listens), `hang` (accepts, never answers); per set `auth_fail`,
`mode="standalone"` or `mode="mongos"`.

    with WireReplicaSet([SimMember("us-east-1", "PRIMARY"), SimMember("us-west-2")]) as rs:
        MongoClient(rs.uri) ...
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest

pytest.importorskip("mockupdb", reason="the fake replica set needs mockupdb (pip install mockupdb)")

from dr.sandbox.mongo import SimMember, SimSet, WireReplicaSet, demo_members  # noqa: E402

__all__ = ["SimMember", "SimSet", "WireReplicaSet", "demo_members", "mongo_main", "write_config",
           "three_regions", "two_two_one"]

BASE_CONFIG = """\
version: 1
regions: {{primary: us-east-1, dr: us-west-2}}
objectives: {{rpo: 1h, rto: 30m}}
kms: {{dr_key: alias/dr-backups}}
state: {{path: ./state}}
mongo:
{entries}
"""


def write_config(directory: Path, *entries: str) -> Path:
    """A dr.yaml with these `mongo:` entries (each a flow mapping), e.g.
    '{name: app-rs, uri: {env: DR_MONGO_URI}, timeout: 2s}'."""
    path = Path(directory) / "dr.yaml"
    path.write_text(BASE_CONFIG.format(entries="\n".join(f"  - {e}" for e in entries)))
    return path


def three_regions() -> list[SimMember]:
    """A healthy 1-1-1 set: primary in us-east-1, secondaries in us-west-2 and eu-west-1."""
    return [SimMember("us-east-1", "PRIMARY", priority=2),
            SimMember("us-west-2", "SECONDARY", lag=1),
            SimMember("eu-west-1", "SECONDARY", lag=2)]


def two_two_one() -> list[SimMember]:
    return [SimMember("us-east-1", "PRIMARY", priority=2), SimMember("us-east-1", priority=2),
            SimMember("us-west-2", lag=1), SimMember("us-west-2", lag=1),
            SimMember("eu-west-1", priority=0, lag=2)]


@contextmanager
def _with_mongo_command():
    import dr.cli as cli
    from dr.cli import mongo

    if mongo in cli.COMMANDS:
        yield
    else:
        with mock.patch.object(cli, "COMMANDS", cli.COMMANDS + (mongo,)):
            yield


def mongo_main(argv: list[str]) -> int:
    """`dr.cli.main(argv)`, with `dr mongo` registered if the CLI does not list it yet."""
    import dr.cli as cli

    with _with_mongo_command():
        return cli.main(argv)
