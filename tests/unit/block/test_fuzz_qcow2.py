"""Corrupted qcow2 images (hypothesis): a clear QemuError or a correct answer,
never another exception, a hang or a huge allocation."""
from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyqemu.block import create_image, open_image
from pyqemu.block.file import FileNode
from pyqemu.block.qcow2.check import check_image
from pyqemu.util.error import QemuError

MAX_READ = 64 << 20
_REAL_PREAD = FileNode.pread
_IMAGE: list = []  # the valid image's bytes (kept out of the fixture so failures print short)

# header fields worth breaking: (offset, size)
FIELDS = [(4, 4), (8, 8), (16, 4), (20, 4), (24, 8), (32, 4), (36, 4), (40, 8), (48, 8), (56, 4),
          (60, 4), (64, 8), (72, 8), (80, 8), (88, 8), (96, 4), (100, 4)]


@pytest.fixture(scope="module")
def valid_image(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    base = str(d / "base.raw")
    create_image("raw", base, 1 << 20)
    p = str(d / "v.qcow2")
    create_image("qcow2", p, 4 << 20, {"cluster_size": "4096", "backing_file": "base.raw",
                                       "backing_fmt": "raw"})
    with open_image(p, readonly=False) as n:
        n.pwrite(0, b"A" * 10000)
        n.pwrite(2 << 20, b"B" * 5000)
        n.write_compressed(3 << 20, b"C" * 4096)
    from pyqemu.block.qcow2.snapshot import create_snapshot
    with open_image(p, readonly=False) as n:
        create_snapshot(n, "s1")
    with open(p, "rb") as f:
        _IMAGE.append(f.read())
    return d


def _big(value_bits):
    return st.one_of(st.integers(0, 2**value_bits - 1),
                     st.sampled_from([0, 1, 2**value_bits - 1, 2**(value_bits - 1), 4096, 65536]))


mutation = st.one_of(
    st.tuples(st.just("field"), st.sampled_from(FIELDS), _big(64)),
    st.tuples(st.just("truncate"), st.integers(0, 200000), st.just(0)),
    st.tuples(st.just("byte"), st.integers(0, 200000), st.integers(0, 255)),
    st.tuples(st.just("qword"), st.integers(0, 25000), _big(64)),
)


def _mutate(data: bytes, muts) -> bytes:
    b = bytearray(data)
    for kind, where, value in muts:
        if kind == "field":
            off, size = where
            b[off:off + size] = (value & ((1 << (size * 8)) - 1)).to_bytes(size, "big")
        elif kind == "truncate":
            del b[where:]
        elif kind == "byte" and where < len(b):
            b[where] = value
        elif kind == "qword" and where * 8 + 8 <= len(b):
            struct.pack_into(">Q", b, where * 8, value)
    return bytes(b)


@settings(max_examples=300, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(muts=st.lists(mutation, min_size=1, max_size=4))
def test_corrupt_images_fail_cleanly(valid_image, monkeypatch, muts):
    d, data = valid_image, _IMAGE[0]
    p = str(d / "f.qcow2")
    with open(p, "wb") as f:
        f.write(_mutate(data, muts))
    real_pread = _REAL_PREAD

    def bounded_pread(self, offset, length):
        assert length <= MAX_READ, "read of %d bytes" % length
        return real_pread(self, offset, length)

    monkeypatch.setattr(FileNode, "pread", bounded_pread)
    try:
        node = open_image(p, fmt="qcow2")
    except QemuError:
        return
    try:
        size = node.length()
        for off in (0, 2 << 20, 3 << 20, max(0, size - 4096)):
            if off < size:
                try:
                    node.pread(off, min(65536, size - off))
                except QemuError:
                    pass
        try:
            node.block_status(0, min(size, 1 << 40))
        except QemuError:
            pass
        try:
            check_image(node, quiet=True)
        except QemuError:
            pass
    finally:
        node.close()
