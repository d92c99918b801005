"""``pty``: a pseudo-terminal whose slave side (/dev/pts/N) a user opens.

As in QEMU, the chardev is "connected" only while someone has the slave side
open: a timer looks once a second (the master reports a hang-up while nobody
does); output is dropped while disconnected, and the frontend hears "opened"
and "closed" as users come and go.
"""
from __future__ import annotations

import os
import select
import sys
import tty
from typing import Any, Dict

from pyqemu.chardev.char import CHR_EVENT_CLOSED, CHR_EVENT_OPENED
from pyqemu.chardev.fd import FdChardev, write_all
from pyqemu.exec.main_loop import QEMU_CLOCK_REALTIME

POLL_NS = 1000000000


class PtyChardev(FdChardev):
    typename = "pty"

    def open(self) -> Dict[str, Any]:
        master, slave = os.openpty()
        tty.setraw(slave)  # the settings stay with the terminal after we close our end
        self.path = os.ttyname(slave)
        os.close(slave)
        os.set_blocking(master, False)
        self.master = master
        self.in_fd = self.out_fd = master
        self.connected = False
        self.filename = "pty:" + self.path
        # QEMU announces the pty on stdout.
        sys.stdout.write("char device redirected to %s (label %s)\n" % (self.path, self.label))
        sys.stdout.flush()
        self._timer = self.loop.timer_new(QEMU_CLOCK_REALTIME, self._poll_peer)
        self._poll_peer()
        return {"pty": self.path}

    def _peer_present(self) -> bool:
        p = select.poll()
        p.register(self.master, select.POLLIN)
        return not any(ev & select.POLLHUP for _, ev in p.poll(0))

    def _poll_peer(self) -> None:
        if self.out_fd is None:
            return
        if self._peer_present():
            if not self.connected:
                self.connected = True
                self.set_input_fd(self.master, self._readable)
                self.be_event(CHR_EVENT_OPENED)
            return
        if self.connected:
            self._hangup()
        self._timer.mod(self.loop.clock_get_ns(QEMU_CLOCK_REALTIME) + POLL_NS)

    def _hangup(self) -> None:
        self.connected = False
        self.set_input_fd(None, None)
        self.be_event(CHR_EVENT_CLOSED)

    def _eof(self) -> None:
        # EIO on the master: the last user closed the slave side.
        if self.connected:
            self._hangup()
        self._timer.mod(self.loop.clock_get_ns(QEMU_CLOCK_REALTIME) + POLL_NS)

    def _write(self, data: bytes) -> int:
        if self.out_fd is None or not self.connected:
            return len(data)  # nobody is there: dropped, as QEMU does
        write_all(self.out_fd, data, timeout=0.5)
        return len(data)

    def close(self) -> None:
        self._timer.delete()
        super().close()
