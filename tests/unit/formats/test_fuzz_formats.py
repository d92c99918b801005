"""Hostile images: any bytes give a clean QemuError or a usable node, never a crash or hang.

Each format's fresh image (made by pyqemu itself) is mutated in its
metadata and then opened, read, written and status-queried.
"""
from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyqemu.block import create_image, open_image
from pyqemu.util.error import QemuError



def _vpc_fix(b: bytearray) -> None:
    """Recompute the checksums so that mutations reach the parser beyond them."""
    for off, size, at in ((0, 512, 64), (len(b) - 512, 512, 64), (512, 1024, 36)):
        if off < 0 or off + size > len(b):
            continue
        struct.pack_into(">I", b, off + at, 0)
        struct.pack_into(">I", b, off + at, ~sum(b[off:off + size]) & 0xFFFFFFFF)


# format -> (create options, size of the region holding its metadata, checksum fixer)
FORMATS = {
    "vpc": ({}, 2560, _vpc_fix),
    "vdi": ({}, 1024, None),
    "vmdk": ({}, 16384, None),
    "qed": ({}, 5 << 16, None),
    "qcow": ({}, 560, None),
    "parallels": ({"cluster_size": "64k"}, 4096, None),
    "vmdk-stream": ({"subformat": "streamOptimized"}, 16384, None),
}


def _fresh(tmp_path_factory, fmt: str) -> bytes:
    d = tmp_path_factory.mktemp(fmt)
    path = str(d / "img")
    create_image(fmt.split("-")[0], path, 5 << 20, FORMATS[fmt][0])
    with open_image(path, fmt.split("-")[0], readonly=False) as n:
        n.pwrite(0, b"\x5a" * 4096)
        n.pwrite(3 << 20, b"\xa5" * 512 + bytes(range(256)) * 2)
    with open(path, "rb") as f:
        return f.read()


def _exercise(path: str, fmt: str) -> None:
    try:
        node = open_image(path, fmt, readonly=False)
    except QemuError:
        return
    try:
        size = node.length()
        assert 0 <= size
        for off in (0, size // 2, max(0, size - 4096)):
            n = min(4096, size - off)
            try:
                assert len(node.pread(off, n)) == n
                node.block_status(off, n)
                node.pwrite(off, b"\x01" * n)
            except QemuError:
                pass
    finally:
        try:
            node.close()
        except QemuError:
            pass


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_mutated_metadata(tmp_path_factory, fmt):
    image = _fresh(tmp_path_factory, fmt)
    meta = FORMATS[fmt][1]
    d = tmp_path_factory.mktemp("fuzz")

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(st.integers(0, meta - 1), st.integers(0, 255)), min_size=1, max_size=8),
           st.one_of(st.none(), st.integers(0, len(image))))
    def check(edits, cut):
        b = bytearray(image)
        for pos, val in edits:
            b[pos] = val
        if FORMATS[fmt][2] is not None:
            FORMATS[fmt][2](b)
        if cut is not None:
            del b[cut:]
        path = str(d / "t")
        with open(path, "wb") as f:
            f.write(b)
        _exercise(path, fmt.split("-")[0])

    check()
