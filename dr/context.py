"""What every command works with: the config, the AWS client factory, the state store, the clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from dr.aws import AwsSession, resolve_endpoint
from dr.clock import Clock
from dr.config import Config
from dr.state.base import StateStore
from dr.state.records import RunStore


@dataclass
class Context:
    config: Config
    aws: AwsSession
    clock: Clock = field(default_factory=Clock)
    command: str = ""
    _store: StateStore | None = None

    @classmethod
    def over(cls, config: Config, aws: AwsSession, store: StateStore | None, *, clock: Clock | None = None,
             command: str = "") -> Context:
        """A context whose state store is already open (a runbook step's, the scheduler's spool);
        None: opened from the config on first use."""
        return cls(config=config, aws=aws, clock=clock or Clock(), command=command, _store=store)

    @property
    def store(self) -> StateStore:
        if self._store is None:
            self._store = open_store(self.config, self.aws)
        return self._store

    @property
    def runs(self) -> RunStore:
        return RunStore(self.store)


def make_context(config: Config, *, endpoint_url: str | None = None, profile: str | None = None,
                 clock: Clock | None = None, command: str = "", store: StateStore | None = None) -> Context:
    """`store`: the state store to use (default: `open_store` on first use)."""
    session = AwsSession(
        profile=profile or config.aws.profile,
        endpoint_url=resolve_endpoint(endpoint_url, config.aws.endpoint_url),
    )
    return Context.over(config, session, store, clock=clock, command=command)


def open_store(config: Config, session: AwsSession) -> StateStore:
    """The run-record store: a local directory, or a bucket in the DR region (survives the primary)."""
    if config.state.path is not None:
        from dr.state.local import LocalStore

        return LocalStore(config.state.path)
    from dr.state.s3 import S3Store

    from dr.aws.kms import resolve_dr_key

    region = config.regions.dr
    key = resolve_dr_key(session, config.kms.dr_key, region)
    store = S3Store(session.s3(region), config.state.bucket, config.state.prefix,
                    kms_key_id=key.arn, region=region)
    store.check()
    return store
