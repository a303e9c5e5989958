"""The state-store contract: small JSON documents under '/'-separated keys.

Both backends (LocalStore, S3Store) satisfy the same contract, checked by one shared test suite
(tests/unit/test_state_contract.py):

* `put_json` is atomic create-or-replace: a reader sees the old document or the new one, never
  a mix, and a crash mid-write leaves the old one.
* `create_json` is an exclusive create: exactly one of several concurrent callers gets True;
  the others get False and change nothing (the building block for locks).
* `list_keys(prefix)` returns every key that starts with `prefix` (plain string prefix, as S3
  does), sorted ascending.
* Keys are checked by `validate_key` before any I/O.

Documents are plain JSON objects written with sorted keys in UTF-8; callers turn datetimes into
ISO strings themselves (see `dr.state.runs.iso`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from dr.errors import OperationFailed

MAX_KEY_LENGTH = 512
MAX_SEGMENT_LENGTH = 255  # a file name on common filesystems (LocalStore)
TEMP_PREFIX = ".tmp-"  # reserved: LocalStore's in-flight temp files start with this
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


@runtime_checkable
class StateStore(Protocol):
    description: str  # "local directory /x/.dr-state" or "s3://bucket/prefix (us-west-2)"

    def put_json(self, key: str, document: Mapping[str, Any]) -> None: ...

    def get_json(self, key: str) -> dict | None: ...

    def create_json(self, key: str, document: Mapping[str, Any]) -> bool: ...

    def list_keys(self, prefix: str) -> list[str]: ...

    def delete(self, key: str) -> None: ...


def validate_key(key: str) -> str:
    """Return `key` if it is a valid state key, else raise ValueError saying why."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"state key must be a non-empty string, got {key!r}")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"state key is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}")
    if key.startswith("/") or key.endswith("/"):
        raise ValueError(f"state key {key!r} must not start or end with '/'")
    for segment in key.split("/"):
        if not segment:
            raise ValueError(f"state key {key!r} has an empty segment ('//')")
        if segment in (".", ".."):
            raise ValueError(f"state key {key!r} must not contain '.' or '..' segments")
        if not _SEGMENT.fullmatch(segment):
            raise ValueError(
                f"state key {key!r}: segment {segment!r} may only use letters, digits, '.', '_', '-'"
            )
        if len(segment) > MAX_SEGMENT_LENGTH:
            raise ValueError(f"state key {key!r}: a segment may be at most {MAX_SEGMENT_LENGTH} characters")
        if segment.startswith(TEMP_PREFIX):
            raise ValueError(f"state key {key!r}: segments starting with {TEMP_PREFIX!r} are reserved")
    return key


def validate_prefix(prefix: str) -> str:
    """A list prefix is '' or a key, optionally ending in '/' (it may end mid-segment)."""
    if prefix:
        validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def encode_document(document: Mapping[str, Any]) -> bytes:
    """Strict JSON (no NaN), sorted keys, UTF-8, human-readable."""
    if not isinstance(document, Mapping):
        raise TypeError(f"a state document must be a mapping, got {type(document).__name__}")
    text = json.dumps(dict(document), sort_keys=True, ensure_ascii=False, indent=2, allow_nan=False)
    return (text + "\n").encode("utf-8")


def decode_document(data: bytes, where: str) -> dict:
    """Parse a stored document; `where` names it in the error if it is not a JSON object."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OperationFailed(
            f"state document {where} is not valid JSON ({exc})",
            hint="restore it from a backup or delete it",
        ) from exc
    if not isinstance(document, dict):
        raise OperationFailed(
            f"state document {where} holds a JSON {type(document).__name__}, not an object",
            hint="restore it from a backup or delete it",
        )
    return document
