"""extended_l2=on: writes and zero writes by subcluster, as qemu-io 7.2 does them.

The same random requests go to an image through qemu-io and through pyqemu's
block layer; qemu-img must then see the same map (which subclusters are
allocated, zero or unallocated, and where they live), the same data, and no
errors.
"""
from __future__ import annotations

import os
import random
import shutil
import subprocess

import pytest

from pyqemu.block import open_image

QEMU_IMG = shutil.which("qemu-img")
QEMU_IO = shutil.which("qemu-io")

pytestmark = pytest.mark.skipif(QEMU_IMG is None and not os.environ.get("CI"),
                                reason="qemu-img (qemu-utils) is required")

SIZE = 2 << 20


def run(*args, cwd):
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, (args, p.stderr)
    return p


def _requests(seed):
    rnd = random.Random(seed)
    out = []
    for _ in range(12):
        off = rnd.randrange(0, SIZE, 512)
        n = min(rnd.choice([512, 1024, 2048, 3072, 4096, 65536, 69632, 131072]), SIZE - off)
        out.append(("zero", off, n, 0) if rnd.random() < 0.3 else ("write", off, n, rnd.randrange(1, 255)))
    return out


@pytest.mark.parametrize("backing", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6, 7, 8, 9])
def test_subcluster_writes_match_qemu_io(tmp_path, seed, backing):
    if backing:
        run(QEMU_IMG, "create", "-q", "-f", "raw", "b.raw", str(SIZE), cwd=tmp_path)
        run(QEMU_IO, "-f", "raw", "-c", "write -P 9 0 %d" % SIZE, "b.raw", cwd=tmp_path)
    reqs = _requests(seed)
    for name in ("q.qcow2", "p.qcow2"):
        extra = ["-b", "b.raw", "-F", "raw"] if backing else []
        run(QEMU_IMG, "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", *extra, name, str(SIZE),
            cwd=tmp_path)
    cmds = []
    for kind, off, n, pat in reqs:
        cmds += ["-c", "write -z %d %d" % (off, n) if kind == "zero" else "write -P %d %d %d" % (pat, off, n)]
    run(QEMU_IO, *cmds, "q.qcow2", cwd=tmp_path)
    with open_image(str(tmp_path / "p.qcow2"), readonly=False) as node:
        for kind, off, n, pat in reqs:
            if kind == "zero":
                node.pwrite_zeroes(off, n)
            else:
                node.pwrite(off, bytes([pat]) * n)
    assert run(QEMU_IMG, "check", "p.qcow2", cwd=tmp_path).returncode == 0
    assert run(QEMU_IMG, "compare", "q.qcow2", "p.qcow2", cwd=tmp_path).stdout == "Images are identical.\n"
    assert run(QEMU_IMG, "map", "--output=json", "p.qcow2", cwd=tmp_path).stdout == \
        run(QEMU_IMG, "map", "--output=json", "q.qcow2", cwd=tmp_path).stdout
