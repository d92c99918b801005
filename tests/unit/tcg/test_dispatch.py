"""How the execution loop calls block functions: directly on CPython, as residual calls on PyPy."""
import os
import subprocess
import sys

import pytest

from pyqemu.exec import cpu_loop

PYPY = sys.implementation.name == "pypy"


def test_cpython_calls_blocks_directly():
    if PYPY:
        pytest.skip("CPython only")
    assert cpu_loop._dispatch_setup() is None


def _probe(env_value):
    code = ("import pypyjit\n"
            "from pyqemu.exec import cpu_loop\n"
            "print(cpu_loop._dispatch_setup() is pypyjit.residual_call)\n")
    env = dict(os.environ)
    if env_value is None:
        env.pop("PYQEMU_PYPY_DISPATCH", None)
    else:
        env["PYQEMU_PYPY_DISPATCH"] = env_value
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


def test_pypy_calls_blocks_as_residual_calls_unless_asked_inline():
    if not PYPY:
        pytest.skip("PyPy only")
    # a fresh interpreter each: the choice is made once per process
    assert _probe(None) == "True"
    assert _probe("inline") == "False"
