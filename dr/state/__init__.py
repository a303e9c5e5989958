"""The state store: where every run leaves its record (see base.py for the contract).

base/local/s3: the StateStore contract and its two backends; records: the run record and where it
is kept; status: the statuses and allowed transitions; recorder: the one way a run is recorded.
"""

from dr.state.base import StateStore, validate_key
from dr.state.local import LocalStore
from dr.state.recorder import Recorder
from dr.state.records import RUN_STATUSES, ResourceResult, RunRecord, RunStore, StepRecord, new_run_id
from dr.state.s3 import S3Store

__all__ = [
    "RUN_STATUSES",
    "LocalStore",
    "Recorder",
    "ResourceResult",
    "RunRecord",
    "RunStore",
    "S3Store",
    "StateStore",
    "StepRecord",
    "new_run_id",
    "validate_key",
]
