"""dr.yaml → a frozen, typed Config; every problem names its file, line, key and what was expected.

The face of the config package: everything a caller needs is importable from `dr.config`.
  model.py               the frozen dataclasses (Config and one per section or resource)
  sections_aws.py        version, regions, aws, objectives, kms, state, notify
  sections_data.py       what dr protects: rds, s3, mysql, mongo
  sections_failover.py   stack (and its parameter references), health, dns
  checks.py              value checks the sections share (durations, secrets, regions, buckets)
  durations.py           durations and schedules (`every <duration>`, five-field cron)
  advice.py              advice on a valid config (schedules slower than the RPO, written secrets)
  from_terraform.py      a dr.yaml filled from `terraform output -json`
  starter.yaml           the commented starter config `dr init` writes

parse_config collects all problems before raising one ConfigError with one line per problem, in
file order, each shaped `<file>:<line>: <key path>: <what is expected>, got <value>` (the one
format of dr.yamlnodes, shared with runbooks).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from dr.config.advice import advice, looks_secret
from dr.config.durations import (
    DURATION_FORMS,
    CronSpec,
    Schedule,
    format_duration,
    parse_duration,
    parse_schedule,
)
from dr.config.model import (
    DEFAULT_RETENTION,
    DEFAULT_S3_SCHEDULE_TEXT,
    DEFAULT_SCHEDULE_TEXT,
    AwsSettings,
    Config,
    DnsSettings,
    HealthSettings,
    KmsSettings,
    MongoResource,
    MysqlResource,
    MysqlServer,
    NotifySettings,
    Objectives,
    RdsResource,
    Regions,
    RetentionPolicy,
    S3Resource,
    Secret,
    StackSettings,
    StateSettings,
    TsigSettings,
)
from dr.config.sections_aws import (
    known_regions,
    read_aws,
    read_kms,
    read_notify,
    read_objectives,
    read_regions,
    read_state,
    read_version,
)
from dr.config.sections_data import parse_size, read_mongo, read_mysql, read_rds, read_s3
from dr.config.sections_failover import read_dns, read_health, read_stack
from dr.errors import ConfigError
from dr.yamlnodes import Problems

__all__ = [
    "AwsSettings", "Config", "ConfigError", "CronSpec", "DEFAULT_RETENTION", "DEFAULT_S3_SCHEDULE_TEXT",
    "DEFAULT_SCHEDULE_TEXT", "DURATION_FORMS", "KmsSettings",
    "DnsSettings", "HealthSettings", "MongoResource", "MysqlResource", "NotifySettings", "StackSettings",
    "TsigSettings", "MysqlServer", "Objectives", "RdsResource", "Regions", "RESERVED_SECTIONS", "RetentionPolicy",
    "S3Resource", "STARTER_CONFIG", "Secret",
    "Schedule", "StateSettings", "advice", "format_duration", "known_regions", "load_config", "looks_secret",
    "parse_config", "parse_duration", "parse_schedule", "parse_size",
]

#: The commented starter dr.yaml that `dr init` writes (the data file starter.yaml, shipped with dr).
STARTER_CONFIG = resources.files(__name__).joinpath("starter.yaml").read_text(encoding="utf-8")

#: Top-level keys a later version will read: refused (not ignored) until then.
RESERVED_SECTIONS: tuple[str, ...] = ()
_TOP_KEYS = ("version", "regions", "aws", "objectives", "kms", "state", "rds", "s3", "mysql", "mongo",
             "stack", "health", "dns", "notify")


def parse_config(text: str, source: str = "dr.yaml", base_dir: Path | None = None) -> Config:
    """Validate dr.yaml text into a Config; raises ConfigError listing every problem found."""
    ck = Problems(Path(source).name or source)
    top = ck.load(text)
    if top is None:
        raise ConfigError(f"{ck.file} is empty: expected a mapping with version, regions, objectives, kms "
                          "and state; run `dr init` to write a starter dr.yaml")
    if not isinstance(top.value, dict):
        ck.bad("(top level)", top, "expected a mapping of settings (version, regions, objectives, ...)")
        ck.raise_if_any()
    ck.mapping("", top, _TOP_KEYS + RESERVED_SECTIONS, "expected a mapping")
    for key in RESERVED_SECTIONS:
        node = top.value.get(key)
        if node is not None and node.value is not None:
            ck.add(key, top.key_lines[key], "not supported by this version of dr yet; remove it "
                                            "(it will be read by a later version)")
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    version = read_version(ck, top)
    regions = read_regions(ck, top)
    aws = read_aws(ck, top)
    objectives = read_objectives(ck, top)
    kms = read_kms(ck, top, regions.dr if regions else None)
    state = read_state(ck, top, base)
    names: dict[str, str] = {}  # resource name -> where it was first used, across sections
    rds = read_rds(ck, top, names)
    s3 = read_s3(ck, top, names)
    mysql = read_mysql(ck, top, names, base)
    mongo = read_mongo(ck, top, names)
    stack, health, dns = read_stack(ck, top, base), read_health(ck, top), read_dns(ck, top)
    notify = read_notify(ck, top)
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
