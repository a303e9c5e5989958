"""The state-store contract: small JSON documents under '/'-separated keys.

Both backends (LocalStore, S3Store) satisfy the same contract, checked by one shared test suite
(tests/support/state_contract.py, run by tests/unit/state/test_state_contract.py and
tests/integration/state/test_state_contract_s3.py):

* `put_json` is atomic create-or-replace: a reader sees the old document or the new one, never
  a mix, and a crash mid-write leaves the old one.
* `create_json` is an exclusive create: exactly one of several concurrent callers gets True;
  the others get False and change nothing (the building block for locks).
* `get_json_versioned` / `put_json_if` are compare-and-swap, for leases (`locks/<stack>.json`
  renewed by a heartbeat and taken over from another machine without a race) and fenced journals
  (a session that lost its lease cannot overwrite the new holder's journal). A version is an
  opaque non-empty string: read one, write with it, and the write happens only if the key was
  not changed in between; of several concurrent callers with the same expected version exactly one
  wins. `version=None` means "only if the key does not exist" (create_json is that case).
  Guarantees, and where the backends differ:
    - a write that changes the stored bytes always changes the version, and equal versions mean
      equal bytes, so a CAS never replaces a document its caller has not seen;
    - LocalStore changes the version on every write, even of identical bytes (see local.py);
      S3Store's version is the ETag, which is the MD5 of the bytes unless SSE-KMS is on, so
      rewriting identical bytes may keep it. That is harmless for CAS (the caller saw exactly
      that document), but a watcher that wants to see "a heartbeat happened" must have the
      heartbeat change the document (a renewed-at time), not rely on the version alone.
  Only CAS writes are fenced: an unconditional put_json or delete wins over any version.
* `list_keys(prefix)` returns every key that starts with `prefix` (plain string prefix, as S3
  does), sorted ascending.
* Keys (and versions) are checked by `validate_key` (`validate_version`) before any I/O.

Documents are plain JSON objects written with sorted keys in UTF-8; callers turn datetimes into
ISO strings themselves (see `dr.clock.iso`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from dr.errors import OperationFailed

MAX_KEY_LENGTH = 512
MAX_SEGMENT_LENGTH = 255  # a file name on common filesystems (LocalStore)
TEMP_PREFIX = ".tmp-"  # reserved: LocalStore's in-flight temp files and its lock file start with this
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


@runtime_checkable
class StateStore(Protocol):
    description: str  # "local directory /x/.dr-state" or "s3://bucket/prefix (us-west-2)"

    def put_json(self, key: str, document: Mapping[str, Any]) -> None: ...

    def get_json(self, key: str) -> dict | None: ...

    def create_json(self, key: str, document: Mapping[str, Any]) -> bool: ...

    def get_json_versioned(self, key: str) -> tuple[dict, str] | None:
        """The document and its version (an opaque non-empty string that changes on every write), or None.

        (S3Store may keep the version across a rewrite of identical bytes: see the module docstring.)"""

    def put_json_if(self, key: str, document: Mapping[str, Any], version: str | None) -> str | None:
        """Compare-and-swap. Writes `document` only if the stored version is `version` (None: only if the key
        does not exist) and returns the new version; returns None and writes nothing if the stored version
        differs (or the key is missing when a version was given, or present when None was given).
        Atomic: of several concurrent callers with the same expected version, exactly one wins."""

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


def validate_version(version: str | None) -> str | None:
    """An expected version is None or a non-empty string (an empty If-Match would be no condition)."""
    if version is not None and (not isinstance(version, str) or not version):
        raise ValueError(f"a state version must be None or a non-empty string, got {version!r}")
    return version


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
