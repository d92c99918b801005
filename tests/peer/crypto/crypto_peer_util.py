"""Helpers of the encryption peer tests (a uniquely named module: every test directory has its own conftest)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

QEMU_IMG = shutil.which("qemu-img")
QEMU_IO = shutil.which("qemu-io")
BIN = os.path.dirname(sys.executable)
PYQEMU_IMG = os.path.join(BIN, "pyqemu-img")
PYQEMU_IO = os.path.join(BIN, "pyqemu-io")
SECRET = "secret,id=sec0,data=123456"
# real qemu-img measures PBKDF2 speed for iter-time; below ~250 ms it may fail on a busy machine
QEMU_ITER = "iter-time=300"
OUR_ITER = "iter-time=50"


def run(prog, *args, cwd=None, check=True):
    if prog is None:
        raise AssertionError("qemu-img/qemu-io (qemu-utils) is required for the peer tests")
    for _attempt in range(6):
        p = subprocess.run([prog, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
        # real qemu-img's PBKDF2 benchmark sometimes measures 0 ms of CPU time on a loaded
        # machine and gives up (MACHINE-NOTES.md): that is the reference tool's flake, so retry it
        if prog != QEMU_IMG or "Unable to get accurate CPU usage" not in p.stderr:
            break
    if check and p.returncode != 0:
        raise AssertionError("%s %s failed (%d): %s" % (prog, args, p.returncode, p.stderr))
    assert "Traceback" not in p.stderr
    return p


def info_json(prog, path, cwd, *extra):
    d = json.loads(run(prog, "info", "--output=json", *extra, path, cwd=cwd).stdout)
    d.pop("actual-size", None)
    return d


def msg(p, prog):
    """stderr with the program name replaced by qemu's, for comparing messages."""
    return p.stderr.replace(os.path.basename(prog), prog.replace("pyqemu-", "qemu-").split("/")[-1])
