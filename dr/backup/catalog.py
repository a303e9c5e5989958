"""Recovery points: every dr-made snapshot of every configured resource, in both regions."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from dr.aws import AwsSession
from dr.backup import rds_api
from dr.backup.rds_api import KINDS, Snapshot
from dr.config import Config, RdsResource
from dr.clock import iso


@dataclass(frozen=True)
class RecoveryPoint:
    resource: str  # dr config name
    kind: str  # "rds-instance" | "rds-cluster"
    region: str
    role: str  # "source" (primary region), "copy" (DR region), "unmanaged" (not made by dr)
    id: str
    arn: str
    created: datetime | None
    status: str
    encrypted: bool
    kms_key_id: str | None
    copy_of: str | None = None

    @property
    def managed(self) -> bool:
        return self.role != "unmanaged"

    def to_dict(self, now: datetime | None = None) -> dict:
        d = {"resource": self.resource, "kind": self.kind, "region": self.region,
             "role": self.role, "id": self.id, "arn": self.arn,
             "created": iso(self.created) if self.created else None, "status": self.status,
             "encrypted": self.encrypted, "kms_key_id": self.kms_key_id}
        if now is not None and self.created is not None:
            d["age_seconds"] = int((now - self.created).total_seconds())
        return d


def _point(resource: RdsResource, snap: Snapshot) -> RecoveryPoint:
    if snap.managed_name == resource.name:
        role = snap.tags.get(rds_api.TAG_ROLE, "source")
    else:
        role = "unmanaged"
    return RecoveryPoint(
        resource=resource.name, kind=KINDS[resource.kind].record_kind, region=snap.region,
        role=role, id=snap.id, arn=snap.arn, created=snap.created, status=snap.status,
        encrypted=snap.encrypted, kms_key_id=snap.kms_key_id,
        copy_of=snap.tags.get(rds_api.TAG_COPY_OF),
    )


def list_rds_points(session: AwsSession, config: Config,
                    resources: tuple[RdsResource, ...] | list[RdsResource]) -> list[RecoveryPoint]:
    """All manual snapshots of the resources in both regions, newest first (unmanaged included,
    marked as such, so callers can say what they leave alone)."""
    jobs = [(r, region) for r in resources for region in (config.regions.primary, config.regions.dr)]

    def fetch(job: tuple[RdsResource, str]) -> list[RecoveryPoint]:
        resource, region = job
        kind = KINDS[resource.kind]
        snaps = rds_api.list_snapshots(session.client("rds", region), kind, resource.source_id,
                                       region)
        return [_point(resource, s) for s in snaps]

    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="dr-list") as pool:
        points = [p for batch in pool.map(fetch, jobs) for p in batch]
    return sorted(points, key=lambda p: (p.created is not None, p.created, p.id), reverse=True)
