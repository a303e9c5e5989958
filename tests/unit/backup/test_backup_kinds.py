"""Backup kinds: every registered kind fulfils the contract, and adding a kind is one module and
one line: a toy kind registered here goes through plan, run, list, prune, verify, the scheduler,
the report, readiness and the IAM policy without any other change."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from dr.backup import kinds as registry
from dr.backup.kind import BackupKind, PrunePart
from dr.backup.kinds import KINDS, register, unregister
from dr.backup.plan import Age, PlanItem, Table, Verb, When
from dr.backup.retention import Candidate, apply_policy
from dr.cli import main
from dr.clock import FixedClock
from dr.config import RetentionPolicy, parse_config, parse_schedule
from dr.context import make_context
from dr.permissions import SCOPES, Grant, features_for, policy_for
from dr.runbook.steps import REGISTRY

T0 = datetime(2030, 1, 2, 3, 0, tzinfo=timezone.utc)
CONFIG = """\
version: 1
regions: {primary: us-east-1, dr: us-west-2}
objectives: {rpo: 1h, rto: 30m}
kms: {dr_key: alias/dr-backups}
state: {path: STATE}
"""


# --- every registered kind is complete -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_registered_kind_fulfils_the_contract(name):
    kind = KINDS[name]
    assert isinstance(kind, BackupKind) and kind.name == name
    assert not inspect.isabstract(type(kind))
    for member in BackupKind.__abstractmethods__:
        assert getattr(type(kind), member) is not getattr(BackupKind, member), member
    assert kind.features, f"{name} declares no IAM grants"
    for feature, grants in kind.features.items():
        assert grants, f"{name}: feature {feature} grants nothing"
        for grant in grants:
            assert isinstance(grant, Grant) and grant.scope in SCOPES and grant.actions
            assert all(":" in a and "*" not in a for a in grant.actions)
    assert all(t in REGISTRY for t in kind.restore_steps), kind.restore_steps


def test_the_shipped_kinds_in_their_order():
    assert list(KINDS) == ["rds", "s3", "mysql"]


def test_a_duplicate_kind_name_is_an_error():
    with pytest.raises(ValueError, match="registered twice"):
        register(type(KINDS["s3"])())
    assert list(KINDS) == ["rds", "s3", "mysql"]


def test_the_service_cli_scheduler_permissions_readiness_and_report_name_no_kind():
    import dr.backup.service
    import dr.cli.backup
    import dr.failover.readiness
    import dr.permissions
    import dr.render.backup
    import dr.report.compute
    import dr.scheduler.jobs
    import dr.scheduler.runners

    for module in (dr.backup.service, dr.cli.backup, dr.render.backup, dr.scheduler.jobs,
                   dr.scheduler.runners, dr.permissions, dr.failover.readiness, dr.report.compute):
        source = inspect.getsource(module)
        for name in KINDS:
            assert f'"{name}"' not in source and f"'{name}'" not in source, \
                f"{module.__name__} names the kind {name}"


# --- a toy kind, registered in a test ----------------------------------------------------------------


@dataclass(frozen=True)
class ToyResource:
    name: str
    schedule: object
    retention: object


class ToyKind(BackupKind):
    """Copies nothing anywhere: writes one JSON document per slot into the state store."""

    name = "toy"
    features = {"toy": (Grant("dr_key", ("kms:Encrypt",)),)}
    verify_takes = frozenset()

    def __init__(self, resources):
        self._resources = resources

    def resources(self, config):
        return self._resources

    def record_kind(self, resource):
        return "toy"

    def needs_dr_key(self, resource):
        return False

    def features_for(self, config, resource):
        return ["toy"]

    def observe(self, ctx, resource, now, count):
        return resource, resource.schedule.slot_start(now)

    def plan(self, observation, config, dr_key, key_error):
        r, slot = observation
        return PlanItem(r.name, self.name, "toy", f"toy {r.name}", (f"write {slot:%H%M}",),
                        slot=slot, fields={"slot": slot.isoformat()})

    def execute(self, ctx, item, resource, run):
        with run.step("write", item.summary):
            key = f"toy/{resource.name}/{item.slot:%Y%m%dT%H%M}.json"
            ctx.store.put_json(key, {"created": item.slot.isoformat()})
        run.result.summary = {"key": key}

    def result_line(self, result):
        return f" -> {result.summary['key']}"

    def points(self, ctx, resources):
        return [(r.name, k, datetime.fromisoformat(ctx.store.get_json(k)["created"]))
                for r in resources for k in ctx.store.list_keys(f"toy/{r.name}/")]

    def list_table(self, points, now, show_all):
        return Table("toy_points", ("TOY", "KEY", "CREATED", "AGE"),
                     [(n, k, When(c), Age(now - c)) for n, k, c in points],
                     [{"name": n, "key": k} for n, k, _ in points])

    def plan_prune(self, points, resources, now):
        (r,) = resources
        return apply_policy([Candidate(k, c) for _, k, c in points], r.retention, now)

    def prune(self, ctx, resources, now, dry_run):
        part = PrunePart(Table("toy", ("TOY", "KEY", "ACTION")))
        for r in resources:
            decisions = self.plan_prune(self.points(ctx, [r]), [r], now)
            part.decisions += decisions
            for d in decisions:
                part.table.rows.append((r.name, d.id, Verb(d.keep)))
                part.table.data.append({"key": d.id, "keep": d.keep})
                if not d.keep and not dry_run:
                    ctx.store.delete(d.id)
                    part.deleted.append(d.id)
        return part

    def verify(self, ctx, resources, *, backup, deep):
        return {r.name: _Ok() for r in resources}

    def readiness_observe(self, ctx, resource):
        return resource, max((c for _, _, c in self.points(ctx, [resource])), default=None)

    def readiness(self, observation, config, now):
        from dr.failover.readiness import Check

        r, newest = observation
        return [Check(f"toy:{r.name}", newest is not None, f"newest {newest}")]


class _Ok:
    ok = True

    def to_dict(self):
        return {"ok": True}


@pytest.fixture
def toy(tmp_path):
    kind = register(ToyKind([ToyResource("pebble", parse_schedule("every 1h"),
                                         RetentionPolicy(last=1))]))
    path = tmp_path / "dr.yaml"
    path.write_text(CONFIG.replace("STATE", str(tmp_path / "state")))
    yield kind, path
    unregister("toy")
    assert "toy" not in registry.KINDS


def test_a_toy_kind_goes_through_plan_run_list_prune_and_verify(toy, capsys):
    from dr.backup.service import listing, prune, run_backup, verify

    kind, path = toy
    config = parse_config(path.read_text())
    dry = run_backup(make_context(config, clock=FixedClock(T0)), only="toy", dry_run=True)
    assert [(i.name, i.kind, i.actions) for i in dry.plan] == [("pebble", "toy", ("write 0300",))]
    for hour in (0, 1):
        out = run_backup(make_context(config, clock=FixedClock(T0 + timedelta(hours=hour))),
                         name="pebble")
        assert out.record.status == "completed"
        (result,) = out.record.results
        assert (result.kind, result.status, [s.status for s in result.steps]) == \
            ("toy", "completed", ["completed"])
    ctx = make_context(config, clock=FixedClock(T0 + timedelta(hours=2)))
    assert len(listing(ctx).points["toy"]) == 2
    dry_prune = prune(ctx, dry_run=True)
    assert [d.keep for d in dry_prune.decisions["toy"]] == [True, False] and not dry_prune.deleted
    done = prune(ctx)
    assert done.deleted == ["toy/pebble/20300102T0300.json"] and done.record.status == "completed"
    assert len(listing(ctx).points["toy"]) == 1
    assert verify(ctx, "pebble")["pebble"].ok

    # the CLI: --only takes the new kind, and each verb renders it with no change of its own
    assert main(["--config", str(path), "backup", "run", "--only", "toy", "--dry-run"]) == 0
    assert "pebble: toy pebble" in capsys.readouterr().out
    assert main(["--config", str(path), "backup", "list"]) == 0
    text = capsys.readouterr().out
    assert "TOY" in text and "toy/pebble/20300102T0400.json" in text
    assert main(["--config", str(path), "--output", "json", "backup", "prune", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["toy"] == [
        {"key": "toy/pebble/20300102T0400.json", "keep": True}]


def test_a_toy_kind_is_scheduled_reported_judged_and_granted(toy):
    from dr.backup.service import run_backup
    from dr.failover.readiness import judge, observe
    from dr.report.compute import compute_report
    from dr.scheduler.jobs import jobs_from_config

    kind, path = toy
    config = parse_config(path.read_text())
    assert [(j.name, j.kind, j.record_kind) for j in jobs_from_config(config)] == \
        [("pebble", "toy", "toy")]
    ctx = make_context(config, clock=FixedClock(T0))
    record = run_backup(ctx).record
    report = compute_report([record], config, T0 + timedelta(minutes=5))
    (res,) = report.resources
    assert (res.name, res.kind, res.schedule) == ("pebble", "toy", "every 1h")
    # readiness reads AWS too (the DR key): from the in-memory AWS, never the network
    from dr.context import Context
    from tests.support.aws_fake import FakeAws

    seen = observe(Context.over(config, FakeAws(), ctx.store, clock=ctx.clock))
    checks = {c.name: c.ok for c in judge(seen, config, T0)}
    assert checks["toy:pebble"] is True
    assert "toy" in features_for(config)
    policy = policy_for(config, "123456789012")
    assert "kms:Encrypt" in next(s for s in policy["Statement"] if s["Sid"] == "DrKey")["Action"]
