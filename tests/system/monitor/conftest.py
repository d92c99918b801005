import subprocess

import pytest

from monitor_helpers import PYQEMU


@pytest.fixture
def emulator():
    """Start emulators (pyqemu or a real QEMU); all are killed after the test."""
    procs = []

    def start(args, prog=PYQEMU, stdin=subprocess.DEVNULL, cwd=None):
        p = subprocess.Popen([prog] + list(args), stdin=stdin, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd=cwd)
        procs.append(p)
        return p
    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)
        for f in (p.stdin, p.stdout, p.stderr):
            if f is not None:
                f.close()
