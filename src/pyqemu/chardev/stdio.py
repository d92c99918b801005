"""``stdio``: the emulator's own stdin/stdout; a terminal is put in raw mode."""
from __future__ import annotations

import atexit
import os
import termios
from typing import Any, Dict, List, Optional

from pyqemu.chardev.fd import FdChardev
from pyqemu.util.error import QemuError

_in_use = False
_saved: Optional[List[Any]] = None


def _restore_tty() -> None:
    global _saved
    if _saved is not None:
        try:
            termios.tcsetattr(0, termios.TCSANOW, _saved)
        except termios.error:
            pass
        _saved = None


class StdioChardev(FdChardev):
    typename = "stdio"

    def open(self) -> Dict[str, Any]:
        global _in_use, _saved
        if _in_use:
            raise QemuError("cannot use stdio by multiple character devices")
        _in_use = True
        self._dup_in = os.dup(0)
        if os.isatty(0):
            _saved = termios.tcgetattr(0)
            atexit.register(_restore_tty)
            attrs = termios.tcgetattr(0)
            # Raw input like QEMU's qemu_chr_set_echo_stdio(false); keep ISIG
            # only when signal=on so that C-c still ends the emulator.
            attrs[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
                          | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
            attrs[1] |= termios.OPOST
            attrs[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.IEXTEN)
            if not self.data.get("signal", True):
                attrs[3] &= ~termios.ISIG
            attrs[6][termios.VMIN] = 1
            attrs[6][termios.VTIME] = 0
            termios.tcsetattr(0, termios.TCSANOW, attrs)
        self.attach_fds(self._dup_in, 1)
        return {}

    def close(self) -> None:
        global _in_use
        super().close()
        _restore_tty()
        _in_use = False
