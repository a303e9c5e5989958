"""Pure DNS logic: targets, the record model and its JSON, change planning, flip planning, the
provider registry, the drill and health guards, and the step types' declarations."""

from __future__ import annotations

import json
import threading

import pytest
import yaml

import dr.dns as dns_registry
from dr.clock import Clock
from dr.config import parse_config
from dr.dns import PROVIDERS, make_provider, register
from dr.dns.base import (FlipPlan, Probe, RecordSet, RecordState, flip_state, outside_zone, parse_target,
                         plan_changes, routing_problem)
from dr.dns.rfc2136 import Rfc2136Provider
from dr.dns.route53 import Route53Provider, from_route53, to_route53
from dr.errors import ConfigError
from dr.runbook.steps import dns as dns_steps
from dr.runbook.steps import http as http_steps
from dr.runbook.steps.base import PARAM_TYPES, StepContext, StepType
from dr.runbook.steps.dns_safety import drill_record, passed_health, previous_key, resolve_record
from dr.runbook.steps.http import fill_url

NAME = "www.example.com."
CONFIG = """\
version: 1
regions: {primary: us-east-1, dr: us-west-2}
objectives: {rpo: 1h, rto: 30m}
kms: {dr_key: alias/dr-backups}
state: {path: /tmp/unused}
health: {url: "http://{stack.WebsiteURL}/health"}
dns: {provider: PROVIDER, zone: example.com., record: www.example.com., ttl: 60, server: 127.0.0.1,
      tsig: {name: k, secret: {env: UNUSED}}}
"""


def config(provider="route53"):
    return parse_config(CONFIG.replace("PROVIDER", provider))


def a(*values, ttl=300, **kw):
    return RecordSet(NAME, "A", ttl, tuple(values), **kw)


def state(*sets):
    return RecordState(NAME, tuple(sets))


def ctx(drill=False, outputs=None, run_id="run-20260101T000000Z-a1b2"):
    return StepContext(run_id=run_id, step_id="flip", config=config(), session=None, clock=Clock(),
                       cancel=threading.Event(), store=None, drill=drill, outputs=outputs or {})


# --- targets --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, rtype, value, host", [
    ("192.0.2.10", "A", "192.0.2.10", "192.0.2.10"),
    ("2001:DB8::1", "AAAA", "2001:db8::1", "2001:db8::1"),
    ("DR-LB-1.us-west-2.elb.amazonaws.com", "CNAME", "dr-lb-1.us-west-2.elb.amazonaws.com.",
     "dr-lb-1.us-west-2.elb.amazonaws.com"),
    ("lb.example.net.", "CNAME", "lb.example.net.", "lb.example.net"),
    ("http://ec2-1-2-3-4.compute.amazonaws.com/wordpress", "CNAME", "ec2-1-2-3-4.compute.amazonaws.com.",
     "ec2-1-2-3-4.compute.amazonaws.com"),
    ("https://[2001:db8::2]:8443/health", "AAAA", "2001:db8::2", "2001:db8::2"),
])
def test_targets(text, rtype, value, host):
    t = parse_target(text)
    assert (t.type, t.value, t.host) == (rtype, value, host)


@pytest.mark.parametrize("bad", ["", "not a host", "-lead.example.com", "http://", "12345"])
def test_bad_target_is_a_clear_error(bad):
    with pytest.raises(ConfigError, match="is not an IP address, a host name or a URL"):
        parse_target(bad)


# --- the record model -----------------------------------------------------------------------------


def test_record_state_round_trips_exactly_through_json():
    original = state(
        a("192.0.2.1", set_identifier="east", failover="PRIMARY", health_check_id="hc-1"),
        a("192.0.2.9", "192.0.2.8", ttl=60, set_identifier="west", failover="SECONDARY"),
        RecordSet(NAME, "AAAA", None, (), set_identifier="w", weight=0,
                  alias={"HostedZoneId": "Z35SXDOTRQ7X7K", "DNSName": "lb.elb.amazonaws.com.",
                         "EvaluateTargetHealth": True}),
        RecordSet(NAME, "CNAME", 30, ("x.example.net.",), set_identifier="geo",
                  extra={"GeoLocation": {"CountryCode": "DE"}}),
    )
    again = RecordState.from_json(json.loads(json.dumps(original.to_json())))
    assert again == original
    assert again.to_json() == original.to_json()


def test_old_or_foreign_saved_state_is_refused():
    with pytest.raises(Exception, match="not in format 1"):
        RecordState.from_json({"name": NAME, "sets": []})


def test_route53_shape_round_trips_including_unmodelled_routing():
    rrset = {"Name": "\\052.example.com.", "Type": "A", "SetIdentifier": "eu", "Region": "eu-west-1",
             "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}], "HealthCheckId": "hc"}
    s = from_route53(rrset)
    assert s.name == "*.example.com." and s.extra == {"Region": "eu-west-1"} and s.routing.startswith("other")
    assert to_route53(s) == {**rrset, "Name": "*.example.com."}


def test_same_values_in_another_order_or_case_is_no_change():
    assert plan_changes(state(a("192.0.2.2", "192.0.2.1")), state(a("192.0.2.1", "192.0.2.2"))) == []
    cname = RecordSet(NAME, "CNAME", 60, ("LB.example.net",))
    assert plan_changes(state(cname), state(RecordSet(NAME, "CNAME", 60, ("lb.example.net.",)))) == []


def test_type_change_deletes_the_old_set_first():
    cname = RecordSet(NAME, "CNAME", 60, ("lb.example.net.",))
    ops = plan_changes(state(a("192.0.2.1")), state(cname))
    assert ops == [("DELETE", a("192.0.2.1")), ("UPSERT", cname)]


def test_ttl_change_is_an_upsert_and_routing_change_is_delete_then_create():
    assert plan_changes(state(a("192.0.2.1")), state(a("192.0.2.1", ttl=60))) == [("UPSERT", a("192.0.2.1", ttl=60))]
    weighted = a("192.0.2.1", set_identifier="x", weight=1)
    failover = a("192.0.2.1", set_identifier="x", failover="PRIMARY")
    assert [op for op, _ in plan_changes(state(weighted), state(failover))] == ["DELETE", "UPSERT"]


# --- flip planning --------------------------------------------------------------------------------


def test_simple_flip_replaces_every_value():
    want = flip_state(state(a("192.0.2.1", "192.0.2.2")), FlipPlan(parse_target("198.51.100.7"), ttl=60))
    assert want == state(a("198.51.100.7", ttl=60))


def test_simple_flip_refuses_to_flatten_a_failover_pair():
    pair = state(a("192.0.2.1", set_identifier="east", failover="PRIMARY"))
    with pytest.raises(ConfigError, match="use mode: failover"):
        flip_state(pair, FlipPlan(parse_target("198.51.100.7")))


def test_failover_flip_makes_target_primary_and_old_primary_secondary():
    pair = state(a("192.0.2.1", set_identifier="east", failover="PRIMARY", health_check_id="hc-east"),
                 a("192.0.2.2", set_identifier="west-old", failover="SECONDARY"))
    plan = FlipPlan(parse_target("198.51.100.7"), mode="failover", ttl=60, set_identifier="dr-us-west-2",
                    health_check_id="hc-dr")
    want = flip_state(pair, plan)
    assert want == state(
        a("198.51.100.7", ttl=60, set_identifier="dr-us-west-2", failover="PRIMARY", health_check_id="hc-dr"),
        a("192.0.2.1", set_identifier="east", failover="SECONDARY", health_check_id="hc-east"))
    assert flip_state(want, plan) == want  # flipping again changes nothing


def test_failover_flip_of_a_simple_record_keeps_it_as_secondary():
    want = flip_state(state(a("192.0.2.1")), FlipPlan(parse_target("198.51.100.7"), mode="failover", ttl=60))
    assert want.sets[1] == a("192.0.2.1", set_identifier="previous", failover="SECONDARY")


def test_failover_with_explicit_secondary_and_type_mismatch():
    plan = FlipPlan(parse_target("198.51.100.7"), mode="failover", secondary=parse_target("192.0.2.99"))
    want = flip_state(state(a("192.0.2.1", set_identifier="east", failover="PRIMARY")), plan)
    assert want.sets[1].values == ("192.0.2.99",) and want.sets[1].failover == "SECONDARY"
    with pytest.raises(ConfigError, match="cannot share a failover routing policy with a CNAME target"):
        flip_state(state(a("192.0.2.1", set_identifier="east", failover="PRIMARY")),
                   FlipPlan(parse_target("lb.example.net"), mode="failover"))


def test_weighted_flip_sends_all_weight_to_target():
    sets = state(a("192.0.2.1", set_identifier="east", weight=50), a("192.0.2.2", set_identifier="west", weight=50))
    want = flip_state(sets, FlipPlan(parse_target("198.51.100.7"), mode="weighted", ttl=60, set_identifier="dr"))
    assert {(s.set_identifier, s.weight) for s in want.sets} == {("dr", 100), ("east", 0), ("west", 0)}
    with pytest.raises(ConfigError, match="mode weighted cannot change them"):
        flip_state(state(a("192.0.2.1", set_identifier="e", failover="PRIMARY")),
                   FlipPlan(parse_target("198.51.100.7"), mode="weighted"))


# --- readiness: routing_problem and the pure probes ------------------------------------------------


def weighted_pair():
    return state(a("192.0.2.1", set_identifier="east", weight=70), a("192.0.2.2", set_identifier="west", weight=30))


def failover_pair():
    return state(a("192.0.2.1", set_identifier="east", failover="PRIMARY", health_check_id="hc"),
                 a("192.0.2.2", set_identifier="west", failover="SECONDARY"))


@pytest.mark.parametrize("mode", ["simple", "failover", "weighted"])
def test_routing_problem_simple_or_missing_record_suits_every_mode(mode):
    assert routing_problem(state(a("192.0.2.1", "192.0.2.2")), mode) is None
    assert routing_problem(state(RecordSet(NAME, "CNAME", 60, ("lb.example.net.",))), mode) is None
    assert routing_problem(state(), mode) is None


def test_routing_problem_weighted_record():
    assert routing_problem(weighted_pair(), "weighted") is None
    simple = routing_problem(weighted_pair(), "simple")
    assert simple.startswith(f"{NAME} has weighted record sets ([east weight 70] A 300s 192.0.2.1; "
                             "[west weight 30] A 300s 192.0.2.2); a simple flip would delete them")
    assert simple.endswith("fix: use mode: weighted on this record")
    failover = routing_problem(weighted_pair(), "failover")
    assert "mode failover cannot change them" in failover and failover.endswith("fix: use mode: weighted")


def test_routing_problem_failover_record():
    assert routing_problem(failover_pair(), "failover") is None
    assert routing_problem(failover_pair(), "simple").endswith("a simple flip would delete them\n"
                                                               "  fix: use mode: failover on this record")
    weighted = routing_problem(failover_pair(), "weighted")
    assert "has failover record sets" in weighted and "mode weighted cannot change them" in weighted
    assert weighted.endswith("fix: use mode: failover")


def test_routing_problem_agrees_with_flip_state_messages():
    """The same rules and words as the flip itself, so readiness says what the flip would."""
    for current, mode in ((weighted_pair(), "simple"), (failover_pair(), "weighted"), (state(), "sideways")):
        with pytest.raises(ConfigError) as err:
            flip_state(current, FlipPlan(parse_target("198.51.100.7"), mode=mode))
        assert routing_problem(current, mode) == str(err.value)
    assert "unknown dns.flip mode 'sideways'" in routing_problem(state(), "sideways")


def test_routing_problem_when_no_target_of_any_kind_could_share_the_policy():
    mixed = state(a("192.0.2.1", set_identifier="v4", weight=50),
                  RecordSet(NAME, "AAAA", 300, ("2001:db8::1",), set_identifier="v6", weight=50))
    problem = routing_problem(mixed, "weighted")
    assert "cannot share a weighted routing policy" in problem
    assert "(and a flip to a target of any other kind fails as well)" in problem
    # a failover pair of A records is fine: the target just has to be an address
    assert routing_problem(failover_pair(), "failover") is None


def test_routing_problem_routing_dr_cannot_manage():
    geo = state(a("192.0.2.1", set_identifier="eu", extra={"Region": "eu-west-1"}))
    for mode in ("simple", "failover", "weighted"):
        problem = routing_problem(geo, mode)
        assert "these sets use Region routing" in problem and "flip it by hand" in problem


def test_routing_problem_leaves_flip_state_as_it_was():
    want = flip_state(state(a("192.0.2.1")), FlipPlan(parse_target("198.51.100.7"), ttl=60))
    assert want == state(a("198.51.100.7", ttl=60))
    with pytest.raises(ConfigError, match="use mode: failover on this record"):
        flip_state(failover_pair(), FlipPlan(parse_target("198.51.100.7")))


def test_probe_is_a_small_value():
    p = Probe("dns-read", True, "fine")
    assert p.to_dict() == {"name": "dns-read", "ok": True, "detail": "fine"}


def test_outside_zone():
    assert outside_zone("www.example.com", "example.com.") is None
    assert outside_zone("example.com.", "example.com.") is None
    assert "is not inside the zone example.com." in outside_zone("www.badexample.com.", "example.com.")


def test_record_and_routing_probes_without_io():
    provider = Rfc2136Provider(config("rfc2136").dns)
    missing = provider.record_probe(state(), "simple")
    assert missing.ok and "has no A, AAAA or CNAME record" in missing.detail and "will create it" in missing.detail
    needs = provider.record_probe(state(), "failover")
    assert not needs.ok and "a failover flip needs the record it moves traffic from" in needs.detail
    assert provider.routing_probe(state(a("192.0.2.1")), "simple").ok
    wrong = provider.routing_probe(state(a("192.0.2.1")), "weighted")
    assert not wrong.ok and "mode weighted is not available with dns.provider rfc2136" in wrong.detail
    assert "use mode: simple" in wrong.detail
    unread = provider.routing_probe(None, "simple")  # the record could not be read
    assert not unread.ok and unread.detail.startswith("not run:")


# --- registry -------------------------------------------------------------------------------------


def test_registry_holds_both_providers_and_refuses_duplicates():
    assert PROVIDERS == {"route53": dns_registry.Route53Provider, "rfc2136": dns_registry.Rfc2136Provider}
    with pytest.raises(ValueError, match="registered twice"):
        register(type("Other", (Route53Provider,), {}))
    assert set(PROVIDERS) == {"route53", "rfc2136"}


def test_make_provider_without_dns_section_says_what_to_add():
    with pytest.raises(ConfigError, match="no dns section"):
        make_provider(None)


# --- drill and health guards ----------------------------------------------------------------------


def test_drill_uses_a_drill_record_and_refuses_production():
    c = ctx(drill=True)
    assert drill_record(c) == "drill-a1b2.example.com."
    assert resolve_record({}, c) == "drill-a1b2.example.com."
    with pytest.raises(ConfigError, match="must not change the production record www.example.com."):
        resolve_record({"record": "WWW.example.com"}, c)
    with pytest.raises(ConfigError, match="changes only drill records"):
        resolve_record({"record": "api.example.com."}, c)
    assert resolve_record({}, ctx()) == "www.example.com."  # not a drill: the production record
    with pytest.raises(ConfigError, match="not inside the zone"):
        resolve_record({"record": "www.example.org."}, ctx())


def test_previous_key_is_a_valid_state_key():
    from dr.state.base import validate_key

    key = previous_key("WWW.example.com.", "run 2026/01")
    assert key == "dns/www.example.com/previous-run_2026_01.json" and validate_key(key)


def test_health_gate_matches_on_the_checked_host_only():
    ok = {"healthy": True, "url": "http://198.51.100.7:8080/health", "verified_by": "http.wait_healthy"}
    outputs = {"stack": {"healthy": True, "url": "http://198.51.100.8/"},  # not a health step
               "other": {**ok, "url": "http://192.0.2.1/health"}, "health": ok}
    assert passed_health(outputs, "198.51.100.7") == "health"
    assert passed_health(outputs, "198.51.100.7", only="other") is None
    assert passed_health(outputs, "198.51.100.8") is None
    assert passed_health({"h": {**ok, "healthy": False}}, "198.51.100.7") is None
    # when the engine says which type each step is, a look-alike output of another type does not count
    assert passed_health(outputs, "198.51.100.7", types={"health": "noop", "other": "http.wait_healthy"}) is None
    assert passed_health(outputs, "198.51.100.7", types={"health": "http.wait_healthy"}) == "health"


def test_fill_url():
    assert fill_url("http://{stack.A}:8080/x", {"A": "h.example"}) == "http://h.example:8080/x"
    assert fill_url("https://{stack.U}/health", {"U": "http://h/wp"}) == "http://h/wp/health"
    with pytest.raises(ConfigError, match="no `stack` parameter"):
        fill_url("http://{stack.A}/", None)


# --- the step types' declarations -----------------------------------------------------------------


ALL_STEPS = dns_steps.STEP_TYPES + http_steps.STEP_TYPES


@pytest.mark.parametrize("cls", ALL_STEPS, ids=lambda c: c.name)
def test_step_type_is_complete(cls):
    assert issubclass(cls, StepType) and cls.name and cls.description and cls.outputs
    assert all(p.type in PARAM_TYPES and p.help for p in cls.params)
    (step,) = yaml.safe_load(cls.example)
    assert step["type"] == cls.name
    declared = {p.name for p in cls.params}
    assert set(step.get("with", {})) <= declared
    assert all(action.startswith("route53:") for action in cls.iam_actions)
    assert cls().validate(step.get("with", {}), config()) == []


def test_flip_validation_messages():
    flip = dns_steps.DnsFlip()
    assert flip.validate({"target": "1.2.3.4", "mode": "failover"}, config("rfc2136")) == [
        "mode: failover records need provider route53; dns.provider rfc2136 has only simple"]
    problems = flip.validate({"target": "not a host", "mode": "sideways", "record": "www.example.org.",
                              "weight": 300, "health_check": "auto"}, config())
    assert any(p.startswith("mode: expected one of simple, failover, weighted") for p in problems)
    assert any(p.startswith("target: dns target 'not a host'") for p in problems)
    assert "record: www.example.org. is not inside the zone example.com." in problems
    assert "weight: expected a whole number from 0 to 255, got 300" in problems
    assert "health_check: only for mode: failover" in problems
    assert flip.validate({"target": "${steps.stack.WebsiteURL}", "weight": 100}, config()) == []


def test_wait_healthy_validation_messages():
    step = http_steps.WaitHealthy()
    assert step.validate({}, config()) == [
        "stack: required because the url http://{stack.WebsiteURL}/health names stack outputs "
        "(give it as `stack: ${steps.<stack step id>.outputs}`)"]
    no_health = parse_config(CONFIG.replace("PROVIDER", "route53").replace(
        'health: {url: "http://{stack.WebsiteURL}/health"}\n', ""))
    assert step.validate({"timeout": "soon"}, no_health) == [
        "url: missing, and dr.yaml has no health.url to default to",
        "timeout: expected a duration like 30s, 10m or 1h, got 'soon'"]
    assert step.validate({"url": "ftp://x", "consecutive": 0}, no_health) == [
        "url: expected an http(s) URL, got 'ftp://x'", "consecutive: expected a whole number from 1 to 100, got 0"]
