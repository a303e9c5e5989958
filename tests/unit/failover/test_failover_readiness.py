"""Readiness, one definition: the pure judgement over observations (dr/failover/readiness.py and
each backup kind's `readiness`), shared by `dr validate --readiness` and the runbook step."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dr.backup.catalog import RecoveryPoint
from dr.backup.kinds import KINDS
from dr.aws.rds import Source
from dr.config import parse_config
from dr.errors import DrError
from dr.failover.readiness import Observed, copy_check, judge, key_check

NOW = datetime(2030, 1, 2, 12, 0, tzinfo=timezone.utc)
CONFIG = parse_config("""\
version: 1
regions: {primary: us-east-1, dr: us-west-2}
objectives: {rpo: 1h, rto: 30m}
kms: {dr_key: alias/dr-backups}
state: {path: /tmp/dr-state}
rds:
  - {name: app-db, instance: acme-prod-db}
s3:
  - {name: assets, source: acme-assets, destination: acme-assets-dr}
""")


def point(region, role, created, status="available"):
    return RecoveryPoint("app-db", "rds-instance", region, role, "dr-app-db-20300102-1000",
                         f"arn:{region}", created, status, True, "k")


def test_a_copy_is_as_old_as_its_data_and_data_loss_can_be_accepted():
    fresh = copy_check("rds:a:copy", "snap", NOW - timedelta(minutes=59, seconds=30), NOW,
                       timedelta(hours=1))
    assert fresh.ok and fresh.detail == \
        "newest copy snap holds data from 59m30s ago (within the RPO objective 1h)"
    stale = copy_check("rds:a:copy", "snap", NOW - timedelta(hours=2), NOW, timedelta(hours=1))
    assert not stale.ok and "over the RPO objective 1h" in stale.detail
    accepted = copy_check("rds:a:copy", "snap", NOW - timedelta(hours=2), NOW, timedelta(hours=1),
                          accept_data_loss=True)
    assert accepted.ok and accepted.detail.endswith("; data loss accepted")


def test_a_copy_a_fraction_of_a_second_over_the_objective_is_over_it():
    """The age is judged exactly; only its text is rounded (1.5 s over a 1 s RPO is a breach)."""
    late = copy_check("rds:a:copy", "snap", NOW - timedelta(seconds=1.5), NOW, timedelta(seconds=1))
    assert not late.ok and "over the RPO objective" in late.detail
    exact = copy_check("rds:a:copy", "snap", NOW - timedelta(seconds=1), NOW, timedelta(seconds=1))
    assert exact.ok


def test_the_dr_key_check_says_why_and_whether_it_encrypts():
    assert key_check("alias/dr", None, "us-west-2").detail == "alias/dr is enabled in us-west-2"
    assert key_check("alias/dr", None, "us-west-2", encrypts=True).detail.endswith("and encrypts")
    assert not key_check(None, "no such key", "us-west-2").ok


def test_rds_readiness_judges_the_copy_by_its_source_snapshot_time():
    rds = KINDS["rds"]
    (resource,) = CONFIG.rds
    source = Source("acme-prod-db", "arn", "available", True, "k")
    # copied 10 minutes ago, of a snapshot taken 2 hours ago: the data is 2 hours old
    points = [point("us-west-2", "copy", NOW - timedelta(minutes=10)),
              point("us-east-1", "source", NOW - timedelta(hours=2))]
    (check,) = rds.readiness((resource, source, points, None), CONFIG, NOW)
    assert (check.name, check.ok) == ("rds:app-db:copy", False) and "from 2h ago" in check.detail
    missing = rds.readiness((resource, None, [], None), CONFIG, NOW)
    assert [c.name for c in missing] == ["rds:app-db:source", "rds:app-db:copy"]
    assert "no copy in us-west-2 yet" in missing[1].detail
    assert rds.readiness((resource, None, [], "access denied"), CONFIG, NOW)[0].detail == \
        "access denied"


def test_judge_is_pure_over_what_was_observed():
    s3 = KINDS["s3"]
    (bucket,) = CONFIG.s3
    seen = Observed(DrError("alias/dr-backups not found"), "local directory /tmp/dr-state",
                    kinds=[(s3, (bucket, ["versioning is off"], (NOW - timedelta(minutes=5)).isoformat()))])
    checks = {c.name: c for c in judge(seen, CONFIG, NOW)}
    assert not checks["dr-key"].ok and checks["state-store"].ok
    assert not checks["s3:assets"].ok and checks["s3:assets:copy"].ok
