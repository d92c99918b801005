import pytest

from pyqemu.chardev import chardev_reset_all
from pyqemu.exec.main_loop import MainLoop, set_main_loop
from pyqemu.monitor import stop_all_monitors


@pytest.fixture
def loop():
    """A fresh main loop; every chardev and monitor made in the test is closed after it."""
    lp = MainLoop()
    set_main_loop(lp)
    yield lp
    stop_all_monitors()
    chardev_reset_all()
    lp.close()
    set_main_loop(None)
