"""The DrError hierarchy: every failure a user can see, and the exit code it maps to.

The CLI's `main` is the one place that turns these into a message and an exit code.
Exit codes (the contract in ARCHITECTURE.md):
  0 success · 1 the operation failed · 2 usage or config error (nothing was done)
  3 a check found a breach · 130 interrupted (a rerun or --resume continues)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BREACH = 3
EXIT_INTERRUPTED = 130


class DrError(Exception):
    """An error meant for the user: says what is wrong, where, and how to fix it."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  fix: {self.hint}"


class ConfigError(DrError):
    """dr.yaml (or another input file) is invalid; nothing was done."""

    exit_code = EXIT_USAGE


class UsageError(DrError):
    """The command line is wrong; nothing was done."""

    exit_code = EXIT_USAGE


class OperationFailed(DrError):
    """The operation ran and failed (some or all of it)."""

    exit_code = EXIT_FAILED


class AwsError(DrError):
    """An AWS call failed; the message names the resource, the region and the fix."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, code: str = "", hint: str | None = None):
        super().__init__(message, hint=hint)
        self.code = code


class Interrupted(DrError):
    """The user pressed Ctrl-C; the run record says where it stopped."""

    exit_code = EXIT_INTERRUPTED
