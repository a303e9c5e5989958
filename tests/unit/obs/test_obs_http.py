"""/healthz and /metrics over real HTTP on a free port."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from dr.obs.http import HealthServer


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


def test_healthz_and_metrics():
    state = {"healthy": True}

    def health():
        return state["healthy"], {"status": "ok" if state["healthy"] else "unhealthy"}

    server = HealthServer("127.0.0.1", 0, health, lambda: "# TYPE x gauge\nx 1\n").start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        code, ctype, body = get(base + "/healthz")
        assert code == 200 and ctype == "application/json" and json.loads(body)["status"] == "ok"
        state["healthy"] = False
        code, _, body = get(base + "/healthz")
        assert code == 503 and json.loads(body)["status"] == "unhealthy"
        code, ctype, body = get(base + "/metrics")
        assert code == 200 and ctype.startswith("text/plain; version=0.0.4") and body.endswith("x 1\n")
        assert get(base + "/nope")[0] == 404
    finally:
        server.stop()


def test_a_broken_health_function_answers_500_and_the_server_survives():
    def health():
        raise RuntimeError("bug")

    server = HealthServer("127.0.0.1", 0, health, lambda: "").start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert get(base + "/healthz")[0] == 500
        assert get(base + "/metrics")[0] == 200
    finally:
        server.stop()
