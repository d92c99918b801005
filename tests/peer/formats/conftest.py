"""Shared helpers of the image-format peer tests (pyqemu-img beside Debian's qemu-img 7.2)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

QEMU_IMG = shutil.which("qemu-img")
QEMU_IO = shutil.which("qemu-io")
PYQEMU_IMG = os.path.join(os.path.dirname(sys.executable), "pyqemu-img")


def run(prog, *args, cwd=None, check=True):
    if prog is None:
        raise AssertionError("qemu-img/qemu-io (qemu-utils) is required for the peer tests")
    p = subprocess.run([prog, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError("%s %s failed (%d): %s" % (prog, args, p.returncode, p.stderr))
    return p


def both(*args, cwd):
    """The same command through both tools: (qemu, pyqemu, pyqemu's stderr with qemu's prefix)."""
    q = run(QEMU_IMG, *args, cwd=cwd, check=False)
    p = run(PYQEMU_IMG, *args, cwd=cwd, check=False)
    return q, p, p.stderr.replace("pyqemu-img", "qemu-img")


def info_json(prog, path, fmt, cwd):
    """``info --output=json`` without the fields that depend on the host file system."""
    d = json.loads(run(prog, "info", "--output=json", "-f", fmt, path, cwd=cwd).stdout)
    d.pop("actual-size", None)
    return d


@pytest.fixture
def src(tmp_path):
    """A 12 MiB raw image with data scattered over it (block-aligned and not)."""
    run(QEMU_IMG, "create", "-q", "-f", "raw", "s.raw", "12M", cwd=tmp_path)
    run(QEMU_IO, "-f", "raw", "-c", "write -P 0xab 0 64k", "-c", "write -P 0x11 1500k 900k",
        "-c", "write -P 0x22 7M 3k", "-c", "write -P 0x33 12284k 4k", "s.raw", cwd=tmp_path)
    return tmp_path
