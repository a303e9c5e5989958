"""The one error a reader of an encrypted backup can see: the file cannot be trusted."""

from __future__ import annotations

from dr.errors import EXIT_FAILED, DrError


class IntegrityError(DrError):
    """An encrypted backup failed a check: damaged, truncated, tampered with, or the wrong key or
    encryption context. The message says what failed and where (chunk number, byte range)."""

    exit_code = EXIT_FAILED
