"""pyqemu-system-x86_64 on PyPy 3.9 (the interpreter the demos use): it starts,
answers QMP, and SIGTERM ends it with QEMU's message (PyPy has no
sigwaitinfo, so the sender is not named there)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "src")
MAIN = ("import sys; from pyqemu.cli.system import main_x86_64; "
        "sys.argv[0] = 'pyqemu-system-x86_64'; sys.exit(main_x86_64())")


@pytest.mark.slow
def test_sigterm_under_pypy(tmp_path):
    pypy = shutil.which("pypy3")
    assert pypy, "pypy3 (Debian pypy3) is needed"
    sock = str(tmp_path / "qmp.sock")
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC))
    proc = subprocess.Popen([pypy, "-c", MAIN, "-M", "none", "-display", "none", "-nodefaults",
                             "-qmp", "unix:%s,server=on,wait=off" % sock],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    try:
        deadline = time.monotonic() + 120
        while not os.path.exists(sock):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no QMP socket"
            time.sleep(0.1)
        # the socket is listening once its path exists; the greeting proves the
        # main loop runs, and the signal waiter is set up before it
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(60)
            s.connect(sock)
            greeting = json.loads(s.makefile("rb").readline())
            assert greeting["QMP"]["version"]["qemu"]["major"] == 7
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert err.decode() == "pyqemu-system-x86_64: terminating on signal 15\n"
