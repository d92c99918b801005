"""Fixtures for the whole-program tests of pyqemu-system-x86_64.

Test modules are imported in importlib mode, so helpers reach them as fixtures.
"""
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
    if input is None:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return subprocess.run(argv, input=input, capture_output=True, timeout=timeout)


@pytest.fixture
def run_prog():
    """``run(argv, timeout=30, input=None)``: a finished process with captured output."""
    return run
