"""The one small HTTP server dr runs: a few GET paths answered from a background thread.

`HttpServer` serves routes, each a function returning (status, content type, body); a route that
raises answers 500 and the server goes on. `HealthServer` is the scheduler's `/healthz` (200 with
a JSON body while healthy, else 503 with the reasons) and `/metrics` (Prometheus text).
`dr mongo status --metrics-port` serves its `/metrics` with an HttpServer too.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from dr.obs.prometheus import CONTENT_TYPE

log = logging.getLogger(__name__)

Response = tuple[int, str, str]  # status, content type, body
HEALTH_PATHS = ("/healthz", "/health", "/livez", "/readyz")


class HttpServer:
    """Answers GET `routes[path]()` on (host, port); port 0 picks a free one. Binding errors
    (OSError) reach the caller, which knows which option to name."""

    def __init__(self, host: str, port: int, routes: Mapping[str, Callable[[], Response]], *,
                 name: str = "dr-http", paths_to_try: str | None = None):
        self.routes = dict(routes)
        paths = paths_to_try or " or ".join(p for p in self.routes if p != "/")
        self.server = ThreadingHTTPServer((host, port), _handler(self.routes, paths))
        self.server.daemon_threads = True
        # poll_interval: how long stop() may wait for the serving thread to notice (shutdown)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name=name, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str) -> str:
        host = self.server.server_address[0]
        return f"http://{'localhost' if host in ('0.0.0.0', '::') else host}:{self.port}{path}"

    def start(self):
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class HealthServer(HttpServer):
    """Serves `health() -> (healthy, document)` and `metrics() -> text` on (host, port)."""

    def __init__(self, host: str, port: int, health: Callable[[], tuple[bool, dict]],
                 metrics: Callable[[], str]):
        def healthz() -> Response:
            healthy, doc = health()
            return (200 if healthy else 503, "application/json",
                    json.dumps(doc, sort_keys=True, default=str) + "\n")

        routes = {path: healthz for path in HEALTH_PATHS}
        routes["/metrics"] = lambda: (200, CONTENT_TYPE, metrics())
        super().__init__(host, port, routes, paths_to_try="/healthz or /metrics")


def _handler(routes: Mapping[str, Callable[[], Response]], paths: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "dr"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            route = routes.get(path)
            if route is None:
                self._send(404, "text/plain", f"not found: try {paths}\n")
                return
            try:
                self._send(*route())
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
