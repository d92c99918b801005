"""Data that the file below holds as a hole reads as zeroes: map and convert agree with qemu-img 7.2."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

QEMU_IMG = shutil.which("qemu-img")
QEMU_IO = shutil.which("qemu-io")
PYQEMU_IMG = os.path.join(os.path.dirname(sys.executable), "pyqemu-img")

pytestmark = pytest.mark.skipif(QEMU_IMG is None and not os.environ.get("CI"),
                                reason="qemu-img (qemu-utils) is required")


def run(prog, *args, cwd, check=True):
    p = subprocess.run([prog, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError("%s %s failed (%d): %s" % (prog, args, p.returncode, p.stderr))
    return p


@pytest.mark.parametrize("fmt,opts", [("qcow2", "preallocation=metadata"),
                                      ("qcow2", "preallocation=metadata,cluster_size=4k")])
def test_data_over_holes_is_zero(tmp_path, fmt, opts):
    img = "x." + fmt
    run(QEMU_IMG, "create", "-q", "-f", fmt, "-o", opts, img, "4M", cwd=tmp_path)
    run(QEMU_IO, "-f", fmt, "-c", "write -P 1 1M 64k", "-c", "write -P 2 2M 1M", img, cwd=tmp_path)
    q = run(QEMU_IMG, "map", "--output=json", "-f", fmt, img, cwd=tmp_path)
    p = run(PYQEMU_IMG, "map", "--output=json", "-f", fmt, img, cwd=tmp_path)
    assert p.stdout == q.stdout
    assert '"zero": true, "data": true' in q.stdout
    for out in ("raw", "qcow2"):
        run(QEMU_IMG, "convert", "-p", "-f", fmt, "-O", out, img, "q." + out, cwd=tmp_path)
        pc = run(PYQEMU_IMG, "convert", "-p", "-f", fmt, "-O", out, img, "p." + out, cwd=tmp_path)
        assert pc.stdout == run(QEMU_IMG, "convert", "-p", "-f", fmt, "-O", out, img, "q2." + out,
                                cwd=tmp_path).stdout
        assert run(QEMU_IMG, "compare", "q." + out, "p." + out, cwd=tmp_path).returncode == 0
        assert run(QEMU_IMG, "map", "--output=json", "p." + out, cwd=tmp_path).stdout == \
            run(QEMU_IMG, "map", "--output=json", "q." + out, cwd=tmp_path).stdout
