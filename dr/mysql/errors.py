"""Errors of the MySQL engine. All are DrErrors: they say what failed, where, and the fix."""

from __future__ import annotations

from dr.errors import EXIT_BREACH, EXIT_FAILED, EXIT_USAGE, DrError


class MysqlError(DrError):
    """Something failed talking to MySQL/MariaDB; the message names the server (never a password)."""

    exit_code = EXIT_FAILED


class MysqlAuthError(MysqlError):
    """The server refused the user name or password."""


class MysqlUnreachable(MysqlError):
    """No MySQL answered at the address within the connect timeout."""


class MysqlTlsError(MysqlError):
    """TLS was required (or a CA given) and could not be established or verified."""


class MysqlUriError(MysqlError):
    """A mysql:// URI is malformed; nothing was done."""

    exit_code = EXIT_USAGE


class DumpError(MysqlError):
    """A dump failed; the partial output must be discarded (it has no end frame)."""


class StreamFormatError(MysqlError):
    """A dump stream is not a dr-mysql stream, is damaged or truncated."""


class RestoreError(MysqlError):
    """A restore failed; the target was left as it was and the staging database dropped."""


class RestoreRefused(RestoreError):
    """The restore was asked for something the backup cannot give; nothing was done."""

    exit_code = EXIT_USAGE


class TargetNotEmpty(RestoreError):
    """The restore target holds data and force was not given; nothing was done."""

    exit_code = EXIT_USAGE


class VerificationFailed(RestoreError):
    """Row counts or checksums of the restored tables differ from the manifest (exit 3: a check
    found a breach; the target was left as it was)."""

    exit_code = EXIT_BREACH

    def __init__(self, message: str, mismatches: list[str], *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.mismatches = mismatches
