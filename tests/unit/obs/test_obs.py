"""dr/obs: the one Prometheus exposition helper and the one HTTP server."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from dr.obs.http import HttpServer
from dr.obs.prometheus import CONTENT_TYPE, escape, exposition, family, number, sample


def test_label_values_are_escaped_and_none_is_empty():
    assert escape('we"ird\\re\ngion') == 'we\\"ird\\\\re\\ngion'
    assert escape(None) == ""
    assert sample("x", {"a": None, "b": 2}, 1) == 'x{a="",b="2"} 1'
    assert sample("x", {}, 1) == "x 1"


@pytest.mark.parametrize("value, text", [
    (1, "1"), (True, "1"), (False, "0"), (1.0, "1"), (0.25, "0.25"), ("12.500", "12.500"),
    (1209600, "1209600"), (1209600.0, "1209600"),        # never 1.2096e+06
    (1765432100.123, "1765432100.123"),                  # never 1.76543e+09
])
def test_values_are_written_in_full(value, text):
    assert number(value) == text


def test_a_family_leaves_out_unknown_values_and_the_body_ends_with_a_newline():
    lines = family("dr_x", "counter", "Things.", [({"job": "a"}, 3), ({"job": "b"}, None)])
    assert lines == ["# HELP dr_x Things.", "# TYPE dr_x counter", 'dr_x{job="a"} 3']
    assert exposition(lines).endswith('dr_x{job="a"} 3\n')
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


def test_http_server_answers_its_routes_404_elsewhere_and_survives_a_broken_route():
    def broken():
        raise RuntimeError("bug")

    routes = {"/metrics": lambda: (200, CONTENT_TYPE, "x 1\n"), "/broken": broken}
    with HttpServer("127.0.0.1", 0, routes) as server:
        assert server.url("/metrics") == f"http://127.0.0.1:{server.port}/metrics"
        assert _get(server.url("/metrics?x=1")) == (200, CONTENT_TYPE, "x 1\n")
        code, _, body = _get(server.url("/nope"))
        assert code == 404 and "/metrics" in body
        assert _get(server.url("/broken"))[0] == 500
        assert _get(server.url("/metrics"))[0] == 200


def test_a_busy_port_is_an_os_error_for_the_caller_to_name():
    with HttpServer("127.0.0.1", 0, {}) as first:
        with pytest.raises(OSError):
            HttpServer("127.0.0.1", first.port, {})


def test_the_mongo_metrics_server_names_the_option_when_its_port_is_busy():
    from dr.errors import UsageError
    from dr.mongo.metrics import MetricsServer

    with MetricsServer(0) as first:
        assert _get(first.url)[2] == "# no check has finished yet\n"
        port = int(first.url.rsplit(":", 1)[1].split("/")[0])
        with pytest.raises(UsageError, match="cannot serve metrics on 127.0.0.1:") as caught:
            MetricsServer(port)
        assert caught.value.hint == "pick another --metrics-port"
