"""The account sections of dr.yaml: version, regions, aws, objectives, kms, state, notify."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from dr.aws.regions import known_regions
from dr.config.checks import BUCKET_RE, EXPECT_BUCKET, EXPECT_REGION, REGION_RE, read_duration
from dr.config.model import AwsSettings, KmsSettings, NotifySettings, Objectives, Regions, StateSettings
from dr.yamlnodes import Node, Problems

_KEY_ID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|mrk-[0-9a-f]{32}")
_ALIAS_RE = re.compile(r"alias/[A-Za-z0-9/_-]+")
_KMS_ARN_RE = re.compile(r"arn:aws[-a-z]*:kms:([a-z0-9-]+):(\d{12}):(key|alias)/(.+)")

_EXPECT_KEY = "expected a KMS key in the DR region: an alias (alias/dr-backups), a key id (UUID) or a key ARN"


def read_version(ck: Problems, top: Node) -> int | None:
    node = ck.required("", top, "version")
    if node is not None and (type(node.value) is not int or node.value != 1):
        ck.bad("version", node, "expected 1 (the only config version this dr understands)")
    return 1


def read_regions(ck: Problems, top: Node) -> Regions | None:
    node, items = ck.section(top, "regions", ("primary", "dr"),
                             "expected a mapping like {primary: us-east-1, dr: us-west-2}")
    if items is None:
        return None
    found = {}
    partitions = {}
    for key in ("primary", "dr"):
        child = ck.required("regions", node, key)
        if child is not None and not (isinstance(child.value, str) and REGION_RE.fullmatch(child.value)):
            ck.bad(f"regions.{key}", child, EXPECT_REGION)
        elif child is not None and child.value not in known_regions():
            close = difflib.get_close_matches(child.value, sorted(known_regions()), n=1)
            ck.add(f"regions.{key}", child.line, f"{child.value!r} is not an AWS region"
                   + (f"; did you mean {close[0]!r}?" if close else " (the AWS SDK's list of regions has no such "
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


def read_aws(ck: Problems, top: Node) -> AwsSettings:
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


def read_objectives(ck: Problems, top: Node) -> Objectives | None:
    node, items = ck.section(top, "objectives", ("rpo", "rto"), "expected a mapping like {rpo: 1h, rto: 30m}")
    if items is None:
        return None
    rpo = read_duration(ck, "objectives.rpo", ck.required("objectives", node, "rpo"))
    rto = read_duration(ck, "objectives.rto", ck.required("objectives", node, "rto"))
    return Objectives(rpo, rto) if rpo and rto else None


def read_kms(ck: Problems, top: Node, dr_region: str | None) -> KmsSettings | None:
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


def read_state(ck: Problems, top: Node, base_dir: Path) -> StateSettings | None:
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
    if not (isinstance(value, str) and BUCKET_RE.fullmatch(value) and ".." not in value):
        ck.bad("state.bucket", bucket, EXPECT_BUCKET)
        return None
    return StateSettings(bucket=value, prefix=(prefix.value if prefix else None) or "")


def read_notify(ck: Problems, top: Node) -> NotifySettings | None:
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

