"""The block API on its own: raw, null-co, qcow2 round trips, backing chains, bad images."""
from __future__ import annotations

import os
import struct

import pytest

from pyqemu.block import (STATUS_DATA, STATUS_ZERO, create_image, get_block_status, node_block_status,
                          open_image)
from pyqemu.block.qcow2.check import check_image
from pyqemu.util.error import QemuError

MiB = 1 << 20


def _pattern(n: int, seed: int) -> bytes:
    return bytes((i * 7 + seed) & 0xFF for i in range(256)) * (n // 256)


def test_raw_roundtrip_and_status(tmp_path):
    p = str(tmp_path / "a.raw")
    create_image("raw", p, 4 * MiB)
    with open_image(p, fmt="raw", readonly=False) as n:
        n.pwrite(MiB, _pattern(65536, 1))
        assert n.pread(MiB, 65536) == _pattern(65536, 1)
        st = node_block_status(n, 2 * MiB, 2 * MiB)
        assert st.flags & STATUS_ZERO and not st.flags & STATUS_DATA
    with open_image(p) as n:  # probed
        assert n.driver == "raw" and n.length() == 4 * MiB


def test_probed_raw_refuses_writing_a_qcow2_magic(tmp_path):
    p = str(tmp_path / "a.raw")
    create_image("raw", p, MiB)
    with open_image(p, readonly=False) as n:
        with pytest.raises(QemuError):
            n.pwrite(0, b"QFI\xfb\0\0\0\3" + bytes(504))
        n.pwrite(512, b"QFI\xfb")  # not the first sector: fine


def test_null_co():
    with open_image("null-co://") as n:
        assert n.driver == "raw" and n.file.driver == "null-co" and n.pread(0, 4096) == bytes(4096)


@pytest.mark.parametrize("opts", [{}, {"cluster_size": "512", "refcount_bits": "1"},
                                  {"cluster_size": "2M", "refcount_bits": "64"}, {"compat": "0.10"},
                                  {"refcount_bits": "2"}, {"refcount_bits": "8"}])
def test_qcow2_write_read_check(tmp_path, opts):
    p = str(tmp_path / "a.qcow2")
    create_image("qcow2", p, 64 * MiB, opts)
    with open_image(p, readonly=False) as n:
        n.pwrite(12345, _pattern(300 * 1024, 3))
        n.pwrite(40 * MiB, _pattern(4096, 9))
        n.pwrite_zeroes(12345 + 1000, 5000)
    with open_image(p) as n:
        expect = bytearray(_pattern(300 * 1024, 3))
        expect[1000:6000] = bytes(5000)
        assert n.pread(12345, len(expect)) == bytes(expect)
        assert n.pread(40 * MiB, 4096) == _pattern(4096, 9)
        assert n.pread(50 * MiB, 8192) == bytes(8192)
        r = check_image(n, quiet=True)
        assert (r.corruptions, r.leaks) == (0, 0)


def test_qcow2_backing_cow_relative_path(tmp_path):
    base = str(tmp_path / "base.raw")
    create_image("raw", base, 4 * MiB)
    with open_image(base, fmt="raw", readonly=False) as b:
        b.pwrite(0, _pattern(2 * MiB, 5))
    os.makedirs(str(tmp_path / "sub"))
    ov = str(tmp_path / "sub" / "ov.qcow2")
    create_image("qcow2", ov, 4 * MiB, {"backing_file": "../base.raw", "backing_fmt": "raw"})
    with open_image(ov, readonly=False) as n:
        n.pwrite(1000, b"x" * 10)  # partial cluster: the rest comes from the backing file
    with open_image(ov) as n:
        expect = bytearray(_pattern(2 * MiB, 5))
        expect[1000:1010] = b"x" * 10
        assert n.pread(0, 2 * MiB) == bytes(expect)
        st, depth = get_block_status(n, 65536, 65536)
        assert depth == 1
    with open_image(base, fmt="raw") as b:
        assert b.pread(1000, 10) == _pattern(2 * MiB, 5)[1000:1010]


def test_missing_backing_file_is_an_error(tmp_path):
    ov = str(tmp_path / "ov.qcow2")
    create_image("qcow2", ov, MiB, {"backing_file": "nosuch.raw", "backing_fmt": "raw"})
    with pytest.raises(QemuError, match="Could not open backing file"):
        open_image(ov)
    with open_image(ov, backing=None) as n:
        assert n.pread(0, 512) == bytes(512)


def test_backing_loop_is_detected(tmp_path):
    a = str(tmp_path / "a.qcow2")
    create_image("qcow2", a, MiB, {"backing_file": "a.qcow2", "backing_fmt": "qcow2"})
    with pytest.raises(QemuError, match="infinite loop"):
        open_image(a)


def test_huge_sparse_qcow2_does_not_allocate(tmp_path):
    p = str(tmp_path / "big.qcow2")
    create_image("qcow2", p, 1 << 50, {"cluster_size": "2M"})
    with open_image(p, readonly=False) as n:
        n.pwrite((1 << 50) - 4096, b"end!" * 1024)
    with open_image(p) as n:
        assert n.pread((1 << 50) - 4096, 4) == b"end!"
    assert os.stat(p).st_blocks * 512 < 64 * MiB


@pytest.mark.parametrize("mutate,match", [
    (lambda b: b"XXXX" + b[4:], "not in qcow2 format"),
    (lambda b: b[:4] + struct.pack(">I", 9) + b[8:], "Unsupported qcow2 version"),
    (lambda b: b[:20] + struct.pack(">I", 30) + b[24:], "Unsupported cluster size"),
    (lambda b: b[:36] + struct.pack(">I", 1 << 30) + b[40:], "L1 table too large"),
    (lambda b: b[:48] + struct.pack(">Q", 1 << 40) + b[56:], "beyond the end"),
    (lambda b: b[:100], "header too short|beyond the end|not in qcow2"),
])
def test_bad_headers_give_clear_errors(tmp_path, mutate, match):
    p = str(tmp_path / "a.qcow2")
    create_image("qcow2", p, MiB)
    with open(p, "rb") as f:
        data = f.read()
    with open(p, "wb") as f:
        f.write(mutate(data))
    with pytest.raises(QemuError, match=match):
        open_image(p, fmt="qcow2")


def test_l2_pointing_past_eof_is_reported_not_crashing(tmp_path):
    p = str(tmp_path / "a.qcow2")
    create_image("qcow2", p, MiB)
    with open_image(p, readonly=False) as n:
        n.pwrite(0, b"a" * 65536)
    with open(p, "r+b") as f:
        f.seek(0x40000)  # the L2 table (cluster 4), entry 0
        f.write(struct.pack(">Q", (1 << 63) | (1 << 45)))
    with open_image(p) as n:
        with pytest.raises(QemuError):
            n.pread(0, 512)


def test_dirty_lazy_refcounts_image_is_repaired_on_open(tmp_path):
    p = str(tmp_path / "l.qcow2")
    create_image("qcow2", p, 4 * MiB, {"lazy_refcounts": "on"})
    with open_image(p, readonly=False) as n:
        n.pwrite(0, b"z" * 200000)
    with open(p, "r+b") as f:  # as after a crash: dirty bit set, a refcount lost
        f.seek(72)
        f.write(struct.pack(">Q", 1))
        f.seek(0x20000 + 2 * 5)
        f.write(b"\0\0")
    with open_image(p) as n:
        assert n.is_dirty()
        assert check_image(n, quiet=True).corruptions >= 1
    with open_image(p, readonly=False) as n:
        assert n.dirty_repaired and not n.is_dirty()
    with open_image(p) as n:
        r = check_image(n, quiet=True)
        assert (r.corruptions, r.leaks) == (0, 0)
        assert n.pread(0, 200000) == b"z" * 200000


def test_corrupt_bit_forces_read_only(tmp_path):
    p = str(tmp_path / "c.qcow2")
    create_image("qcow2", p, MiB)
    with open_image(p, readonly=False) as n:
        n.pwrite(0, b"a" * 65536)
    with open(p, "r+b") as f:
        f.seek(0x40000)  # L2 entry 0: an unaligned data offset
        f.write(struct.pack(">Q", (1 << 63) | 0x50001 << 0 | 0x200))
    with open_image(p, readonly=False) as n:
        with pytest.raises(QemuError, match="corrupt"):
            n.pread(0, 512)
    with pytest.raises(QemuError, match="corrupt"):
        open_image(p, readonly=False)
    with open_image(p) as n:
        assert n.get_info()["corrupt"] is True
