"""Value checks shared by the section validators: durations, secrets, whole numbers, regions, buckets."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from dr.config.durations import parse_duration
from dr.config.model import Secret
from dr.yamlnodes import Node, Problems

REGION_RE = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d+")
BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
EXPECT_REGION = "expected an AWS region name like us-east-1"
EXPECT_BUCKET = "expected an S3 bucket name (3-63 characters: lowercase letters, digits, dots, hyphens)"


def is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def read_duration(ck: Problems, path: str, node: Node | None) -> timedelta | None:
    if node is None:
        return None
    try:
        return parse_duration(node.value)
    except ValueError as e:
        ck.add(path, node.line, str(e))
        return None


def read_secret(ck: Problems, path: str, node: Node | None) -> Secret | None:
    if node is None or node.value is None:
        return None
    if isinstance(node.value, str):
        return Secret(literal=node.value)
    if isinstance(node.value, dict) and set(node.value) == {"env"} and isinstance(node.value["env"].value, str) \
            and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", node.value["env"].value):
        return Secret(env=node.value["env"].value)
    ck.add(path, node.line, "expected {env: VARIABLE_NAME} (or, discouraged, the password itself)")
    return None
