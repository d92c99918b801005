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


class LoopbackChardev:
    """Test transport: a real Chardev whose 'host side' is this object.

    ``type(b)`` delivers bytes to the frontend as a terminal would; ``screen()``
    returns and clears what the frontend wrote.
    """

    def __new__(cls, label="lb"):
        from pyqemu.chardev.char import CHR_EVENT_OPENED, Chardev, chardev_register

        class _Loop(Chardev):
            typename = "loopback"

            def open(self):
                self.out = bytearray()
                self.be_event(CHR_EVENT_OPENED)
                return {}

            def _write(self, data):
                self.out += data
                return len(data)

            def type(self, data):
                # Typing happens after the frontend heard "opened" (a loop turn).
                self.loop.run_until(lambda: not self._opening, timeout=5)
                self.be_received(data)

            def screen(self):
                text = bytes(self.out)
                self.out.clear()
                return text
        chr = _Loop(label, {})
        chr.open()
        chardev_register(chr)
        return chr


@pytest.fixture
def loopback(loop):
    return LoopbackChardev
