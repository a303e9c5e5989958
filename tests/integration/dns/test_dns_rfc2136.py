"""dns.flip and dns.restore with RFC 2136 + TSIG against three real servers: BIND 9 (tests/support/bind.py),
Knot DNS (tests/support/knot.py) and PowerDNS (tests/support/pdns.py). Every test runs once per server (ids
`[bind]`, `[knot]`, `[pdns]`; a server that is not installed skips with its apt-get line); every
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
from dr.dns.base import RecordSet, RecordState
from dr.errors import ConfigError, OperationFailed
from dr.runbook.runner import _PERMANENT
from dr.runbook.steps.dns import DnsFlip, DnsRestore
from dr.runbook.steps.http import WaitHealthy
from tests.support.bind import PRODUCTION, bind  # noqa: F401 - fixture
from tests.support.knot import knot  # noqa: F401 - fixture
from tests.support.pdns import pdns  # noqa: F401 - fixture
from tests.support.step_calls import AsRun

from .test_dns_route53 import timeless
from tests.integration.runbook.test_health import health_server, make_ctx  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

RUN = "run-20260101T000000Z-a1b2"
FAILBACK = "failback-20260102T000000Z-c3d4"
LEGACY = "legacy.example.test."  # a CNAME to Prod-LB.Example.NET. (tests/support/bind.py ZONE_FILE)


@pytest.fixture(params=["bind", "knot", "pdns"])
def ns(request):
    """The name server under test: a fresh BIND, Knot or PowerDNS with the same zone and keys."""
    return request.getfixturevalue(request.param)


def ctx_for(ns, tmp_path, *, outputs=None, **kw):
    return make_ctx(ns.config_yaml("STATE"), tmp_path, step_id="flip", outputs=outputs, **kw)


def passed(ns, tmp_path, server, host="127.0.0.1", **kw):
    ctx = make_ctx(ns.config_yaml("STATE"), tmp_path, step_id="health", **kw)
    return {"health": WaitHealthy().execute({"url": server.url(host), "consecutive": 2, "interval": 0.05}, ctx)}


def answer(ns, name, rtype="A"):
    """dnspython's view, straight from the server (no recursion): sorted `ttl value` strings."""
    query = dns.message.make_query(name, rtype)
    query.flags &= ~dns.flags.RD
    reply = dns.query.tcp(query, "127.0.0.1", port=ns.port, timeout=5)
    return sorted(f"{rrset.ttl} {r.to_text().lower()}" for rrset in reply.answer
                  if rrset.name.to_text() == name and dns.rdatatype.to_text(rrset.rdtype) == rtype for r in rrset)


def serial(ns):
    return int(ns.dig("example.test.", "SOA")[0].split()[2])


def provider_for(ns, tmp_path, **yaml_kw):
    return make_provider(make_ctx(ns.config_yaml("STATE", **yaml_kw), tmp_path).config.dns)


def wrong_secret(monkeypatch):
    monkeypatch.setenv("DR_TEST_TSIG", base64.b64encode(b"x" * 32).decode())


def test_flip_then_restore_exactly_per_dig(ns, tmp_path, health_server):
    assert ns.dig(PRODUCTION, full=True) == ["www.example.test.\t120\tin\ta\t192.0.2.1",
                                            "www.example.test.\t120\tin\ta\t192.0.2.2"]
    ctx = ctx_for(ns, tmp_path, outputs=passed(ns, tmp_path, health_server))

    out = AsRun(DnsFlip).execute({"target": "127.0.0.1"}, ctx)

    assert ns.dig(PRODUCTION, full=True) == ["www.example.test.\t60\tin\ta\t127.0.0.1"]
    assert answer(ns, PRODUCTION) == ["60 127.0.0.1"]
    assert ns.dig(PRODUCTION, "TXT") == ['"not managed by dr"']  # other types are not touched
    assert out["provider"] == "rfc2136" and out["previous"]["sets"] == [
        {"name": PRODUCTION, "type": "A", "ttl": 120, "values": ["192.0.2.1", "192.0.2.2"]}]

    AsRun(DnsRestore).execute({"previous": out["previous"]}, ctx)
    assert ns.dig(PRODUCTION, full=True) == ["www.example.test.\t120\tin\ta\t192.0.2.1",
                                            "www.example.test.\t120\tin\ta\t192.0.2.2"]
    assert answer(ns, PRODUCTION) == ["120 192.0.2.1", "120 192.0.2.2"]


def test_cname_record_flips_to_an_address_and_back(ns, tmp_path, health_server):
    app = "app.example.test."
    ctx = ctx_for(ns, tmp_path, outputs=passed(ns, tmp_path, health_server))
    out = AsRun(DnsFlip).execute({"target": "127.0.0.1", "record": app, "ttl": 30}, ctx)
    assert ns.dig(app, "CNAME") == [] and ns.dig(app, full=True) == ["app.example.test.\t30\tin\ta\t127.0.0.1"]
    AsRun(DnsRestore).execute({"record": app, "previous": out["previous"]}, ctx)
    assert ns.dig(app, "CNAME", full=True) == ["app.example.test.\t300\tin\tcname\tprimary-lb.example.net."]
    assert ns.dig(app, "A", full=True) == ["app.example.test.\t300\tin\tcname\tprimary-lb.example.net."]


def test_failback_restores_exactly_what_was_served_letter_case_and_ttl(ns, tmp_path, health_server):
    """The saved previous values are what the server served, byte for byte (BIND and PowerDNS
    serve `Prod-LB.Example.NET.` as written; Knot lowercases names in rdata when it loads the
    zone), and a failback in a later run writes exactly that back."""
    served = ns.dig(LEGACY, "CNAME", full=True, exact=True)
    assert len(served) == 1 and served[0].lower() == "legacy.example.test.\t90\tin\tcname\tprod-lb.example.net."
    value = served[0].split("\t")[-1]
    if ns.kind != "knot":
        assert value == "Prod-LB.Example.NET."
    ctx = ctx_for(ns, tmp_path, outputs=passed(ns, tmp_path, health_server))
    out = AsRun(DnsFlip).execute({"target": "127.0.0.1", "record": LEGACY}, ctx)
    assert out["previous"]["sets"] == [{"name": LEGACY, "type": "CNAME", "ttl": 90, "values": [value]}]
    assert ns.dig(LEGACY, full=True) == ["legacy.example.test.\t60\tin\ta\t127.0.0.1"]

    later = make_ctx(ns.config_yaml("STATE"), tmp_path, run_id=FAILBACK, step_id="failback",
                     outputs=passed(ns, tmp_path, health_server, run_id=FAILBACK))
    back = AsRun(DnsRestore).execute({"record": LEGACY, "run": RUN}, later)

    assert ns.dig(LEGACY, "CNAME", full=True, exact=True) == served
    assert ns.dig(LEGACY, "A", exact=True) == [value]
    assert back["restored"]["sets"][0]["values"] == [value] and back["values"] == [value]


def test_cname_next_to_other_data_is_refused_before_any_change(ns, tmp_path, health_server):
    ctx = ctx_for(ns, tmp_path, outputs=passed(ns, tmp_path, health_server, host="localhost"))
    before = serial(ns)
    with pytest.raises(OperationFailed, match="also holds TXT records, so it cannot become a CNAME"):
        AsRun(DnsFlip).execute({"target": "localhost"}, ctx)
    assert ns.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"] and serial(ns) == before


def test_flip_to_a_host_name_writes_a_cname(ns, tmp_path, health_server):
    name = "api.example.test."
    ctx = ctx_for(ns, tmp_path, outputs=passed(ns, tmp_path, health_server, host="localhost"))
    out = AsRun(DnsFlip).execute({"target": f"http://localhost:{health_server.port}/", "record": name}, ctx)
    assert ns.dig(name, "CNAME", full=True) == ["api.example.test.\t60\tin\tcname\tlocalhost."]
    assert out["previous"] == {"format": 1, "name": name, "sets": []}
    AsRun(DnsRestore).execute({"record": name}, ctx)
    assert ns.dig(name, "CNAME") == [] and ns.dig(name, "ANY") == []


UNSIGNED_UPDATE = {"bind": "REFUSED", "knot": "NOTAUTH", "pdns": "REFUSED"}


def test_unsigned_update_is_refused(ns):
    update = dns.update.UpdateMessage("example.test.")
    update.replace("www", 60, "A", "203.0.113.66")
    reply = dns.query.tcp(update, "127.0.0.1", port=ns.port, timeout=5)
    assert dns.rcode.to_text(reply.rcode()) == UNSIGNED_UPDATE[ns.kind]
    assert ns.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"]


def test_pdns_without_tsig_allow_dnsupdate_takes_unsigned_updates(pdns):
    """Why README warns: a PowerDNS zone without TSIG-ALLOW-DNSUPDATE metadata applies any
    unsigned update from an address allow-dnsupdate-from / ALLOW-DNSUPDATE-FROM allows."""
    pdns.set_meta("TSIG-ALLOW-DNSUPDATE")  # deleted
    update = dns.update.UpdateMessage("example.test.")
    update.replace("www", 60, "A", "203.0.113.66")
    reply = dns.query.tcp(update, "127.0.0.1", port=pdns.port, timeout=5)
    assert dns.rcode.to_text(reply.rcode()) == "NOERROR"
    assert pdns.dig(PRODUCTION) == ["203.0.113.66"]


# How each server rejects a wrong secret: BIND and Knot answer NOTAUTH with a TSIG record whose error
# is BADSIG; PowerDNS answers an unsigned NOTAUTH (to a query; REFUSED to an update).
WRONG_SECRET = {"bind": "(PeerBadSignature", "knot": "(PeerBadSignature", "pdns": "(NOTAUTH, unsigned"}
UNKNOWN_KEY = {"bind": "(PeerBadKey", "knot": "(PeerBadKey", "pdns": "(NOTAUTH, unsigned"}


def test_wrong_secret_is_a_clear_permanent_error_and_changes_nothing(ns, tmp_path, health_server, monkeypatch):
    outputs = passed(ns, tmp_path, health_server)
    wrong_secret(monkeypatch)
    before = serial(ns)
    with pytest.raises(OperationFailed) as err:
        AsRun(DnsFlip).execute({"target": "127.0.0.1"}, ctx_for(ns, tmp_path, outputs=outputs))
    message = str(err.value)
    assert f"127.0.0.1:{ns.port} rejected dr's TSIG key 'dr-test-key' {WRONG_SECRET[ns.kind]}" in message
    assert "check dns.tsig.name, dns.tsig.secret and dns.tsig.algorithm" in message
    assert isinstance(err.value, _PERMANENT)  # the runbook runner fails the step instead of retrying it
    assert ns.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"] and serial(ns) == before


def test_wrong_secret_on_apply_is_the_same_clear_permanent_error(ns, tmp_path, monkeypatch):
    provider = provider_for(ns, tmp_path)
    wrong_secret(monkeypatch)
    with pytest.raises(OperationFailed) as err:
        provider.apply(RecordState(PRODUCTION, (RecordSet(PRODUCTION, "A", 60, ("192.0.2.9",)),)))
    assert f"rejected dr's TSIG key 'dr-test-key' {WRONG_SECRET[ns.kind]}" in str(err.value)
    assert isinstance(err.value, _PERMANENT)
    assert ns.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"]


def test_unknown_key_name_is_a_clear_permanent_error(ns, tmp_path):
    provider = provider_for(ns, tmp_path, key_name="nobody")
    with pytest.raises(OperationFailed) as err:
        provider.current(PRODUCTION)
    assert f"rejected dr's TSIG key 'nobody' {UNKNOWN_KEY[ns.kind]}" in str(err.value)
    assert isinstance(err.value, _PERMANENT)


def test_wrong_algorithm_is_a_clear_permanent_error(ns, tmp_path):
    provider = provider_for(ns, tmp_path, algorithm="hmac-sha512")
    with pytest.raises(OperationFailed) as err:
        provider.current(PRODUCTION)
    assert f"rejected dr's TSIG key 'dr-test-key' {UNKNOWN_KEY[ns.kind]}" in str(err.value)
    assert isinstance(err.value, _PERMANENT)


def test_update_outside_the_zone_is_refused(ns, tmp_path):
    """A signed update for a name outside the zone: the server refuses it, dr says why."""
    provider = provider_for(ns, tmp_path)
    with pytest.raises(OperationFailed, match="answered NOTZONE|answered REFUSED"):
        provider.apply(RecordState("www.example.org.", (RecordSet("www.example.org.", "A", 60, ("192.0.2.9",)),)))


def test_key_allowed_to_read_but_not_update_says_so_and_names_the_setting(ns, tmp_path, health_server):
    """BIND answers REFUSED, PowerDNS REFUSED, Knot NOTAUTH with TSIG error BADKEY (as if it did
    not know the key): dr tries a signed read with the same key, and says what to grant."""
    outputs = passed(ns, tmp_path, health_server)
    before = serial(ns)
    ctx = make_ctx(ns.config_yaml("STATE", key_name=ns.read_key_name, secret_env="DR_TEST_TSIG_READ"), tmp_path,
                   step_id="flip", outputs=outputs)
    with pytest.raises(OperationFailed) as err:
        AsRun(DnsFlip).execute({"target": "127.0.0.1"}, ctx)
    message = str(err.value)
    answered = {"bind": "REFUSED", "knot": "NOTAUTH (TSIG error BADKEY)", "pdns": "REFUSED"}[ns.kind]
    assert message.startswith(f"update www.example.test.: 127.0.0.1:{ns.port} answered {answered} to the signed "
                              "UPDATE: TSIG key 'dr-read-key' may read example.test. (a signed query with it is "
                              "answered and verified) but not update it")
    assert ns.update_setting in message
    for setting in ("update-policy { grant dr-read-key zonesub ANY; }", "action: update", "TSIG-ALLOW-DNSUPDATE"):
        assert setting in message  # one message for every server: it names each one's setting
    assert "rejected dr's TSIG key" not in message
    assert isinstance(err.value, _PERMANENT)
    assert ns.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"] and serial(ns) == before


def test_flip_without_passed_health_check_is_refused(ns, tmp_path):
    before = serial(ns)
    with pytest.raises(OperationFailed, match="refusing to point www.example.test. at 127.0.0.1"):
        AsRun(DnsFlip).execute({"target": "127.0.0.1"}, ctx_for(ns, tmp_path))
    assert ns.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"] and serial(ns) == before


def test_health_never_passes_so_dns_is_untouched(ns, tmp_path, health_server):
    health_server.mode = "flapping"
    outputs = {}
    with pytest.raises(OperationFailed, match="did not become healthy"):
        outputs["health"] = WaitHealthy().execute({"url": health_server.url(), "timeout": 0.4, "interval": 0.05},
                                                  make_ctx(ns.config_yaml("STATE"), tmp_path))
    with pytest.raises(OperationFailed, match="has not passed http.wait_healthy"):
        AsRun(DnsFlip).execute({"target": "127.0.0.1"}, ctx_for(ns, tmp_path, outputs=outputs))
    assert ns.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"]


def test_drill_uses_drill_record_never_production_and_teardown_removes_it(ns, tmp_path, health_server):
    outputs = passed(ns, tmp_path, health_server, drill=True)
    ctx = ctx_for(ns, tmp_path, outputs=outputs, drill=True)
    with pytest.raises(ConfigError, match="must not change the production record www.example.test."):
        AsRun(DnsFlip).execute({"target": "127.0.0.1", "record": PRODUCTION}, ctx)
    out = AsRun(DnsFlip).execute({"target": "127.0.0.1"}, ctx)
    assert out["record"] == "drill-a1b2.example.test."
    assert ns.dig("drill-a1b2.example.test.") == ["127.0.0.1"]
    assert ns.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"]
    AsRun(DnsFlip).teardown({}, out, ctx)
    assert ns.dig("drill-a1b2.example.test.", "ANY") == []
    assert ns.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"]


def test_reflip_is_idempotent_and_check_sees_it(ns, tmp_path, health_server):
    ctx = ctx_for(ns, tmp_path, outputs=passed(ns, tmp_path, health_server))
    assert AsRun(DnsFlip).check({"target": "127.0.0.1"}, ctx) is None
    first = AsRun(DnsFlip).execute({"target": "127.0.0.1"}, ctx)
    after_first = serial(ns)
    assert timeless(AsRun(DnsFlip).check({"target": "127.0.0.1"}, ctx)) == timeless(first)
    assert timeless(AsRun(DnsFlip).execute({"target": "127.0.0.1"}, ctx)) == timeless(first)
    assert serial(ns) == after_first  # the second run sent no update at all
    restore = AsRun(DnsRestore)
    restore.execute({}, ctx)
    assert restore.check({}, ctx)["values"] == ["192.0.2.1", "192.0.2.2"]


def test_failover_mode_needs_route53(ns, tmp_path, health_server):
    ctx = ctx_for(ns, tmp_path, outputs=passed(ns, tmp_path, health_server))
    assert AsRun(DnsFlip).validate({"target": "127.0.0.1", "mode": "failover"}, ctx.config) == [
        "mode: failover records need provider route53; dns.provider rfc2136 has only simple"]
    with pytest.raises(ConfigError, match="mode failover is not available with dns.provider rfc2136"):
        AsRun(DnsFlip).execute({"target": "127.0.0.1", "mode": "failover"}, ctx)
    assert ns.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"]


# --- readiness: probes against the real server ----------------------------------------------------

PROBE = "_dr-readiness.example.test."


def by_name(probes):
    assert [p.name for p in probes] == ["dns-read", "dns-record", "dns-routing", "dns-write"]
    return {p.name: p for p in probes}


def probe_txt_rcode(ns):
    """What the server answers, unsigned and straight from it, for the probe's TXT."""
    query = dns.message.make_query(PROBE, "TXT")
    query.flags &= ~dns.flags.RD
    reply = dns.query.tcp(query, "127.0.0.1", port=ns.port, timeout=5)
    return dns.rcode.to_text(reply.rcode()), reply.answer


def test_readiness_with_the_right_key_is_all_ok_and_leaves_no_trace(ns, tmp_path):
    before = serial(ns)
    probes = by_name(provider_for(ns, tmp_path).readiness(PRODUCTION))

    assert all(p.ok for p in probes.values()), probes
    assert probes["dns-read"].detail == (
        f"127.0.0.1:{ns.port} answered the SOA of example.test. (serial {before}) authoritatively; the query "
        "and the answer were signed with TSIG key 'dr-test-key' (hmac-sha256) and the answer's signature verified")
    assert probes["dns-record"].detail.startswith(
        "www.example.test. in rfc2136 zone example.test. holds A 120s 192.0.2.1, 192.0.2.2; it also holds TXT "
        "records, so a flip can point it at an IP address but not at a host name")
    assert probes["dns-routing"].detail == "www.example.test. has simple routing, which a simple flip can change"
    assert probes["dns-write"].detail.startswith(
        f"TSIG key 'dr-test-key' may update example.test.: 127.0.0.1:{ns.port} accepted a signed UPDATE "
        f'adding TXT {PROBE} "dr readiness probe 20')
    # the TXT was really added, then deleted: two updates, and nothing left behind
    assert serial(ns) == before + 2
    if ns.kind == "bind":
        assert f"adding an RR at '{PROBE[:-1]}' TXT" in ns.log_tail(200)
    assert ns.dig(PROBE, "TXT") == [] and ns.dig(PROBE, "ANY") == []
    assert probe_txt_rcode(ns) == ("NXDOMAIN", [])
    # nothing else changed
    assert ns.dig(PRODUCTION) == ["192.0.2.1", "192.0.2.2"]
    assert ns.dig(PRODUCTION, "TXT") == ['"not managed by dr"']
    assert ns.dig("app.example.test.", "CNAME") == ["primary-lb.example.net."]


def test_readiness_of_a_missing_record_says_the_flip_will_create_it(ns, tmp_path):
    probes = by_name(provider_for(ns, tmp_path).readiness("new.example.test."))
    assert all(p.ok for p in probes.values())
    assert probes["dns-record"].detail.startswith(
        "new.example.test. has no A, AAAA or CNAME record in rfc2136 zone example.test.; a simple flip will create it")
    assert ns.dig("new.example.test.", "ANY") == []


def test_readiness_with_a_wrong_secret_fails_dns_read_naming_the_key(ns, tmp_path, monkeypatch):
    wrong_secret(monkeypatch)
    before = serial(ns)
    probes = by_name(provider_for(ns, tmp_path).readiness(PRODUCTION))

    read = probes["dns-read"]
    assert not read.ok
    assert read.detail.startswith({
        "bind": f"read the SOA of example.test.: 127.0.0.1:{ns.port} rejected the signature of TSIG key "
                "'dr-test-key' (hmac-sha256): the secret or the algorithm in dr.yaml do not match the server's key "
                "'dr-test-key' (PeerBadSignature)",
        "pdns": f"read the SOA of example.test.: 127.0.0.1:{ns.port} rejected TSIG key 'dr-test-key' (hmac-sha256): "
                "it answered NOTAUTH without signing the answer, so it knows no key of that name and algorithm or "
                "the secret in dr.yaml differs from the server's (such an answer does not say which)",
    }.get(ns.kind, "read the SOA of example.test.: 127.0.0.1:{port} rejected the signature").replace(
        "{port}", str(ns.port)))
    assert "fix: the server does not accept the TSIG signature: check dns.tsig.name, dns.tsig.secret" in read.detail
    assert "FormError" not in read.detail and "supports TSIG" not in read.detail
    for name in ("dns-record", "dns-routing", "dns-write"):
        assert not probes[name].ok and probes[name].detail.startswith("not run: dns-read failed")
    assert serial(ns) == before and ns.dig(PROBE, "TXT") == []


def test_readiness_with_an_unknown_key_name_fails_dns_read(ns, tmp_path):
    probes = by_name(provider_for(ns, tmp_path, key_name="nobody").readiness(PRODUCTION))
    read = probes["dns-read"]
    assert not read.ok
    if ns.kind == "pdns":
        assert f"127.0.0.1:{ns.port} rejected TSIG key 'nobody' (hmac-sha256): it answered NOTAUTH" in read.detail
    else:
        assert f"127.0.0.1:{ns.port} has no TSIG key 'nobody' (hmac-sha256)" in read.detail
    assert "fix: the server does not accept the TSIG signature" in read.detail


def test_readiness_with_a_key_allowed_to_read_but_not_update_fails_dns_write(ns, tmp_path):
    before = serial(ns)
    provider = provider_for(ns, tmp_path, key_name=ns.read_key_name, secret_env="DR_TEST_TSIG_READ")
    probes = by_name(provider.readiness(PRODUCTION))

    assert probes["dns-read"].ok and "TSIG key 'dr-read-key'" in probes["dns-read"].detail
    assert probes["dns-record"].ok and probes["dns-routing"].ok
    write = probes["dns-write"]
    assert not write.ok
    answered = {"bind": "REFUSED", "knot": "NOTAUTH (TSIG error BADKEY)", "pdns": "REFUSED"}[ns.kind]
    assert write.detail.startswith(
        f"add TXT {PROBE}: 127.0.0.1:{ns.port} answered {answered} to the signed UPDATE: TSIG key 'dr-read-key' "
        "may read example.test. (a signed query with it is answered and verified) but not update it")
    assert ns.update_setting in write.detail
    assert f"must also grant {PROBE} TXT" in write.detail
    assert "also:" not in write.detail  # nothing was left behind to clean up
    assert serial(ns) == before and ns.dig(PROBE, "TXT") == []


def test_readiness_with_the_server_down_fails_dns_read_with_host_and_port(ns, tmp_path):
    provider = provider_for(ns, tmp_path)
    ns.stop()
    probes = by_name(provider.readiness(PRODUCTION))
    read = probes["dns-read"]
    assert not read.ok
    assert read.detail.startswith(f"read the SOA of example.test.: cannot reach the name server 127.0.0.1:{ns.port}")
    assert "check dns.server and dns.port" in read.detail
    assert [p.ok for p in probes.values()] == [False] * 4
    assert probes["dns-write"].detail == (f"not run: dns-read failed, so dr did not ask 127.0.0.1:{ns.port} "
                                          "anything more; fix dns-read first")


def test_readiness_in_failover_mode_says_rfc2136_has_only_simple(ns, tmp_path):
    probes = by_name(provider_for(ns, tmp_path).readiness(PRODUCTION, mode="failover"))
    routing = probes["dns-routing"]
    assert not routing.ok and "mode failover is not available with dns.provider rfc2136" in routing.detail
    assert "use mode: simple" in routing.detail
    assert probes["dns-read"].ok and probes["dns-write"].ok
