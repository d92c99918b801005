"""Every SSE..SSE4.2 instruction form (register and memory operands, several
immediates, MXCSR with round-to-nearest / DAZ+FTZ+round-down / toward-zero)
run on the host CPU and under pyqemu-x86_64 -cpu max: registers, flags,
memory and MXCSR (exception flags included) must be identical.

rcpps/rcpss/rsqrtps/rsqrtss are left out: their results are each vendor's
approximation tables (not architectural); pyqemu computes them exactly, as
QEMU does.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import sse_table  # noqa: E402

HERE = os.path.dirname(__file__)
SRC = os.path.abspath(os.path.join(HERE, "..", "..", "..", "src"))
APPROX = ("rcpps", "rcpss", "rsqrtps", "rsqrtss")


@pytest.mark.slow
@pytest.mark.skipif(sys.implementation.name == "pypy",
                    reason="1100 distinct blocks translate slowly on a cold PyPy; "
                           "the CPython pass runs the same helpers")
def test_sse_instructions_match_the_host_cpu(tmp_path):
    gcc = shutil.which("gcc")
    assert gcc, "gcc must be installed"
    src = tmp_path / "sse.c"
    src.write_text(sse_table.c_source())
    exe = tmp_path / "sse"
    subprocess.run([gcc, "-O0", "-static", "-o", str(exe), str(src)], check=True,
                   capture_output=True)
    native = subprocess.run([str(exe)], capture_output=True, timeout=120)
    assert native.returncode == 0
    env = dict(os.environ, PYTHONPATH=SRC)
    code = "import sys; from pyqemu.cli.user import main_x86_64; main_x86_64(sys.argv[1:])"
    emu = subprocess.run([sys.executable, "-c", code, "-cpu", "max", str(exe)],
                         capture_output=True, env=env, timeout=900)
    assert emu.returncode == 0, emu.stderr[-2000:]
    assert len(native.stdout) > 1000 * 260
    diffs = [x for x in sse_table.differences(native.stdout, emu.stdout)
             if not x.startswith(APPROX)]
    assert diffs[:20] == []


def test_the_table_covers_sse41_and_sse42():
    names = {label.split()[0] for label, _ in sse_table.cases()}
    for n in ("dpps", "dppd", "insertps", "mpsadbw", "phminposuw", "movntdqa", "pcmpestri",
              "pcmpistrm", "crc32q", "pshufb/mmx", "cvtpi2ps", "roundsd", "blendvpd"):
        assert n in names
