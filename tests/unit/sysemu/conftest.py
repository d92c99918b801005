from __future__ import annotations

import pytest

from sysemu_helpers import Machine


@pytest.fixture
def mach() -> Machine:
    return Machine()
