"""Checking replica sets: probe (I/O) + evaluate (pure), one set or several; a simulated set for demos."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta

from dr.clock import Clock
from dr.config import MongoResource, Secret
from dr.errors import EXIT_BREACH, EXIT_FAILED, EXIT_OK, EXIT_USAGE, DrError, OperationFailed
from dr.monitor.mongo import MemberProbe, Settings, evaluate
from dr.monitor.report import MongoReport, worst_of


def check_replica_set(resource: MongoResource, primary_region: str, *, timeout: float | None = None,
                      dr_region: str | None = None, clock: Clock | None = None) -> MongoReport:
    """Probe one replica set and evaluate it. Raises ConfigError (a standalone, a mongos, a bad
    URI) or OperationFailed (authentication, nothing reachable) with a message for the user."""
    from dr.monitor.probe import observe

    seconds = timeout if timeout is not None else resource.timeout.total_seconds()
    where = f"${resource.uri.env}" if resource.uri.env else f"mongo {resource.name}'s uri in dr.yaml"
    observation = observe(resource.uri.resolve(), name=resource.name, timeout=seconds,
                          uri_source=where)
    settings = Settings.from_resource(resource, primary_region, dr_region)
    return evaluate(observation.status, observation.config, observation.probes, settings,
                    checked_at=(clock or Clock()).now(), source=observation.source)


@dataclass(frozen=True)
class SetResult:
    """One configured set's outcome: a report, or the error that stopped its check."""

    name: str
    report: MongoReport | None = None
    error: DrError | None = None

    @property
    def worst(self) -> str | None:
        return self.report.worst if self.report else None

    def to_dict(self) -> dict:
        if self.report is not None:
            return self.report.to_dict()
        return {"name": self.name, "error": str(self.error), "exit_code": self.error.exit_code}


def check_sets(resources, primary_region: str, *, dr_region: str | None = None,
               timeout: float | None = None, clock: Clock | None = None) -> list[SetResult]:
    """Check several sets at once; an error in one is kept with it and does not stop the others."""

    def one(resource: MongoResource) -> SetResult:
        try:
            return SetResult(resource.name, check_replica_set(
                resource, primary_region, timeout=timeout, dr_region=dr_region, clock=clock))
        except DrError as exc:
            return SetResult(resource.name, error=exc)
        except Exception as exc:  # a driver error nobody mapped: still one line, no trace
            return SetResult(resource.name, error=OperationFailed(
                f"mongo {resource.name}: {type(exc).__name__}: {str(exc)[:300]}"))

    resources = list(resources)
    if len(resources) == 1:
        return [one(resources[0])]
    with ThreadPoolExecutor(max_workers=min(8, len(resources))) as pool:
        return list(pool.map(one, resources))


def results_worst(results: list[SetResult]) -> str:
    return worst_of(r.worst for r in results if r.worst)


def results_exit_code(results: list[SetResult]) -> int:
    """2 if a set is misconfigured, else 1 if a check failed, else 3 if anything is critical."""
    errors = [r.error for r in results if r.error is not None]
    if errors:
        return EXIT_USAGE if any(e.exit_code == EXIT_USAGE for e in errors) else EXIT_FAILED
    return EXIT_BREACH if results_worst(results) == "critical" else EXIT_OK


def results_dict(results: list[SetResult]) -> dict:
    return {"replica_sets": [r.to_dict() for r in results], "worst": results_worst(results),
            "exit_code": results_exit_code(results)}


# --- simulated -----------------------------------------------------------------------------------------


def simulated_report(primary_region: str = "us-east-1", *, members=None, dr_region: str | None = None,
                     wire: bool = True, clock: Clock | None = None) -> MongoReport:
    """A report on a SIMULATED set (default: `demo_members()`, 2-2-1 over three regions), marked
    `simulated=True`. With mockupdb installed it goes through the real probe over the wire (one
    fake mongod per member on 127.0.0.1); without, the same documents are evaluated directly."""
    from dr.monitor.simulate import SimSet, WireReplicaSet, demo_members

    members = members if members is not None else demo_members()
    if wire:
        try:
            import mockupdb  # noqa: F401
        except ImportError:
            wire = False
    if wire:
        with WireReplicaSet(members, "rs-demo") as fake:
            resource = MongoResource(name="demo-rs", uri=Secret(literal=fake.uri),
                                     timeout=timedelta(seconds=3))
            report = check_replica_set(resource, primary_region, dr_region=dr_region, clock=clock)
        return replace(report, simulated=True)
    sim = SimSet(members, "rs-demo")
    probes = {m.host: MemberProbe(m.host, True, rtt_ms=0.0,
                                  oplog_first=sim.oplog_entry(m, True)["wall"],
                                  oplog_last=sim.oplog_entry(m, False)["wall"])
              for m in members if not m.down and not m.arbiter}
    settings = Settings(name="demo-rs", primary_region=primary_region, dr_region=dr_region)
    return evaluate(sim.status_doc(), sim.config_doc(), probes, settings,
                    checked_at=(clock or Clock()).now(), source="(documents only)", simulated=True)
