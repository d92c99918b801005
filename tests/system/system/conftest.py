"""Helpers for whole-program tests of pyqemu-system-x86_64."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

BIN = os.path.join(os.path.dirname(sys.executable), "pyqemu-system-x86_64")


@pytest.fixture
def pyqemu_system():
    if not os.path.exists(BIN):
        pytest.fail("pyqemu-system-x86_64 is not installed in the venv (pip install -e .)")
    return BIN


@pytest.fixture
def real_qemu():
    path = shutil.which("qemu-system-x86_64")
    if path is None:
        pytest.fail("qemu-system-x86_64 (Debian qemu-system-x86) is needed for this test")
    return path


def run(argv, timeout=30, input=None):
    return subprocess.run(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                          input=input, capture_output=True, timeout=timeout)
