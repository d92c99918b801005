"""Persistent dirty bitmaps (made by qemu-img bitmap): listed by info, counted by
check, and invalidated (autoclear bit) when pyqemu, which does not maintain
them, writes to the image -- exactly what QEMU expects of such a program."""
from __future__ import annotations

import os
import shutil
import struct
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


def same(*args, cwd):
    q = run(QEMU_IMG, *args, cwd=cwd, check=False)
    p = run(PYQEMU_IMG, *args, cwd=cwd, check=False)
    assert (p.stdout, p.stderr.replace("pyqemu-img", "qemu-img"), p.returncode) == \
        (q.stdout, q.stderr, q.returncode), args
    return q


@pytest.fixture
def image(tmp_path):
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", "bm.qcow2", "64M", cwd=tmp_path)
    run(QEMU_IMG, "bitmap", "--add", "bm.qcow2", "b0", cwd=tmp_path)
    run(QEMU_IMG, "bitmap", "--add", "-g", "128k", "bm.qcow2", "b1", cwd=tmp_path)
    run(QEMU_IMG, "bitmap", "--add", "--disable", "bm.qcow2", "b2", cwd=tmp_path)
    run(QEMU_IO, "-c", "write 0 1M", "-c", "write 5M 3M", "bm.qcow2", cwd=tmp_path)
    return tmp_path


def _set_in_use(path, index):
    with open(path, "r+b") as f:
        head = f.read(65536)
        pos = struct.unpack(">I", head[100:104])[0]
        while True:
            kind, length = struct.unpack(">II", head[pos:pos + 8])
            assert kind, "no bitmaps extension"
            if kind == 0x23852875:
                _, _, size, off = struct.unpack(">IIQQ", head[pos + 8:pos + 32])
                break
            pos += 8 + ((length + 7) & ~7)
        f.seek(off)
        directory = f.read(size)
        p = 0
        for _ in range(index):
            name_size, extra = struct.unpack(">HI", directory[p + 18:p + 24])
            p = (p + 24 + extra + name_size + 7) & ~7
        flags = struct.unpack(">I", directory[p + 12:p + 16])[0]
        f.seek(off + p + 12)
        f.write(struct.pack(">I", flags | 1))


def test_bitmaps_listed_and_counted(image):
    for args in (["info"], ["info", "--output=json"], ["check"], ["check", "--output=json"]):
        same(*args, "bm.qcow2", cwd=image)
    _set_in_use(image / "bm.qcow2", 1)
    for args in (["info"], ["info", "--output=json"], ["check"]):
        assert "in-use" in same(*args, "bm.qcow2", cwd=image).stdout or args[0] == "check"


def test_writing_invalidates_bitmaps_as_qemu_expects(image):
    code = ("from pyqemu.block import open_image\n"
            "with open_image('bm.qcow2', readonly=False) as n:\n"
            "    n.pwrite(10 << 20, b'x' * 65536)\n")
    run(sys.executable, "-c", code, cwd=image)
    info = run(QEMU_IMG, "info", "bm.qcow2", cwd=image)
    assert "all bitmaps are now considered inconsistent" in info.stderr
    assert "bitmaps:" not in info.stdout
    for args in (["info"], ["check"], ["check", "--output=json"]):
        same(*args, "bm.qcow2", cwd=image)
    assert run(PYQEMU_IMG, "check", "-r", "leaks", "bm.qcow2", cwd=image, check=False).returncode == 0
    assert run(QEMU_IMG, "check", "bm.qcow2", cwd=image, check=False).returncode == 0


@pytest.mark.parametrize("args", [
    ["--bitmaps", "-O", "raw", "bm.qcow2"], ["--bitmaps", "-O", "qcow2", "r.raw"],
    ["--skip-broken-bitmaps", "-O", "qcow2", "bm.qcow2"], ["--bitmaps", "-O", "qcow2", "u.qcow2"],
    ["--bitmaps", "--skip-broken-bitmaps", "-O", "qcow2", "u.qcow2"],
    ["--bitmaps", "-O", "qcow2", "bm.qcow2", "bm.qcow2"], ["--bitmaps", "-O", "qcow2", "-o", "compat=0.10", "bm.qcow2"],
    ["--bitmaps", "-O", "qcow2", "bm.qcow2"], ["--bitmaps", "-O", "qcow2", "big.qcow2"],
])
def test_convert_bitmaps_like_qemu_img(image, args):
    run(QEMU_IMG, "create", "-q", "-f", "raw", "r.raw", "1M", cwd=image)
    shutil.copy(image / "bm.qcow2", image / "u.qcow2")
    _set_in_use(image / "u.qcow2", 0)
    # a bitmap of several clusters, some of them all zero
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", "big.qcow2", "8G", cwd=image)
    run(QEMU_IMG, "bitmap", "--add", "-g", "4k", "big.qcow2", "fine", cwd=image)
    run(QEMU_IO, "-c", "write 0 64k", "-c", "write 7G 1M", "big.qcow2", cwd=image)
    outs = []
    for tool, out in ((QEMU_IMG, "q.out"), (PYQEMU_IMG, "p.out")):
        p = run(tool, "convert", *args, out, cwd=image, check=False)
        outs.append((p.stdout, p.stderr.replace("pyqemu-img", "qemu-img"), p.returncode,
                     os.path.exists(image / out)))
    assert outs[0] == outs[1]
    if outs[0][2] == 0 and "qcow2" in args:
        # the same bytes as qemu-img writes: data, bitmap clusters, tables, directory, header
        with open(image / "q.out", "rb") as a, open(image / "p.out", "rb") as b:
            assert a.read() == b.read()
