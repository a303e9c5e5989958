"""Checking replica sets: probe (I/O) + evaluate (pure), one set or several."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dr.clock import Clock
from dr.config import MongoResource
from dr.errors import EXIT_BREACH, EXIT_FAILED, EXIT_OK, EXIT_USAGE, DrError, OperationFailed
from dr.mongo.evaluate import evaluate
from dr.mongo.model import MongoReport, Settings, worst_of


def check_replica_set(resource: MongoResource, primary_region: str, *, timeout: float | None = None,
                      dr_region: str | None = None, clock: Clock | None = None) -> MongoReport:
    """Probe one replica set and evaluate it. Raises ConfigError (a standalone, a mongos, a bad
    URI) or OperationFailed (authentication, nothing reachable) with a message for the user."""
    from dr.mongo.probe import observe

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
