"""Prometheus text exposition of replica-set checks, and a tiny HTTP server for `--metrics-port`."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from dr.errors import UsageError
from dr.monitor.mongo import STATE_NAMES
from dr.monitor.report import SEVERITIES, MongoReport
from dr.monitor.service import SetResult

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_STATE_CODES = {name: code for code, name in STATE_NAMES.items()}

# name -> help; every metric is a gauge.
METRICS = {
    "dr_mongo_up": "1 if the last check of the replica set succeeded, else 0.",
    "dr_mongo_member_lag_seconds": "Replication lag: the primary's optime minus the member's, "
                                   "from one replSetGetStatus document.",
    "dr_mongo_member_oplog_window_seconds": "Time between the first and last entry of the "
                                            "member's oplog.",
    "dr_mongo_member_rtt_seconds": "Round-trip time from dr to the member.",
    "dr_mongo_member_health": "1 if the set sees the member healthy, else 0.",
    "dr_mongo_member_state": "The member's replica-set state code (1 PRIMARY, 2 SECONDARY, "
                             "7 ARBITER, 8 DOWN, 9 ROLLBACK, ...).",
    "dr_mongo_member_reachable": "1 if dr could reach the member itself, else 0.",
    "dr_mongo_region_members": "Members per region.",
    "dr_mongo_region_votes": "Votes per region.",
    "dr_mongo_region_loss_survivable": "1 if losing the region still leaves an electable majority "
                                       "and acknowledged w:majority writes.",
    "dr_mongo_survivable_region_losses": "How many single-region losses the set survives.",
    "dr_mongo_regions": "Regions the set's members are in.",
    "dr_mongo_has_primary": "1 if the set has a primary.",
    "dr_mongo_findings": "Findings of the last check, by severity.",
    "dr_mongo_last_check_timestamp_seconds": "When the last successful check ran (Unix time).",
}


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _sample(name: str, labels: dict, value: float) -> str:
    inner = ",".join(f'{k}="{_escape(v if v is not None else "")}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {value:g}" if inner else f"{name} {value:g}"


def render(results: list[SetResult]) -> str:
    """The exposition text for the latest poll."""
    samples: dict[str, list[str]] = {name: [] for name in METRICS}
    for result in results:
        if result.report is None:
            samples["dr_mongo_up"].append(_sample("dr_mongo_up", {"name": result.name, "set": ""}, 0))
            continue
        base = {"name": result.report.name, "set": result.report.set_name}
        for metric, labels, value in _report_samples(result.report):
            samples[metric].append(_sample(metric, {**base, **labels}, value))
    lines = []
    for name, help_text in METRICS.items():
        if samples[name]:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *samples[name]]
    return "\n".join(lines) + "\n"


def _report_samples(report: MongoReport):
    """(metric, extra labels, value) for one successful check."""
    yield "dr_mongo_up", {}, 1
    for m in report.members:
        who = {"member": m.host, "region": m.region or ""}
        if m.lag is not None:
            yield "dr_mongo_member_lag_seconds", who, m.lag
        if m.oplog_window is not None:
            yield "dr_mongo_member_oplog_window_seconds", who, m.oplog_window
        if m.rtt_ms is not None:
            yield "dr_mongo_member_rtt_seconds", who, m.rtt_ms / 1000
        if m.reachable is not None:
            yield "dr_mongo_member_reachable", who, int(m.reachable)
        yield "dr_mongo_member_health", who, int(m.healthy)
        yield "dr_mongo_member_state", who, _STATE_CODES.get(m.state, 6)
    for r in report.regions:
        yield "dr_mongo_region_members", {"region": r.region}, r.members
        yield "dr_mongo_region_votes", {"region": r.region}, r.votes
    for loss in report.region_losses:
        yield "dr_mongo_region_loss_survivable", {"region": loss.region}, int(loss.survivable)
    yield "dr_mongo_survivable_region_losses", {}, report.survivable_region_losses
    yield "dr_mongo_regions", {}, len(report.regions)
    yield "dr_mongo_has_primary", {}, int(report.primary is not None)
    counts = report.counts()
    for severity in SEVERITIES:
        yield "dr_mongo_findings", {"severity": severity}, counts[severity]
    yield "dr_mongo_last_check_timestamp_seconds", {}, report.checked_at.timestamp()


class MetricsServer:
    """Serves the latest exposition text on GET /metrics (and /) from a background thread."""

    def __init__(self, port: int, address: str = "127.0.0.1"):
        self._body = b"# no check has finished yet\n"
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404, "try /metrics")
                    return
                with outer._lock:
                    body = outer._body
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # no access log on stderr
                pass

        try:
            self._server = ThreadingHTTPServer((address, port), Handler)
        except OSError as exc:
            raise UsageError(f"cannot serve metrics on {address}:{port}: {exc.strerror or exc}",
                             hint="pick another --metrics-port") from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="dr-metrics")

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{'localhost' if host in ('0.0.0.0', '::') else host}:{port}/metrics"

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def update(self, results: list[SetResult]) -> None:
        body = render(results).encode()
        with self._lock:
            self._body = body

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
