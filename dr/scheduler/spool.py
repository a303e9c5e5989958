"""A state store that keeps working when the real one is unreachable: writes go to a local spool
directory and are flushed, in order, once the store answers again. No record is lost.

* `put_json` that fails is spooled (`put/<key>`); `get_json` and `list_keys` see spooled
  documents, so a run that saves its record every transition keeps working.
* `create_json` (the lock primitive) needs the real store: it raises `StoreUnavailable`. The
  scheduler may then take a *local* claim (`create_local`), flushed later as an exclusive create.
* `get_json_versioned` and `put_json_if` (compare-and-swap) read and write the real store only,
  and raise `StoreUnavailable` when it is down. They also raise it for a key with a spooled entry
  not yet flushed: a spooled document has no real version, and the store's version belongs to an
  older document, so a CAS against it would either act on a stale document or be overwritten
  by the flush replaying the spooled put afterwards (an unfenced write). Refusing is the safe
  answer: the caller treats it as "cannot tell now", as when the store is down, and retries
  after the next flush().
* `flush()` replays the spool; the first failure stops it (retry later with backoff).

The real store is opened lazily (opening an S3 store checks the bucket and resolves the KMS key,
which fails while the network is down).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from dr.errors import OperationFailed
from dr.state.base import StateStore, validate_key
from dr.state.local import LocalStore

log = logging.getLogger(__name__)
PUT, CREATE = "put/", "create/"


class StoreUnavailable(OperationFailed):
    """The state store did not answer (network, credentials, the bucket, KMS).

    A DrError, so code that records failures (a backup run) records this one too."""


class SpoolingStore:
    """Wraps the real store (from `open_store`) with a local spool; thread-safe."""

    def __init__(self, open_store: Callable[[], StateStore], spool_dir, *,
                 now: Callable[[], datetime] | None = None):
        self._open = open_store
        self._inner: StateStore | None = None
        self.spool = LocalStore(spool_dir)
        self._lock = threading.RLock()
        self._now = now
        self.up: bool | None = None  # None until the first answer
        self.last_error: str | None = None
        self.down_since: datetime | None = None
        self.description = "state store (opening)"

    # -- health ------------------------------------------------------------------------------

    def _inner_store(self) -> StateStore:
        if self._inner is None:
            try:
                self._inner = self._open()
            except Exception as exc:  # noqa: BLE001 - anything that stops opening is "down"
                self._mark_down(exc)
                raise StoreUnavailable(str(exc)) from exc
            self.description = self._inner.description
        return self._inner

    def _mark_down(self, exc: BaseException) -> None:
        if self.up is not False:
            log.warning("state store unreachable: %s", exc)
            self.down_since = self._now() if self._now else None
        self.up, self.last_error = False, str(exc).splitlines()[0] if str(exc) else type(exc).__name__

    def _mark_up(self) -> None:
        if self.up is False:
            log.warning("state store reachable again: %s", self.description)
        self.up, self.last_error, self.down_since = True, None, None

    def _call(self, fn: Callable[[StateStore], Any]) -> Any:
        inner = self._inner_store()
        try:
            result = fn(inner)
        except (ValueError, TypeError):  # a bad key or document: a bug, not an outage
            raise
        except Exception as exc:  # noqa: BLE001
            self._mark_down(exc)
            raise StoreUnavailable(str(exc)) from exc
        self._mark_up()
        return result

    def pending(self) -> list[str]:
        """Spooled entries not yet flushed (`put/<key>` and `create/<key>`)."""
        with self._lock:
            return self.spool.list_keys("")

    # -- the StateStore contract ---------------------------------------------------------------

    def put_json(self, key: str, document: Mapping[str, Any]) -> None:
        with self._lock:
            spooled = bool(self.spool.list_keys(CREATE + key) + self.spool.list_keys(PUT + key))
            if not spooled:  # keep order: never overtake an older spooled version of this key
                try:
                    self._call(lambda s: s.put_json(key, document))
                    return
                except StoreUnavailable:
                    pass
            self.spool.put_json(PUT + key, document)
            log.warning("state store unreachable: %s kept in the local spool %s", key, self.spool.root)

    def get_json(self, key: str) -> dict | None:
        with self._lock:
            for entry in (PUT + key, CREATE + key):
                doc = self.spool.get_json(entry)
                if doc is not None:
                    return doc
        return self._call(lambda s: s.get_json(key))

    def create_json(self, key: str, document: Mapping[str, Any]) -> bool:
        return self._call(lambda s: s.create_json(key, document))

    def get_json_versioned(self, key: str) -> tuple[dict, str] | None:
        with self._lock:
            self._refuse_if_spooled(key)
        return self._call(lambda s: s.get_json_versioned(key))  # a put spooled meanwhile: CAS refuses

    def put_json_if(self, key: str, document: Mapping[str, Any], version: str | None) -> str | None:
        with self._lock:  # no put_json may spool this key between the check and the CAS
            self._refuse_if_spooled(key)
            return self._call(lambda s: s.put_json_if(key, document, version))

    def _refuse_if_spooled(self, key: str) -> None:
        """Raise StoreUnavailable if `key` has a spooled put or local claim (see the module doc)."""
        validate_key(key)
        if any(self.spool.get_json(entry) is not None for entry in (PUT + key, CREATE + key)):
            raise StoreUnavailable(
                f"{key} has a write in the local spool {self.spool.root} not yet flushed to "
                f"{self.description}, so it has no version to compare with",
                hint="retry after the spool is flushed (the scheduler flushes it once the store answers)")

    def create_local(self, key: str, document: Mapping[str, Any]) -> bool:
        """An exclusive create in the spool only: flushed later with create_json."""
        with self._lock:
            return self.spool.create_json(CREATE + key, document)

    def list_keys(self, prefix: str) -> list[str]:
        keys = set(self._call(lambda s: s.list_keys(prefix)))
        with self._lock:
            for entry in self.spool.list_keys(""):
                key = entry.split("/", 1)[1]
                if key.startswith(prefix):
                    keys.add(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        self._call(lambda s: s.delete(key))
        with self._lock:
            self.spool.delete(PUT + key)

    # -- flushing ------------------------------------------------------------------------------

    def flush(self) -> int:
        """Replay the spool into the store; returns how many entries are still pending.

        A locally claimed lock that another scheduler created meanwhile is logged (the slot ran
        twice while the store was unreachable; backups are idempotent per slot) and dropped.
        """
        with self._lock:
            entries = self.spool.list_keys("")
            creates = [e for e in entries if e.startswith(CREATE)]
            puts = [e for e in entries if e.startswith(PUT)]
            for entry in creates + puts:
                key = entry.split("/", 1)[1]
                doc = self.spool.get_json(entry)
                try:
                    if doc is not None and entry.startswith(CREATE):
                        if not self._call(lambda s, key=key, doc=doc: s.create_json(key, doc)):
                            log.warning("%s was also claimed by another scheduler while the state "
                                        "store was unreachable; keeping theirs", key)
                    elif doc is not None:
                        self._call(lambda s, key=key, doc=doc: s.put_json(key, doc))
                except StoreUnavailable:
                    return len(self.spool.list_keys(""))
                self.spool.delete(entry)
            if entries:
                log.warning("state store: flushed %d spooled document(s) to %s", len(entries),
                            self.description)
            return 0

    def probe(self) -> bool:
        """One cheap call to learn whether the store answers."""
        try:
            self._call(lambda s: s.list_keys("locks/"))
        except StoreUnavailable:
            return False
        return True


def default_spool_dir(config) -> Path:
    """`$DR_SPOOL_DIR`, else `$XDG_STATE_HOME/dr/spool/<store>` (default ~/.local/state/...).

    One directory per state store, so two configs never flush into each other's store. Under
    Kubernetes mount a volume here, or a pod restart loses what was spooled."""
    if os.environ.get("DR_SPOOL_DIR"):
        return Path(os.environ["DR_SPOOL_DIR"])
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    where = config.state.bucket and f"s3-{config.state.bucket}-{config.state.prefix}" or \
        f"path-{config.state.path}"
    digest = hashlib.sha256(where.encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9._-]", "-", (config.state.bucket or "local"))[:40]
    return base / "dr" / "spool" / f"{name}-{digest}"
