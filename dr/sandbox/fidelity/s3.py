"""Sandbox fidelity patch for S3: atomic conditional writes. See __init__.py."""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)


# --- 12. Atomic S3 conditional writes ------------------------------------------------------------

_S3_KEY_LOCKS = tuple(threading.RLock() for _ in range(64))


def _s3_key_lock(bucket: str, key: str) -> Any:
    """One of 64 locks, by bucket and key: writes of one key take turns, other keys need not wait."""
    return _S3_KEY_LOCKS[hash((bucket, key)) % len(_S3_KEY_LOCKS)]


def patch_s3_conditional_writes() -> None:
    """moto 5.2.5 `S3Response.put_object` evaluates `If-None-Match: *` and `If-Match: <etag>`, and
    `delete_object` evaluates `If-Match`, and only then writes, holding nothing in between; the
    threaded server runs requests concurrently, so two conditional writers of one key can both
    pass the check and both succeed (the second silently replaces the first; a compare-and-swap
    counter loses increments). S3 evaluates the condition and applies the write atomically: of
    several concurrent conditional writers exactly one wins, the others get 412
    PreconditionFailed (or 409 ConditionalRequestConflict). The patch runs PutObject, CopyObject,
    DeleteObject and the POSTs on a key (CompleteMultipartUpload also takes If-None-Match) under
    a lock of that key, conditional or not (an unconditional write between another request's
    check and its write breaks the atomicity just as well); different keys do not wait for each
    other."""
    from moto.s3.responses import S3Response

    for name in ("put_object", "copy_object", "delete_object"):
        original = getattr(S3Response, name)
        if getattr(original, "_dr_fidelity", False):
            continue

        @functools.wraps(original)
        def handler(self, *args: Any, __original=original, **kwargs: Any) -> Any:
            with _s3_key_lock(self.bucket_name, self.parse_key_name()):
                return __original(self, *args, **kwargs)

        handler._dr_fidelity = True  # type: ignore[attr-defined]
        setattr(S3Response, name, handler)

    original_post = S3Response._key_response_post
    if getattr(original_post, "_dr_fidelity", False):
        return

    @functools.wraps(original_post)
    def _key_response_post(self, request: Any, body: bytes, bucket_name: str, query: dict[str, Any],
                           key_name: str) -> Any:
        with _s3_key_lock(bucket_name, key_name):
            return original_post(self, request, body, bucket_name, query, key_name)

    _key_response_post._dr_fidelity = True  # type: ignore[attr-defined]
    S3Response._key_response_post = _key_response_post
