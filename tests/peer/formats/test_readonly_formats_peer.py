"""bochs and cloop (read-only) against qemu-img 7.2, with images made by Bochs' and cloop's own tools."""
from __future__ import annotations

import shutil
import struct

from conftest import PYQEMU_IMG, QEMU_IMG, both, run

BXIMAGE = shutil.which("bximage")
CREATE_CLOOP = shutil.which("create_compressed_fs")


def _data(tmp_path):
    run(QEMU_IMG, "create", "-q", "-f", "raw", "d.raw", "3M", cwd=tmp_path)
    with open(tmp_path / "d.raw", "r+b") as f:
        for off, byte, n in ((0, 0xAB, 70000), (1 << 20, 0x11, 5000), (3 * 2**20 - 600, 0x22, 600)):
            f.seek(off)
            f.write(bytes([byte]) * n)


def _same_everywhere(tmp_path, fmt, name):
    run(PYQEMU_IMG, "convert", "-O", "raw", name, "p.raw", cwd=tmp_path)   # probed, as qemu-img does
    run(QEMU_IMG, "convert", "-O", "raw", name, "q.raw", cwd=tmp_path)
    assert (tmp_path / "p.raw").read_bytes() == (tmp_path / "q.raw").read_bytes()
    for cmd in (["info", "--output=json"], ["map", "--output=json"], ["info"]):
        q, p, _ = both(*cmd, name, cwd=tmp_path)
        assert [ln for ln in p.stdout.splitlines() if "actual-size" not in ln and "disk size" not in ln] == \
            [ln for ln in q.stdout.splitlines() if "actual-size" not in ln and "disk size" not in ln], cmd
    q, p, err = both("check", "-f", fmt, name, cwd=tmp_path)
    assert (p.returncode, err) == (q.returncode, q.stderr)


def test_bochs_growing_images(tmp_path):
    assert BXIMAGE, "bximage (Debian package bximage) is required"
    _data(tmp_path)
    run(BXIMAGE, "-q", "-func=convert", "-imgmode=growing", "d.raw", "b.img", cwd=tmp_path)
    _same_everywhere(tmp_path, "bochs", "b.img")
    run(BXIMAGE, "-q", "-func=create", "-hd=10M", "-imgmode=growing", "e.img", cwd=tmp_path)
    _same_everywhere(tmp_path, "bochs", "e.img")
    b = bytearray((tmp_path / "b.img").read_bytes())
    for name, off, val in (("ext", 0x50, 100), ("ext2", 0x50, 1 << 30), ("cat", 0x48, 1)):
        c = bytearray(b)
        struct.pack_into("<I", c, off, val)
        (tmp_path / name).write_bytes(bytes(c))
        q, p, err = both("info", "-f", "bochs", name, cwd=tmp_path)
        assert (p.returncode, err) == (q.returncode, q.stderr), name


def test_cloop_images(tmp_path):
    assert CREATE_CLOOP, "create_compressed_fs (Debian package cloop-utils) is required"
    _data(tmp_path)
    run(CREATE_CLOOP, "-B", "65536", "d.raw", "c.cloop", cwd=tmp_path)
    _same_everywhere(tmp_path, "cloop", "c.cloop")
    b = bytearray((tmp_path / "c.cloop").read_bytes())
    cases = {"bs": (128, 1000), "zero": (128, 0), "big": (128, 128 << 20), "n": (132, 0x7FFFFFFF)}
    for name, (off, val) in cases.items():
        c = bytearray(b)
        struct.pack_into(">I", c, off, val)
        (tmp_path / name).write_bytes(bytes(c))
        q, p, err = both("info", "-f", "cloop", name, cwd=tmp_path)
        assert (p.returncode, err) == (q.returncode, q.stderr), name
    c = bytearray(b)
    struct.pack_into(">Q", c, 136 + 8, 5)      # offsets going backwards
    (tmp_path / "mono").write_bytes(bytes(c))
    q, p, err = both("info", "-f", "cloop", "mono", cwd=tmp_path)
    assert (p.returncode, err) == (q.returncode, q.stderr)


def test_fuzzed_images_give_clean_errors(tmp_path):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from pyqemu.block import open_image
    from pyqemu.util.error import QemuError

    assert BXIMAGE and CREATE_CLOOP, "bximage and cloop-utils are required"
    _data(tmp_path)
    run(BXIMAGE, "-q", "-func=convert", "-imgmode=growing", "d.raw", "b.img", cwd=tmp_path)
    run(CREATE_CLOOP, "-B", "65536", "d.raw", "c.cloop", cwd=tmp_path)
    images = {"bochs": (tmp_path / "b.img").read_bytes(), "cloop": (tmp_path / "c.cloop").read_bytes()}

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(sorted(images)),
           st.lists(st.tuples(st.integers(0, 1023), st.integers(0, 255)), min_size=1, max_size=8),
           st.one_of(st.none(), st.integers(0, 4096)))
    def check(fmt, edits, cut):
        b = bytearray(images[fmt])
        for pos, val in edits:
            b[pos] = val
        if cut is not None:
            del b[cut:]
        (tmp_path / "f").write_bytes(bytes(b))
        try:
            n = open_image(str(tmp_path / "f"), fmt)
        except QemuError:
            return
        try:
            size = n.length()
            for off in (0, size // 2, max(0, size - 4096)):
                try:
                    n.pread(off, min(4096, size - off))
                except QemuError:
                    pass
        finally:
            n.close()

    check()
