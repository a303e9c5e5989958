"""Domain retries: AWS answers that mean "not now" but that botocore does not retry itself.

botocore (configured in dr/aws/session.py) already retries throttling, 5xx and connection errors. This
module covers the rest, e.g. RDS refusing a cross-region copy because too many are in flight:
exponential backoff with a cap, bounded in attempts, and cancellable (Ctrl-C).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Collection
from typing import TypeVar

from dr.aws.errors import error_code
from dr.clock import Clock
from dr.errors import Interrupted

T = TypeVar("T")
log = logging.getLogger(__name__)


def retry_on_codes(
    fn: Callable[[], T],
    *,
    codes: Collection[str],
    clock: Clock,
    cancel: threading.Event | None = None,
    attempts: int = 8,
    base: float = 5.0,
    cap: float = 120.0,
    what: str = "",
) -> T:
    """Call fn(); on an AWS error whose code is in `codes`, back off and try again."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if error_code(exc) not in codes or attempt == attempts:
                raise
            delay = min(cap, base * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            log.warning("%s: %s; retrying in %.0fs (attempt %d of %d)",
                        what, error_code(exc), delay, attempt, attempts)
            if clock.sleep(delay, cancel):
                raise Interrupted(f"{what}: interrupted while waiting to retry") from exc
    raise AssertionError("unreachable")
