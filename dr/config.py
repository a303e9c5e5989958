"""dr.yaml → a frozen, typed Config; every problem names its key, its line and what was expected.

parse_config collects all problems before raising one ConfigError with one line per problem, in
file order, each shaped `<key path>: <what is expected>, got <value> (<file> line <N>)`. Line
numbers come from the composed YAML node tree (see _Checker.tree), so each value knows its line.
Durations and schedules live in dr/schedule.py and are re-exported here.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from dr.errors import ConfigError
from dr.identifiers import mysql_database_name_problem
from dr.schedule import (
    DURATION_FORMS,
    CronSpec,
    Schedule,
    format_duration,
    parse_duration,
    parse_schedule,
)

__all__ = [
    "AwsSettings", "Config", "CronSpec", "DEFAULT_RETENTION", "DEFAULT_SCHEDULE_TEXT", "KmsSettings",
    "DnsSettings", "HealthSettings", "MongoResource", "MysqlResource", "NotifySettings", "StackSettings",
    "TsigSettings", "MysqlServer", "Objectives", "RdsResource", "Regions", "RESERVED_SECTIONS", "RetentionPolicy",
    "S3Resource", "STARTER_CONFIG", "Secret",
    "Schedule", "StateSettings", "format_duration", "load_config", "parse_config", "parse_duration",
    "parse_schedule", "parse_size", "warnings",
]


# --- the model ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionPolicy:
    """How many copies to keep: the newest `last`, plus one per hour/day/week/month for that many."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0


DEFAULT_RETENTION = RetentionPolicy(last=3, daily=7, weekly=4)
DEFAULT_SCHEDULE_TEXT = "every 1d"


@dataclass(frozen=True)
class Regions:
    primary: str
    dr: str


@dataclass(frozen=True)
class AwsSettings:
    profile: str | None = None
    endpoint_url: str | None = None


@dataclass(frozen=True)
class Objectives:
    rpo: timedelta
    rto: timedelta


@dataclass(frozen=True)
class KmsSettings:
    dr_key: str


@dataclass(frozen=True)
class StateSettings:
    """Where run records live: exactly one of an S3 `bucket` (+ `prefix`) or a local `path`."""

    bucket: str | None = None
    prefix: str = ""
    path: Path | None = None


@dataclass(frozen=True)
class RdsResource:
    name: str
    instance: str | None
    cluster: str | None
    schedule: Schedule
    retention: RetentionPolicy

    @property
    def kind(self) -> str:
        return "instance" if self.instance else "cluster"

    @property
    def source_id(self) -> str:
        return self.instance or self.cluster


@dataclass(frozen=True)
class S3Resource:
    """A source bucket (primary region) copied server-side into a destination bucket (DR region)."""

    name: str
    source: str
    destination: str
    prefix: str = ""
    schedule: Schedule = field(default_factory=lambda: parse_schedule(DEFAULT_S3_SCHEDULE_TEXT))
    delete: str = "keep"  # "keep": never delete in the destination; "mirror": after delete_grace
    delete_grace: timedelta = timedelta(hours=24)
    concurrency: int = 16
    multipart_threshold: int = 5 * 1024**3  # bytes; larger objects are copied in parallel parts


DEFAULT_S3_SCHEDULE_TEXT = "every 1h"


@dataclass(frozen=True)
class Secret:
    """A value kept out of dr.yaml, read only when needed and never shown (repr and str hide it).

    Where it comes from, exactly one of:
      env             an environment variable, `{env: NAME}`
      literal         written in dr.yaml itself (discouraged; passwords, TSIG secrets, mongo URIs)
      secretsmanager  a Secrets Manager secret (name or ARN), `{secretsmanager: prod/db}`, its
                      SecretString or, with `key`, one key of it when it is JSON
      ssm             an SSM Parameter Store parameter, `{ssm: /prod/db/password}`, decrypted
    The AWS kinds are read in the region the value is used in (dr/secret_refs.py: the DR region
    during a failover). `where` is the dr.yaml key path, for error messages only."""

    env: str | None = None
    literal: str | None = field(default=None, repr=False)
    secretsmanager: str | None = None
    key: str | None = None
    ssm: str | None = None
    where: str = field(default="", compare=False, repr=False)

    def __post_init__(self):
        sources = [k for k in ("env", "literal", "secretsmanager", "ssm") if getattr(self, k) is not None]
        if len(sources) > 1:
            raise ValueError(f"a Secret has one source, got {', '.join(sources)}")
        if self.key is not None and self.secretsmanager is None:
            raise ValueError("Secret.key only applies to a secretsmanager secret")

    @property
    def in_aws(self) -> bool:
        """Read from Secrets Manager or SSM: it needs an AWS session and a region."""
        return self.secretsmanager is not None or self.ssm is not None

    def resolve(self, session: Any = None, region: str | None = None) -> str:
        """The value. The AWS kinds need `session` (a dr.aws.AwsSession) and `region`."""
        if self.in_aws:
            from dr.secret_refs import resolve_secret

            return resolve_secret(self, session, region)
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None and self.where:
                raise ConfigError(f"{self.where}: environment variable {self.env} is not set",
                                  hint=f"export {self.env}=... where dr runs (dr.yaml reads {self.where} "
                                       "from it)")
            if value is None:
                raise ConfigError(f"environment variable {self.env} is not set (it holds a "
                                  "password named in dr.yaml)", hint=f"export {self.env}=...")
            return value
        return self.literal or ""

    def __str__(self) -> str:
        if self.env:
            return f"{{env: {self.env}}}"
        if self.secretsmanager is not None:
            key = f", key: {self.key}" if self.key is not None else ""
            return f"{{secretsmanager: {self.secretsmanager}{key}}}"
        if self.ssm is not None:
            return f"{{ssm: {self.ssm}}}"
        return "<secret>"

    def __repr__(self) -> str:
        return f"Secret({self})"


@dataclass(frozen=True)
class MysqlServer:
    """How to reach a MySQL/MariaDB server."""

    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "root"
    password: Secret | None = None
    socket: str | None = None
    tls: str = "preferred"  # required | preferred | off
    ca_file: str | None = None
    connect_timeout: timedelta = timedelta(seconds=10)


@dataclass(frozen=True)
class MysqlResource:
    name: str
    server: MysqlServer
    databases: tuple[str, ...]
    destination: str  # s3://bucket/prefix/ (DR region) or file:///path
    schedule: Schedule
    retention: RetentionPolicy
    engine: str = "python"  # the pure-Python engine (no client binaries); the only one so far
    key_file: str | None = None  # a local key (dr keygen) instead of KMS
    threads: int = 2
    verify: MysqlServer | None = None  # a scratch server for `dr backup verify`
    verify_every: Schedule | None = None  # verify.every: `dr schedule` verifies the newest backup
    # How long a backup waits for a lock at its start (writers may queue behind it that long)
    lock_timeout: timedelta = timedelta(seconds=2)
MiB, GiB = 1024**2, 1024**3


@dataclass(frozen=True)
class MongoResource:
    """A MongoDB replica set to watch: lag, oplog window, and what losing each region leaves."""

    name: str
    uri: Secret  # mongodb://... (TLS and auth options pass through to pymongo)
    max_lag: timedelta = timedelta(seconds=30)
    min_oplog_window: timedelta = timedelta(hours=24)
    member_regions: tuple[tuple[str, str], ...] = ()  # ("host:port", region) when not tagged
    region_tag: str = "region"
    timeout: timedelta = timedelta(seconds=5)

    def region_map(self) -> dict[str, str]:
        return dict(self.member_regions)


@dataclass(frozen=True)
class StackSettings:
    """The CloudFormation stack relaunched in the DR region by a failover or drill."""

    name: str
    template: Path
    # Template parameter values: a string, or a Secret (env, secretsmanager, ssm) read at launch
    # time in the launch region by dr.secret_refs.resolve_parameters; never write those values down.
    parameters: tuple[tuple[str, str | Secret], ...] = ()
    dr_parameters: tuple[tuple[str, str | Secret], ...] = ()
    snapshot_parameter: str | None = None
    capabilities: tuple[str, ...] = ()

    def parameters_for_dr(self) -> dict[str, str | Secret]:
        """`parameters` overlaid by `dr_parameters` (Secrets unresolved)."""
        return {**dict(self.parameters), **dict(self.dr_parameters)}


@dataclass(frozen=True)
class HealthSettings:
    url: str  # may reference stack outputs: https://{stack.WebsiteURL}/health
    consecutive: int = 3
    timeout: timedelta = timedelta(minutes=10)
    interval: timedelta = timedelta(seconds=10)
    expect_status: int = 200


@dataclass(frozen=True)
class TsigSettings:
    name: str
    secret: Secret
    algorithm: str = "hmac-sha256"


@dataclass(frozen=True)
class DnsSettings:
    provider: str  # route53 | rfc2136
    zone: str
    record: str
    ttl: int = 60
    server: str | None = None  # rfc2136: the primary name server
    port: int = 53
    tsig: TsigSettings | None = None


@dataclass(frozen=True)
class NotifySettings:
    sns_topic: str | None = None


@dataclass(frozen=True)
class Config:
    version: int
    regions: Regions
    aws: AwsSettings
    objectives: Objectives
    kms: KmsSettings
    state: StateSettings
    rds: tuple[RdsResource, ...]
    source: str
    s3: tuple[S3Resource, ...] = ()
    mysql: tuple[MysqlResource, ...] = ()
    mongo: tuple[MongoResource, ...] = ()
    stack: StackSettings | None = None
    health: HealthSettings | None = None
    dns: DnsSettings | None = None
    notify: NotifySettings = NotifySettings()

    def rds_resource(self, name: str) -> RdsResource:
        for resource in self.rds:
            if resource.name == name:
                return resource
        known = ", ".join(r.name for r in self.rds) or "none are configured"
        raise ConfigError(f"no rds resource named {name!r} in {self.source} (known: {known})")

    def resource_names(self) -> dict[str, str]:
        """Every configured resource name -> its kind ("rds", "s3")."""
        names = {r.name: "rds" for r in self.rds}
        names.update({r.name: "s3" for r in self.s3})
        names.update({r.name: "mysql" for r in self.mysql})
        names.update({r.name: "mongo" for r in self.mongo})
        return names


# --- rules ----------------------------------------------------------------------------------------

RESERVED_SECTIONS: tuple[str, ...] = ()
_TOP_KEYS = ("version", "regions", "aws", "objectives", "kms", "state", "rds", "s3", "mysql", "mongo",
             "stack", "health", "dns", "notify")
_DNS_NAME_RE = re.compile(r"([A-Za-z0-9_*]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)+")
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

_REGION_RE = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d+")
_NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,39}")
_RDS_ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,62}")
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_KEY_ID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|mrk-[0-9a-f]{32}")
_ALIAS_RE = re.compile(r"alias/[A-Za-z0-9/_-]+")
_KMS_ARN_RE = re.compile(r"arn:aws[-a-z]*:kms:([a-z0-9-]+):(\d{12}):(key|alias)/(.+)")

_EXPECT_REGION = "expected an AWS region name like us-east-1"
_EXPECT_NAME = ("expected a name of lowercase letters, digits and hyphens (starting with a letter, "
                "at most 40 characters, no '--', not ending in '-')")
_EXPECT_RDS_ID = ("expected an RDS {what} identifier (1-63 letters, digits and hyphens, starting with a "
                  "letter, no '--', not ending in '-')")
_EXPECT_BUCKET = "expected an S3 bucket name (3-63 characters: lowercase letters, digits, dots, hyphens)"
_EXPECT_KEY = "expected a KMS key in the DR region: an alias (alias/dr-backups), a key id (UUID) or a key ARN"


def _ident_ok(value: Any, regex: re.Pattern) -> bool:
    return isinstance(value, str) and bool(regex.fullmatch(value)) and "--" not in value and not value.endswith("-")


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


# --- YAML with line numbers, and the problem collector --------------------------------------------


@dataclass
class _Node:
    """A YAML value and the line it starts on; mappings hold dict[str, _Node], lists list[_Node]."""

    value: Any
    line: int
    key_lines: dict[str, int] = field(default_factory=dict)


class _Checker:
    """Builds the line-numbered tree and collects problems as (line, order, message)."""

    def __init__(self, source: str):
        self.file = Path(source).name or source
        self.problems: list[tuple[int, int, str]] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def add(self, path: str, line: int, text: str) -> None:
        self.problems.append((line, len(self.problems), f"{path}: {text} ({self.file} line {line})"))

    def bad(self, path: str, node: _Node, expected: str) -> None:
        self.add(path, node.line, f"{expected}, got {_show(node.value)}")

    def raise_if_any(self) -> None:
        if self.problems:
            lines = [message for _, _, message in sorted(self.problems)]
            error = ConfigError("\n".join(lines))
            error.problems = lines
            raise error

    def load(self, text: str) -> _Node:
        """The document's top-level mapping, or a ConfigError for empty/unparseable/non-mapping files."""
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as e:
            raise ConfigError(self._syntax_message(e)) from None
        except yaml.YAMLError as e:
            raise ConfigError(f"YAML syntax error: {e} ({self.file})") from None
        if root is None:
            raise ConfigError(f"{self.file} is empty: expected a mapping with version, regions, objectives, kms "
                              "and state; run `dr init` to write a starter dr.yaml")
        tree = self.tree(root, "")
        if not isinstance(tree.value, dict):
            self.bad("(top level)", tree, "expected a mapping of settings (version, regions, objectives, ...)")
            self.raise_if_any()
        return tree

    def _syntax_message(self, e: yaml.MarkedYAMLError) -> str:
        mark = e.problem_mark or e.context_mark
        what = e.problem or "invalid YAML"
        if e.context:
            what = f"{what} {e.context}"
        if "alias" in what:
            what += "; quote values that start with '*', like schedule: \"*/15 * * * *\""
        where = f" ({self.file} line {mark.line + 1} column {mark.column + 1})" if mark else f" ({self.file})"
        return f"YAML syntax error: {what}{where}"

    def tree(self, ynode: yaml.Node, path: str, depth: int = 0) -> _Node:
        line = ynode.start_mark.line + 1
        if depth > 50:
            self.add(path, line, "nested too deeply (a recursive YAML alias?)")
            return _Node(None, line)
        if isinstance(ynode, yaml.MappingNode):
            return self._mapping_tree(ynode, path, line, depth)
        if isinstance(ynode, yaml.SequenceNode):
            return _Node([self.tree(n, f"{path}[{i}]", depth + 1) for i, n in enumerate(ynode.value)], line)
        try:
            return _Node(self._constructor.construct_object(ynode, deep=True), line)
        except yaml.YAMLError as e:
            self.add(path, line, f"cannot read this value ({getattr(e, 'problem', None) or e})")
            return _Node(None, line)

    def _mapping_tree(self, ynode: yaml.MappingNode, path: str, line: int, depth: int) -> _Node:
        try:
            self._constructor.flatten_mapping(ynode)  # YAML merge keys (<<: *base)
        except yaml.YAMLError as e:
            self.add(path, line, f"cannot merge keys here ({getattr(e, 'problem', None) or e})")
        node = _Node({}, line)
        for knode, vnode in ynode.value:
            key_line = knode.start_mark.line + 1
            if not isinstance(knode, yaml.ScalarNode):
                self.add(path or "(top level)", key_line, "expected a plain key name, got a mapping or list as key")
                continue
            key = knode.value
            if key in node.value:
                self.add(_join(path, key), key_line, f"duplicate key (already set on line {node.key_lines[key]})")
                continue
            node.value[key] = self.tree(vnode, _join(path, key), depth + 1)
            node.key_lines[key] = key_line
        return node

    # -- shapes --

    def mapping(self, path: str, node: _Node, allowed: tuple[str, ...], expected: str) -> dict[str, _Node] | None:
        """node's mapping (unknown keys reported with a did-you-mean), or None after a type error."""
        if not isinstance(node.value, dict):
            self.bad(path, node, expected)
            return None
        for key, key_line in node.key_lines.items():
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(allowed)}"
                self.add(_join(path, key), key_line, f"unknown key; {hint}")
        return node.value

    def required(self, path: str, node: _Node, key: str) -> _Node | None:
        """The child `key` of mapping `node`, or None after reporting it missing (at node's line)."""
        child = node.value.get(key)
        if child is None:
            self.add(_join(path, key), node.line, "required key is missing")
        return child

    def section(self, top: _Node, key: str, allowed: tuple[str, ...], expected: str,
                required: bool = True) -> tuple[_Node | None, dict[str, _Node] | None]:
        """A top-level mapping section: (node, its mapping) or (None, None) if absent/null/wrong."""
        node = self.required("", top, key) if required else top.value.get(key)
        if node is None or (node.value is None and not required):
            return None, None
        return node, self.mapping(key, node, allowed, expected)


# --- sections -------------------------------------------------------------------------------------


def _version(ck: _Checker, top: _Node) -> int | None:
    node = ck.required("", top, "version")
    if node is not None and (type(node.value) is not int or node.value != 1):
        ck.bad("version", node, "expected 1 (the only config version this dr understands)")
    return 1


def _regions(ck: _Checker, top: _Node) -> Regions | None:
    node, items = ck.section(top, "regions", ("primary", "dr"),
                             "expected a mapping like {primary: us-east-1, dr: us-west-2}")
    if items is None:
        return None
    found = {}
    partitions = {}
    for key in ("primary", "dr"):
        child = ck.required("regions", node, key)
        if child is not None and not (isinstance(child.value, str) and _REGION_RE.fullmatch(child.value)):
            ck.bad(f"regions.{key}", child, _EXPECT_REGION)
        elif child is not None and child.value not in known_regions():
            close = difflib.get_close_matches(child.value, sorted(known_regions()), n=1)
            ck.add(f"regions.{key}", child.line, f"{child.value!r} is not an AWS region"
                   + (f"; did you mean {close[0]!r}?" if close else " (botocore's list of regions has no such "
                      "name: check the spelling, or upgrade boto3 for a region newer than it)"))
        elif child is not None:
            found[key] = child.value
            partitions[key] = known_regions()[child.value]
    if len(set(partitions.values())) > 1:
        ck.bad("regions.dr", items["dr"], f"must be in the same AWS partition as regions.primary "
                                          f"({partitions['primary']}, not {partitions['dr']}): copies cannot "
                                          "cross partitions")
    if found.get("primary") and found.get("primary") == found.get("dr"):
        ck.bad("regions.dr", items["dr"], "must differ from regions.primary (copies must survive the loss "
                                          "of the primary region)")
    return Regions(found["primary"], found["dr"]) if len(found) == 2 else None


@functools.lru_cache(maxsize=1)
def known_regions() -> dict[str, str]:
    """Every region botocore knows (it ships the partitions' endpoint data) -> its partition."""
    from botocore.loaders import create_loader

    data = create_loader().load_data("endpoints")
    return {region: p["partition"] for p in data["partitions"] for region in p.get("regions", {})}


def _aws(ck: _Checker, top: _Node) -> AwsSettings:
    _, items = ck.section(top, "aws", ("profile", "endpoint_url"),
                          "expected a mapping like {profile: null, endpoint_url: null}", required=False)
    items = items or {}
    profile = items.get("profile")
    if profile is not None and profile.value is not None and not (isinstance(profile.value, str) and profile.value):
        ck.bad("aws.profile", profile, "expected an AWS profile name, or null for the default credentials")
    url = items.get("endpoint_url")
    if url is not None and url.value is not None and not _is_http_url(url.value):
        ck.bad("aws.endpoint_url", url, "expected an http(s) URL like http://127.0.0.1:5000, or null for real AWS")
    return AwsSettings(profile=profile and profile.value, endpoint_url=url and url.value)


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str) or any(c.isspace() for c in value):
        return False
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _duration(ck: _Checker, path: str, node: _Node | None) -> timedelta | None:
    if node is None:
        return None
    try:
        return parse_duration(node.value)
    except ValueError as e:
        ck.add(path, node.line, str(e))
        return None


def _objectives(ck: _Checker, top: _Node) -> Objectives | None:
    node, items = ck.section(top, "objectives", ("rpo", "rto"), "expected a mapping like {rpo: 1h, rto: 30m}")
    if items is None:
        return None
    rpo = _duration(ck, "objectives.rpo", ck.required("objectives", node, "rpo"))
    rto = _duration(ck, "objectives.rto", ck.required("objectives", node, "rto"))
    return Objectives(rpo, rto) if rpo and rto else None


def _kms(ck: _Checker, top: _Node, dr_region: str | None) -> KmsSettings | None:
    node, items = ck.section(top, "kms", ("dr_key",), "expected a mapping like {dr_key: alias/dr-backups}")
    if items is None:
        return None
    key = ck.required("kms", node, "dr_key")
    if key is None:
        return None
    problem = _kms_key_problem(key.value, dr_region)
    if problem:
        ck.bad("kms.dr_key", key, problem)
        return None
    return KmsSettings(key.value)


def _kms_key_problem(value: Any, dr_region: str | None) -> str | None:
    """Why `value` cannot encrypt DR copies, or None: it must be a customer managed key in the DR region."""
    arn = _KMS_ARN_RE.fullmatch(value) if isinstance(value, str) else None
    alias = f"{arn.group(3)}/{arn.group(4)}" if arn else value
    if isinstance(alias, str) and alias.startswith("alias/aws/"):
        return ("an AWS managed key cannot be used for cross-region or cross-account copies; create a customer "
                f"managed key in the DR region ({dr_region or 'regions.dr'}) and give its alias or ARN")
    if arn and dr_region and arn.group(1) != dr_region:
        return f"the key must be in the DR region {dr_region}: every copy is encrypted with a key in the DR region"
    if arn or (isinstance(value, str) and (_ALIAS_RE.fullmatch(value) or _KEY_ID_RE.fullmatch(value))):
        return None
    return _EXPECT_KEY


def _state(ck: _Checker, top: _Node, base_dir: Path) -> StateSettings | None:
    node, items = ck.section(top, "state", ("bucket", "prefix", "path"),
                             "expected a mapping like {bucket: acme-dr-state} or {path: ./.dr-state}")
    if items is None:
        return None
    bucket, prefix, path = (items.get(k) for k in ("bucket", "prefix", "path"))
    if bucket is not None and path is not None:
        ck.add("state", node.line, "set exactly one of 'bucket' (an S3 bucket in the DR region) or 'path' "
                                   "(a local directory), not both")
        return None
    if bucket is None and path is None:
        ck.add("state", node.line, "required key is missing: set 'bucket' (an S3 bucket in the DR region) "
                                   "or 'path' (a local directory)")
        return None
    if prefix is not None and path is not None:
        ck.add("state.prefix", prefix.line, "only applies with 'bucket'; remove it when using 'path'")
        return None
    if prefix is not None and not isinstance(prefix.value, (str, type(None))):
        ck.bad("state.prefix", prefix, "expected a key prefix string like dr/")
        return None
    if path is not None:
        if not (isinstance(path.value, str) and path.value.strip()):
            ck.bad("state.path", path, "expected a directory path like ./.dr-state")
            return None
        return StateSettings(path=Path(os.path.abspath(base_dir / Path(path.value).expanduser())))
    value = bucket.value
    if not (isinstance(value, str) and _BUCKET_RE.fullmatch(value) and ".." not in value):
        ck.bad("state.bucket", bucket, _EXPECT_BUCKET)
        return None
    return StateSettings(bucket=value, prefix=(prefix.value if prefix else None) or "")


def _resource_name(ck: _Checker, path: str, node: _Node, first_use: dict[str, str]) -> _Node | None:
    """The `name` of a resource entry: required, well formed, unique across every section."""
    name = ck.required(path, node, "name")
    if name is not None and not _ident_ok(name.value, _NAME_RE):
        ck.bad(f"{path}.name", name, _EXPECT_NAME)
    elif name is not None and name.value in first_use:
        ck.bad(f"{path}.name", name, f"duplicate name: {first_use[name.value]} already uses it; names must be unique")
    elif name is not None:
        first_use[name.value] = path
    return name


def _resource_list(ck: _Checker, top: _Node, key: str, expected: str, parse_item,
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


def _rds_item(ck: _Checker, path: str, node: _Node, first_use: dict[str, str]) -> RdsResource | None:
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


def _schedule(ck: _Checker, path: str, node: _Node | None,
              default: str = DEFAULT_SCHEDULE_TEXT) -> Schedule | None:
    if node is None or node.value is None:
        return parse_schedule(default)
    try:
        return parse_schedule(node.value)
    except ValueError as e:
        ck.add(path, node.line, str(e))
        return None


def _retention(ck: _Checker, path: str, node: _Node | None) -> RetentionPolicy | None:
    if node is None or node.value is None:
        return DEFAULT_RETENTION
    items = ck.mapping(path, node, _RETENTION_KEYS, "expected a mapping like {last: 3, daily: 7, weekly: 4}")
    if items is None:
        return None
    counts, ok = {}, True
    for key, child in items.items():
        if key in _RETENTION_KEYS and not _is_whole(child.value):
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


def _s3_item(ck: _Checker, path: str, node: _Node, first_use: dict[str, str]) -> S3Resource | None:
    items = ck.mapping(path, node, _S3_KEYS,
                       "expected a mapping like {name: assets, source: acme-assets, destination: acme-assets-dr}")
    if items is None:
        return None
    before = len(ck.problems)
    name = _resource_name(ck, path, node, first_use)
    buckets = {}
    for key in ("source", "destination"):
        child = ck.required(path, node, key)
        if child is not None and not (isinstance(child.value, str) and _BUCKET_RE.fullmatch(child.value)
                                      and ".." not in child.value):
            ck.bad(f"{path}.{key}", child, _EXPECT_BUCKET)
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
    grace = _duration(ck, f"{path}.delete_grace", items.get("delete_grace"))
    concurrency = items.get("concurrency")
    if concurrency is not None and not (_is_whole(concurrency.value) and 1 <= concurrency.value <= 64):
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


def _secret(ck: _Checker, path: str, node: _Node | None) -> Secret | None:
    if node is None or node.value is None:
        return None
    if isinstance(node.value, str):
        return Secret(literal=node.value)
    if isinstance(node.value, dict) and set(node.value) == {"env"} and isinstance(node.value["env"].value, str) \
            and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", node.value["env"].value):
        return Secret(env=node.value["env"].value)
    ck.add(path, node.line, "expected {env: VARIABLE_NAME} (or, discouraged, the password itself)")
    return None


def _server(ck: _Checker, path: str, node: _Node, items: dict[str, _Node], base_dir: Path) -> MysqlServer | None:
    before = len(ck.problems)
    host = items.get("host")
    if host is not None and not (isinstance(host.value, str) and host.value.strip()):
        ck.bad(f"{path}.host", host, "expected a host name or IP address")
    port = items.get("port")
    if port is not None and not (_is_whole(port.value) and 1 <= port.value <= 65535):
        ck.bad(f"{path}.port", port, "expected a port number from 1 to 65535")
    user = items.get("user")
    if user is not None and not (isinstance(user.value, str) and user.value):
        ck.bad(f"{path}.user", user, "expected a MySQL user name")
    password = _secret(ck, f"{path}.password", items.get("password"))
    tls = items.get("tls")
    if tls is not None and tls.value is False:  # YAML 1.1 reads a bare `off` as false
        tls = _Node("off", tls.line)
    if tls is not None and tls.value not in ("required", "preferred", "off"):
        ck.bad(f"{path}.tls", tls, "expected required (fail unless TLS), preferred or off")
    ca = items.get("ca_file")
    ca_path = None
    if ca is not None and ca.value is not None:
        ca_path = str((base_dir / str(ca.value)).absolute())
        if not Path(ca_path).is_file():
            ck.bad(f"{path}.ca_file", ca, "expected the path of a CA certificate file that exists")
    sock = items.get("socket")
    timeout = _duration(ck, f"{path}.connect_timeout", items.get("connect_timeout"))
    if len(ck.problems) > before:
        return None
    return MysqlServer(
        host=host.value if host is not None else "127.0.0.1",
        port=port.value if port is not None else 3306,
        user=user.value if user is not None else "root", password=password,
        socket=sock.value if sock is not None else None,
        tls=tls.value if tls is not None else "preferred", ca_file=ca_path,
        connect_timeout=timeout or timedelta(seconds=10))


def _mysql_item(ck: _Checker, path: str, node: _Node, first_use: dict[str, str],
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
                       f"{_show(d.value)} is not a MySQL database name: {problem}")
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
    if threads is not None and not (_is_whole(threads.value) and 1 <= threads.value <= 16):
        ck.bad(f"{path}.threads", threads, "expected a whole number from 1 to 16")
    lock_timeout = _duration(ck, f"{path}.lock_timeout", items.get("lock_timeout"))
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


def _verify_every(ck: _Checker, path: str, node: _Node | None) -> Schedule | None:
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


def _mongo_item(ck: _Checker, path: str, node: _Node, first_use: dict[str, str]) -> MongoResource | None:
    items = ck.mapping(path, node, _MONGO_KEYS,
                       "expected a mapping like {name: app-rs, uri: {env: DR_MONGO_URI}, max_lag: 30s}")
    if items is None:
        return None
    before = len(ck.problems)
    name = _resource_name(ck, path, node, first_use)
    uri_node = ck.required(path, node, "uri")
    uri = _secret(ck, f"{path}.uri", uri_node)
    if uri is not None and uri.literal is not None and not uri.literal.startswith(("mongodb://", "mongodb+srv://")):
        ck.add(f"{path}.uri", uri_node.line, "expected a mongodb:// or mongodb+srv:// URI, or {env: NAME}")
    max_lag = _duration(ck, f"{path}.max_lag", items.get("max_lag"))
    window = _duration(ck, f"{path}.min_oplog_window", items.get("min_oplog_window"))
    timeout = _duration(ck, f"{path}.timeout", items.get("timeout"))
    regions: list[tuple[str, str]] = []
    mr = items.get("member_regions")
    if mr is not None and mr.value is not None:
        if not isinstance(mr.value, dict):
            ck.bad(f"{path}.member_regions", mr, 'expected a mapping like {"db1.example.com:27017": us-east-1}')
        else:
            for member, region in mr.value.items():
                if not re.fullmatch(r"[^\s:]+:\d{1,5}", member):
                    ck.add(f"{path}.member_regions.{member}", region.line, "expected host:port as the key")
                elif not (isinstance(region.value, str) and _REGION_RE.fullmatch(region.value)):
                    ck.bad(f"{path}.member_regions.{member}", region, _EXPECT_REGION)
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


_REF_KINDS = ("env", "secretsmanager", "ssm")
_REF_KEYS = _REF_KINDS + ("key",)
_EXPECT_PARAM = ("expected a plain value (string, number or true/false) or a reference: {env: NAME}, "
                 "{secretsmanager: NAME} (with key: JSONKEY for one key of a JSON secret) or {ssm: /NAME}")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_ID_RE = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}|arn:aws[-a-z]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:\S+")
_SSM_NAME_RE = re.compile(r"/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*(:[A-Za-z0-9_.-]+)?"
                          r"|arn:aws[-a-z]*:ssm:[a-z0-9-]+:\d{12}:parameter/\S+")


def _param_value(ck: _Checker, path: str, node: _Node) -> str | Secret | None:
    """A template parameter value: a plain scalar (as a string), or a reference Secret."""
    if node.value is None or isinstance(node.value, list):
        ck.bad(path, node, _EXPECT_PARAM)
        return None
    if not isinstance(node.value, dict):
        return str(node.value).lower() if isinstance(node.value, bool) else str(node.value)
    before = len(ck.problems)
    items = ck.mapping(path, node, _REF_KEYS, _EXPECT_PARAM)
    kinds = [k for k in _REF_KINDS if k in items]
    if len(kinds) > 1:
        ck.add(path, node.line, f"set exactly one of {', '.join(kinds)}, not both")
    elif not kinds and len(ck.problems) == before:
        ck.bad(path, node, _EXPECT_PARAM)
    found = {}
    for kind, regex, expected in (
            ("env", _ENV_NAME_RE, "expected an environment variable name like DR_DB_PASSWORD"),
            ("secretsmanager", _SECRET_ID_RE, "expected a Secrets Manager secret name (like prod/db) or ARN"),
            ("ssm", _SSM_NAME_RE, "expected an SSM parameter name (like /prod/db/password) or ARN")):
        child = items.get(kind)
        if child is not None and not (isinstance(child.value, str) and regex.fullmatch(child.value)):
            ck.bad(f"{path}.{kind}", child, expected)
        elif child is not None:
            found[kind] = child.value
    key = items.get("key")
    if key is not None and kinds and "secretsmanager" not in items:
        ck.add(f"{path}.key", key.line, "only applies with secretsmanager (one key of a JSON secret)")
    elif key is not None and not (isinstance(key.value, str) and key.value):
        ck.bad(f"{path}.key", key, "expected the name of a key in the secret's JSON, like password")
    if len(ck.problems) > before:
        return None
    return Secret(**found, key=key.value if key is not None else None, where=path)


def _parameter_map(ck: _Checker, path: str, node: _Node | None) -> tuple[tuple[str, str | Secret], ...]:
    if node is None or node.value is None:
        return ()
    if not isinstance(node.value, dict):
        ck.bad(path, node, "expected a mapping of names to values, like {InstanceType: t3.small}")
        return ()
    out = []
    for key, child in node.value.items():
        value = _param_value(ck, f"{path}.{key}", child)
        if value is not None:
            out.append((key, value))
    return tuple(out)


def _stack(ck: _Checker, top: _Node, base_dir: Path) -> StackSettings | None:
    node, items = ck.section(top, "stack", ("name", "template", "parameters", "dr_parameters",
                                            "snapshot_parameter", "capabilities"),
                             "expected a mapping like {name: acme-web, template: templates/lamp.yaml}",
                             required=False)
    if items is None:
        return None
    before = len(ck.problems)
    name = ck.required("stack", node, "name")
    if name is not None and not (isinstance(name.value, str)
                                 and re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,127}", name.value)):
        ck.bad("stack.name", name, "expected a CloudFormation stack name (letters, digits, hyphens)")
    template = ck.required("stack", node, "template")
    template_path = None
    if template is not None:
        template_path = (base_dir / str(template.value)).absolute()
        if not template_path.is_file():
            ck.bad("stack.template", template, f"expected a template file; {template_path} does not exist")
    snap = items.get("snapshot_parameter")
    if snap is not None and not (isinstance(snap.value, str) and snap.value):
        ck.bad("stack.snapshot_parameter", snap, "expected the name of a template parameter")
    caps = items.get("capabilities")
    allowed_caps = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND")
    if caps is not None and not (isinstance(caps.value, list) and all(c.value in allowed_caps for c in caps.value)):
        ck.add("stack.capabilities", caps.line, f"expected a list of {', '.join(allowed_caps)}")
    params = _parameter_map(ck, "stack.parameters", items.get("parameters"))
    dr_params = _parameter_map(ck, "stack.dr_parameters", items.get("dr_parameters"))
    if len(ck.problems) > before:
        return None
    return StackSettings(name=name.value, template=template_path, parameters=params, dr_parameters=dr_params,
                         snapshot_parameter=snap.value if snap is not None else None,
                         capabilities=tuple(c.value for c in caps.value) if caps is not None else ())


def _health(ck: _Checker, top: _Node) -> HealthSettings | None:
    node, items = ck.section(top, "health", ("url", "consecutive", "timeout", "interval", "expect_status"),
                             'expected a mapping like {url: "https://{stack.WebsiteURL}/health"}',
                             required=False)
    if items is None:
        return None
    before = len(ck.problems)
    url = ck.required("health", node, "url")
    if url is not None and not (isinstance(url.value, str) and re.match(r"https?://|\{stack\.", url.value)):
        ck.bad("health.url", url, "expected an http(s) URL, or one that starts with a stack output that is a "
                                  "URL itself: {stack.WebsiteURL}/health")
    consecutive = items.get("consecutive")
    if consecutive is not None and not (_is_whole(consecutive.value) and 1 <= consecutive.value <= 100):
        ck.bad("health.consecutive", consecutive, "expected a whole number from 1 to 100")
    status = items.get("expect_status")
    if status is not None and not (_is_whole(status.value) and 100 <= status.value <= 599):
        ck.bad("health.expect_status", status, "expected an HTTP status code")
    timeout = _duration(ck, "health.timeout", items.get("timeout"))
    interval = _duration(ck, "health.interval", items.get("interval"))
    if len(ck.problems) > before:
        return None
    return HealthSettings(url=url.value, consecutive=consecutive.value if consecutive is not None else 3,
                          timeout=timeout or timedelta(minutes=10), interval=interval or timedelta(seconds=10),
                          expect_status=status.value if status is not None else 200)


def _dns(ck: _Checker, top: _Node) -> DnsSettings | None:
    node, items = ck.section(top, "dns", ("provider", "zone", "record", "ttl", "server", "port", "tsig"),
                             "expected a mapping like {provider: route53, zone: example.com., "
                             "record: www.example.com.}", required=False)
    if items is None:
        return None
    before = len(ck.problems)
    provider = ck.required("dns", node, "provider")
    if provider is not None and provider.value not in ("route53", "rfc2136"):
        ck.bad("dns.provider", provider, "expected route53 or rfc2136 (any DNS server or GSLB taking "
                                         "TSIG-signed dynamic updates)")
    names = {}
    for key in ("zone", "record"):
        child = ck.required("dns", node, key)
        if child is not None and not (isinstance(child.value, str) and _DNS_NAME_RE.fullmatch(child.value)):
            ck.bad(f"dns.{key}", child, "expected a fully qualified name ending with a dot, like example.com.")
        elif child is not None:
            names[key] = child.value
    if len(names) == 2 and not (names["record"] == names["zone"] or names["record"].endswith("." + names["zone"])):
        ck.bad("dns.record", items["record"], f"must be inside the zone {names['zone']}")
    ttl = items.get("ttl")
    if ttl is not None and not (_is_whole(ttl.value) and 1 <= ttl.value <= 86400):
        ck.bad("dns.ttl", ttl, "expected seconds from 1 to 86400 (keep it low, e.g. 60, for fast failover)")
    port = items.get("port")
    if port is not None and not (_is_whole(port.value) and 1 <= port.value <= 65535):
        ck.bad("dns.port", port, "expected a port number from 1 to 65535")
    server = items.get("server")
    tsig = None
    is_rfc = provider is not None and provider.value == "rfc2136"
    if is_rfc and server is None:
        ck.add("dns.server", node.line, "required key is missing: the name server that takes the updates")
    if items.get("tsig") is not None:
        titems = ck.mapping("dns.tsig", items["tsig"], ("name", "algorithm", "secret"),
                            "expected a mapping like {name: dr-key, algorithm: hmac-sha256, secret: {env: DR_TSIG}}")
        if titems is not None:
            tname = ck.required("dns.tsig", items["tsig"], "name")
            secret = _secret(ck, "dns.tsig.secret", ck.required("dns.tsig", items["tsig"], "secret"))
            algo = titems.get("algorithm")
            if algo is not None and algo.value not in ("hmac-sha256", "hmac-sha512", "hmac-sha384", "hmac-sha224",
                                                       "hmac-sha1", "hmac-md5"):
                ck.bad("dns.tsig.algorithm", algo, "expected hmac-sha256 (or another HMAC TSIG algorithm)")
            if tname is not None and secret is not None:
                tsig = TsigSettings(name=str(tname.value), secret=secret,
                                    algorithm=algo.value if algo is not None else "hmac-sha256")
    elif is_rfc:
        ck.add("dns.tsig", node.line, "required key is missing: dynamic updates must be signed "
                                      "({name, algorithm, secret: {env: NAME}})")
    if len(ck.problems) > before:
        return None
    return DnsSettings(provider=provider.value, zone=names["zone"], record=names["record"],
                       ttl=ttl.value if ttl is not None else 60, server=server.value if server is not None else None,
                       port=port.value if port is not None else 53, tsig=tsig)


def _notify(ck: _Checker, top: _Node) -> NotifySettings | None:
    _, items = ck.section(top, "notify", ("sns_topic",), "expected a mapping like {sns_topic: arn:aws:sns:...}",
                          required=False)
    if items is None:
        return None
    topic = items.get("sns_topic")
    if topic is not None and topic.value is not None and not (
            isinstance(topic.value, str) and re.fullmatch(r"arn:aws[-a-z]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+",
                                                          topic.value)):
        ck.bad("notify.sns_topic", topic, "expected an SNS topic ARN, or null")
        return None
    return NotifySettings(sns_topic=topic.value if topic is not None else None)


# --- entry points ---------------------------------------------------------------------------------


def parse_config(text: str, source: str = "dr.yaml", base_dir: Path | None = None) -> Config:
    """Validate dr.yaml text into a Config; raises ConfigError listing every problem found."""
    ck = _Checker(source)
    top = ck.load(text)
    ck.mapping("", top, _TOP_KEYS + RESERVED_SECTIONS, "expected a mapping")
    for key in RESERVED_SECTIONS:
        node = top.value.get(key)
        if node is not None and node.value is not None:
            ck.add(key, top.key_lines[key], "not supported by this version of dr yet; remove it "
                                            "(it will be read by a later version)")
    version = _version(ck, top)
    regions = _regions(ck, top)
    aws = _aws(ck, top)
    objectives = _objectives(ck, top)
    kms = _kms(ck, top, regions.dr if regions else None)
    state = _state(ck, top, Path(base_dir) if base_dir is not None else Path.cwd())
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    names: dict[str, str] = {}  # resource name -> where it was first used, across sections
    rds = _resource_list(ck, top, "rds", "expected a list of databases, each a mapping with name "
                         "and instance or cluster", _rds_item, names)
    s3 = _resource_list(ck, top, "s3", "expected a list of buckets, each a mapping with name, "
                        "source and destination", _s3_item, names)
    mysql = _resource_list(ck, top, "mysql", "expected a list of servers, each a mapping with "
                           "name, host, databases and destination",
                           lambda c, p, n, f: _mysql_item(c, p, n, f, base), names)
    mongo = _resource_list(ck, top, "mongo", "expected a list of replica sets, each a mapping "
                           "with name and uri", _mongo_item, names)
    stack, health, dns, notify = _stack(ck, top, base), _health(ck, top), _dns(ck, top), _notify(ck, top)
    ck.raise_if_any()
    return Config(version=version, regions=regions, aws=aws, objectives=objectives, kms=kms, state=state,
                  rds=rds, source=source, s3=s3, mysql=mysql, mongo=mongo, stack=stack, health=health,
                  dns=dns, notify=notify or NotifySettings())


def load_config(path: str | Path) -> Config:
    """Read and validate a dr.yaml; relative state paths resolve against the file's directory."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} not found: run `dr init` to write a starter dr.yaml, "
                          "or pass --config PATH")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from None
    return parse_config(text, source=str(path), base_dir=path.absolute().parent)


def warnings(config: Config) -> list[str]:
    """Advisory findings: the config is valid but will not do what the objectives promise."""
    found = []
    for i, resource in enumerate(config.rds):
        if resource.schedule.nominal_interval() > config.objectives.rpo:
            found.append(f"rds[{i}] ({resource.name}): schedule {resource.schedule.text} copies less often "
                         f"than the RPO objective {format_duration(config.objectives.rpo)}: the RPO cannot be met")
    for i, m in enumerate(config.mysql):
        if m.schedule.nominal_interval() > config.objectives.rpo:
            found.append(f"mysql[{i}] ({m.name}): schedule {m.schedule.text} backs up less often "
                         f"than the RPO objective {format_duration(config.objectives.rpo)}: the RPO cannot be met")
        for server, where in ((m.server, f"mysql[{i}].password"), (m.verify, f"mysql[{i}].verify.password")):
            if server is not None and server.password is not None and server.password.env is None:
                found.append(f"{where}: the password is written in dr.yaml; use {{env: NAME}} instead")
        if m.server.tls == "off":
            found.append(f"mysql[{i}] ({m.name}): tls is off: the dump crosses the network in clear text")
    for i, m in enumerate(config.mongo):
        if m.uri.env is None and "@" in (m.uri.literal or ""):
            found.append(f"mongo[{i}].uri: credentials are written in dr.yaml; use {{env: NAME}} instead")
    if config.dns and config.dns.tsig and config.dns.tsig.secret.env is None:
        found.append("dns.tsig.secret: the TSIG secret is written in dr.yaml; use {env: NAME} instead")
    for i, bucket in enumerate(config.s3):
        if bucket.schedule.nominal_interval() > config.objectives.rpo:
            found.append(f"s3[{i}] ({bucket.name}): schedule {bucket.schedule.text} copies less often "
                         f"than the RPO objective {format_duration(config.objectives.rpo)}: the RPO cannot be met")
    if config.stack is not None:
        for section, pairs in (("parameters", config.stack.parameters),
                               ("dr_parameters", config.stack.dr_parameters)):
            for name, value in pairs:
                if isinstance(value, str) and looks_secret(name, value):
                    found.append(f"stack.{section}.{name}: written in dr.yaml; use {{env: NAME}}, "
                                 "{secretsmanager: NAME} or {ssm: NAME}")
    return found


_SECRET_NAME_RE = re.compile(r"pass(word|wd|phrase)|secret|token|api_?key|private_?key|credential|access_?key",
                             re.IGNORECASE)
_NOT_A_SECRET_RE = re.compile(r"(Arn|ARN|Name|Id|ID|_arn|_name|_id)$")  # DBSecretArn: where it is, not it


def looks_secret(name: str, value: str = "x") -> bool:
    """Does a template parameter named `name`, set to `value`, look like it holds a secret?
    (An empty value or an ARN does not: it says nothing or only where the secret is.)"""
    return (bool(_SECRET_NAME_RE.search(name)) and not _NOT_A_SECRET_RE.search(name)
            and bool(value) and not value.startswith("arn:"))


STARTER_CONFIG = """\
# dr.yaml: what dr protects, where the copies go, and how fresh they must be.
# Check it with `dr validate`. Durations: 30s, 15m, 1h, 7d (or 1h30m).
# Schedules: "every <duration>" or a five-field cron in UTC, quoted: "0 */6 * * *".

version: 1                    # config format version; 1 is the only one so far

regions:
  primary: us-east-1          # where production runs today
  dr: us-west-2               # where copies are kept and where failover lands

aws:
  profile: null               # AWS profile from ~/.aws/config; null uses the default credential chain
  endpoint_url: null          # a local AWS simulation (the URL `dr sandbox` prints); null for real AWS

objectives:
  rpo: 1h                     # recovery point objective: the most data you can afford to lose
  rto: 30m                    # recovery time objective: the longest you can afford to be down

kms:
  dr_key: alias/dr-backups    # customer managed KMS key IN THE DR REGION that encrypts every copy

state:
  path: ./.dr-state           # run records and journals in a local directory (relative to this file)
  # bucket: acme-dr-state     # or: an S3 bucket in the DR region (use instead of path in production)
  # prefix: dr/               # optional key prefix inside that bucket

rds:
  - name: app-db              # your short name for it: dr backup run --name app-db
    instance: acme-prod-db    # the RDS DB instance identifier in the primary region
    schedule: every 1h        # how often to snapshot it and copy the snapshot to the DR region
    retention:                # copies kept in each region (the newest is always kept)
      last: 3                 # the newest 3
      hourly: 24              # plus one per hour for 24 hours
      daily: 7                # plus one per day for 7 days
      weekly: 4               # plus one per week for 4 weeks
      monthly: 12             # plus one per month for 12 months
  # - name: orders-db
  #   cluster: acme-aurora    # an Aurora DB cluster identifier, instead of instance
  #   schedule: "0 */6 * * *" # cron, UTC: every 6 hours on the hour
  #   retention: {daily: 7, weekly: 4}

mysql:                        # self-managed MySQL/MariaDB: dumped, compressed, encrypted here, sent off-site
  # - name: office-lamp
  #   host: 10.0.0.5
  #   port: 3306
  #   user: backup
  #   password: {env: DR_MYSQL_PASSWORD}   # never write the password itself here
  #   databases: [app]
  #   destination: "s3://acme-dr-backups/mysql/"  # a bucket in the DR region, or file:///var/backups/dr
  #   tls: required                # required | preferred | off: the dump may cross the Internet
  #   schedule: every 1h
  #   retention: {daily: 7}
  #   verify: {host: 127.0.0.1, port: 3307, user: root, password: {env: DR_VERIFY_PASSWORD}, every: 1d}
  #                                # a scratch server: `dr schedule` restores the newest backup there daily

mongo:                        # MongoDB replica sets spread across regions: watched, not copied
  # - name: app-rs
  #   uri: {env: DR_MONGO_URI}     # mongodb://user:pass@db1:27017,db2:27017/?replicaSet=rs0
  #   max_lag: 30s                 # a secondary further behind than this is a finding
  #   min_oplog_window: 24h        # a member whose oplog covers less than this is a finding
  #   member_regions: {"db1.example.com:27017": us-east-1}  # when members carry no `region` tag

s3:                           # buckets copied server-side, incrementally, to a bucket in the DR region
  # - name: assets
  #   source: acme-assets          # bucket in the primary region
  #   destination: acme-assets-dr  # bucket in the DR region: versioning and default encryption on
  #   prefix: ""                   # only keys under this prefix ("" for the whole bucket)
  #   schedule: every 15m
  #   delete: keep                 # keep: never delete there; mirror: delete once the source is gone for delete_grace
  #   delete_grace: 24h
"""
