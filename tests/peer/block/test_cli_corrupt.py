"""pyqemu-img on damaged images: a QEMU-style error and exit status, never an internal error."""
from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
import sys

import pytest

QEMU_IMG = shutil.which("qemu-img")
QEMU_IO = shutil.which("qemu-io")
PYQEMU_IMG = os.path.join(os.path.dirname(sys.executable), "pyqemu-img")

pytestmark = [pytest.mark.skipif(QEMU_IMG is None and not os.environ.get("CI"), reason="qemu-img (qemu-utils) is required"),
              pytest.mark.slow]


def test_commands_on_damaged_images_fail_cleanly(tmp_path):
    subprocess.run([QEMU_IMG, "create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", "v.qcow2", "8M"],
                   cwd=tmp_path, check=True)
    subprocess.run([QEMU_IO, "-c", "write -P 1 0 300k", "-c", "write -z 1M 64k", "v.qcow2"], cwd=tmp_path,
                   check=True, capture_output=True)
    subprocess.run([QEMU_IMG, "snapshot", "-c", "s", "v.qcow2"], cwd=tmp_path, check=True)
    good = (tmp_path / "v.qcow2").read_bytes()
    rnd = random.Random(1234)
    for i in range(25):
        data = bytearray(good)
        for _ in range(rnd.randint(1, 3)):
            what = rnd.random()
            if what < 0.3:
                del data[rnd.randrange(len(data)):]
            elif what < 0.7:
                off = rnd.choice([8, 16, 20, 24, 36, 40, 48, 56, 60, 64, 72, 96, 100])
                struct.pack_into(">I", data, off, rnd.choice([0, 1, 0xFFFFFFFF, rnd.getrandbits(32)]))
            else:
                pos = rnd.randrange(0, max(8, len(data) - 8)) & ~7
                struct.pack_into(">Q", data, pos, rnd.getrandbits(64))
        img = tmp_path / ("d%d.qcow2" % i)
        img.write_bytes(bytes(data))
        for args in (["info", str(img)], ["check", str(img)], ["map", "--output=json", str(img)],
                     ["convert", "-O", "raw", str(img), str(tmp_path / "out.raw")], ["snapshot", "-l", str(img)]):
            p = subprocess.run([PYQEMU_IMG, *args], capture_output=True, text=True, timeout=120, cwd=tmp_path)
            assert "internal error" not in p.stderr and "Traceback" not in p.stderr, (args, p.stderr)
            if p.returncode != 0 and not (args[0] == "check" and p.returncode in (2, 3)):
                # check may list the problems first; the failure itself reads "pyqemu-img: ..."
                assert p.stderr.splitlines()[-1].startswith("pyqemu-img: "), (args, p.stderr)
