"""dns.flip and dns.restore on Route 53 (a moto server process): each flip and each restore is
checked by reading the record sets back with boto3."""

from __future__ import annotations

import pytest

from dr.dns import make_provider
from dr.errors import ConfigError, OperationFailed
from dr.runbook.steps.base import AbortRun
from dr.runbook.steps.dns import DnsFlip, DnsRestore
from dr.runbook.steps.dns_safety import previous_key
from dr.runbook.steps.http import WaitHealthy
from tests.support.step_calls import AsRun

from tests.integration.runbook.test_health import BASE_CONFIG, health_server, make_ctx  # noqa: F401 - fixture

pytestmark = [pytest.mark.integration, pytest.mark.localstack]

ZONE = "example.com."
WWW = "www.example.com."
CONFIG = BASE_CONFIG + "dns: {provider: route53, zone: example.com., record: www.example.com., ttl: 60}\n"
RUN = "run-20260101T000000Z-a1b2"


@pytest.fixture
def r53(boto):
    return boto("route53", "us-east-1")


@pytest.fixture
def zone_id(r53):
    return r53.create_hosted_zone(Name=ZONE, CallerReference="test")["HostedZone"]["Id"].rsplit("/", 1)[-1]


def upsert(r53, zone_id, *rrsets):
    r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": r} for r in rrsets]})


def record_sets(r53, zone_id, name=WWW):
    """The A/AAAA/CNAME sets at `name`, as Route 53 lists them, in a stable order."""
    sets = [r for r in r53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
            if r["Name"] == name and r["Type"] in ("A", "AAAA", "CNAME")]
    for r in sets:
        r.get("ResourceRecords", []).sort(key=lambda v: v["Value"])
    return sorted(sets, key=lambda r: (r["Type"], r.get("SetIdentifier", "")))


def health_check(r53, name="hc"):
    return r53.create_health_check(CallerReference=name, HealthCheckConfig={
        "Type": "HTTP", "IPAddress": "192.0.2.1", "Port": 80, "ResourcePath": "/health"})["HealthCheck"]["Id"]


def passed(tmp_path, server, endpoint, host="127.0.0.1", **kw):
    """Run http.wait_healthy for real against `server`; returns the outputs a flip sees."""
    ctx = make_ctx(CONFIG, tmp_path, endpoint=endpoint, step_id="health", **kw)
    out = WaitHealthy().execute({"url": server.url(host), "consecutive": 2, "interval": 0.05}, ctx)
    return {"health": out}


def timeless(outputs):
    """A DNS step's outputs without the moment they were taken (in_sync_at, traffic_moved_at)."""
    return {k: v for k, v in outputs.items() if k not in ("in_sync_at", "traffic_moved_at")}


def flip_ctx(tmp_path, endpoint, outputs, **kw):
    return make_ctx(CONFIG, tmp_path, endpoint=endpoint, step_id="flip", outputs=outputs, **kw)


SIMPLE_WWW = {"Name": WWW, "Type": "A", "TTL": 300,
              "ResourceRecords": [{"Value": "192.0.2.1"}, {"Value": "192.0.2.2"}]}


def test_simple_flip_then_restore_puts_back_ttl_type_and_every_value(r53, zone_id, endpoint, tmp_path,
                                                                      health_server):
    upsert(r53, zone_id, SIMPLE_WWW)
    before = record_sets(r53, zone_id)
    ctx = flip_ctx(tmp_path, endpoint, passed(tmp_path, health_server, endpoint))

    out = AsRun(DnsFlip).execute({"target": "127.0.0.1"}, ctx)

    assert record_sets(r53, zone_id) == [{"Name": WWW, "Type": "A", "TTL": 60,
                                          "ResourceRecords": [{"Value": "127.0.0.1"}]}]
    assert out["record"] == WWW and out["values"] == ["127.0.0.1"] and out["type"] == "A"
    assert out["health_step"] == "health" and out["provider"] == "route53"
    saved = ctx.store.get_json(previous_key(WWW, RUN))
    assert saved["state"] == out["previous"] and out["previous_key"] == "dns/www.example.com/previous-" + RUN + ".json"

    restored = AsRun(DnsRestore).execute({"previous": out["previous"]}, ctx)
    assert record_sets(r53, zone_id) == before
    assert sorted(restored["values"]) == ["192.0.2.1", "192.0.2.2"]


def test_flip_to_a_host_name_writes_a_cname_and_restore_brings_the_a_record_back(r53, zone_id, endpoint,
                                                                                  tmp_path, health_server):
    upsert(r53, zone_id, SIMPLE_WWW)
    before = record_sets(r53, zone_id)
    ctx = flip_ctx(tmp_path, endpoint, passed(tmp_path, health_server, endpoint, host="localhost"))
    AsRun(DnsFlip).execute({"target": f"http://localhost:{health_server.port}/", "ttl": 30}, ctx)
    assert record_sets(r53, zone_id) == [{"Name": WWW, "Type": "CNAME", "TTL": 30,
                                          "ResourceRecords": [{"Value": "localhost."}]}]
    AsRun(DnsRestore).execute({}, ctx)  # from the state store: this run's saved values
    assert record_sets(r53, zone_id) == before


def test_failover_pair_flip_and_exact_restore(r53, zone_id, endpoint, tmp_path, health_server):
    east, west = health_check(r53, "east"), health_check(r53, "west")
    upsert(r53, zone_id,
           {"Name": WWW, "Type": "A", "TTL": 60, "SetIdentifier": "us-east-1", "Failover": "PRIMARY",
            "HealthCheckId": east, "ResourceRecords": [{"Value": "192.0.2.1"}]},
           {"Name": WWW, "Type": "A", "TTL": 120, "SetIdentifier": "static", "Failover": "SECONDARY",
            "HealthCheckId": west, "ResourceRecords": [{"Value": "192.0.2.50"}, {"Value": "192.0.2.51"}]})
    before = record_sets(r53, zone_id)
    ctx = flip_ctx(tmp_path, endpoint, passed(tmp_path, health_server, endpoint))

    out = AsRun(DnsFlip).execute({"target": "127.0.0.1", "mode": "failover", "health_check": "auto"}, ctx)

    created = out["health_check_id"]
    assert out["health_check_created"] is True and created not in (east, west)
    config = r53.get_health_check(HealthCheckId=created)["HealthCheck"]["HealthCheckConfig"]
    assert (config["IPAddress"], config["Port"], config["ResourcePath"]) == ("127.0.0.1", health_server.port,
                                                                             "/health")
    assert out["health_check_status"] == "healthy"
    assert record_sets(r53, zone_id) == [
        {"Name": WWW, "Type": "A", "SetIdentifier": "dr-us-west-2", "Failover": "PRIMARY", "TTL": 60,
         "ResourceRecords": [{"Value": "127.0.0.1"}], "HealthCheckId": created},
        {"Name": WWW, "Type": "A", "SetIdentifier": "us-east-1", "Failover": "SECONDARY", "TTL": 60,
         "ResourceRecords": [{"Value": "192.0.2.1"}], "HealthCheckId": east},
    ]
    # a rerun (say after a crash) finds its health check and changes nothing
    assert timeless(AsRun(DnsFlip).check({"target": "127.0.0.1", "mode": "failover", "health_check": "auto"},
                                    ctx)) == timeless(out)
    again = AsRun(DnsFlip).execute({"target": "127.0.0.1", "mode": "failover", "health_check": "auto"}, ctx)
    assert timeless(again) == timeless(out)
    assert len(r53.list_health_checks()["HealthChecks"]) == 3

    AsRun(DnsRestore).execute({"previous": out["previous"]}, ctx)
    assert record_sets(r53, zone_id) == before


def test_weighted_flip_moves_all_weight_and_restore_puts_weights_back(r53, zone_id, endpoint, tmp_path,
                                                                       health_server):
    upsert(r53, zone_id,
           {"Name": WWW, "Type": "A", "TTL": 60, "SetIdentifier": "east", "Weight": 70,
            "ResourceRecords": [{"Value": "192.0.2.1"}]},
           {"Name": WWW, "Type": "A", "TTL": 60, "SetIdentifier": "west", "Weight": 30,
            "ResourceRecords": [{"Value": "192.0.2.2"}]})
    before = record_sets(r53, zone_id)
    ctx = flip_ctx(tmp_path, endpoint, passed(tmp_path, health_server, endpoint))
    AsRun(DnsFlip).execute({"target": "127.0.0.1", "mode": "weighted", "set_identifier": "dr"}, ctx)
    weights = {r["SetIdentifier"]: (r["Weight"], r["ResourceRecords"][0]["Value"]) for r in record_sets(r53, zone_id)}
    assert weights == {"dr": (100, "127.0.0.1"), "east": (0, "192.0.2.1"), "west": (0, "192.0.2.2")}
    AsRun(DnsRestore).execute({}, ctx)
    assert record_sets(r53, zone_id) == before  # the dr set is gone again, weights as they were


def test_flip_without_a_passed_health_check_is_refused_and_changes_nothing(r53, zone_id, endpoint, tmp_path):
    upsert(r53, zone_id, SIMPLE_WWW)
    before = record_sets(r53, zone_id)
    ctx = flip_ctx(tmp_path, endpoint, {"stack": {"WebsiteURL": "http://127.0.0.1/"}})
    with pytest.raises(OperationFailed) as err:
        AsRun(DnsFlip).execute({"target": "127.0.0.1"}, ctx)
    assert str(err.value).startswith("flip: refusing to point www.example.com. at 127.0.0.1: it has not passed "
                                     "http.wait_healthy in this session within 15m; no http.wait_healthy step has passed")
    assert "DNS was not changed" in str(err.value)
    assert isinstance(err.value, AbortRun)  # the engine ends the run `aborted`: retrying cannot help
    assert record_sets(r53, zone_id) == before
    assert ctx.store.get_json(previous_key(WWW, RUN)) is None


def test_health_check_of_another_host_does_not_count(r53, zone_id, endpoint, tmp_path, health_server):
    upsert(r53, zone_id, SIMPLE_WWW)
    ctx = flip_ctx(tmp_path, endpoint, passed(tmp_path, health_server, endpoint, host="localhost"))
    with pytest.raises(OperationFailed, match=r"were for: health \(localhost\)"):
        AsRun(DnsFlip).execute({"target": "127.0.0.1"}, ctx)
    assert record_sets(r53, zone_id)[0]["ResourceRecords"] == SIMPLE_WWW["ResourceRecords"]


def test_health_that_never_passes_leaves_dns_untouched(r53, zone_id, endpoint, tmp_path, health_server):
    """The runbook's order, step by step: http.wait_healthy fails, so its outputs never reach the
    flip, which then refuses."""
    upsert(r53, zone_id, SIMPLE_WWW)
    before = record_sets(r53, zone_id)
    health_server.mode = "unhealthy"
    outputs = {}
    with pytest.raises(OperationFailed, match="last answer: HTTP 503"):
        outputs["health"] = WaitHealthy().execute(
            {"url": health_server.url(), "timeout": 0.3, "interval": 0.05},
            make_ctx(CONFIG, tmp_path, endpoint=endpoint, step_id="health"))
    with pytest.raises(OperationFailed, match="has not passed http.wait_healthy"):
        AsRun(DnsFlip).execute({"target": "127.0.0.1"}, flip_ctx(tmp_path, endpoint, outputs))
    assert record_sets(r53, zone_id) == before


def test_drill_flips_only_a_drill_record_and_teardown_deletes_it(r53, zone_id, endpoint, tmp_path,
                                                                  health_server):
    upsert(r53, zone_id, SIMPLE_WWW)
    before = record_sets(r53, zone_id)
    outputs = passed(tmp_path, health_server, endpoint, drill=True)
    ctx = flip_ctx(tmp_path, endpoint, outputs, drill=True)

    with pytest.raises(ConfigError, match="must not change the production record www.example.com."):
        AsRun(DnsFlip).execute({"target": "127.0.0.1", "record": WWW}, ctx)
    with pytest.raises(ConfigError, match="changes only drill records"):
        AsRun(DnsFlip).execute({"target": "127.0.0.1", "record": "api.example.com."}, ctx)
    assert record_sets(r53, zone_id) == before

    out = AsRun(DnsFlip).execute({"target": "127.0.0.1", "mode": "failover", "health_check": "auto"}, ctx)
    drill = "drill-a1b2.example.com."
    assert out["record"] == drill and out["previous"] == {"format": 1, "name": drill, "sets": []}
    (primary,) = record_sets(r53, zone_id, drill)
    assert primary["ResourceRecords"] == [{"Value": "127.0.0.1"}] and primary["Failover"] == "PRIMARY"
    assert record_sets(r53, zone_id) == before  # production untouched

    with pytest.raises(ConfigError, match="production record"):
        AsRun(DnsFlip).teardown({}, {**out, "record": WWW}, ctx)
    AsRun(DnsFlip).teardown({}, out, ctx)
    assert record_sets(r53, zone_id, drill) == []
    assert r53.list_health_checks()["HealthChecks"] == []
    assert record_sets(r53, zone_id) == before
    AsRun(DnsFlip).teardown({}, out, ctx)  # twice is fine


def test_check_sees_a_finished_flip_and_rerun_keeps_the_first_previous(r53, zone_id, endpoint, tmp_path,
                                                                        health_server):
    upsert(r53, zone_id, SIMPLE_WWW)
    ctx = flip_ctx(tmp_path, endpoint, passed(tmp_path, health_server, endpoint))
    assert AsRun(DnsFlip).check({"target": "127.0.0.1"}, ctx) is None  # not done yet
    first = AsRun(DnsFlip).execute({"target": "127.0.0.1"}, ctx)
    done = AsRun(DnsFlip).check({"target": "127.0.0.1"}, ctx)
    assert timeless(done) == timeless(first)
    assert sorted(v for s in done["previous"]["sets"] for v in s["values"]) == ["192.0.2.1", "192.0.2.2"]
    again = AsRun(DnsFlip).execute({"target": "127.0.0.1"}, ctx)  # the engine redoes an in-flight step
    assert again["previous"] == first["previous"]  # still the values from before the run
    assert AsRun(DnsFlip).check({"target": "127.0.0.1", "ttl": 30}, ctx) is None  # a different flip is not done


def test_failback_restores_from_the_failover_runs_saved_values(r53, zone_id, endpoint, tmp_path, health_server):
    upsert(r53, zone_id, SIMPLE_WWW)
    before = record_sets(r53, zone_id)
    failover = flip_ctx(tmp_path, endpoint, passed(tmp_path, health_server, endpoint))
    AsRun(DnsFlip).execute({"target": "127.0.0.1"}, failover)

    later = make_ctx(CONFIG, tmp_path, endpoint=endpoint, run_id="run-20260102T000000Z-c3d4", step_id="back")
    with pytest.raises(OperationFailed, match="no saved previous values of www.example.com. from run run-2026"
                                              "0102T000000Z-c3d4"):
        AsRun(DnsRestore).execute({}, later)
    assert AsRun(DnsRestore).check({"run": RUN}, later) is None
    with pytest.raises(OperationFailed, match=r"refusing to change www.example.com.: no http.wait_healthy step"):
        AsRun(DnsRestore).execute({"run": RUN}, later)  # failback needs a fresh health pass by default
    with pytest.raises(OperationFailed, match=r"refusing to point www.example.com. at 192.0.2.[12]"):
        AsRun(DnsRestore).execute({"run": RUN, "match_targets": True}, later)
    out = AsRun(DnsRestore).execute({"run": RUN, "require_healthy": False}, later)
    assert record_sets(r53, zone_id) == before
    assert out["replaced"]["sets"][0]["values"] == ["127.0.0.1"]
    assert AsRun(DnsRestore).check({"run": RUN}, later)["record"] == WWW


def test_wait_in_sync_polls_until_route53_says_insync(r53, zone_id, endpoint, tmp_path, health_server):
    """Route 53 answers PENDING first (injected: moto is always INSYNC); the flip waits via ctx.wait."""
    from botocore.awsrequest import AWSResponse

    from tests.integration.conftest import FakeRaw

    upsert(r53, zone_id, SIMPLE_WWW)
    ctx = flip_ctx(tmp_path, endpoint, passed(tmp_path, health_server, endpoint))
    waits, calls = [], []
    ctx.wait = waits.append
    body = (b'<?xml version="1.0"?><GetChangeResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
            b"<ChangeInfo><Id>/change/C1</Id><Status>PENDING</Status>"
            b"<SubmittedAt>2026-01-01T00:00:00Z</SubmittedAt></ChangeInfo></GetChangeResponse>")

    def pending_once(request, **kwargs):
        calls.append(request.url)
        if len(calls) == 1:
            return AWSResponse(request.url, 200, {"Content-Type": "text/xml"}, FakeRaw(body))
        return None

    ctx.session.boto_session.events.register("before-send.route-53.GetChange", pending_once)
    AsRun(DnsFlip).execute({"target": "127.0.0.1"}, ctx)
    assert len(calls) == 2 and waits == [5.0]


# --- readiness: read-only probes -------------------------------------------------------------------


def readiness(tmp_path, endpoint, record=WWW, mode="simple"):
    ctx = make_ctx(CONFIG, tmp_path, endpoint=endpoint)
    probes = make_provider(ctx.config.dns, session=ctx.session).readiness(record, mode)
    assert [p.name for p in probes] == ["dns-read", "dns-record", "dns-routing"]  # no write probe on Route 53
    return {p.name: p for p in probes}


def test_readiness_simple_record_in_simple_mode_is_all_ok(r53, zone_id, endpoint, tmp_path):
    upsert(r53, zone_id, SIMPLE_WWW)
    before = record_sets(r53, zone_id)
    probes = readiness(tmp_path, endpoint)
    assert all(p.ok for p in probes.values()), probes
    assert probes["dns-read"].detail == (f"Route 53 hosted zone example.com. is {zone_id}, and dr's credentials "
                                         "can list its record sets")
    assert probes["dns-record"].detail == ("www.example.com. in route53 zone example.com. holds "
                                           "A 300s 192.0.2.1, 192.0.2.2")
    assert probes["dns-routing"].detail == "www.example.com. has simple routing, which a simple flip can change"
    assert record_sets(r53, zone_id) == before  # read only


def test_readiness_weighted_record_in_simple_mode_says_use_weighted(r53, zone_id, endpoint, tmp_path):
    upsert(r53, zone_id,
           {"Name": WWW, "Type": "A", "TTL": 60, "SetIdentifier": "east", "Weight": 70,
            "ResourceRecords": [{"Value": "192.0.2.1"}]},
           {"Name": WWW, "Type": "A", "TTL": 60, "SetIdentifier": "west", "Weight": 30,
            "ResourceRecords": [{"Value": "192.0.2.2"}]})
    probes = readiness(tmp_path, endpoint, mode="simple")
    assert probes["dns-read"].ok and probes["dns-record"].ok
    routing = probes["dns-routing"]
    assert not routing.ok
    assert routing.detail == ("www.example.com. has weighted record sets ([east weight 70] A 60s 192.0.2.1; "
                              "[west weight 30] A 60s 192.0.2.2); a simple flip would delete them\n"
                              "  fix: use mode: weighted on this record")
    assert readiness(tmp_path, endpoint, mode="weighted")["dns-routing"].ok
    failover = readiness(tmp_path, endpoint, mode="failover")["dns-routing"]
    assert not failover.ok and "use mode: weighted" in failover.detail


def test_readiness_missing_record_in_failover_mode_is_not_ok(r53, zone_id, endpoint, tmp_path):
    probes = readiness(tmp_path, endpoint, mode="failover")
    assert probes["dns-read"].ok
    record = probes["dns-record"]
    assert not record.ok
    assert record.detail.startswith("www.example.com. has no A, AAAA or CNAME record in route53 zone example.com.; "
                                    "a failover flip needs the record it moves traffic from")
    assert "fix: create www.example.com. with failover routing" in record.detail
    assert not readiness(tmp_path, endpoint, mode="weighted")["dns-record"].ok
    simple = readiness(tmp_path, endpoint, mode="simple")["dns-record"]
    assert simple.ok and "a simple flip will create it" in simple.detail


def test_readiness_failover_pair_in_failover_mode_is_ok(r53, zone_id, endpoint, tmp_path):
    upsert(r53, zone_id,
           {"Name": WWW, "Type": "A", "TTL": 60, "SetIdentifier": "us-east-1", "Failover": "PRIMARY",
            "HealthCheckId": health_check(r53), "ResourceRecords": [{"Value": "192.0.2.1"}]})
    probes = readiness(tmp_path, endpoint, mode="failover")
    assert all(p.ok for p in probes.values()), probes
    simple = readiness(tmp_path, endpoint, mode="simple")["dns-routing"]
    assert not simple.ok and simple.detail.endswith("fix: use mode: failover on this record")


def test_readiness_without_the_hosted_zone_fails_dns_read_and_skips_the_rest(r53, endpoint, tmp_path):
    probes = readiness(tmp_path, endpoint)
    assert not probes["dns-read"].ok
    assert probes["dns-read"].detail.startswith("read the Route 53 hosted zone example.com.: Route 53 has no "
                                                "hosted zone example.com. (dns.zone in dr.yaml)")
    assert [p.ok for p in probes.values()] == [False, False, False]
    assert probes["dns-record"].detail.startswith("not run: dns-read failed")


def test_readiness_of_a_record_outside_the_zone(r53, zone_id, endpoint, tmp_path):
    probes = readiness(tmp_path, endpoint, record="www.example.org.")
    assert probes["dns-read"].ok and not probes["dns-record"].ok
    assert "www.example.org. is not inside the zone example.com." in probes["dns-record"].detail
    assert probes["dns-routing"].detail.startswith("not run: the record could not be read")
