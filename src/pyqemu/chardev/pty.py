"""``pty``: a pseudo-terminal whose slave side (/dev/pts/N) a user opens."""
from __future__ import annotations

import os
import sys
import tty
from typing import Any, Dict, Optional

from pyqemu.chardev.fd import FdChardev, write_all


class PtyChardev(FdChardev):
    typename = "pty"

    def open(self) -> Dict[str, Any]:
        master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        # Keep our own slave fd open: without it the master reports a hang-up
        # until a user opens the device, and the loop would spin on it.
        self._slave: Optional[int] = slave
        self.filename = "pty:" + self.path
        sys.stderr.write("char device redirected to %s (label %s)\n" % (self.path, self.label))
        sys.stderr.flush()
        self.attach_fds(master, master)
        return {"pty": self.path}

    def _write(self, data: bytes) -> int:
        if self.out_fd is None:
            return len(data)
        write_all(self.out_fd, data, timeout=0.5)
        return len(data)  # what nobody reads is dropped, as QEMU does while unconnected

    def close(self) -> None:
        super().close()
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None
