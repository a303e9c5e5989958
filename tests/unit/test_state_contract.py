"""The shared state-store contract (tests/state_contract.py) run against LocalStore.

The same cases run against S3Store in tests/integration/test_state_contract_s3.py.
"""

from __future__ import annotations

import pytest

from dr.state import LocalStore
from tests.state_contract import Backend, StateStoreContract


class TestLocalStoreContract(StateStoreContract):
    @pytest.fixture
    def backend(self, tmp_path) -> Backend:
        blocker = tmp_path / "not-a-directory"  # a root under a file: any I/O fails or finds nothing
        blocker.write_text("")
        return Backend("local", LocalStore(tmp_path / "state"), LocalStore(blocker / "state"))
