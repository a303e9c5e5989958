"""Scheduled verification of MySQL backups, without a server: `verify.every` in dr.yaml, the
`<name>.verify` job (no RPO of its own, its own alerts), the per-backup index, the readiness
check's rules and the report's verification section."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from dr.backup import verified
from dr.clock import FixedClock, iso
from dr.config import ConfigError, parse_config
from dr.backup.kinds.mysql import verified_check
from dr.report import compute_report, render
from dr.scheduler import jobs as J
from dr.state import LocalStore
from dr.state.records import ResourceResult, RunRecord

UTC = timezone.utc
NOW = datetime(2030, 1, 10, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)

BASE = """
version: 1
regions: {primary: us-east-1, dr: us-west-2}
objectives: {rpo: 1h, rto: 30m}
kms: {dr_key: alias/dr-backups}
state: {path: ./state}
mysql:
  - {name: lamp, host: 10.0.0.5, user: backup, databases: [app], tls: "off",
     destination: "s3://acme-dr-backups/mysql/", schedule: every 1h%s}
"""


def config(verify: str = ""):
    return parse_config(BASE % (f", verify: {verify}" if verify else ""), source="dr.yaml")


@pytest.mark.parametrize("every, text", [("1d", "every 1d"), ("every 12h", "every 12h"),
                                         ('"0 3 * * *"', "0 3 * * *")])
def test_verify_every_is_a_duration_or_a_schedule(every, text):
    c = config(f"{{host: 127.0.0.1, port: 3307, user: root, every: {every}}}")
    [m] = c.mysql
    assert m.verify.port == 3307 and str(m.verify_every) == text
    jobs = {j.name: j for j in J.jobs_from_config(c)}
    job = jobs["lamp.verify"]
    assert job.kind == "mysql-verify" and job.verifies and job.target == "lamp" and not job.makes_copies
    assert jobs["lamp"].makes_copies and jobs["lamp"].target == "lamp"


def test_no_every_means_no_scheduled_verification_and_a_bad_one_is_refused():
    c = config("{host: 127.0.0.1, port: 3307, user: root}")
    assert c.mysql[0].verify_every is None
    assert [j.name for j in J.jobs_from_config(c)] == ["lamp"]
    with pytest.raises(ConfigError, match=r"mysql\[0\]\.verify\.every.*every: 1d"):
        config("{host: 127.0.0.1, every: often}")


# --- the index --------------------------------------------------------------------------------------


def test_the_index_keeps_each_backups_newest_outcome_and_forgets_pruned_ones(tmp_path):
    store = LocalStore(tmp_path)
    assert verified.load(store, "lamp") == {}
    verified.record(store, "lamp", "lamp-1", {"status": "failed", "at": "x"})
    verified.record(store, "lamp", "lamp-1", {"status": "verified", "at": "y"})
    verified.record(store, "lamp", "lamp-2", {"status": "failed", "at": "z"})
    assert verified.load(store, "lamp") == {"lamp-1": {"status": "verified", "at": "y"},
                                            "lamp-2": {"status": "failed", "at": "z"}}
    verified.forget(store, "lamp", ["lamp-1", "lamp-9"])
    assert list(verified.load(store, "lamp")) == ["lamp-2"]


# --- readiness ----------------------------------------------------------------------------------------


@dataclass
class FakeBackup:
    id: str
    created: datetime


def ready(tmp_path, entries: dict, every: str | None = "1d"):
    store = LocalStore(tmp_path)
    for bid, entry in entries.items():
        verified.record(store, "lamp", bid, entry)
    c = config(f"{{host: 127.0.0.1, every: {every}}}" if every else "{host: 127.0.0.1}")
    backups = [FakeBackup(f"lamp-{i}", NOW - i * H) for i in range(3)]  # lamp-0 is the newest
    return verified_check(c.mysql[0], backups, verified.load(store, "lamp"), NOW)


def test_readiness_fails_when_the_newest_backup_failed_or_nothing_was_ever_verified(tmp_path):
    check = ready(tmp_path / "a", {"lamp-0": {"status": "failed", "at": iso(NOW), "error": "boom",
                                              "run_id": "verify-x"}})
    assert not check.ok and "lamp-0 FAILED its verification" in check.detail and "boom" in check.detail
    check = ready(tmp_path / "b", {"lamp-1": {"status": "failed", "at": iso(NOW)}})
    assert not check.ok and "proven restorable" in check.detail
    check = ready(tmp_path / "c", {}, every=None)
    assert not check.ok and "every: 1d" in check.detail  # says how to set it up


def test_readiness_passes_when_only_the_newest_is_not_verified_yet(tmp_path):
    check = ready(tmp_path / "a", {"lamp-0": {"status": "verified", "at": iso(NOW), "restore_seconds": 3}})
    assert check.ok and "lamp-0 was verified" in check.detail
    check = ready(tmp_path / "b", {"lamp-1": {"status": "verified", "at": iso(NOW - 3 * H)}})
    assert check.ok and "lamp-0 is not verified yet" in check.detail and "lamp-1" in check.detail


def test_readiness_fails_when_scheduled_verification_stopped(tmp_path):
    old = {"lamp-2": {"status": "verified", "at": iso(NOW - 3 * 24 * H)}}
    check = ready(tmp_path / "a", old)
    assert not check.ok and "verification has stopped" in check.detail
    assert ready(tmp_path / "b", old, every=None).ok  # verified by hand: no cadence to hold it to


# --- the report ------------------------------------------------------------------------------------


def backup(point: datetime) -> RunRecord:
    bid = f"lamp-{point:%Y%m%d-%H%M}"
    result = ResourceResult("lamp", "mysql", "completed", iso(point), iso(point + 5 * timedelta(minutes=1)),
                            summary={"backup_id": bid, "created": iso(point)},
                            recovery_points=[{"id": bid, "role": "copy", "created": iso(point),
                                              "region": "us-west-2"}])
    return RunRecord(f"backup-{point:%Y%m%dT%H%M%S}Z-0001", "backup", "completed", iso(point),
                     iso(point + 5 * timedelta(minutes=1)), results=[result])


def check(point: datetime, at: datetime, verdict: str | None, **extra) -> RunRecord:
    bid = f"lamp-{point:%Y%m%d-%H%M}"
    summary = {"backup_id": bid, "created": iso(point), "restore_seconds": 2.5,
               "verify_seconds": 3.25, **extra}
    if verdict != "legacy":
        summary["verdict"] = verdict
    result = ResourceResult("lamp", "mysql", "completed" if verdict == "verified" else "failed",
                            iso(at - timedelta(minutes=1)), iso(at), summary=summary,
                            error=None if verdict == "verified" else "checksum differs")
    return RunRecord(f"verify-{at:%Y%m%dT%H%M%S}Z-0002", "verify", result.status, iso(at), iso(at),
                     results=[result])


def test_the_report_shows_verification_and_the_verified_rpo():
    c = config("{host: 127.0.0.1, every: 1d}")
    records = [backup(NOW - 26 * H), backup(NOW - 2 * H), backup(NOW - H),
               check(NOW - 26 * H, NOW - 25 * H, "verified"), check(NOW - 2 * H, NOW - 90 * timedelta(minutes=1),
                                                                     None)]
    report = compute_report(records, c, NOW, 30)
    [v] = report.verification
    assert v.newest_backup == f"lamp-{NOW - H:%Y%m%d-%H%M}" and v.newest_status == "unverified"
    assert v.newest_verified.backup_id == f"lamp-{NOW - 26 * H:%Y%m%d-%H%M}"
    assert v.verified_rpo == 26 * H and v.verifications == 1 and v.failed == 0  # None: not judged
    assert v.schedule == "every 1d" and not report.findings
    text = render(report, "text")
    assert "Verification (MySQL backups restored" in text and "not yet" in text and "1d2h" in text
    assert '"verified_rpo_seconds": 93600' in render(report, "json")
    assert "## Verification" in render(report, "md") and "<h2>Verification</h2>" in render(report, "html")


def test_a_newest_backup_that_failed_verification_is_a_finding():
    c = config("{host: 127.0.0.1, every: 1d}")
    records = [backup(NOW - 26 * H), backup(NOW - H), check(NOW - 26 * H, NOW - 25 * H, "legacy", ok=True,
                                                            databases={}),
               check(NOW - H, NOW - 30 * timedelta(minutes=1), "failed")]
    report = compute_report(records, c, NOW, 30)
    [v] = report.verification
    assert v.newest_status == "failed" and v.failed == 1 and v.verifications == 2
    assert v.newest_verified is not None  # a record from before verdicts still counts
    assert any("failed its verification" in f and "checksum differs" in f for f in report.findings)
    assert report.breach


def test_never_verified_is_a_note_not_a_breach():
    c = config("{host: 127.0.0.1}")
    report = compute_report([backup(NOW - H)], c, NOW, 30)
    assert report.verification[0].newest_status == "unverified"
    assert any("none is proven restorable" in n for n in report.notes)
    assert not any("verif" in f for f in report.findings)


def test_a_backup_killed_by_kill_9_counts_as_a_failure_in_the_report():
    c = config()
    rec = backup(NOW - H)
    rec.status, rec.summary = "interrupted", {"abandoned": {"why": "its process is gone"}}
    rec.results[0].status, rec.results[0].error = "interrupted", "the run stopped without finishing"
    r = next(r for r in compute_report([rec], c, NOW, 30).resources if r.name == "lamp")
    assert r.failures == 1 and "stopped without finishing" in r.recent_failures[0].error


# --- the scheduler --------------------------------------------------------------------------------


def test_a_verify_job_has_no_rpo_and_alerts_as_a_verification(tmp_path):
    from dr.context import make_context
    from dr.scheduler.daemon import Options, Scheduler
    from dr.scheduler.runners import JobOutcome

    sent = []

    class Publisher:
        def publish(self, subject, message):
            sent.append(subject)

    c = config("{host: 127.0.0.1, every: 1d}")
    ctx = make_context(c, clock=FixedClock(NOW), store=LocalStore(tmp_path))
    calls = []

    def runner(ctx, job, slot):
        calls.append(job.name)
        return JobOutcome("failed" if job.verifies else "completed", run_id="verify-x",
                          error="checksum differs")

    jobs = [j for j in J.jobs_from_config(c) if j.verifies]
    s = Scheduler(ctx, jobs, options=Options(owner="t", rpo_alert_grace=timedelta(0)), runner=runner,
                  publisher=Publisher())
    s.started_at = NOW - 10 * H  # long enough for an RPO alert, were it counted
    s.tick()
    for st in s.states.values():
        if st.running and st.running.thread:
            st.running.thread.join(10)
    s.tick()
    s.refresh_rpo()
    assert calls == ["lamp.verify"]
    assert sent == ["[dr] verification of lamp's backup failed"]
    assert "lamp.verify" not in s.metrics.resources
