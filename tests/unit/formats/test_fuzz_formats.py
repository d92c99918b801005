"""Hostile images: any bytes give a clean QemuError or a usable node, never a crash, hang or huge read.

Each format's fresh image (made by pyqemu itself, with data, and backing
files where the format has them) is mutated in its
metadata (single bytes, whole 64-bit words, truncation) and then opened,
read, written, status-queried and checked (`qemu-img check` and its
repair) as the qcow2 fuzz test does.  Every read of the image file is
bounded, so a size field cannot make pyqemu allocate without limit.
"""
from __future__ import annotations

import struct
from typing import Callable, Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyqemu.block import create_image, open_image
from pyqemu.block.file import FileNode
from pyqemu.block.open import format_module
from pyqemu.block.vhdx_layout import with_checksum
from pyqemu.util.error import QemuError

MAX_READ = 64 << 20


def _vpc_fix(b: bytearray) -> None:
    """Recompute the checksums so that mutations reach the parser beyond them."""
    for off, size, at in ((0, 512, 64), (len(b) - 512, 512, 64), (512, 1024, 36)):
        if off < 0 or off + size > len(b):
            continue
        struct.pack_into(">I", b, off + at, 0)
        struct.pack_into(">I", b, off + at, ~sum(b[off:off + size]) & 0xFFFFFFFF)


def _vpc_fixed_fix(b: bytearray) -> None:
    if len(b) >= 512:
        struct.pack_into(">I", b, len(b) - 512 + 64, 0)
        struct.pack_into(">I", b, len(b) - 512 + 64, ~sum(b[-512:]) & 0xFFFFFFFF)


def _vhdx_fix(b: bytearray) -> None:
    """Headers and region tables carry CRC-32C: recompute them (the BAT and metadata have none)."""
    for off, size in ((64 << 10, 4096), (128 << 10, 4096), (192 << 10, 65536), (256 << 10, 65536)):
        if off + size <= len(b):
            b[off:off + size] = with_checksum(bytearray(b[off:off + size]), 4)


class Case:
    """A format's fresh image: create options, the byte ranges holding metadata, a checksum fixer."""

    def __init__(self, fmt: str, opts: Dict[str, str], spans: List[Tuple[int, int]],
                 fix: Optional[Callable[[bytearray], None]] = None, backing: str = "") -> None:
        self.fmt, self.opts, self.spans, self.fix, self.backing = fmt, opts, spans, fix, backing


CASES = {
    "vpc": Case("vpc", {}, [(0, 2560)], _vpc_fix),
    "vpc-fixed": Case("vpc", {"subformat": "fixed"}, [(-512, 512)], _vpc_fixed_fix),
    "vdi": Case("vdi", {}, [(0, 1024)]),
    "vdi-static": Case("vdi", {"static": "on"}, [(0, 1024)]),
    "vmdk": Case("vmdk", {}, [(0, 16384)]),
    "vmdk-backing": Case("vmdk", {}, [(0, 16384)], backing="vmdk"),
    "vmdk-stream": Case("vmdk", {"subformat": "streamOptimized"}, [(0, 16384), (-1536, 1536)]),
    "qed": Case("qed", {}, [(0, 5 << 16)]),
    "qed-backing": Case("qed", {"cluster_size": "4096"}, [(0, 5 << 12)], backing="raw"),
    "qcow": Case("qcow", {}, [(0, 560), (4096, 8192)]),
    "qcow-backing": Case("qcow", {}, [(0, 560), (4096, 8192)], backing="raw"),
    "parallels": Case("parallels", {"cluster_size": "64k"}, [(0, 4096)]),
    "vhdx": Case("vhdx", {"block_size": "1M"}, [(0, 320 << 10), (2 << 20, 64), (3 << 20, 65536 + 64)],
                 _vhdx_fix),
}


def _fresh(tmp_path_factory, case: Case) -> Tuple[bytes, bytes]:
    """The image's bytes and its backing file's (empty without one)."""
    d = tmp_path_factory.mktemp(case.fmt)
    path = str(d / "img")
    opts = dict(case.opts)
    if case.backing:
        create_image(case.backing, str(d / "base"), 5 << 20)
        with open_image(str(d / "base"), case.backing, readonly=False) as b:
            b.pwrite(1 << 20, b"\x42" * 8192)
        opts.update(backing_file="base", backing_fmt=case.backing)
    create_image(case.fmt, path, 5 << 20, opts)
    with open_image(path, case.fmt, readonly=False) as n:
        n.pwrite(0, b"\x5a" * 4096)
        n.pwrite(3 << 20, b"\xa5" * 512 + bytes(range(256)) * 2)
    with open(path, "rb") as f:
        image = f.read()
    return image, (d / "base").read_bytes() if case.backing else b""


def _bounded(monkeypatch) -> None:
    """Fail the test when a format reads more than MAX_READ bytes of its file at once."""
    real_pread, real_into = FileNode.pread, FileNode.preadinto

    def pread(self, offset, length):
        assert length <= MAX_READ, "read of %d bytes" % length
        return real_pread(self, offset, length)

    def preadinto(self, offset, buf):
        assert len(buf) <= MAX_READ, "read of %d bytes" % len(buf)
        return real_into(self, offset, buf)

    monkeypatch.setattr(FileNode, "pread", pread)
    monkeypatch.setattr(FileNode, "preadinto", preadinto)


def _quietly(fn, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except QemuError:
        pass


def _exercise(path: str, fmt: str) -> None:
    check = getattr(format_module(fmt), "check_image", None)
    for read_only in (True, False):
        try:
            node = open_image(path, fmt, readonly=read_only)
        except QemuError:
            continue
        try:
            size = node.length()
            assert 0 <= size
            if check is not None:
                _quietly(check, node, fix_leaks=not read_only, fix_errors=not read_only, quiet=True)
            for off in (0, size // 2, 3 << 20, 4 << 20, max(0, size - 4096)):
                n = min(4096, size - off)
                if n <= 0:
                    continue
                try:
                    assert len(node.pread(off, n)) == n
                    node.block_status(off, n)
                    if not read_only:
                        node.pwrite(off, b"\x01" * n)
                except QemuError:
                    pass
            _quietly(node.block_status, 0, size)
        finally:
            _quietly(node.close)


def _positions(case: Case, length: int) -> st.SearchStrategy:
    spans = [(s if s >= 0 else length + s, n) for s, n in case.spans]
    return st.sampled_from(spans).flatmap(lambda sp: st.integers(sp[0], sp[0] + sp[1] - 1))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_mutated_metadata(tmp_path_factory, monkeypatch, name):
    case = CASES[name]
    image, base = _fresh(tmp_path_factory, case)
    d = tmp_path_factory.mktemp("fuzz")
    if case.backing:
        (d / "base").write_bytes(base)
    _bounded(monkeypatch)
    pos = _positions(case, len(image))
    edit = st.one_of(st.tuples(st.just(1), pos, st.integers(0, 255)),
                     st.tuples(st.just(8), pos, st.one_of(st.integers(0, 2**64 - 1),
                                                          st.sampled_from([0, 1, 2**63, 2**64 - 1, 2**32, 512]))))

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(edit, min_size=1, max_size=6), st.one_of(st.none(), st.integers(0, len(image))))
    def check(edits, cut):
        b = bytearray(image)
        for width, at, val in edits:
            if at + width <= len(b):
                b[at:at + width] = (val & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
        if case.fix is not None:
            case.fix(b)
        if cut is not None:
            del b[cut:]
        path = str(d / "t")
        with open(path, "wb") as f:
            f.write(b)
        _exercise(path, case.fmt)

    check()


def _cowd_extent() -> bytes:
    """A small VMFSSPARSE (COWD) extent: 4 MiB disk, 8 KiB grains, one table, two grains."""
    b = bytearray(37 * 512)
    struct.pack_into("<4s10I", b, 0, b"COWD", 1, 3, 8192, 16, 4, 1, 37 + 32, 0, 0, 0)
    struct.pack_into("<I", b, 4 * 512, 5)
    struct.pack_into("<I", b, 5 * 512, 37)
    struct.pack_into("<I", b, 5 * 512 + 12, 53)
    return bytes(b) + b"\x41" * 8192 + b"\x42" * 8192


def test_mutated_cowd_extent(tmp_path, monkeypatch):
    """A vmdk descriptor naming a mutated COWD extent: errors or reads, never a crash or huge read."""
    image = _cowd_extent()
    (tmp_path / "d.vmdk").write_text('# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\n'
                                     'createType="vmfsSparse"\n# Extent description\n'
                                     'RW 8192 VMFSSPARSE "e.vmdk"\n')
    _bounded(monkeypatch)
    pos = st.integers(0, 37 * 512 - 1)
    edit = st.one_of(st.tuples(st.just(1), pos, st.integers(0, 255)),
                     st.tuples(st.just(4), st.integers(0, 10).map(lambda i: 4 * i),
                               st.sampled_from([0, 1, 16, 0x200000, 0x200001, 2**31, 2**32 - 1])),
                     st.tuples(st.just(4), pos, st.integers(0, 2**32 - 1)))

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(edit, min_size=1, max_size=4), st.one_of(st.none(), st.integers(0, len(image))))
    def check(edits, cut):
        b = bytearray(image)
        for width, at, val in edits:
            if at + width <= len(b):
                b[at:at + width] = (val & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
        if cut is not None:
            del b[cut:]
        (tmp_path / "e.vmdk").write_bytes(bytes(b))
        _exercise(str(tmp_path / "d.vmdk"), "vmdk")

    check()
