"""Failover you can press in a real outage: the safety holes of drill, resume and failback.

Each test drives `dr` through its CLI against the sandbox (moto plus dr's fidelity patches) and,
for RFC 2136, a real BIND; then it checks the world with boto3 and dig: the production stack
field by field, DNS record sets field by field, what is left in the DR region.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from dr.aws import AwsSession
from dr.backup.service import run_backup
from dr.cli import main
from dr.config import load_config
from dr.context import make_context
from dr.runbook.lease import lease_key
from dr.sandbox import world as W
from dr.sandbox.server import EmbeddedAws
from dr.state.local import LocalStore
from dr.state.records import RunStore
from tests.support.bind import PRODUCTION, bind  # noqa: F401 - fixture

from tests.integration.runbook.test_health import HealthServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
DR, PRIMARY = W.DR, W.PRIMARY
SHIPPED = REPO / "dr" / "runbooks"
STACK = f"""\
stack:
  name: acme-web
  template: "{W.TEMPLATE}"
  parameters: {{InstanceType: t3.small}}
  snapshot_parameter: DBSnapshotIdentifier
"""


@pytest.fixture(scope="module")
def sandbox():
    with EmbeddedAws() as aws:
        yield aws.endpoint


@dataclass
class Out:
    code: int
    out: str
    err: str

    @property
    def doc(self) -> dict:
        return json.loads(self.out)


class World:
    """The sandbox world (production in us-east-1, copies in us-west-2), and dr pointed at it."""

    def __init__(self, endpoint: str, tmp: Path, capsys):
        self.endpoint, self.tmp, self.capsys = endpoint, tmp, capsys
        self.path, self.state = tmp / "dr.yaml", tmp / "state"
        self.session = AwsSession(endpoint_url=endpoint)

    def configure(self, *, stack: str = STACK, health: str | None = None, dns: str | None = None) -> None:
        health = health or f'health: {{url: "{self.endpoint}/moto-api/", consecutive: 2, interval: 1s, timeout: 1m}}\n'
        dns = dns or f"dns: {{provider: route53, zone: {W.ZONE}, record: {W.RECORD}, ttl: 60}}\n"
        self.path.write_text(W.config_text(self.endpoint, self.state, failover=False) + stack + health + dns)

    def backup(self) -> None:
        assert run_backup(make_context(load_config(self.path))).record.status == "completed"

    def dr(self, *args: str) -> Out:
        self.capsys.readouterr()
        code = main(["--config", str(self.path), *args])
        captured = self.capsys.readouterr()
        return Out(code, captured.out, captured.err)

    def client(self, service: str, region: str = DR):
        return self.session.client(service, region)

    def records(self) -> list[dict]:
        """Every record set of the zone, as Route 53 returns it (field by field)."""
        r53 = self.client("route53", PRIMARY)
        zone = r53.list_hosted_zones_by_name(DNSName=W.ZONE)["HostedZones"][0]["Id"]
        return sorted(r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"],
                      key=lambda r: (r["Name"], r["Type"], r.get("SetIdentifier", "")))

    def stack(self, name: str, region: str = DR) -> dict | None:
        """A stack as a person comparing before and after sees it: id, status, tags, parameters,
        last update, and the template it runs."""
        cfn = self.client("cloudformation", region)
        found = [s for s in cfn.describe_stacks()["Stacks"] if s["StackName"] == name
                 and s["StackStatus"] != "DELETE_COMPLETE"]
        if not found:
            return None
        s = found[0]
        return {"StackId": s["StackId"], "StackStatus": s["StackStatus"],
                "Tags": sorted((t["Key"], t["Value"]) for t in s.get("Tags", [])),
                "Parameters": sorted((p["ParameterKey"], p.get("ParameterValue")) for p in s.get("Parameters", [])),
                "LastUpdatedTime": s.get("LastUpdatedTime"),
                "Template": cfn.get_template(StackName=s["StackId"])["TemplateBody"]}

    def stacks(self, region: str = DR) -> list[str]:
        return sorted(s["StackName"] for s in self.client("cloudformation", region).describe_stacks()["Stacks"]
                      if s["StackStatus"] != "DELETE_COMPLETE")

    def instances(self, region: str = DR) -> list[str]:
        return sorted(i["DBInstanceIdentifier"] for i in self.client("rds", region).describe_db_instances()["DBInstances"])

    def journal(self, run_id: str) -> dict:
        return LocalStore(self.state).get_json(f"journals/{run_id}.json")

    def runbook(self, name: str, text: str) -> Path:
        path = self.tmp / name
        path.write_text(text)
        return path


@pytest.fixture
def world(sandbox, tmp_path, capsys) -> World:
    urllib.request.urlopen(urllib.request.Request(f"{sandbox}/moto-api/reset", method="POST"), timeout=10)
    W.seed(AwsSession(endpoint_url=sandbox))
    w = World(sandbox, tmp_path, capsys)
    w.configure()
    w.backup()
    return w


def _run_id(out: Out) -> str:
    return out.out.split()[1].rstrip(":")


def rfc2136(bind_server, ttl: int = 60) -> str:
    return (f"dns: {{provider: rfc2136, zone: {bind_server.zone}, record: {PRODUCTION}, ttl: {ttl}, server: 127.0.0.1, "
            f"port: {bind_server.port}, tsig: {{name: {bind_server.key_name}, algorithm: hmac-sha256, "
            "secret: {env: DR_TEST_TSIG}}}\n")


def health_at(server: HealthServer, timeout: str = "1m", query: str = "") -> str:
    return (f'health: {{url: "{server.url()}{query}", consecutive: 2, interval: 1s, '
            f"timeout: {timeout}}}\n")


class StopsBind(HealthServer):
    """A health endpoint that takes the DNS server down the first time it is asked: the failover
    then fails at the flip, after the health check passed (an outage of the GSLB)."""

    def __init__(self, bind_server):
        super().__init__("healthy")
        self.bind_server, self.stopped = bind_server, False

    def status_for(self, path: str) -> int:
        if not self.stopped:
            self.stopped = True
            self.bind_server.stop()
        return super().status_for(path)


# --- 1. a drill never updates, tags or deletes what it did not create --------------------------------


def _hostile_drill(world: World, name: str) -> Path:
    text = (SHIPPED / "drill.yaml").read_text().replace(
        "      snapshot: ${steps.db.snapshot_id}   # into stack.snapshot_parameter, when dr.yaml sets one",
        f"      snapshot: ${{steps.db.snapshot_id}}\n      name: {name}")
    assert f"name: {name}" in text
    return world.runbook(f"hostile-{name}.yaml", text)


def test_a_drill_pointed_at_the_production_stack_changes_nothing_and_deletes_nothing(world):
    # after a real failover, production lives in the DR region: the drill's region
    assert world.dr("restore", "--to-region", DR, "--yes").code == 0
    production = world.stack("acme-web")
    cfn = world.client("cloudformation")
    cfn.create_stack(StackName="legacy-web", TemplateBody=W.TEMPLATE.read_text(),
                     Tags=[{"Key": "team", "Value": "web"}])
    legacy = world.stack("legacy-web")
    for name, words in (("acme-web", "must not launch, update or delete the production stack acme-web"),
                        ("legacy-web", "stack legacy-web already exists in us-west-2 and was not created by "
                                       "this drill (it carries no dr:run tag")):
        out = world.dr("drill", "--runbook", str(_hostile_drill(world, name)))
        assert out.code == 1, out
        assert words in out.out
    assert world.stack("acme-web") == production  # same id, status, tags, parameters, template
    assert world.stack("legacy-web") == legacy
    assert not [s for s in world.stacks() if "drill" in s]
    assert world.instances() == ["acme-prod-db-dr"]  # the drills' own databases are gone


def test_a_drill_refuses_the_production_name_even_where_production_does_not_run(world):
    out = world.dr("drill", "--runbook", str(_hostile_drill(world, "acme-web")))
    assert out.code == 1 and "this is a drill: it must not launch" in out.out
    assert world.stacks() == [] and world.instances() == []


# --- 2. resume never flips DNS on a health pass from an earlier session ----------------------------


def test_resume_runs_the_health_gate_again_before_dns_moves(world, bind):
    health = StopsBind(bind)
    world.configure(health=health_at(health, timeout="3s"), dns=rfc2136(bind))
    first = world.dr("restore", "--to-region", DR, "--yes")
    assert first.code == 1 and "cannot reach the name server" in first.out, first
    run_id = _run_id(first)
    bind.start()
    assert bind.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"]

    health.mode = "unhealthy"  # an hour later the DR site answers 503
    second = world.dr("restore", "--resume", run_id, "--to-region", DR, "--yes")
    assert second.code == 1, second
    assert bind.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"]  # not moved onto a dead target
    doc = world.journal(run_id)
    health_events = [e for e in doc["events"] if e["step"] == "health" and e["session"] == 2]
    assert [e["to"] for e in health_events] == ["pending", "running", "failed"]
    assert doc["steps"]["flip"]["status"] == "skipped"

    health.mode = "healthy"
    third = world.dr("restore", "--resume", run_id, "--to-region", DR, "--yes")
    assert third.code == 0, third
    assert bind.dig(PRODUCTION) == ["127.0.0.1"]
    steps = world.journal(run_id)["steps"]
    assert steps["health"]["outputs"]["session"] == 3 and steps["flip"]["outputs"]["health_step"] == "health"


# --- 3. a drill resumed after its teardown checks the stack it relaunched --------------------------


def test_a_drill_resumed_after_its_teardown_checks_the_new_stack_not_the_old_one(world, bind):
    health = StopsBind(bind)
    world.configure(health=health_at(health, query="?site={stack.WebsiteURL}"), dns=rfc2136(bind))
    first = world.dr("drill")
    assert first.code == 1, first
    run_id = _run_id(first)
    old = world.journal(run_id)["steps"]
    assert not [s for s in world.stacks() if "drill" in s]  # torn down after the failure
    bind.start()
    resumed = world.dr("--output", "json", "drill", "--resume", run_id)
    assert resumed.code == 0, resumed
    steps = world.journal(run_id)["steps"]
    assert steps["stack"]["outputs"]["stack_id"] != old["stack"]["outputs"]["stack_id"]  # relaunched
    assert steps["health"]["outputs"]["session"] == 2
    assert steps["stack"]["outputs"]["WebsiteURL"] in steps["health"]["outputs"]["url"]  # the new stack
    assert old["stack"]["outputs"]["WebsiteURL"] not in steps["health"]["outputs"]["url"]
    assert steps["health"]["started_at"] >= steps["stack"]["finished_at"]
    assert resumed.doc["measured"]["met"] is True
    assert not [s for s in world.stacks() if "drill" in s] and world.instances() == []


# --- 8. readiness finds first what fails a failover last ------------------------------------------


def test_a_wrong_tsig_secret_is_found_before_anything_is_restored(world, bind, monkeypatch):
    world.configure(dns=rfc2136(bind))
    monkeypatch.setenv("DR_TEST_TSIG", "d3Jvbmcgc2VjcmV0IGZvciB0aGlzIGtleQ==")
    out = world.dr("restore", "--to-region", DR, "--yes")
    assert out.code == 1 and "aborted" in out.out
    assert "dns:read" in out.out and bind.key_name in out.out
    assert world.instances() == [] and world.stacks() == []  # nothing restored, nothing launched
    check = world.dr("validate", "--readiness")
    assert check.code == 3 and "[FAIL] dns:read" in check.out and "[FAIL] dns:write" in check.out


def test_a_weighted_production_record_is_refused_by_readiness_not_by_the_flip(world):
    r53 = world.client("route53", PRIMARY)
    zone = r53.list_hosted_zones_by_name(DNSName=W.ZONE)["HostedZones"][0]["Id"]
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
        {"Action": "DELETE", "ResourceRecordSet": {"Name": W.RECORD, "Type": "CNAME", "TTL": 60, "ResourceRecords": [
            {"Value": "acme-web-prod.us-east-1.elb.amazonaws.com"}]}}] + [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": W.RECORD, "Type": "CNAME", "TTL": 60, "SetIdentifier": sid,
                                                   "Weight": weight, "ResourceRecords": [{"Value": value}]}}
        for sid, weight, value in (("blue", 90, "blue.example.net"), ("green", 10, "green.example.net"))]})
    before = world.records()
    out = world.dr("restore", "--to-region", DR, "--yes")
    assert out.code == 1 and "dns:routing:simple" in out.out and "use mode: weighted" in out.out
    assert world.instances() == [] and world.stacks() == [] and world.records() == before


# --- 9. a failed failover says the way on; a rerun never advises deleting what it restored --------


def test_a_failed_failover_says_how_to_resume_and_a_rerun_says_to_resume_not_delete(world, bind):
    health = StopsBind(bind)
    world.configure(health=health_at(health), dns=rfc2136(bind))
    out = world.dr("--output", "json", "restore", "--to-region", DR, "--yes")
    assert out.code == 1
    doc = out.doc
    run_id = doc["run"]["run_id"]
    command = f"dr --config {world.path} restore --resume {run_id} --to-region {DR} --yes"
    assert doc["resume_command"] == command
    flip = doc["run"]["steps"]["flip"]
    assert flip["status"] == "failed" and flip["hint"] == "check dns.server and dns.port in dr.yaml"
    assert world.journal(run_id)["steps"]["flip"]["hint"] == flip["hint"]
    bind.start()
    again = world.dr("restore", "--to-region", DR, "--yes")  # the obvious thing to try at 3 a.m.
    assert again.code == 1
    assert (f"DB instance acme-prod-db-dr already exists in {DR}: it was made by run {run_id} (failover, failed)"
            in again.out)
    assert f"fix: resume that run instead, which adopts what it made: dr restore --resume {run_id}" in again.out
    assert "delete" not in again.out.lower()
    assert world.instances() == ["acme-prod-db-dr"]  # not a second one
    text = world.dr("restore", "--resume", run_id, "--to-region", DR, "--yes")
    assert text.code == 0 and bind.dig(PRODUCTION) == ["127.0.0.1"]


def test_step_hints_reach_the_text_output(world, bind):
    health = StopsBind(bind)
    world.configure(health=health_at(health), dns=rfc2136(bind))
    out = world.dr("restore", "--to-region", DR, "--yes")
    assert out.code == 1
    assert "fix: check dns.server and dns.port in dr.yaml" in out.out
    run_id = _run_id(out)
    assert (f"To go on from where it stopped (from any machine): dr --config {world.path} restore --resume "
            f"{run_id} --to-region {DR} --yes") in out.out


# --- 11. the RPO is only measured for a stack that runs on the restored data ------------------------


def test_a_drill_of_a_stack_with_a_database_of_its_own_is_refused_before_anything_runs(world):
    template = world.tmp / "own-db.yaml"
    template.write_text(W.TEMPLATE.read_text().replace("Resources:\n", """\
Resources:
  Database:
    Type: AWS::RDS::DBInstance
    Properties: {Engine: mysql, DBInstanceClass: db.t3.micro, AllocatedStorage: 5,
                 MasterUsername: admin, MasterUserPassword: sandboxpassword1}
""", 1))
    world.configure(stack=STACK.replace(str(W.TEMPLATE), str(template)).replace(
        "  snapshot_parameter: DBSnapshotIdentifier\n", ""))
    out = world.dr("drill")
    assert out.code == 2
    assert ("own-db.yaml creates its own database (Database (AWS::RDS::DBInstance)) and dr.yaml sets no "
            "stack.snapshot_parameter") in out.err
    assert world.instances() == [] and world.stacks() == []
    check = world.dr("validate", "--readiness")
    assert check.code == 3 and "[FAIL] template:restored-data" in check.out


# --- 13. RTO is two numbers ---------------------------------------------------------------------------


def test_rto_is_measured_to_healthy_and_to_traffic_moved(world):
    out = world.dr("--output", "json", "restore", "--to-region", DR, "--yes")
    assert out.code == 0
    measured, run = out.doc["measured"], out.doc["run"]
    flip = run["steps"]["flip"]["outputs"]
    assert flip["previous_ttl"] == 60 and flip["ttl_from"] == "previous values"  # www CNAME 60 before
    assert measured["rto_traffic_seconds"] >= measured["rto_seconds"] + 60
    record = RunStore(LocalStore(world.state)).load(run["run_id"])
    assert record.summary["rto_seconds"] == measured["rto_seconds"]
    assert record.summary["rto_traffic_seconds"] == measured["rto_traffic_seconds"]
    shown = world.dr("runs", "show", run["run_id"])
    assert f"RTO:      healthy {measured['rto_seconds']:.1f}s, traffic moved " \
           f"{measured['rto_traffic_seconds']:.1f}s (objective 1800s)" in shown.out


def test_a_drill_rehearses_the_traffic_rto_with_the_production_ttl_and_the_report_shows_both(world):
    out = world.dr("--output", "json", "drill")
    assert out.code == 0
    flip = out.doc["run"]["steps"]["flip"]["outputs"]
    assert flip["ttl_from"] == "production record" and flip["previous_ttl"] == 60
    measured, run_id = out.doc["measured"], out.doc["run"]["run_id"]
    shown = world.dr("runs", "show", run_id)  # RTO and RPO in text too, one value each
    assert f"RPO:      {measured['rpo_seconds']:.0f}s (objective 3600s" in shown.out
    as_json = world.dr("--output", "json", "runs", "show", run_id).out
    assert as_json.count('"rpo_seconds"') == 1  # not a second, different one under a step's outputs
    report = world.dr("report")
    assert "RTO HEALTHY" in report.out and "RTO TRAFFIC" in report.out


# --- 12. a real failover preempts a drill -------------------------------------------------------------


def _spawn_dr(world: World, *args: str, env: dict | None = None, host: str | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "dr", "--config", str(world.path), *args]
    if host:
        command = ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh", *command]
    return subprocess.Popen(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _wait_until(predicate, proc: subprocess.Popen | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"dr ended ({proc.returncode}) too early:\n{out.decode()}\n{err.decode()}")
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def _running_step(world: World, kind: str, step: str) -> str | None:
    """The id of a run of `kind` whose `step` is running now (journal in the local state dir)."""
    for path in sorted((world.state / "journals").glob(f"{kind}-*.json")) if (world.state / "journals").exists() else []:
        try:
            doc = json.loads(path.read_text())
        except ValueError:
            continue
        if doc["steps"].get(step, {}).get("status") == "running":
            return doc["run_id"]
    return None


def test_a_real_failover_preempts_a_running_drill_which_tears_itself_down(world, monkeypatch):
    slow = HealthServer("unhealthy")  # the drill's relaunched site never gets healthy
    drill_book = world.runbook("slow-drill.yaml", (SHIPPED / "drill.yaml").read_text().replace(
        "      stack: ${steps.stack}                # its outputs fill {stack.X} in health.url",
        f"      stack: ${{steps.stack}}\n      url: {slow.url()}\n      timeout: 2m"))
    env = {"DR_LEASE_SECONDS": "2"}
    drill = _spawn_dr(world, "drill", "--runbook", str(drill_book), env=env)
    _wait_until(lambda: _running_step(world, "drill", "health"), drill)
    drill_id = _running_step(world, "drill", "health")
    assert [s for s in world.stacks() if "drill" in s]

    monkeypatch.setenv("DR_LEASE_SECONDS", "2")
    out = world.dr("restore", "--to-region", DR, "--yes")
    assert out.code == 0, out
    assert f"Preempted drill {drill_id} (its lease was live)" in out.out
    drill_out, drill_err = drill.communicate(timeout=60)
    assert drill.returncode == 130, drill_err.decode()[-3000:]
    assert "This drill was preempted by failover" in drill_out.decode()
    assert not [s for s in world.stacks() if "drill" in s]  # it tore itself down
    assert world.stacks() == ["acme-web"] and world.instances() == ["acme-prod-db-dr"]
    runs = RunStore(LocalStore(world.state))
    failover_id = _run_id(out)
    assert runs.load(failover_id).summary["preempted"]["run_id"] == drill_id
    assert runs.load(drill_id).summary["preempted_by"].startswith(f"preempted by failover {failover_id}")
    slow.close()


# --- 4 and 5. a failover whose machine died, resumed from another; concurrent resumes -----------------


def _kill_in_health(world: World, host: str, env: dict) -> str:
    """Start a failover on `host` whose health check does not pass yet, SIGKILL it there."""
    proc = _spawn_dr(world, "restore", "--to-region", DR, "--yes", env=env, host=host)
    _wait_until(lambda: _running_step(world, "failover", "health"), proc)
    run_id = _running_step(world, "failover", "health")
    os.killpg(proc.pid, signal.SIGKILL)  # the machine dies: no finally, no journal write, no release
    proc.wait(timeout=10)
    return run_id


needs_unshare = pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/unshare").exists(),
                                   reason="needs root and unshare --uts to give a process another hostname")


@needs_unshare
def test_a_failover_killed_on_one_machine_is_resumed_from_another(world):
    health = HealthServer("unhealthy")
    world.configure(health=health_at(health))
    env = {"DR_LEASE_SECONDS": "4"}
    run_id = _kill_in_health(world, "machine-a", env)
    lease = LocalStore(world.state).get_json(lease_key("acme-web"))
    assert lease["owner"]["host"] == "machine-a" and not lease["released_at"]
    health.mode = "healthy"

    refused = _spawn_dr(world, "restore", "--resume", run_id, "--to-region", DR, "--yes", env=env, host="machine-b")
    out, err = refused.communicate(timeout=60)
    assert refused.returncode == 1
    assert f"run {run_id} is still going on" in err.decode() and "on machine-a" in err.decode()
    assert "--take-over" in err.decode()

    time.sleep(4.5)  # machine-a's lease expires: no heartbeat renews it
    resumed = _spawn_dr(world, "restore", "--resume", run_id, "--to-region", DR, "--yes", env=env, host="machine-b")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err.decode()[-3000:]
    assert f"LEASE: taking over run {run_id} (its lease expired at" in err.decode()  # loud, even when piped
    doc = world.journal(run_id)
    assert [(s["n"], s["host"]) for s in doc["sessions"]] == [(1, "machine-a"), (2, "machine-b")]
    assert doc["status"] == "completed"
    assert world.instances() == ["acme-prod-db-dr"] and world.stacks() == ["acme-web"]  # nothing twice
    assert [r["ResourceRecords"] for r in world.records() if r["Name"] == W.RECORD] == [[{"Value": "127.0.0.1"}]]
    health.close()


@needs_unshare
def test_two_machines_resuming_the_same_failover_at_once_one_runs(world, sandbox):
    health = HealthServer("unhealthy")
    world.configure(health=health_at(health))
    env = {"DR_LEASE_SECONDS": "30"}
    for trial in range(3):
        if trial:
            urllib.request.urlopen(urllib.request.Request(f"{sandbox}/moto-api/reset", method="POST"), timeout=10)
            W.seed(world.session)
            world.backup()
        health.mode = "unhealthy"
        run_id = _kill_in_health(world, "machine-a", env)
        health.mode = "healthy"
        racers = [_spawn_dr(world, "restore", "--resume", run_id, "--to-region", DR, "--yes", "--take-over",
                            env=env, host=host) for host in ("machine-b", "machine-c")]
        results = [(p.wait(timeout=180), p.stderr.read().decode()) for p in racers]
        codes = sorted(code for code, _ in results)
        assert codes == [0, 1], results
        loser = next(err for code, err in results if code == 1)
        assert "taken over moments ago by another session" in loser or "is still going on" in loser, loser
        doc = world.journal(run_id)
        assert doc["status"] == "completed" and len(doc["sessions"]) == 2, doc["sessions"]
        assert world.instances() == ["acme-prod-db-dr"] and world.stacks() == ["acme-web"]
    health.close()


# --- AWS's own sample templates through drill and failover, unchanged ----------------------------------

WEB_TIER = """\
version: 1
name: {name}
description: the web tier only; the template brings its own database (no rds.restore)
steps:
  - {{id: ready, type: readiness, with: {{resources: []}}}}
  - {{id: stack, type: stack.launch, needs: [ready]}}
  - {{id: health, type: http.wait_healthy, with: {{stack: "${{steps.stack}}"}}, rto_end: true}}
  - {{id: flip, type: dns.flip, with: {{target: "${{steps.health.host}}"}}}}
{cleanup}"""
CLEANUP = """\
  - {id: cleanup, type: teardown, needs: [flip]}
  - {id: check-clean, type: teardown, with: {at: failure, delete: false}}
"""


def sample(name: str) -> Path:
    from tests.conftest import fixtures_dir

    base = fixtures_dir()
    path = base / "cloudformation" / name if base else None
    if path is None or not path.is_file():
        pytest.skip(f"the shared fixture cloudformation/{name} is absent (../shared/fixtures or $DR_FIXTURES)")
    return path


def _dr_network(world: World) -> tuple[str, list[str]]:
    ec2 = world.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]][:2]
    ec2.create_key_pair(KeyName="acme-usw2")
    return vpc, subnets


def _web_tier(world: World, kind: str) -> Path:
    name = f"web-{kind}"
    return world.runbook(f"{name}.yaml", WEB_TIER.format(name=name, cleanup=CLEANUP if kind == "drill" else ""))


def test_rds_mysql_with_read_replica_drill_removes_the_retained_replica_and_the_final_snapshot(world):
    world.configure(stack=f"""\
stack:
  name: acme-db
  template: "{sample('RDS_MySQL_With_Read_Replica.yaml')}"
  parameters: {{DBUser: admin, DBInstanceClass: db.t3.micro}}
""")
    shipped = world.dr("drill")  # the shipped drill restores app-db: this template would not use it
    assert shipped.code == 2 and "creates its own database (MainDB (AWS::RDS::DBInstance))" in shipped.err
    out = world.dr("--output", "json", "drill", "--runbook", str(_web_tier(world, "drill")))
    # completed and torn down; it restored no data, so its RPO is not applicable (not "met")
    assert out.code == 0 and out.doc["run"]["status"] == "completed", out.err[-3000:]
    measured = out.doc["measured"]
    assert measured["rpo_seconds"] is None and measured["rpo_status"] == "not applicable" and measured["met"]
    run_id = out.doc["run"]["run_id"]
    ledger = world.journal(run_id)["created"]
    replica = next(e for e in ledger if e.get("logical_id") == "ReplicaDB")
    assert replica["kind"] == "rds-instance" and replica["deletion_policy"] == "Retain"
    snapshot = next(e for e in ledger if e["kind"] == "rds-instance-snapshot")
    assert snapshot["source"] == next(e for e in ledger if e.get("logical_id") == "MainDB")["id"]
    assert world.instances() == []  # the retained replica is gone too
    assert world.client("rds").describe_db_snapshots(SnapshotType="manual")["DBSnapshots"] == [
        s for s in world.client("rds").describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
        if s["DBSnapshotIdentifier"].startswith("dr-")]  # only dr's own backups are left
    assert not [s for s in world.stacks() if "drill" in s]


def test_rds_mysql_with_read_replica_fails_over_as_the_web_tier(world):
    world.configure(stack=f"""\
stack:
  name: acme-db
  template: "{sample('RDS_MySQL_With_Read_Replica.yaml')}"
  parameters: {{DBUser: admin, DBInstanceClass: db.t3.micro}}
""")
    assert world.dr("restore", "--to-region", DR, "--yes").code == 2  # its own database: refused
    out = world.dr("restore", "--to-region", DR, "--yes", "--runbook", str(_web_tier(world, "failover")))
    assert out.code == 0, out.err[-3000:]
    assert world.stacks() == ["acme-db"] and len(world.instances()) == 2  # MainDB and its replica


def test_wordpress_drill_and_failover_with_its_password_from_secrets_manager(world, capsys):
    password = "Wp-s3cr3t-VALUE-9f27"
    world.client("secretsmanager").create_secret(Name="acme/wordpress",
                                                 SecretString=json.dumps({"password": password}))
    vpc, subnets = _dr_network(world)
    world.configure(stack=f"""\
stack:
  name: acme-web
  template: "{sample('WordPress_Multi_AZ.yaml')}"
  parameters:
    DBUser: admin
    DBPassword: {{secretsmanager: acme/wordpress, key: password}}
    MultiAZDatabase: "false"
  dr_parameters: {{KeyName: acme-usw2, VpcId: {vpc}, Subnets: "{','.join(subnets)}"}}
""")
    assert world.dr("drill").code == 2  # WordPress creates its own database: the shipped drill is refused
    drill = world.dr("drill", "--runbook", str(_web_tier(world, "drill")))
    assert drill.code == 0 and "RPO not applicable (the runbook restores no data)" in drill.out, drill.out
    assert world.stacks() == [] and world.instances() == []
    failover = world.dr("restore", "--to-region", DR, "--yes", "--runbook", str(_web_tier(world, "failover")))
    assert failover.code == 0, failover.err[-3000:]
    from moto.cloudformation.models import cloudformation_backends

    (stack,) = [s for s in cloudformation_backends["123456789012"][DR].stacks.values()
                if s.name == "acme-web" and s.status != "DELETE_COMPLETE"]
    assert stack.resource_map.resolved_parameters["DBPassword"] == password  # read in the DR region
    assert ("DBPassword", "****") in world.stack("acme-web")["Parameters"]  # NoEcho, as AWS shows it
    plan = world.dr("runbook", "plan", "--runbook", str(_web_tier(world, "failover")))
    written = [p.read_text() for p in world.state.rglob("*.json")] + [drill.out, drill.err, failover.out,
                                                                        failover.err, plan.out, plan.err]
    assert not [w for w in written if password in w]  # not in a journal, record, plan, log or output


def test_autoscaling_multi_az_drill_and_failover_with_the_shipped_runbooks(world):
    vpc, subnets = _dr_network(world)
    ec2 = world.client("ec2")
    group = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    key = world.client("kms").create_key()["KeyMetadata"]["Arn"]
    certificate = world.client("acm").request_certificate(DomainName="www.acme.example")["CertificateArn"]
    world.configure(stack=f"""\
stack:
  name: acme-asg
  template: "{sample('AutoScalingMultiAZWithNotifications.yaml')}"
  parameters: {{OperatorEMail: ops@example.com}}
  dr_parameters: {{KeyName: acme-usw2, KmsKeyArn: "{key}", CertificateArn: "{certificate}",
                  SecurityGroups: {group}, Subnets: "{','.join(subnets)}", AZs: "{DR}a,{DR}b", VPC: {vpc}}}
""")
    drill = world.dr("--output", "json", "drill")
    assert drill.code == 0, drill.err[-3000:]
    assert drill.doc["measured"]["met"] is True
    assert world.stacks() == [] and world.instances() == []
    failover = world.dr("restore", "--to-region", DR, "--yes")
    assert failover.code == 0, failover.out[-3000:]
    assert world.stacks() == ["acme-asg"] and world.instances() == ["acme-prod-db-dr"]
    assert [r["ResourceRecords"] for r in world.records() if r["Name"] == W.RECORD] == [[{"Value": "127.0.0.1"}]]


# --- 6 and 7. failback leaves an intact production alone and puts DNS back exactly -------------------


def _production_stack(world: World) -> None:
    """The production stack in us-east-1, launched by the company itself (not by dr), with a
    parameter dr.yaml does not set (InstanceType) and its own tags."""
    cfn = world.client("cloudformation", PRIMARY)
    cfn.create_stack(StackName="acme-web", TemplateBody=W.TEMPLATE.read_text(),
                     Parameters=[{"ParameterKey": "InstanceType", "ParameterValue": "t3.large"},
                                 {"ParameterKey": "DBSnapshotIdentifier", "ParameterValue": "prod-db-2026-11"}],
                     Tags=[{"Key": "team", "Value": "web"}, {"Key": "cost-center", "Value": "42"}])


def test_failover_then_failback_leaves_the_intact_production_stack_and_dns_exactly_as_they_were(world):
    world.configure(stack=STACK.replace("  parameters: {InstanceType: t3.small}\n", ""))
    _production_stack(world)
    stack_before, dns_before = world.stack("acme-web", PRIMARY), world.records()
    failover = world.dr("restore", "--to-region", DR, "--yes")
    assert failover.code == 0, failover.out
    assert world.records() != dns_before  # moved to the DR region
    back = world.dr("--output", "json", "restore", "--failback", "--to-region", PRIMARY, "--yes")
    assert back.code == 0, back.out[-3000:]
    assert back.doc["run"]["steps"]["dns"]["outputs"]["health_step"] == "health"  # after a fresh health pass
    assert world.stack("acme-web", PRIMARY) == stack_before  # id, status, tags, parameters, template
    assert world.records() == dns_before  # CNAME, TTL 60, value: field by field
    assert world.stack("acme-web")["Tags"] != stack_before["Tags"]  # the DR copy has dr's tags, production not


def test_failback_updates_only_what_dr_sets_keeping_tags_and_other_parameters(world):
    world.configure(stack=STACK.replace("{InstanceType: t3.small}", "{InstanceType: t3.medium}"))
    _production_stack(world)
    before = world.stack("acme-web", PRIMARY)
    assert world.dr("restore", "--to-region", DR, "--yes").code == 0
    back = world.dr("restore", "--failback", "--to-region", PRIMARY, "--yes")
    assert back.code == 0, back.out[-3000:]
    after = world.stack("acme-web", PRIMARY)
    assert after["StackId"] == before["StackId"] and after["Tags"] == before["Tags"]  # never dr's tags
    parameters = dict(after["Parameters"])
    assert parameters["InstanceType"] == "t3.medium"  # what dr.yaml sets
    assert parameters["DBSnapshotIdentifier"] == "prod-db-2026-11"  # kept, not the template's Default ""


def test_failback_refuses_without_a_failover_to_undo(world):
    out = world.dr("restore", "--failback", "--to-region", PRIMARY, "--yes")
    assert out.code == 2 and "no completed failover run saved the previous values of www.acme.example." in out.err


def test_failover_then_failback_with_rfc2136_puts_every_record_back(world, bind):
    world.configure(dns=rfc2136(bind))
    _production_stack(world)
    before = bind.dig(PRODUCTION, full=True) + bind.dig(PRODUCTION, "TXT", full=True)
    assert world.dr("restore", "--to-region", DR, "--yes").code == 0
    assert bind.dig(PRODUCTION) == ["127.0.0.1"]
    back = world.dr("restore", "--failback", "--to-region", PRIMARY, "--yes")
    assert back.code == 0, back.out[-3000:]
    assert bind.dig(PRODUCTION, full=True) + bind.dig(PRODUCTION, "TXT", full=True) == before  # TTL 120, both A


# --- a drill asks only the services it used (an emulator without RDS, a narrow IAM role) -------------


def test_a_drill_without_databases_never_asks_rds(world, monkeypatch):
    text = world.path.read_text()
    start, end = text.index("rds:\n"), text.index("s3:\n")
    world.path.write_text(text[:start] + text[end:])  # no rds entries; the LAMP template has no database
    calls: list[str] = []
    original = AwsSession._make_session

    def recording(self):
        session = original(self)
        session.events.register("before-call", lambda model, **kw: calls.append(
            f"{model.service_model.endpoint_prefix}:{model.name}"))
        return session

    monkeypatch.setattr(AwsSession, "_make_session", recording)
    out = world.dr("drill", "--runbook", str(_web_tier(world, "drill")))
    assert out.code == 0 and "RPO not applicable" in out.out, out  # completed, torn down; no data: no RPO
    assert any(c.startswith("cloudformation:") for c in calls) and any(c.startswith("route53:") for c in calls)
    assert not [c for c in calls if c.startswith("rds:")]
    assert world.stacks() == []
