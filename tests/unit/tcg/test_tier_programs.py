"""Whole guest programs give native output whichever tier runs their blocks.

``PYQEMU_TCG_HOT=never`` interprets every block, ``0`` compiles every block at
once (the backend alone) and ``3`` switches most blocks, and self-loops in the
middle of a call, from the interpreter to compiled code.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(__file__)
SRC = os.path.abspath(os.path.join(HERE, "..", "..", "..", "src"))
PROGS = os.path.join(HERE, "..", "target", "progs")
pytestmark = pytest.mark.skipif(shutil.which("gcc") is None and not os.environ.get("CI"),
                                reason="needs gcc")


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    out = tmp_path_factory.mktemp("tierprogs")
    built = {}
    for name, flags in (("intops64", ["-static"]), ("intops32", ["-static", "-m32"]),
                        ("intopspie", [])):
        exe = str(out / name)
        subprocess.run(["gcc", "-O2", "-o", exe, os.path.join(PROGS, "intops.c"), "-lm"] + flags,
                       check=True, capture_output=True)
        built[name] = exe
    return built


@pytest.mark.slow
@pytest.mark.parametrize("hot", ["never", "0", "3"])
# Under PyPy (make pypy-test) one build is enough: the CPython pass runs all three.
@pytest.mark.parametrize("name", ["intops64"] if sys.implementation.name == "pypy" else
                         ["intops64", "intops32", "intopspie"])
def test_program_output_is_native_in_every_tier(programs, tmp_path, hot, name):
    prog = programs[name]
    native = subprocess.run([prog], capture_output=True, timeout=60)
    entry = "main_i386" if name == "intops32" else "main_x86_64"
    args = ["-L", "/"] if name == "intopspie" else []
    env = dict(os.environ, PYTHONPATH=SRC, PYQEMU_TCG_HOT=hot)
    code = "import sys; from pyqemu.cli.user import %s; %s(sys.argv[1:])" % (entry, entry)
    emu = subprocess.run([sys.executable, "-c", code] + args + [prog], capture_output=True,
                         env=env, timeout=600, cwd=tmp_path)
    assert emu.stderr == b""
    assert emu.stdout == native.stdout
    assert emu.returncode == native.returncode
