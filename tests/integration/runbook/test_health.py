"""http.wait_healthy against a real HTTP server on 127.0.0.1 that can be healthy, down or flapping.

HealthServer and make_ctx are shared with the DNS step tests (tests/integration/dns/test_dns_*.py).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dr.aws import AwsSession
from dr.clock import Clock
from dr.config import parse_config
from dr.errors import ConfigError, Interrupted, OperationFailed
from dr.runbook.steps.base import StepContext
from dr.runbook.steps.http import WaitHealthy
from dr.state.local import LocalStore

pytestmark = pytest.mark.integration

BASE_CONFIG = """\
version: 1
regions: {primary: us-east-1, dr: us-west-2}
objectives: {rpo: 1h, rto: 30m}
kms: {dr_key: alias/dr-backups}
state: {path: "STATE"}
"""


class HealthServer:
    """A local HTTP server whose /health answers by `mode`: healthy (200), unhealthy (503),
    flapping (200, 503, 200, ...), down (connection refused: the socket is closed) or hang
    (answers after `hang_seconds`)."""

    def __init__(self, mode: str = "healthy", host: str = "127.0.0.1"):
        self.mode = mode
        self.hang_seconds = 5.0
        self.requests = 0
        self._flap = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                server.requests += 1
                status = server.status_for(self.path)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"ok\n" if status == 200 else b"not yet\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def status_for(self, path: str) -> int:
        if not path.startswith("/health"):
            return 404
        if self.mode == "hang":
            time.sleep(self.hang_seconds)
            return 200
        if self.mode == "flapping":
            self._flap = not self._flap
            return 200 if self._flap else 503
        return 200 if self.mode == "healthy" else 503

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/health"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def health_server():
    server = HealthServer()
    yield server
    server.close()


def make_ctx(config_text: str, tmp_path: Path, *, endpoint: str | None = None, drill: bool = False,
             run_id: str = "run-20260101T000000Z-a1b2", step_id: str = "step", outputs=None,
             cancel: threading.Event | None = None, logs: list | None = None) -> StepContext:
    """A StepContext as the engine builds one: real config, store, clock, AWS session."""
    config = parse_config(config_text.replace("STATE", str(tmp_path / "state")), base_dir=tmp_path)
    return StepContext(run_id=run_id, step_id=step_id, config=config, session=AwsSession(endpoint_url=endpoint),
                       clock=Clock(), cancel=cancel or threading.Event(), store=LocalStore(tmp_path / "state"),
                       drill=drill, region="us-west-2", outputs=outputs if outputs is not None else {},
                       log=logs.append if logs is not None else (lambda message: None))


FAST = {"interval": "1s", "timeout": "10s", "consecutive": 3}


def test_healthy_target_passes_after_n_consecutive_answers(health_server, tmp_path):
    logs = []
    ctx = make_ctx(BASE_CONFIG, tmp_path, logs=logs)
    out = WaitHealthy().execute({**FAST, "url": health_server.url(), "interval": 0.05}, ctx)
    assert out["healthy"] is True and out["url"] == health_server.url()
    assert out["host"] == "127.0.0.1" and out["verified_by"] == "http.wait_healthy"
    assert out["checks"] == 3 == health_server.requests
    assert 0 < out["seconds"] < 2
    assert any("HTTP 200 (1/3)" in line for line in logs)


def test_url_defaults_to_config_with_stack_outputs_filled(health_server, tmp_path):
    config = BASE_CONFIG + 'health: {url: "https://{stack.WebsiteURL}/health", consecutive: 2, interval: 1s}\n'
    ctx = make_ctx(config, tmp_path)
    stack = {"WebsiteURL": f"http://127.0.0.1:{health_server.port}/", "Other": "x"}
    out = WaitHealthy().execute({"stack": stack, "interval": 0.05}, ctx)
    assert out["url"] == f"http://127.0.0.1:{health_server.port}/health"  # the output's own scheme wins
    assert out["checks"] == 2  # consecutive from dr.yaml


def test_missing_stack_output_is_a_clear_error(tmp_path):
    config = BASE_CONFIG + 'health: {url: "http://{stack.WebsiteURL}/health"}\n'
    with pytest.raises(ConfigError, match=r"no output WebsiteURL \(it has: DBEndpoint\)"):
        WaitHealthy().execute({"stack": {"DBEndpoint": "db"}}, make_ctx(config, tmp_path))


def test_unhealthy_target_fails_with_last_status(health_server, tmp_path):
    health_server.mode = "unhealthy"
    ctx = make_ctx(BASE_CONFIG, tmp_path)
    started = time.monotonic()
    with pytest.raises(OperationFailed) as err:
        WaitHealthy().execute({"url": health_server.url(), "timeout": 0.6, "interval": 0.1,
                               "consecutive": 2}, ctx)
    assert time.monotonic() - started < 3
    message = str(err.value)
    assert f"{health_server.url()} did not become healthy within 0.6s" in message
    assert "at best 0 of the 2 passes in a row" in message and "last answer: HTTP 503" in message
    assert "DNS was not changed" in message


def test_flapping_target_never_reaches_n_in_a_row(health_server, tmp_path):
    health_server.mode = "flapping"
    with pytest.raises(OperationFailed, match=r"at best 1 of the 3 passes in a row .*last answer: HTTP"):
        WaitHealthy().execute({"url": health_server.url(), "timeout": 0.8, "interval": 0.05,
                               "consecutive": 3}, make_ctx(BASE_CONFIG, tmp_path))
    assert health_server.requests >= 4


def test_target_that_is_down_says_cannot_connect(tmp_path):
    server = HealthServer()
    url = server.url()
    server.close()  # nothing listens on that port any more
    with pytest.raises(OperationFailed, match=r"last answer: cannot connect: .*[Cc]onnection refused"):
        WaitHealthy().execute({"url": url, "timeout": 0.3, "interval": 0.1}, make_ctx(BASE_CONFIG, tmp_path))


def test_target_that_comes_up_during_the_wait_passes(health_server, tmp_path):
    health_server.mode = "unhealthy"
    threading.Timer(0.4, lambda: setattr(health_server, "mode", "healthy")).start()
    out = WaitHealthy().execute({"url": health_server.url(), "timeout": 10, "interval": 0.1, "consecutive": 2},
                                make_ctx(BASE_CONFIG, tmp_path))
    assert out["healthy"] is True and out["checks"] >= 4


def test_cancel_during_the_pause_between_checks_stops_at_once(health_server, tmp_path):
    health_server.mode = "unhealthy"
    cancel = threading.Event()
    ctx = make_ctx(BASE_CONFIG, tmp_path, cancel=cancel, step_id="health")
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(Interrupted, match="step health interrupted"):
        WaitHealthy().execute({"url": health_server.url(), "timeout": "10m", "interval": "30s"}, ctx)
    assert time.monotonic() - started < 1.0


def test_cancel_while_a_request_hangs_stops_at_once(health_server, tmp_path):
    health_server.mode = "hang"
    cancel = threading.Event()
    ctx = make_ctx(BASE_CONFIG, tmp_path, cancel=cancel, step_id="health")
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(Interrupted, match=f"while checking {health_server.url()}"):
        WaitHealthy().execute({"url": health_server.url(), "timeout": "10m", "request_timeout": "30s"}, ctx)
    assert time.monotonic() - started < 1.0


def test_slow_answer_counts_as_a_failure(health_server, tmp_path):
    health_server.mode, health_server.hang_seconds = "hang", 1.0
    with pytest.raises(OperationFailed, match=r"within 0.5s: .*last answer: no answer within 0\.[1-3]s"):
        WaitHealthy().execute({"url": health_server.url(), "timeout": 0.5, "request_timeout": 0.3,
                               "interval": 0.1}, make_ctx(BASE_CONFIG, tmp_path))
