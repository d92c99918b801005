import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from qgaclient import PYQEMU_GA, QEMU_GA, Agent  # noqa: E402


@pytest.fixture
def agents(tmp_path):
    """The real qemu-ga and pyqemu-ga, each on its own socket."""
    assert shutil.which("qemu-ga") or Path(QEMU_GA).exists(), \
        "qemu-ga missing: install qemu-guest-agent (make peer-tools)"
    real = Agent(QEMU_GA, tmp_path / "real")
    ours = Agent(PYQEMU_GA, tmp_path / "ours")
    yield real, ours
    real.stop()
    ours.stop()
