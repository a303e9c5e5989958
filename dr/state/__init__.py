"""The state store: where every run leaves its record (see base.py for the contract)."""

from dr.state.base import StateStore, validate_key
from dr.state.local import LocalStore
from dr.state.runs import (
    RUN_STATUSES,
    ResourceResult,
    RunRecord,
    RunStore,
    StepRecord,
    iso,
    new_run_id,
    parse_iso,
)
from dr.state.s3 import S3Store

__all__ = [
    "RUN_STATUSES",
    "LocalStore",
    "ResourceResult",
    "RunRecord",
    "RunStore",
    "S3Store",
    "StateStore",
    "StepRecord",
    "iso",
    "new_run_id",
    "parse_iso",
    "validate_key",
]
