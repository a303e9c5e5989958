"""RDS backups: snapshot in the primary region, copy to the DR region under the DR key.

`observe` reads the world, `plan_rds_backup` (pure) decides what one backup pass would do, and
`RdsExecutor.run` does it. Every step is idempotent: names are deterministic per scheduled slot
(`dr-<name>-<YYYYmmdd-HHMM>`), "already exists" counts as success, and a rerun after a crash or
Ctrl-C picks up the same snapshot instead of taking a second one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from dr.aws import AwsSession
from dr.aws import rds as rds_api
from dr.aws.kms import DrKey
from dr.aws.rds import KINDS, Rds, RdsKind, Snapshot, Source
from dr.aws.retry import retry_on_codes
from dr.clock import Clock, iso
from dr.config import Config, RdsResource
from dr.errors import AwsError, DrError, Interrupted, OperationFailed
from dr.state.recorder import ResourceRecorder
from dr.wait import Backoff, poll

log = logging.getLogger(__name__)

#: AWS limits cross-region snapshot copies in progress per destination region; stay well below.
MAX_COPIES_IN_FLIGHT = 5
POLL_SECONDS = 15.0
WAIT_TIMEOUT = timedelta(hours=3)
QUOTA_CODES = ("SnapshotQuotaExceeded", "SnapshotQuotaExceededFault")
FAILED_STATUSES = ("failed", "error", "incompatible-restore", "incompatible-parameters")


def snapshot_id_for(name: str, slot: datetime) -> str:
    return f"dr-{name}-{slot:%Y%m%d-%H%M}"


def key_id(arn_or_id: str | None) -> str:
    return (arn_or_id or "").rsplit("/", 1)[-1]


# ---------------------------------------------------------------------------- observe + plan


@dataclass(frozen=True)
class RdsObservation:
    """What is true in AWS right now for one configured resource and the current slot."""

    resource: RdsResource
    slot: datetime
    source: Source | None = None
    snapshot: Snapshot | None = None  # this slot's snapshot in the primary region
    copy: Snapshot | None = None  # this slot's copy in the DR region
    error: str | None = None  # could not look (access denied, endpoint down, ...)


@dataclass(frozen=True)
class RdsBackupItem:
    name: str
    kind: RdsKind
    source_id: str
    snapshot_id: str
    slot: datetime
    actions: tuple[str, ...]
    notes: tuple[str, ...] = ()
    blocked: str | None = None


def observe(session: AwsSession, config: Config, resource: RdsResource, now: datetime) -> RdsObservation:
    kind = KINDS[resource.kind]
    slot = resource.schedule.slot_start(now)
    snap_id = snapshot_id_for(resource.name, slot)
    primary, dr = config.regions.primary, config.regions.dr
    try:
        prds, drds = session.rds(primary), session.rds(dr)
        return RdsObservation(
            resource=resource, slot=slot, source=prds.source(kind, resource.source_id),
            snapshot=prds.snapshot(kind, snap_id), copy=drds.snapshot(kind, snap_id),
        )
    except DrError as exc:
        return RdsObservation(resource=resource, slot=slot, error=str(exc))


def plan_rds_backup(observations: list[RdsObservation], config: Config, dr_key: DrKey | None,
                    key_error: str | None) -> list[RdsBackupItem]:
    """Pure: what one backup pass does for each resource, or why it cannot."""
    return [_plan_one(o, config, dr_key, key_error) for o in observations]


def _plan_one(o: RdsObservation, config: Config, dr_key: DrKey | None,
              key_error: str | None) -> RdsBackupItem:
    r = o.resource
    kind = KINDS[r.kind]
    snap_id = snapshot_id_for(r.name, o.slot)
    primary, dr = config.regions.primary, config.regions.dr

    def item(actions=(), notes=(), blocked=None) -> RdsBackupItem:
        return RdsBackupItem(r.name, kind, r.source_id, snap_id, o.slot, tuple(actions),
                             tuple(notes), blocked)

    if o.error:
        return item(blocked=o.error)
    if key_error or dr_key is None:
        return item(blocked=key_error or "the DR key could not be resolved")
    if o.source is None:
        return item(blocked=f"{kind.label} {r.source_id} not found in {primary}: check "
                            f"rds[{r.name}] in dr.yaml (instance/cluster) and regions.primary")
    notes = []
    if not o.source.encrypted:
        if kind.kind == "cluster":
            return item(blocked=(
                f"{kind.label} {r.source_id} is not encrypted, and AWS cannot encrypt a cluster "
                "snapshot while copying it: restore a snapshot of it into an encrypted cluster "
                "(or take one with encryption), then point dr.yaml at that cluster"))
        notes.append(f"{r.source_id} is not encrypted: the DR copy will be encrypted with the "
                     "DR key")
    for snap, region in ((o.snapshot, primary), (o.copy, dr)):
        if snap is not None and snap.managed_name != r.name:
            return item(blocked=f"a snapshot named {snap.id} already exists in {region} and was "
                                "not made by dr for this resource; dr will not touch it: rename "
                                "or delete it, or rename the resource in dr.yaml")
    actions = []
    if o.copy is not None and o.copy.status == "available":
        actions.append(f"nothing to do: {snap_id} is already copied to {dr}; verify it")
        return item(actions=actions, notes=notes)
    if o.snapshot is None:
        actions.append(f"create snapshot {snap_id} of {r.source_id} in {primary}")
    elif o.snapshot.status != "available":
        actions.append(f"wait for snapshot {snap_id} in {primary} (now {o.snapshot.status})")
    else:
        actions.append(f"snapshot {snap_id} in {primary} exists (available)")
    if o.copy is None:
        actions.append(f"copy it to {dr} as {snap_id}, encrypted with {dr_key}")
    else:
        actions.append(f"wait for the copy {snap_id} in {dr} (now {o.copy.status})")
    actions.append("verify the copy: available, encrypted with the DR key, tagged")
    return item(actions=actions, notes=notes)


# ---------------------------------------------------------------------------- execute


def source_tags(resource: RdsResource, slot: datetime, now: datetime, region: str) -> dict[str, str]:
    return {
        rds_api.TAG_MANAGED: "true",
        rds_api.TAG_NAME: resource.name,
        rds_api.TAG_SOURCE_ID: resource.source_id,
        rds_api.TAG_SOURCE_REGION: region,
        rds_api.TAG_CREATED_AT: iso(now),
        rds_api.TAG_SLOT: iso(slot),
        rds_api.TAG_ROLE: "source",
    }


def copy_tags(source: Snapshot) -> dict[str, str]:
    """Every tag of the source snapshot (AWS's own aws:* excepted), marked as the DR copy."""
    tags = {k: v for k, v in source.tags.items() if not k.startswith("aws:")}
    tags[rds_api.TAG_ROLE] = "copy"
    tags[rds_api.TAG_COPY_OF] = source.arn
    return tags


def recovery_point(snap: Snapshot, role: str) -> dict:
    return {"id": snap.id, "region": snap.region, "arn": snap.arn, "role": role,
            "created": iso(snap.created) if snap.created else None,
            "status": snap.status, "kms_key_id": snap.kms_key_id}


class RdsExecutor:
    """Runs planned RDS items; safe to call from several threads (one item per thread)."""

    def __init__(self, session: AwsSession, config: Config, clock: Clock, dr_key: DrKey,
                 cancel: threading.Event,
                 poll_seconds: float = POLL_SECONDS, timeout: timedelta = WAIT_TIMEOUT):
        self.session, self.config, self.clock, self.dr_key = session, config, clock, dr_key
        self.cancel = cancel
        self.poll_seconds, self.timeout = poll_seconds, timeout
        self.copy_slots = threading.BoundedSemaphore(MAX_COPIES_IN_FLIGHT)

    def run(self, item: RdsBackupItem, resource: RdsResource, rec: ResourceRecorder) -> None:
        """Snapshot, wait, copy, wait, verify: each a step of `rec` (the run's recorder saves
        every change and records Ctrl-C as interrupted)."""
        primary, dr = self.config.regions.primary, self.config.regions.dr
        prds, drds = self.session.rds(primary), self.session.rds(dr)
        kind = item.kind
        with rec.step("snapshot", f"{item.snapshot_id} in {primary}"):
            snap = self._ensure_snapshot(prds, item, resource)
        with rec.step("wait-snapshot", f"{item.snapshot_id} in {primary}"):
            snap = self._wait_available(prds, kind, item.snapshot_id)
        rec.add_point(recovery_point(snap, "source"))
        with self._copy_slot():  # held until the copy is available: AWS counts it until then
            with rec.step("copy", f"{item.snapshot_id} to {dr}"):
                self._ensure_copy(drds, kind, snap, item.snapshot_id)
            with rec.step("wait-copy", f"{item.snapshot_id} in {dr}"):
                copy = self._wait_available(drds, kind, item.snapshot_id)
        with rec.step("verify", f"{item.snapshot_id} in {dr}"):
            self._verify_copy(copy, resource)
        rec.add_point(recovery_point(copy, "copy"))

    # -- steps

    def _ensure_snapshot(self, rds: Rds, item: RdsBackupItem, resource: RdsResource) -> Snapshot:
        region = rds.region
        existing = rds.snapshot(item.kind, item.snapshot_id)
        if existing is None:
            tags = source_tags(resource, item.slot, self.clock.now(), region)
            try:
                return rds.create_snapshot(item.kind, item.source_id, item.snapshot_id, tags)
            except AwsError as exc:
                if exc.code != item.kind.already_exists:
                    raise
                existing = rds.snapshot(item.kind, item.snapshot_id)
        if existing is None or existing.managed_name != resource.name:
            raise OperationFailed(f"snapshot {item.snapshot_id} in {region} exists but was not "
                                  "made by dr for this resource; dr will not use or touch it")
        log.info("%s: snapshot %s already exists (%s); reusing it", resource.name,
                 item.snapshot_id, existing.status)
        return existing

    def _ensure_copy(self, rds: Rds, kind: RdsKind, source: Snapshot, target_id: str) -> Snapshot:
        region = rds.region
        existing = rds.snapshot(kind, target_id)
        if existing is not None:
            self._check_is_our_copy(existing, source)
            return existing

        def start() -> Snapshot:
            return rds.copy_snapshot(kind, source, target_id, self.dr_key.arn, copy_tags(source))

        try:
            return retry_on_codes(start, codes=QUOTA_CODES, clock=self.clock, cancel=self.cancel,
                                  what=f"copying {target_id} to {region}")
        except AwsError as exc:
            if exc.code != kind.already_exists:
                raise
        existing = rds.snapshot(kind, target_id)  # an earlier run got there
        if existing is None:
            raise OperationFailed(f"copy {target_id} in {region} is reported as existing but "
                                  "cannot be found", hint="run `dr backup run` again")
        self._check_is_our_copy(existing, source)
        return existing

    def _check_is_our_copy(self, copy: Snapshot, source: Snapshot) -> None:
        if copy.tags.get(rds_api.TAG_COPY_OF) != source.arn:
            raise OperationFailed(f"snapshot {copy.id} in {copy.region} exists but is not dr's "
                                  f"copy of {source.arn}; dr will not use or touch it")

    def _verify_copy(self, copy: Snapshot, resource: RdsResource) -> None:
        problems = []
        if not copy.encrypted:
            problems.append("it is not encrypted")
        elif key_id(copy.kms_key_id) != key_id(self.dr_key.arn):
            problems.append(f"it is encrypted with {copy.kms_key_id}, not the DR key "
                            f"{self.dr_key.arn}")
        if copy.managed_name != resource.name:
            problems.append("it lacks dr's ownership tags")
        if problems:
            raise OperationFailed(f"copy {copy.id} in {copy.region} failed verification: "
                                  + "; ".join(problems))

    def _wait_available(self, rds: Rds, kind: RdsKind, snapshot_id: str) -> Snapshot:
        region = rds.region

        def describe() -> Snapshot:
            snap = rds.snapshot(kind, snapshot_id)
            if snap is None:
                raise OperationFailed(f"snapshot {snapshot_id} disappeared from {region} "
                                      "while dr was waiting for it")
            if snap.status in FAILED_STATUSES:
                raise OperationFailed(f"snapshot {snapshot_id} in {region} is {snap.status}",
                                      hint="see the RDS events for it; dr backup prune removes "
                                           "failed snapshots")
            return snap

        def progress(snap: Snapshot) -> None:
            done = f", {snap.progress}%" if snap.progress is not None else ""
            log.info("waiting for %s in %s (%s%s); you may safely press Ctrl-C, a rerun resumes",
                     snapshot_id, region, snap.status, done)

        return poll(describe, ready=lambda snap: snap.status == "available",
                    what=f"snapshot {snapshot_id} in {region}", clock=self.clock,
                    timeout=self.timeout.total_seconds(), progress=progress, still=lambda s: s.status,
                    backoff=Backoff(self.poll_seconds, 1.0, self.poll_seconds), cancel=self.cancel,
                    hint="run `dr backup run` again later: it resumes the wait").value

    # -- bookkeeping

    @contextmanager
    def _copy_slot(self) -> Iterator[None]:
        while not self.copy_slots.acquire(timeout=0.5):
            if self.cancel.is_set():
                raise Interrupted("interrupted while waiting for a copy slot")
        try:
            yield
        finally:
            self.copy_slots.release()
