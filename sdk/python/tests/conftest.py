import pytest

import mvm


@pytest.fixture(autouse=True)
def _fresh_declarations():
    # Declarations are recorded per process; each test starts from none.
    mvm.reset()
    yield
    mvm.reset()
