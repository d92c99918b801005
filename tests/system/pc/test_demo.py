"""`make demo`'s script (scripts/demo-linux.sh) as a user meets it on a
terminal: it says what it runs on and how to quit, the kernel's first lines
appear on the console, and C-a x ends the emulator with status 0."""
from __future__ import annotations

import os
import pty
import re
import select
import signal
import time

import pytest
from linuxboot import REPO

BANNER = "C-a x quits, C-a c switches between the console and the monitor"
# the whole line: the guest's CR LF, which the pty may turn into CR CR LF
KERNEL_LINE = re.compile(rb"Command line: console=ttyS0 earlyprintk=serial,ttyS0 pyqemu\.shell\r*\n")


def read_until(fd: int, buf: bytearray, pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not pred(buf):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if select.select([fd], [], [], min(left, 1.0))[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:         # EIO: the other side of the pty is gone
                return pred(buf)
            if not chunk:
                return pred(buf)
            buf += chunk
    return True


@pytest.mark.slow
def test_demo_boots_and_quits_with_ctrl_a_x():
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(REPO)
        os.execvp("bash", ["bash", "scripts/demo-linux.sh"])
    buf = bytearray()
    status = None
    try:
        seen = read_until(fd, buf, lambda b: KERNEL_LINE.search(b), 300)
        assert seen, bytes(buf[-2000:]).decode(errors="replace")
        os.write(fd, b"\x01x")
        read_until(fd, buf, lambda b: False, 60)     # to EOF: the emulator has ended
        for _ in range(300):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.1)
        else:
            status = None
    finally:
        if status is None:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    out = bytes(buf).decode(errors="replace")
    assert status == 0, out[-2000:]
    assert BANNER in out and "interpreter: " in out
    assert "QEMU: Terminated" in out
    assert "Traceback" not in out
