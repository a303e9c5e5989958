"""The contract every kind of backed-up data fulfils (rds, s3, mysql, ...), and what a kind's
executor is handed.

A kind is one module under dr/backup/kinds/ and one line in dr/backup/kinds/__init__.py. The
service (run, list, prune, verify), the CLI, the scheduler, the IAM policy, readiness and the
report iterate the registry and never name a kind. Members marked PURE do no I/O: they decide
from what `observe`/`points` read, so they are unit-tested in milliseconds.

    resources(config)            the configured resources of this kind (each has .name, .schedule)
    observe(ctx, r, now, count)  what is true now for one resource (never raises: errors go in it)
    plan(obs, config, key, err)  PURE: the PlanItem, or why it is blocked
    execute(ctx, item, r, run)   do it; steps, figures and recovery points are recorded
                                 through run.resource (dr.state.recorder)
    points(ctx, rs)              recovery points of these resources (dr backup list)
    list_table(points, now, all) PURE: the kind's part of `dr backup list`
    plan_prune(points, r, now)   PURE: keep/delete with reasons; prune(...) deletes what it says
    verify(ctx, rs, ...)         check copies against their sources (if `verify_takes` is set)
    readiness_observe / readiness  what a failover needs of this kind, observed then judged (PURE)
    grants(config, r)            the IAM grants this resource needs: `features_for` names them
                                 among the kind's `features`, declared next to its code
    restore_steps                the runbook step types that restore this kind's data
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # the registry stays light: `dr --help` imports it, and no AWS library
    from dr.backup.leases import RunLease
    from dr.backup.plan import PlanItem, Table
    from dr.config import Config
    from dr.context import Context
    from dr.failover.readiness import Check
    from dr.aws.kms import DrKey
    from dr.permissions import Grant
    from dr.state.recorder import ResourceRecorder
    from dr.state.records import ResourceResult, RunRecord


@dataclass
class KindRun:
    """What an executing kind is handed: its resource's recorder (dr.state.recorder: steps,
    figures, recovery points, every change saved), the run around it, and the cancel flag."""

    ctx: Context
    record: RunRecord
    resource: ResourceRecorder
    dr_key: DrKey | None
    now: datetime
    lease: RunLease | None
    cancel: threading.Event
    shared: dict = field(default_factory=dict)  # per run and kind (e.g. one executor)

    @property
    def result(self) -> ResourceResult:
        return self.resource.result

    def save(self) -> None:
        self.resource.save()

    def step(self, name: str, detail: str):
        """A step of this resource: completed when the block ends, interrupted on Ctrl-C,
        failed on an error (which goes on)."""
        return self.resource.step(name, detail)


@dataclass
class PrunePart:
    """One kind's prune: its decisions (plan_prune's), the table shown, what the run record's
    plan holds, what was deleted and what could not be."""

    table: Table
    decisions: list = field(default_factory=list)
    planned: list[dict] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class BackupKind(ABC):
    """One kind of data dr backs up. Subclasses set the class attributes and every method."""

    name: ClassVar[str]  # `--only` value, the Job kind, the report's kind column
    restore_steps: ClassVar[tuple[str, ...]] = ()  # runbook step types restoring this kind
    workers: ClassVar[int] = 1  # resources executed at once (threads) in one run
    list_rank: ClassVar[int] = 50  # where its table comes in `dr backup list` (lower first)
    verifies_backups: ClassVar[bool] = False  # its backups are restored and compared (verify)
    leaves_leftovers: ClassVar[bool] = False  # dr.backup.cleanup sweeps its interrupted runs
    #: `dr backup verify` options it takes ("backup": one backup by id, "deep": a sample of
    #: objects checked in depth); None: it has no verify
    verify_takes: ClassVar[frozenset[str] | None] = None
    #: feature -> IAM grants, declared next to the calls that need them (dr/permissions.py
    #: assembles the policy; `grants` picks the features one resource needs)
    features: ClassVar[dict[str, tuple[Grant, ...]]] = {}

    @abstractmethod
    def resources(self, config: Config) -> Sequence[Any]: ...

    @abstractmethod
    def record_kind(self, resource: Any) -> str:
        """The kind its ResourceResults record (rds-instance, s3, mysql, ...)."""

    @abstractmethod
    def needs_dr_key(self, resource: Any) -> bool: ...

    @abstractmethod
    def observe(self, ctx: Context, resource: Any, now: datetime, count: bool) -> Any:
        """What is true now; `count`: a dry run, worth reading more to say what would move."""

    @abstractmethod
    def plan(self, observation: Any, config: Config, dr_key: DrKey | None,
             key_error: str | None) -> PlanItem: ...

    @abstractmethod
    def execute(self, ctx: Context, item: PlanItem, resource: Any, run: KindRun) -> None: ...

    @abstractmethod
    def result_line(self, result: ResourceResult) -> str:
        """What a run did for one resource, after `<name>: <status>` (may be empty)."""

    @abstractmethod
    def points(self, ctx: Context, resources: Sequence[Any]) -> list:
        """Recovery points of these resources, newest first (raises DrError)."""

    @abstractmethod
    def list_table(self, points: list, now: datetime, show_all: bool) -> Table: ...

    @abstractmethod
    def plan_prune(self, points: list, resources: Sequence[Any], now: datetime) -> list:
        """PURE: the prune decisions (each with its reasons) for these points."""

    @abstractmethod
    def prune(self, ctx: Context, resources: Sequence[Any], now: datetime,
              dry_run: bool) -> PrunePart | None:
        """List, plan (plan_prune) and, unless `dry_run`, delete; None: the kind has no
        retention of its own."""

    @abstractmethod
    def verify(self, ctx: Context, resources: Sequence[Any], *, backup: str | None,
               deep: int | str | None) -> dict | None:
        """name -> a result with `.ok` and `.to_dict()` (only called when `verify_takes` is set)."""

    def verify_newest(self, ctx: Context, resource: Any) -> RunRecord | None:
        """Scheduled verification (kinds with `verifies_backups`): verify the newest backup not
        verified yet and return the run's record; None when there is nothing to verify."""
        raise NotImplementedError(f"{self.name} backups are not verified on a schedule")

    @abstractmethod
    def readiness_observe(self, ctx: Context, resource: Any) -> Any: ...

    @abstractmethod
    def readiness(self, observation: Any, config: Config, now: datetime) -> list[Check]:
        """PURE: the checks a failover needs of this resource's copies."""

    @abstractmethod
    def features_for(self, config: Config, resource: Any) -> list[str]:
        """The names of `features` this resource needs."""

    # -- shared by every kind

    def schedule_text(self, resource: Any) -> str:
        return resource.schedule.text

    def grants(self, config: Config, resource: Any) -> list[Grant]:
        """The IAM grants this resource needs (dr/permissions.py places and assembles them)."""
        return [g for f in self.features_for(config, resource) for g in self.features[f]]
