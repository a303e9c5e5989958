"""`/healthz` and `/metrics` for the scheduler, on a small threaded HTTP server.

`/healthz` answers 200 with a JSON body while the loop runs and the state store answers, else
503 with the reasons. `/metrics` is the Prometheus text exposition.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from dr.scheduler.metrics import CONTENT_TYPE

log = logging.getLogger(__name__)


class HealthServer:
    """Serves `health() -> (healthy, document)` and `metrics() -> text` on (host, port)."""

    def __init__(self, host: str, port: int, health: Callable[[], tuple[bool, dict]],
                 metrics: Callable[[], str]):
        handler = _handler(health, metrics)
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 1.0},
                                       name="dr-http", daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> HealthServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(health, metrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "dr-schedule"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            try:
                if path in ("/healthz", "/health", "/livez", "/readyz"):
                    healthy, doc = health()
                    self._send(200 if healthy else 503, "application/json",
                               json.dumps(doc, sort_keys=True, default=str) + "\n")
                elif path == "/metrics":
                    self._send(200, CONTENT_TYPE, metrics())
                else:
                    self._send(404, "text/plain", "not found: try /healthz or /metrics\n")
            except Exception as exc:  # noqa: BLE001 - a broken probe must not kill the server
                log.exception("error serving %s", path)
                self._send(500, "text/plain", f"error: {exc}\n")

        def _send(self, code: int, ctype: str, body: str) -> None:
            data = body.encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet access log
            log.debug("http: " + format, *args)

    return Handler
