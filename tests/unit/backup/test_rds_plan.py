"""Pure planning of RDS backups and prunes: no AWS, milliseconds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dr.backup.catalog import RecoveryPoint
from dr.backup.prune import plan_prune
from dr.backup.rds import RdsObservation, plan_rds_backup, snapshot_id_for
from dr.aws.rds import Snapshot, Source
from dr.config import parse_config
from dr.aws.kms import DrKey

NOW = datetime(2026, 11, 26, 13, 42, tzinfo=timezone.utc)
KEY = DrKey("alias/dr-backups", "arn:aws:kms:us-west-2:123456789012:key/k-dr", "us-west-2")
CONFIG = parse_config("""
version: 1
regions: {primary: us-east-1, dr: us-west-2}
objectives: {rpo: 1h, rto: 30m}
kms: {dr_key: alias/dr-backups}
state: {path: /tmp/x}
rds:
  - {name: app-db, instance: acme-prod-db, schedule: every 1h, retention: {last: 2}}
  - {name: aurora, cluster: acme-aurora, schedule: every 1h, retention: {last: 1}}
""")
APP, AURORA = CONFIG.rds


def snap(id, region, status="available", name="app-db", role="source", created=NOW):
    tags = {"dr:managed": "true", "dr:name": name, "dr:role": role} if name else {}
    return Snapshot(id=id, arn=f"arn:aws:rds:{region}:1:snapshot:{id}", region=region,
                    source_id="acme-prod-db", status=status, created=created, encrypted=True,
                    kms_key_id="k", tags=tags)


def source(encrypted=True):
    return Source("acme-prod-db", "arn:src", "available", encrypted, "k" if encrypted else None)


def obs(resource=APP, **kw):
    return RdsObservation(resource=resource, slot=resource.schedule.slot_start(NOW), **kw)


def test_snapshot_names_are_deterministic_per_slot():
    slot = APP.schedule.slot_start(NOW)
    assert slot == datetime(2026, 11, 26, 13, 0, tzinfo=timezone.utc)
    assert snapshot_id_for("app-db", slot) == "dr-app-db-20261126-1300"
    later = APP.schedule.slot_start(NOW + timedelta(minutes=17))
    assert snapshot_id_for("app-db", later) == "dr-app-db-20261126-1300"


def test_fresh_resource_plans_create_copy_verify():
    (item,) = plan_rds_backup([obs(source=source())], CONFIG, KEY, None)
    assert item.blocked is None
    assert item.actions[0] == "create snapshot dr-app-db-20261126-1300 of acme-prod-db in us-east-1"
    assert "copy it to us-west-2" in item.actions[1] and KEY.arn in item.actions[1]
    assert item.actions[2].startswith("verify")


def test_existing_snapshot_is_reused_and_copy_awaited():
    o = obs(source=source(), snapshot=snap("dr-app-db-20261126-1300", "us-east-1"),
            copy=snap("dr-app-db-20261126-1300", "us-west-2", status="copying", role="copy"))
    (item,) = plan_rds_backup([o], CONFIG, KEY, None)
    assert item.actions[0].endswith("exists (available)")
    assert item.actions[1] == "wait for the copy dr-app-db-20261126-1300 in us-west-2 (now copying)"


def test_completed_slot_has_nothing_to_do():
    o = obs(source=source(), snapshot=snap("dr-app-db-20261126-1300", "us-east-1"),
            copy=snap("dr-app-db-20261126-1300", "us-west-2", role="copy"))
    (item,) = plan_rds_backup([o], CONFIG, KEY, None)
    assert item.actions[0].startswith("nothing to do")


@pytest.mark.parametrize("observation, key_error, expected", [
    (obs(), None, "DB instance acme-prod-db not found in us-east-1"),
    (obs(error="AccessDenied ..."), None, "AccessDenied"),
    (obs(source=source()), "kms.dr_key 'alias/x' not found", "kms.dr_key 'alias/x' not found"),
    (obs(source=source(), snapshot=snap("dr-app-db-20261126-1300", "us-east-1", name=None)), None,
     "was not made by dr"),
    (obs(resource=AURORA, source=source(encrypted=False)), None,
     "AWS cannot encrypt a cluster snapshot while copying it"),
])
def test_blocked_items_say_why(observation, key_error, expected):
    (item,) = plan_rds_backup([observation], CONFIG, None if key_error else KEY, key_error)
    assert expected in item.blocked and not item.actions


def test_unencrypted_instance_is_planned_with_a_note():
    (item,) = plan_rds_backup([obs(source=source(encrypted=False))], CONFIG, KEY, None)
    assert item.blocked is None and "will be encrypted with the DR key" in item.notes[0]


def point(id, region, role, minutes_ago, status="available", resource="app-db", copy_of=None):
    return RecoveryPoint(resource=resource, kind="rds-instance", region=region, role=role, id=id,
                         arn=f"arn:{region}:{id}", created=NOW - timedelta(minutes=minutes_ago),
                         status=status, encrypted=True, kms_key_id="k", copy_of=copy_of)


def test_prune_applies_policy_per_region_and_skips_unmanaged():
    points = [point(f"s{i}", "us-east-1", "source", 60 * i) for i in range(4)]
    points += [point(f"s{i}", "us-west-2", "copy", 60 * i) for i in range(4)]
    points.append(point("hand-made", "us-east-1", "unmanaged", 9999))
    decisions = plan_prune(points, {"app-db": APP}, NOW)
    deleted = sorted((d.point.region, d.point.id) for d in decisions if not d.keep)
    assert deleted == [("us-east-1", "s2"), ("us-east-1", "s3"),
                       ("us-west-2", "s2"), ("us-west-2", "s3")]
    assert "hand-made" not in {d.point.id for d in decisions}


def test_prune_pins_the_source_of_a_copy_in_progress():
    points = [point("old", "us-east-1", "source", 120), point("new", "us-east-1", "source", 60),
              point("newest", "us-east-1", "source", 0),
              point("old", "us-west-2", "copy", 119, status="copying", copy_of="arn:us-east-1:old")]
    decisions = {(d.point.region, d.point.id): d for d in plan_prune(points, {"app-db": APP}, NOW)}
    assert decisions[("us-east-1", "old")].keep
    assert "source of a copy in progress" in decisions[("us-east-1", "old")].reasons
    assert decisions[("us-west-2", "old")].keep  # in progress itself
