"""The data sections of dr.yaml, what dr protects: rds, s3, mysql, mongo.

Resource names are unique across every section: `first_use` maps each name seen so far to the
key path that used it first."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from dr.config.checks import BUCKET_RE, EXPECT_BUCKET, EXPECT_REGION, REGION_RE, is_whole, read_duration, read_secret
from dr.config.durations import Schedule, parse_schedule
from dr.config.model import (
    DEFAULT_RETENTION,
    DEFAULT_S3_SCHEDULE_TEXT,
    DEFAULT_SCHEDULE_TEXT,
    MongoResource,
    MysqlResource,
    MysqlServer,
    RdsResource,
    RetentionPolicy,
    S3Resource,
)
from dr.identifiers import mysql_database_name_problem
from dr.yamlnodes import Node, Problems, show

_MONGO_KEYS = ("name", "uri", "max_lag", "min_oplog_window", "member_regions", "region_tag", "timeout")
_SERVER_KEYS = ("host", "port", "user", "password", "socket", "tls", "ca_file", "connect_timeout")
_MYSQL_KEYS = ("name", "databases", "destination", "schedule", "retention", "engine", "key_file",
               "threads", "verify", "lock_timeout") + _SERVER_KEYS
_S3_KEYS = ("name", "source", "destination", "prefix", "schedule", "delete", "delete_grace",
            "concurrency", "multipart_threshold")
_SIZE_RE = re.compile(r"(\d+)\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?")
_SIZE_UNITS = {None: 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4,
               "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4}
_RETENTION_KEYS = ("last", "hourly", "daily", "weekly", "monthly")

_NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,39}")
_RDS_ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,62}")

_EXPECT_NAME = ("expected a name of lowercase letters, digits and hyphens (starting with a letter, "
                "at most 40 characters, no '--', not ending in '-')")
_EXPECT_RDS_ID = ("expected an RDS {what} identifier (1-63 letters, digits and hyphens, starting with a "
                  "letter, no '--', not ending in '-')")
MiB, GiB = 1024**2, 1024**3


def _ident_ok(value: Any, regex: re.Pattern) -> bool:
    return isinstance(value, str) and bool(regex.fullmatch(value)) and "--" not in value and not value.endswith("-")


def _resource_name(ck: Problems, path: str, node: Node, first_use: dict[str, str]) -> Node | None:
    """The `name` of a resource entry: required, well formed, unique across every section."""
    name = ck.required(path, node, "name")
    if name is not None and not _ident_ok(name.value, _NAME_RE):
        ck.bad(f"{path}.name", name, _EXPECT_NAME)
    elif name is not None and name.value in first_use:
        ck.bad(f"{path}.name", name, f"duplicate name: {first_use[name.value]} already uses it; names must be unique")
    elif name is not None:
        first_use[name.value] = path
    return name


def _resource_list(ck: Problems, top: Node, key: str, expected: str, parse_item,
                   first_use: dict[str, str]) -> tuple | None:
    """A top-level list of resources (rds, s3, mysql, mongo); `first_use` maps every name seen so
    far, in any section, to where it was first used: names are unique across sections."""
    node = top.value.get(key)
    if node is None or node.value is None:
        return ()
    if not isinstance(node.value, list):
        ck.bad(key, node, expected)
        return None
    resources = [parse_item(ck, f"{key}[{i}]", item, first_use) for i, item in enumerate(node.value)]
    return tuple(resources) if all(resources) else None


def _rds_item(ck: Problems, path: str, node: Node, first_use: dict[str, str]) -> RdsResource | None:
    items = ck.mapping(path, node, ("name", "instance", "cluster", "schedule", "retention"),
                       "expected a mapping like {name: app-db, instance: acme-prod-db}")
    if items is None:
        return None
    name = _resource_name(ck, path, node, first_use)
    ids = {k: items[k] for k in ("instance", "cluster") if items.get(k) is not None and items[k].value is not None}
    if len(ids) == 2:
        ck.add(path, node.line, "set exactly one of 'instance' or 'cluster', not both")
    elif not ids:
        ck.add(path, node.line, "required key is missing: set 'instance' (an RDS DB instance identifier) or "
                                "'cluster' (an Aurora DB cluster identifier)")
    for key, child in ids.items():
        if not _ident_ok(child.value, _RDS_ID_RE):
            ck.bad(f"{path}.{key}", child, _EXPECT_RDS_ID.format(what="DB " + key))
    schedule = _schedule(ck, f"{path}.schedule", items.get("schedule"))
    retention = _retention(ck, f"{path}.retention", items.get("retention"))
    if ck.problems:
        return None
    return RdsResource(name=name.value, instance=items.get("instance") and items["instance"].value,
                       cluster=items.get("cluster") and items["cluster"].value,
                       schedule=schedule, retention=retention)


def _schedule(ck: Problems, path: str, node: Node | None,
              default: str = DEFAULT_SCHEDULE_TEXT) -> Schedule | None:
    if node is None or node.value is None:
        return parse_schedule(default)
    try:
        return parse_schedule(node.value)
    except ValueError as e:
        ck.add(path, node.line, str(e))
        return None


def _retention(ck: Problems, path: str, node: Node | None) -> RetentionPolicy | None:
    if node is None or node.value is None:
        return DEFAULT_RETENTION
    items = ck.mapping(path, node, _RETENTION_KEYS, "expected a mapping like {last: 3, daily: 7, weekly: 4}")
    if items is None:
        return None
    counts, ok = {}, True
    for key, child in items.items():
        if key in _RETENTION_KEYS and not is_whole(child.value):
            ck.bad(f"{path}.{key}", child, "expected a whole number >= 0")
            ok = False
        elif key in _RETENTION_KEYS:
            counts[key] = child.value
    if ok and not any(counts.values()):
        ck.add(path, node.line, "every count is 0, so retention would keep nothing but the newest copy; "
                                f"set at least one of {', '.join(_RETENTION_KEYS)} above 0")
    return RetentionPolicy(**counts) if ok else None


def parse_size(value: Any) -> int:
    """`5GiB`, `8MiB`, `100MB`, or a whole number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError("expected a size like 8MiB, 5GiB or a number of bytes")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def _s3_item(ck: Problems, path: str, node: Node, first_use: dict[str, str]) -> S3Resource | None:
    items = ck.mapping(path, node, _S3_KEYS,
                       "expected a mapping like {name: assets, source: acme-assets, destination: acme-assets-dr}")
    if items is None:
        return None
    before = len(ck.problems)
    name = _resource_name(ck, path, node, first_use)
    buckets = {}
    for key in ("source", "destination"):
        child = ck.required(path, node, key)
        if child is not None and not (isinstance(child.value, str) and BUCKET_RE.fullmatch(child.value)
                                      and ".." not in child.value):
            ck.bad(f"{path}.{key}", child, EXPECT_BUCKET)
        elif child is not None:
            buckets[key] = child.value
    if len(buckets) == 2 and buckets["source"] == buckets["destination"]:
        ck.bad(f"{path}.destination", items["destination"], "must differ from source (the copy goes to a bucket "
                                                            "in the DR region)")
    prefix = items.get("prefix")
    if prefix is not None and not isinstance(prefix.value, (str, type(None))):
        ck.bad(f"{path}.prefix", prefix, "expected a key prefix string like uploads/ (or \"\" for the whole bucket)")
    delete = items.get("delete")
    if delete is not None and delete.value not in ("keep", "mirror"):
        ck.bad(f"{path}.delete", delete, "expected keep (never delete in the destination) or mirror (delete there "
                                         "once the source has been gone for delete_grace)")
    grace = read_duration(ck, f"{path}.delete_grace", items.get("delete_grace"))
    concurrency = items.get("concurrency")
    if concurrency is not None and not (is_whole(concurrency.value) and 1 <= concurrency.value <= 64):
        ck.bad(f"{path}.concurrency", concurrency, "expected a whole number from 1 to 64")
    threshold = items.get("multipart_threshold")
    threshold_bytes = None
    if threshold is not None:
        try:
            threshold_bytes = parse_size(threshold.value)
            if not 5 * MiB <= threshold_bytes <= 5 * GiB:
                raise ValueError("expected a size from 5MiB to 5GiB (S3's part and copy limits)")
        except ValueError as e:
            ck.bad(f"{path}.multipart_threshold", threshold, str(e))
    schedule = _schedule(ck, f"{path}.schedule", items.get("schedule"), DEFAULT_S3_SCHEDULE_TEXT)
    if len(ck.problems) > before:
        return None
    return S3Resource(
        name=name.value, source=buckets["source"], destination=buckets["destination"],
        prefix=(prefix.value if prefix is not None else None) or "", schedule=schedule,
        delete=delete.value if delete is not None else "keep",
        delete_grace=grace or timedelta(hours=24),
        concurrency=concurrency.value if concurrency is not None else 16,
        multipart_threshold=threshold_bytes or 5 * GiB,
    )


def _server(ck: Problems, path: str, node: Node, items: dict[str, Node], base_dir: Path) -> MysqlServer | None:
    before = len(ck.problems)
    host = items.get("host")
    if host is not None and not (isinstance(host.value, str) and host.value.strip()):
        ck.bad(f"{path}.host", host, "expected a host name or IP address")
    port = items.get("port")
    if port is not None and not (is_whole(port.value) and 1 <= port.value <= 65535):
        ck.bad(f"{path}.port", port, "expected a port number from 1 to 65535")
    user = items.get("user")
    if user is not None and not (isinstance(user.value, str) and user.value):
        ck.bad(f"{path}.user", user, "expected a MySQL user name")
    password = read_secret(ck, f"{path}.password", items.get("password"))
    tls = items.get("tls")
    if tls is not None and tls.value is False:  # YAML 1.1 reads a bare `off` as false
        tls = Node("off", tls.line)
    if tls is not None and tls.value not in ("required", "preferred", "off"):
        ck.bad(f"{path}.tls", tls, "expected required (fail unless TLS), preferred or off")
    ca = items.get("ca_file")
    ca_path = None
    if ca is not None and ca.value is not None:
        ca_path = str((base_dir / str(ca.value)).absolute())
        if not Path(ca_path).is_file():
            ck.bad(f"{path}.ca_file", ca, "expected the path of a CA certificate file that exists")
    sock = items.get("socket")
    timeout = read_duration(ck, f"{path}.connect_timeout", items.get("connect_timeout"))
    if len(ck.problems) > before:
        return None
    return MysqlServer(
        host=host.value if host is not None else "127.0.0.1",
        port=port.value if port is not None else 3306,
        user=user.value if user is not None else "root", password=password,
        socket=sock.value if sock is not None else None,
        tls=tls.value if tls is not None else "preferred", ca_file=ca_path,
        connect_timeout=timeout or timedelta(seconds=10))


def _mysql_item(ck: Problems, path: str, node: Node, first_use: dict[str, str],
                base_dir: Path) -> MysqlResource | None:
    items = ck.mapping(path, node, _MYSQL_KEYS,
                       "expected a mapping like {name: office-lamp, host: 10.0.0.5, databases: [app], "
                       "destination: s3://acme-dr-backups/mysql/}")
    if items is None:
        return None
    before = len(ck.problems)
    name = _resource_name(ck, path, node, first_use)
    server = _server(ck, path, node, items, base_dir)
    dbs = ck.required(path, node, "databases")
    if dbs is not None and not (isinstance(dbs.value, list) and dbs.value):
        ck.add(f"{path}.databases", dbs.line, "expected a non-empty list of database names like [app]")
    elif dbs is not None:
        seen: set[str] = set()
        for i, d in enumerate(dbs.value):
            problem = mysql_database_name_problem(d.value)
            if problem is None and d.value in seen:
                problem = "it is listed twice"
            if problem is not None:
                ck.add(f"{path}.databases[{i}]", d.line,
                       f"{show(d.value)} is not a MySQL database name: {problem}")
            elif isinstance(d.value, str):
                seen.add(d.value)
    dest = ck.required(path, node, "destination")
    if dest is not None and not (isinstance(dest.value, str) and re.fullmatch(
            r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?|file:///.+", dest.value)):
        ck.bad(f"{path}.destination", dest, "expected s3://BUCKET/PREFIX/ (a bucket in the DR region) or "
                                            "file:///ABSOLUTE/PATH")
    engine = items.get("engine")
    if engine is not None and engine.value != "python":
        ck.bad(f"{path}.engine", engine, "expected python (dr's own engine: no client binaries needed; "
                                         "an engine driving mysqldump is not in this version)")
    threads = items.get("threads")
    if threads is not None and not (is_whole(threads.value) and 1 <= threads.value <= 16):
        ck.bad(f"{path}.threads", threads, "expected a whole number from 1 to 16")
    lock_timeout = read_duration(ck, f"{path}.lock_timeout", items.get("lock_timeout"))
    if lock_timeout is not None and lock_timeout > timedelta(minutes=10):
        ck.bad(f"{path}.lock_timeout", items["lock_timeout"],
               "expected a duration from 1s to 10m (how long a backup waits for a lock; writers "
               "may queue behind it that long)")
    key_file = items.get("key_file")
    verify = verify_every = None
    if items.get("verify") is not None:
        vitems = ck.mapping(f"{path}.verify", items["verify"], _SERVER_KEYS + ("every",),
                            "expected a mapping like {host: 127.0.0.1, port: 3307, user: root, every: 1d}")
        if vitems is not None:
            verify = _server(ck, f"{path}.verify", items["verify"], vitems, base_dir)
            verify_every = _verify_every(ck, f"{path}.verify.every", vitems.get("every"))
    schedule = _schedule(ck, f"{path}.schedule", items.get("schedule"))
    retention = _retention(ck, f"{path}.retention", items.get("retention"))
    if len(ck.problems) > before:
        return None
    return MysqlResource(
        name=name.value, server=server, databases=tuple(d.value for d in dbs.value),
        destination=dest.value, schedule=schedule, retention=retention,
        engine=engine.value if engine is not None else "python",
        key_file=str((base_dir / str(key_file.value)).absolute()) if key_file is not None
        and key_file.value else None,
        threads=threads.value if threads is not None else 2, verify=verify, verify_every=verify_every,
        lock_timeout=lock_timeout or timedelta(seconds=2))


def _verify_every(ck: Problems, path: str, node: Node | None) -> Schedule | None:
    """`every: 1d` (a duration), or a schedule (`every 12h`, a cron): how often `dr schedule`
    verifies the newest backup not verified yet; absent: only `dr backup verify` verifies."""
    if node is None or node.value is None:
        return None
    text = node.value
    if isinstance(text, str) and text.strip() and text.split()[0].lower() != "every" \
            and len(text.split()) == 1:
        text = f"every {text.strip()}"
    try:
        return parse_schedule(text)
    except ValueError as e:
        ck.add(path, node.line, f"{e} (e.g. every: 1d)")
        return None


def _mongo_item(ck: Problems, path: str, node: Node, first_use: dict[str, str]) -> MongoResource | None:
    items = ck.mapping(path, node, _MONGO_KEYS,
                       "expected a mapping like {name: app-rs, uri: {env: DR_MONGO_URI}, max_lag: 30s}")
    if items is None:
        return None
    before = len(ck.problems)
    name = _resource_name(ck, path, node, first_use)
    uri_node = ck.required(path, node, "uri")
    uri = read_secret(ck, f"{path}.uri", uri_node)
    if uri is not None and uri.literal is not None and not uri.literal.startswith(("mongodb://", "mongodb+srv://")):
        ck.add(f"{path}.uri", uri_node.line, "expected a mongodb:// or mongodb+srv:// URI, or {env: NAME}")
    max_lag = read_duration(ck, f"{path}.max_lag", items.get("max_lag"))
    window = read_duration(ck, f"{path}.min_oplog_window", items.get("min_oplog_window"))
    timeout = read_duration(ck, f"{path}.timeout", items.get("timeout"))
    regions: list[tuple[str, str]] = []
    mr = items.get("member_regions")
    if mr is not None and mr.value is not None:
        if not isinstance(mr.value, dict):
            ck.bad(f"{path}.member_regions", mr, 'expected a mapping like {"db1.example.com:27017": us-east-1}')
        else:
            for member, region in mr.value.items():
                if not re.fullmatch(r"[^\s:]+:\d{1,5}", member):
                    ck.add(f"{path}.member_regions.{member}", region.line, "expected host:port as the key")
                elif not (isinstance(region.value, str) and REGION_RE.fullmatch(region.value)):
                    ck.bad(f"{path}.member_regions.{member}", region, EXPECT_REGION)
                else:
                    regions.append((member, region.value))
    tag = items.get("region_tag")
    if tag is not None and not (isinstance(tag.value, str) and tag.value):
        ck.bad(f"{path}.region_tag", tag, "expected the name of the member tag that holds its region")
    if len(ck.problems) > before:
        return None
    return MongoResource(
        name=name.value, uri=uri, max_lag=max_lag or timedelta(seconds=30),
        min_oplog_window=window or timedelta(hours=24), member_regions=tuple(regions),
        region_tag=tag.value if tag is not None else "region", timeout=timeout or timedelta(seconds=5))


def read_rds(ck: Problems, top: Node, first_use: dict[str, str]) -> tuple[RdsResource, ...] | None:
    return _resource_list(ck, top, "rds", "expected a list of databases, each a mapping with name "
                          "and instance or cluster", _rds_item, first_use)


def read_s3(ck: Problems, top: Node, first_use: dict[str, str]) -> tuple[S3Resource, ...] | None:
    return _resource_list(ck, top, "s3", "expected a list of buckets, each a mapping with name, "
                          "source and destination", _s3_item, first_use)


def read_mysql(ck: Problems, top: Node, first_use: dict[str, str],
               base_dir: Path) -> tuple[MysqlResource, ...] | None:
    return _resource_list(ck, top, "mysql", "expected a list of servers, each a mapping with "
                          "name, host, databases and destination",
                          lambda c, p, n, f: _mysql_item(c, p, n, f, base_dir), first_use)


def read_mongo(ck: Problems, top: Node, first_use: dict[str, str]) -> tuple[MongoResource, ...] | None:
    return _resource_list(ck, top, "mongo", "expected a list of replica sets, each a mapping "
                          "with name and uri", _mongo_item, first_use)
