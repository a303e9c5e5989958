"""The Config model: frozen dataclasses, one per dr.yaml section or resource (no parsing here)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from dr.config.durations import Schedule, parse_schedule
from dr.errors import ConfigError


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
