"""dns.flip and dns.restore with RFC 2136 + TSIG against a real BIND 9 (tests/bind.py); every
flip and restore is verified with `dig @127.0.0.1 -p PORT` and with dnspython."""

from __future__ import annotations

import base64

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.update
import pytest

from dr.dns import make_provider
from dr.errors import ConfigError, OperationFailed
from dr.runbook.steps.dns_steps import DnsFlip, DnsRestore
from dr.runbook.steps.http_steps import WaitHealthy
from tests.bind import PRODUCTION, bind  # noqa: F401 - fixture

from .test_dns_route53 import timeless
from .test_health import health_server, make_ctx  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

RUN = "run-20260101T000000Z-a1b2"


def ctx_for(bind, tmp_path, *, outputs=None, **kw):
    return make_ctx(bind.config_yaml("STATE"), tmp_path, step_id="flip", outputs=outputs, **kw)


def passed(bind, tmp_path, server, host="127.0.0.1", **kw):
    ctx = make_ctx(bind.config_yaml("STATE"), tmp_path, step_id="health", **kw)
    return {"health": WaitHealthy().execute({"url": server.url(host), "consecutive": 2, "interval": 0.05}, ctx)}


def answer(bind, name, rtype="A"):
    """dnspython's view, straight from the server (no recursion): sorted `ttl value` strings."""
    query = dns.message.make_query(name, rtype)
    query.flags &= ~dns.flags.RD
    reply = dns.query.tcp(query, "127.0.0.1", port=bind.port, timeout=5)
    return sorted(f"{rrset.ttl} {r.to_text().lower()}" for rrset in reply.answer
                  if rrset.name.to_text() == name and dns.rdatatype.to_text(rrset.rdtype) == rtype for r in rrset)


def serial(bind):
    return int(bind.dig("example.test.", "SOA")[0].split()[2])


def test_flip_then_restore_exactly_per_dig(bind, tmp_path, health_server):
    assert bind.dig(PRODUCTION, full=True) == ["www.example.test.\t120\tin\ta\t192.0.2.1",
                                              "www.example.test.\t120\tin\ta\t192.0.2.2"]
    ctx = ctx_for(bind, tmp_path, outputs=passed(bind, tmp_path, health_server))

    out = DnsFlip().execute({"target": "127.0.0.1"}, ctx)

    assert bind.dig(PRODUCTION, full=True) == ["www.example.test.\t60\tin\ta\t127.0.0.1"]
    assert answer(bind, PRODUCTION) == ["60 127.0.0.1"]
    assert bind.dig(PRODUCTION, "TXT") == ['"not managed by dr"']  # other types are not touched
    assert out["provider"] == "rfc2136" and out["previous"]["sets"] == [
        {"name": PRODUCTION, "type": "A", "ttl": 120, "values": ["192.0.2.1", "192.0.2.2"]}]

    DnsRestore().execute({"previous": out["previous"]}, ctx)
    assert bind.dig(PRODUCTION, full=True) == ["www.example.test.\t120\tin\ta\t192.0.2.1",
                                              "www.example.test.\t120\tin\ta\t192.0.2.2"]
    assert answer(bind, PRODUCTION) == ["120 192.0.2.1", "120 192.0.2.2"]


def test_cname_record_flips_to_an_address_and_back(bind, tmp_path, health_server):
    app = "app.example.test."
    ctx = ctx_for(bind, tmp_path, outputs=passed(bind, tmp_path, health_server))
    out = DnsFlip().execute({"target": "127.0.0.1", "record": app, "ttl": 30}, ctx)
    assert bind.dig(app, "CNAME") == [] and bind.dig(app, full=True) == ["app.example.test.\t30\tin\ta\t127.0.0.1"]
    DnsRestore().execute({"record": app, "previous": out["previous"]}, ctx)
    assert bind.dig(app, "CNAME", full=True) == ["app.example.test.\t300\tin\tcname\tprimary-lb.example.net."]
    assert bind.dig(app, "A", full=True) == ["app.example.test.\t300\tin\tcname\tprimary-lb.example.net."]


def test_cname_next_to_other_data_is_refused_before_any_change(bind, tmp_path, health_server):
    ctx = ctx_for(bind, tmp_path, outputs=passed(bind, tmp_path, health_server, host="localhost"))
    before = serial(bind)
    with pytest.raises(OperationFailed, match="also holds TXT records, so it cannot become a CNAME"):
        DnsFlip().execute({"target": "localhost"}, ctx)
    assert bind.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"] and serial(bind) == before


def test_flip_to_a_host_name_writes_a_cname(bind, tmp_path, health_server):
    name = "api.example.test."
    ctx = ctx_for(bind, tmp_path, outputs=passed(bind, tmp_path, health_server, host="localhost"))
    out = DnsFlip().execute({"target": f"http://localhost:{health_server.port}/", "record": name}, ctx)
    assert bind.dig(name, "CNAME", full=True) == ["api.example.test.\t60\tin\tcname\tlocalhost."]
    assert out["previous"] == {"format": 1, "name": name, "sets": []}
    DnsRestore().execute({"record": name}, ctx)
    assert bind.dig(name, "CNAME") == [] and bind.dig(name, "ANY") == []


def test_unsigned_update_is_refused_by_bind(bind):
    update = dns.update.UpdateMessage("example.test.")
    update.replace("www", 60, "A", "203.0.113.66")
    reply = dns.query.tcp(update, "127.0.0.1", port=bind.port, timeout=5)
    assert dns.rcode.to_text(reply.rcode()) == "REFUSED"
    assert bind.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"]


def test_wrong_secret_is_a_clear_error_and_changes_nothing(bind, tmp_path, health_server, monkeypatch):
    outputs = passed(bind, tmp_path, health_server)
    monkeypatch.setenv("DR_TEST_TSIG", base64.b64encode(b"x" * 32).decode())
    before = serial(bind)
    with pytest.raises(OperationFailed) as err:
        DnsFlip().execute({"target": "127.0.0.1"}, ctx_for(bind, tmp_path, outputs=outputs))
    message = str(err.value)
    assert f"127.0.0.1:{bind.port} rejected dr's TSIG key 'dr-test-key' (PeerBadSignature" in message
    assert "check dns.tsig.name, dns.tsig.secret and dns.tsig.algorithm" in message
    assert bind.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"] and serial(bind) == before


def test_unknown_key_name_is_a_clear_error(bind, tmp_path):
    provider = make_provider(make_ctx(bind.config_yaml("STATE", key_name="nobody"), tmp_path).config.dns)
    with pytest.raises(OperationFailed, match=r"rejected dr's TSIG key 'nobody' \(PeerBadKey"):
        provider.current(PRODUCTION)


def test_key_the_policy_does_not_grant_is_refused(bind, tmp_path):
    """A signed update for a name outside the zone: BIND refuses it, dr says why."""
    provider = make_provider(ctx_for(bind, tmp_path).config.dns)
    from dr.dns.base import RecordSet, RecordState

    with pytest.raises(OperationFailed, match="answered NOTZONE|answered REFUSED"):
        provider.apply(RecordState("www.example.org.", (RecordSet("www.example.org.", "A", 60, ("192.0.2.9",)),)))


def test_flip_without_passed_health_check_is_refused(bind, tmp_path):
    before = serial(bind)
    with pytest.raises(OperationFailed, match="refusing to point www.example.test. at 127.0.0.1"):
        DnsFlip().execute({"target": "127.0.0.1"}, ctx_for(bind, tmp_path))
    assert bind.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"] and serial(bind) == before


def test_health_never_passes_so_dns_is_untouched(bind, tmp_path, health_server):
    health_server.mode = "flapping"
    outputs = {}
    with pytest.raises(OperationFailed, match="did not become healthy"):
        outputs["health"] = WaitHealthy().execute({"url": health_server.url(), "timeout": 0.4, "interval": 0.05},
                                                  make_ctx(bind.config_yaml("STATE"), tmp_path))
    with pytest.raises(OperationFailed, match="has not passed http.wait_healthy"):
        DnsFlip().execute({"target": "127.0.0.1"}, ctx_for(bind, tmp_path, outputs=outputs))
    assert bind.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"]


def test_drill_uses_drill_record_never_production_and_teardown_removes_it(bind, tmp_path, health_server):
    outputs = passed(bind, tmp_path, health_server, drill=True)
    ctx = ctx_for(bind, tmp_path, outputs=outputs, drill=True)
    with pytest.raises(ConfigError, match="must not change the production record www.example.test."):
        DnsFlip().execute({"target": "127.0.0.1", "record": PRODUCTION}, ctx)
    out = DnsFlip().execute({"target": "127.0.0.1"}, ctx)
    assert out["record"] == "drill-a1b2.example.test."
    assert bind.dig("drill-a1b2.example.test.") == ["127.0.0.1"]
    assert bind.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"]
    DnsFlip().teardown({}, out, ctx)
    assert bind.dig("drill-a1b2.example.test.", "ANY") == []
    assert bind.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"]


def test_reflip_is_idempotent_and_check_sees_it(bind, tmp_path, health_server):
    ctx = ctx_for(bind, tmp_path, outputs=passed(bind, tmp_path, health_server))
    assert DnsFlip().check({"target": "127.0.0.1"}, ctx) is None
    first = DnsFlip().execute({"target": "127.0.0.1"}, ctx)
    after_first = serial(bind)
    assert timeless(DnsFlip().check({"target": "127.0.0.1"}, ctx)) == timeless(first)
    assert timeless(DnsFlip().execute({"target": "127.0.0.1"}, ctx)) == timeless(first)
    assert serial(bind) == after_first  # the second run sent no update at all
    restore = DnsRestore()
    restore.execute({}, ctx)
    assert restore.check({}, ctx)["values"] == ["192.0.2.1", "192.0.2.2"]


def test_failover_mode_needs_route53(bind, tmp_path, health_server):
    ctx = ctx_for(bind, tmp_path, outputs=passed(bind, tmp_path, health_server))
    assert DnsFlip().validate({"target": "127.0.0.1", "mode": "failover"}, ctx.config) == [
        "mode: failover records need provider route53; dns.provider rfc2136 has only simple"]
    with pytest.raises(ConfigError, match="mode failover is not available with dns.provider rfc2136"):
        DnsFlip().execute({"target": "127.0.0.1", "mode": "failover"}, ctx)
    assert bind.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"]


# --- readiness: probes against the real server ----------------------------------------------------

PROBE = "_dr-readiness.example.test."


def provider_for(bind, tmp_path, **yaml_kw):
    return make_provider(make_ctx(bind.config_yaml("STATE", **yaml_kw), tmp_path).config.dns)


def by_name(probes):
    assert [p.name for p in probes] == ["dns-read", "dns-record", "dns-routing", "dns-write"]
    return {p.name: p for p in probes}


def probe_txt_rcode(bind):
    """What the server answers, unsigned and straight from it, for the probe's TXT."""
    query = dns.message.make_query(PROBE, "TXT")
    query.flags &= ~dns.flags.RD
    reply = dns.query.tcp(query, "127.0.0.1", port=bind.port, timeout=5)
    return dns.rcode.to_text(reply.rcode()), reply.answer


def test_readiness_with_the_right_key_is_all_ok_and_leaves_no_trace(bind, tmp_path):
    before = serial(bind)
    probes = by_name(provider_for(bind, tmp_path).readiness(PRODUCTION))

    assert all(p.ok for p in probes.values()), probes
    assert probes["dns-read"].detail == (
        f"127.0.0.1:{bind.port} answered the SOA of example.test. (serial {before}) authoritatively; the query "
        "and the answer were signed with TSIG key 'dr-test-key' (hmac-sha256) and the answer's signature verified")
    assert probes["dns-record"].detail.startswith(
        "www.example.test. in rfc2136 zone example.test. holds A 120s 192.0.2.1, 192.0.2.2; it also holds TXT "
        "records, so a flip can point it at an IP address but not at a host name")
    assert probes["dns-routing"].detail == "www.example.test. has simple routing, which a simple flip can change"
    assert probes["dns-write"].detail.startswith(
        f"TSIG key 'dr-test-key' may update example.test.: 127.0.0.1:{bind.port} accepted a signed UPDATE "
        f'adding TXT {PROBE} "dr readiness probe 20')
    # the TXT was really added, then deleted: two updates, and nothing left behind
    assert serial(bind) == before + 2
    assert f"adding an RR at '{PROBE[:-1]}' TXT" in bind.log_tail(200)
    assert bind.dig(PROBE, "TXT") == [] and bind.dig(PROBE, "ANY") == []
    assert probe_txt_rcode(bind) == ("NXDOMAIN", [])
    # nothing else changed
    assert bind.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"]
    assert bind.dig(PRODUCTION, "TXT") == ['"not managed by dr"']
    assert bind.dig("app.example.test.", "CNAME") == ["primary-lb.example.net."]


def test_readiness_of_a_missing_record_says_the_flip_will_create_it(bind, tmp_path):
    probes = by_name(provider_for(bind, tmp_path).readiness("new.example.test."))
    assert all(p.ok for p in probes.values())
    assert probes["dns-record"].detail.startswith(
        "new.example.test. has no A, AAAA or CNAME record in rfc2136 zone example.test.; a simple flip will create it")
    assert bind.dig("new.example.test.", "ANY") == []


def test_readiness_with_a_wrong_secret_fails_dns_read_naming_the_key(bind, tmp_path, monkeypatch):
    monkeypatch.setenv("DR_TEST_TSIG", base64.b64encode(b"x" * 32).decode())
    before = serial(bind)
    probes = by_name(provider_for(bind, tmp_path).readiness(PRODUCTION))

    read = probes["dns-read"]
    assert not read.ok
    assert read.detail.startswith(
        f"read the SOA of example.test.: 127.0.0.1:{bind.port} rejected the signature of TSIG key 'dr-test-key' "
        "(hmac-sha256): the secret or the algorithm in dr.yaml do not match the server's key 'dr-test-key' "
        "(PeerBadSignature)")
    assert "fix: the server does not accept the TSIG signature: check dns.tsig.name, dns.tsig.secret" in read.detail
    for name in ("dns-record", "dns-routing", "dns-write"):
        assert not probes[name].ok and probes[name].detail.startswith("not run: dns-read failed")
    assert serial(bind) == before and bind.dig(PROBE, "TXT") == []


def test_readiness_with_an_unknown_key_name_fails_dns_read(bind, tmp_path):
    probes = by_name(provider_for(bind, tmp_path, key_name="nobody").readiness(PRODUCTION))
    assert not probes["dns-read"].ok
    assert f"127.0.0.1:{bind.port} has no TSIG key 'nobody' (hmac-sha256)" in probes["dns-read"].detail


def test_readiness_with_a_key_the_update_policy_does_not_grant_fails_dns_write(bind, tmp_path):
    before = serial(bind)
    provider = provider_for(bind, tmp_path, key_name=bind.read_key_name, secret_env="DR_TEST_TSIG_READ")
    probes = by_name(provider.readiness(PRODUCTION))

    assert probes["dns-read"].ok and "TSIG key 'dr-read-key'" in probes["dns-read"].detail
    assert probes["dns-record"].ok and probes["dns-routing"].ok
    write = probes["dns-write"]
    assert not write.ok
    assert write.detail.startswith(
        f"add TXT {PROBE}: 127.0.0.1:{bind.port} answered REFUSED: the zone's update-policy (or allow-update) "
        "does not grant TSIG key 'dr-read-key' the right to update example.test.")
    assert "fix: the server refused the update: check that the zone's update-policy" in write.detail
    assert "also:" not in write.detail  # nothing was left behind to clean up
    assert serial(bind) == before and bind.dig(PROBE, "TXT") == []


def test_readiness_with_the_server_down_fails_dns_read_with_host_and_port(bind, tmp_path):
    provider = provider_for(bind, tmp_path)
    bind.stop()
    probes = by_name(provider.readiness(PRODUCTION))
    read = probes["dns-read"]
    assert not read.ok
    assert read.detail.startswith(f"read the SOA of example.test.: cannot reach the name server 127.0.0.1:{bind.port}")
    assert "check dns.server and dns.port" in read.detail
    assert [p.ok for p in probes.values()] == [False] * 4
    assert probes["dns-write"].detail == (f"not run: dns-read failed, so dr did not ask 127.0.0.1:{bind.port} "
                                          "anything more; fix dns-read first")


def test_readiness_in_failover_mode_says_rfc2136_has_only_simple(bind, tmp_path):
    probes = by_name(provider_for(bind, tmp_path).readiness(PRODUCTION, mode="failover"))
    routing = probes["dns-routing"]
    assert not routing.ok and "mode failover is not available with dns.provider rfc2136" in routing.detail
    assert "use mode: simple" in routing.detail
    assert probes["dns-read"].ok and probes["dns-write"].ok
