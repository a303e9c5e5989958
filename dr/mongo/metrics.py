"""The figures of replica-set checks as Prometheus metrics, served on `--metrics-port`.

The exposition format is dr/obs/prometheus.py's, the HTTP server dr/obs/http.py's.
"""

from __future__ import annotations

import threading

from dr.errors import UsageError
from dr.mongo.evaluate import STATE_NAMES
from dr.mongo.model import SEVERITIES, MongoReport
from dr.mongo.service import SetResult
from dr.obs.http import HttpServer
from dr.obs.prometheus import CONTENT_TYPE, exposition, family

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


def render(results: list[SetResult]) -> str:
    """The exposition text for the latest poll."""
    samples: dict[str, list[tuple[dict, float]]] = {name: [] for name in METRICS}
    for result in results:
        if result.report is None:
            samples["dr_mongo_up"].append(({"name": result.name, "set": ""}, 0))
            continue
        base = {"name": result.report.name, "set": result.report.set_name}
        for metric, labels, value in _report_samples(result.report):
            samples[metric].append(({**base, **labels}, value))
    lines = []
    for name, help_text in METRICS.items():
        if samples[name]:  # a family nobody measured is left out
            lines += family(name, "gauge", help_text, samples[name])
    return exposition(lines)


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
        self._body = "# no check has finished yet\n"
        self._lock = threading.Lock()

        def metrics():
            with self._lock:
                return 200, CONTENT_TYPE, self._body

        try:
            self._server = HttpServer(address, port, {"/metrics": metrics, "/": metrics},
                                      name="dr-metrics")
        except OSError as exc:
            raise UsageError(f"cannot serve metrics on {address}:{port}: {exc.strerror or exc}",
                             hint="pick another --metrics-port") from None

    @property
    def url(self) -> str:
        return self._server.url("/metrics")

    def start(self) -> MetricsServer:
        self._server.start()
        return self

    def update(self, results: list[SetResult]) -> None:
        body = render(results)
        with self._lock:
            self._body = body

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
