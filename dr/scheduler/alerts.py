"""Alerts: one message when an incident opens, one when it clears, nothing in between.

An incident is a named condition (`job-<name>`: its backup job fails; `rpo-<name>`: its newest
copy in the DR region is older than the RPO objective). Its state lives in the state store at
`alerts/<key>.json`, so a restarted scheduler does not alert again. Several schedulers may watch
the same resources: each transition is claimed with an exclusive create
(`alerts/<key>/<incident>-open.json`, `...-cleared.json`), so exactly one of them publishes.
A publish that fails is retried at the next observation; with the store unreachable an alert is
sent anyway (a duplicate is better than silence).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from dr.config import format_duration
from dr.state.base import StateStore
from dr.clock import iso, parse_iso_or_none

log = logging.getLogger(__name__)
ALERTS_PREFIX = "alerts/"
TOUCH_EVERY = timedelta(minutes=15)  # how often an open incident's last_seen is rewritten


class Publisher(Protocol):
    def publish(self, subject: str, message: str) -> None: ...


class SnsPublisher:
    """Publishes to `notify.sns_topic` (the topic's own region, from its ARN)."""

    def __init__(self, session, topic_arn: str):
        self.topic_arn = topic_arn
        self.client = session.client("sns", topic_arn.split(":")[3])

    def publish(self, subject: str, message: str) -> None:
        subject = "".join(c if 32 <= ord(c) < 127 else "?" for c in subject)[:100]
        self.client.publish(TopicArn=self.topic_arn, Subject=subject, Message=message)


class LogPublisher:
    """No topic configured: the alert is a log line (still once per incident)."""

    def publish(self, subject: str, message: str) -> None:
        log.warning("ALERT %s: %s", subject, message)


@dataclass(frozen=True)
class Condition:
    """What a caller observed: is `key` failing now, and the words for each message."""

    key: str  # a state-key segment: job-app-db, rpo-assets
    failing: bool
    incident: str  # identifies this incident across schedulers (e.g. the first failing slot)
    subject: str
    message: str


def transition(doc: dict | None, failing: bool) -> str | None:
    """`open`, `clear`, `retry-open` (an earlier publish failed) or None: the pure core."""
    is_open = bool(doc and doc.get("open"))
    if failing and not is_open:
        return "open"
    if failing and not doc.get("notified", True):
        return "retry-open"
    if not failing and is_open:
        return "clear"
    return None


class AlertBook:
    def __init__(self, store: StateStore, publisher: Publisher, now: Callable[[], datetime],
                 owner: str | None = None):
        self.store, self.publisher, self.now = store, publisher, now
        self.owner = owner or socket.gethostname()
        self._cache: dict[str, dict] = {}  # last known state, for when the store is unreachable
        self.sent: list[tuple[str, str]] = []  # (key, open|clear), for metrics and tests

    def observe(self, cond: Condition) -> str | None:
        """Record an observation; returns `opened` or `cleared` if this call sent the message."""
        doc = self._read(cond.key)
        step = transition(doc, cond.failing)
        if step == "open":
            return self._open(cond)
        if step == "retry-open":
            if self._publish(cond.key, "open", doc.get("subject", cond.subject),
                             doc.get("message", cond.message)):
                self._write(cond.key, {**doc, "notified": True})
                return "opened"
            return None
        if step == "clear":
            return self._clear(cond, doc)
        if cond.failing and doc is not None:
            last = parse_iso_or_none(doc.get("last_seen"))
            if last is None or self.now() - last >= TOUCH_EVERY:
                self._write(cond.key, {**doc, "last_seen": iso(self.now())})
        return None

    def state(self, key: str) -> dict | None:
        return self._read(key)

    # -- transitions -----------------------------------------------------------------------------

    def _open(self, cond: Condition) -> str | None:
        now = self.now()
        won = self._claim(f"{ALERTS_PREFIX}{cond.key}/{cond.incident}-open.json")
        doc = {"key": cond.key, "open": True, "incident": cond.incident, "opened_at": iso(now),
               "last_seen": iso(now), "subject": cond.subject, "message": cond.message,
               "owner": self.owner, "notified": True}
        sent = won and self._publish(cond.key, "open", cond.subject, cond.message)
        if won and not sent:
            doc["notified"] = False  # retried at the next observation
        self._write(cond.key, doc)
        return "opened" if sent else None

    def _clear(self, cond: Condition, doc: dict) -> str | None:
        now = self.now()
        incident = doc.get("incident") or "unknown"
        marker = f"{ALERTS_PREFIX}{cond.key}/{incident}-cleared.json"
        won = self._claim(marker)
        if won:
            opened = parse_iso_or_none(doc.get("opened_at"))
            lasted = f" after {format_duration(now - opened)}" if opened else ""
            message = f"{cond.message}\nThe incident opened at {doc.get('opened_at')} is closed{lasted}."
            if not self._publish(cond.key, "clear", cond.subject, message):
                self._unclaim(marker)
                return None
        self._write(cond.key, {**doc, "open": False, "cleared_at": iso(now), "notified": True,
                               "clear_subject": cond.subject})
        return "cleared" if won else None

    # -- I/O -------------------------------------------------------------------------------------

    def _publish(self, key: str, what: str, subject: str, message: str) -> bool:
        try:
            self.publisher.publish(subject, message)
        except Exception as exc:  # noqa: BLE001 - an alert failing must not stop the scheduler
            log.error("could not publish the %s alert for %s: %s (will retry)", what, key, exc)
            return False
        log.warning("alert sent (%s %s): %s", key, what, subject)
        self.sent.append((key, what))
        return True

    def _claim(self, key: str) -> bool:
        try:
            return self.store.create_json(key, {"owner": self.owner, "at": iso(self.now())})
        except Exception as exc:  # noqa: BLE001
            log.warning("state store unreachable while claiming %s (%s): alerting anyway", key, exc)
            return True

    def _unclaim(self, key: str) -> None:
        try:
            self.store.delete(key)
        except Exception:  # noqa: BLE001
            pass

    def _read(self, key: str) -> dict | None:
        try:
            doc = self.store.get_json(f"{ALERTS_PREFIX}{key}.json")
        except Exception:  # noqa: BLE001 - unreachable or unreadable: use what we last knew
            return self._cache.get(key)
        if doc is not None:
            self._cache[key] = doc
        return doc if doc is not None else self._cache.get(key)

    def _write(self, key: str, doc: dict) -> None:
        self._cache[key] = doc
        try:
            self.store.put_json(f"{ALERTS_PREFIX}{key}.json", doc)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not save alert state %s: %s", key, exc)
