"""The scheduler's figures and their metric names (written out by dr/obs/prometheus.py)."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dr.obs.prometheus import exposition
from dr.obs.prometheus import family as _family


@dataclass
class JobFigures:
    kind: str
    running: bool = False
    last_slot: datetime | None = None
    last_status: str | None = None
    last_run: datetime | None = None
    last_success: datetime | None = None
    last_duration: float | None = None
    last_error: str | None = None
    runs: Counter = field(default_factory=Counter)  # status -> count (this process)
    missed_slots: int = 0
    claimed_elsewhere: int = 0


@dataclass
class ResourceFigures:
    kind: str
    point_time: datetime | None = None  # newest copy in the DR region
    breach: bool = False


class Metrics:
    """Thread-safe figures; `render(now)` computes RPOs at scrape time (now - point time)."""

    def __init__(self, rpo_objective: timedelta, started_at: datetime):
        self.lock = threading.Lock()
        self.jobs: dict[str, JobFigures] = {}
        self.resources: dict[str, ResourceFigures] = {}
        self.rpo_objective = rpo_objective
        self.started_at = started_at
        self.last_tick: datetime | None = None
        self.store_up: bool | None = None
        self.spooled = 0
        self.alerts = Counter()

    def job(self, name: str, kind: str = "") -> JobFigures:
        with self.lock:
            return self.jobs.setdefault(name, JobFigures(kind))

    def set_point(self, resource: str, kind: str, point_time: datetime | None) -> None:
        with self.lock:
            fig = self.resources.setdefault(resource, ResourceFigures(kind))
            if point_time is not None and (fig.point_time is None or point_time > fig.point_time):
                fig.point_time = point_time

    def set_breach(self, resource: str, kind: str, breach: bool) -> None:
        with self.lock:
            self.resources.setdefault(resource, ResourceFigures(kind)).breach = breach

    def rpo(self, resource: str, now: datetime) -> timedelta | None:
        with self.lock:
            fig = self.resources.get(resource)
            return now - fig.point_time if fig and fig.point_time else None

    def render(self, now: datetime) -> str:
        with self.lock:
            return _render(self, now)


def _ts(dt: datetime | None) -> str | None:
    return f"{dt.timestamp():.3f}" if dt else None


def _render(m: Metrics, now: datetime) -> str:
    out: list[str] = []

    def family(name: str, kind: str, help_: str, samples: list[tuple[dict, object]]) -> None:
        out.extend(_family(name, kind, help_, samples))

    jobs = sorted(m.jobs.items())
    family("dr_scheduler_start_time_seconds", "gauge", "When this scheduler started (Unix time).",
           [({}, _ts(m.started_at))])
    family("dr_scheduler_last_tick_timestamp_seconds", "gauge", "When the scheduler loop last ran.",
           [({}, _ts(m.last_tick))])
    family("dr_state_store_up", "gauge", "1 if the state store answered the last call, else 0.",
           [({}, None if m.store_up is None else int(m.store_up))])
    family("dr_state_store_spooled_documents", "gauge",
           "Documents kept in the local spool until the state store answers again.", [({}, m.spooled)])
    family("dr_job_running", "gauge", "1 while the job runs in this scheduler.",
           [({"job": n}, int(j.running)) for n, j in jobs])
    family("dr_job_last_success_timestamp_seconds", "gauge", "When the job last completed (Unix time).",
           [({"job": n}, _ts(j.last_success)) for n, j in jobs])
    family("dr_job_last_run_timestamp_seconds", "gauge", "When the job last finished, in any state.",
           [({"job": n}, _ts(j.last_run)) for n, j in jobs])
    family("dr_job_last_duration_seconds", "gauge", "How long the job's last run took.",
           [({"job": n}, None if j.last_duration is None else f"{j.last_duration:.3f}") for n, j in jobs])
    family("dr_job_last_run_failed", "gauge", "1 if the job's last run failed.",
           [({"job": n}, int(j.last_status == "failed")) for n, j in jobs if j.last_status])
    family("dr_job_runs_total", "counter", "Runs started by this scheduler, by outcome.",
           [({"job": n, "status": s}, c) for n, j in jobs for s, c in sorted(j.runs.items())])
    family("dr_job_failures_total", "counter", "Failed runs in this scheduler.",
           [({"job": n}, j.runs.get("failed", 0)) for n, j in jobs])
    family("dr_job_missed_slots_total", "counter",
           "Slots skipped after downtime (covered by one catch-up run).",
           [({"job": n}, j.missed_slots) for n, j in jobs])
    family("dr_job_slots_claimed_elsewhere_total", "counter",
           "Slots another scheduler claimed first (it ran them).",
           [({"job": n}, j.claimed_elsewhere) for n, j in jobs])
    resources = sorted(m.resources.items())
    family("dr_rpo_seconds", "gauge", "Age of the newest copy in the DR region: the RPO right now.",
           [({"resource": n, "kind": r.kind}, f"{(now - r.point_time).total_seconds():.0f}")
            for n, r in resources if r.point_time])
    family("dr_rpo_objective_seconds", "gauge", "objectives.rpo from dr.yaml.",
           [({}, f"{m.rpo_objective.total_seconds():.0f}")])
    family("dr_rpo_breach", "gauge", "1 while the resource's RPO is over the objective.",
           [({"resource": n}, int(r.breach)) for n, r in resources])
    family("dr_alerts_sent_total", "counter", "Alerts this scheduler published, by open/clear.",
           [({"transition": k}, v) for k, v in sorted(m.alerts.items())])
    return exposition(out)
