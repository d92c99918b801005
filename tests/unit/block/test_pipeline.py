"""The overlapped copy pipeline: read/write plans and the I/O pool."""
from __future__ import annotations

import os
import threading

import pytest

from pyqemu.block import create_image, open_image
from pyqemu.block.pipeline import IOPool, read_pieces_into
from pyqemu.util.error import QemuError


def _qcow2(tmp_path, name="t.qcow2", size=8 << 20, opts=None):
    path = str(tmp_path / name)
    create_image("qcow2", path, size, dict(opts or {"cluster_size": "65536"}))
    return path


def test_read_plan_gives_the_same_bytes_as_pread(tmp_path):
    base = str(tmp_path / "b.raw")
    with open(base, "wb") as f:
        f.write(os.urandom(1 << 20))
    path = str(tmp_path / "o.qcow2")
    create_image("qcow2", path, 2 << 20, {"backing_file": base, "backing_fmt": "raw"})
    with open_image(path, readonly=False) as node:
        node.pwrite(70000, b"x" * 100000)
        node.pwrite_zeroes(300000, 65536 * 3)
        for off, n in ((0, 2 << 20), (65535, 200001), ((1 << 20) - 10, 20)):
            buf = bytearray(n)
            read_pieces_into(node.read_plan(off, n), memoryview(buf))
            assert bytes(buf) == node.pread(off, n)


@pytest.mark.parametrize("workers", [0, 2])
def test_pool_writes_land_in_order_and_metadata_waits(tmp_path, workers):
    path = _qcow2(tmp_path, opts={"cluster_size": "2M"})
    data = os.urandom(4 << 20)
    with open_image(path, readonly=False) as node:
        with IOPool(workers=workers) as pool:
            pool.guard(node)
            # a partial write allocates the whole 2 MiB cluster (zeroes around it);
            # the second one lands inside it and must not be overwritten by the first
            pool.submit_writes(node.write_plan(4096, memoryview(data)[4096:8192]))
            pool.submit_writes(node.write_plan(8192, memoryview(data)[8192:(3 << 20)]))
            node.flush_metadata()  # drains the pool first
            assert node.io_barrier is not None
        assert node.io_barrier is None
        got = node.pread(0, 3 << 20)
    assert got[:4096] == bytes(4096)
    assert got[4096:] == data[4096:3 << 20]


def test_pool_reraises_a_worker_error_and_stops_its_threads(tmp_path):
    path = _qcow2(tmp_path)
    node = open_image(path)  # read-only: the data write fails in the worker
    try:
        with pytest.raises(QemuError):
            with IOPool(workers=2) as pool:
                pool.submit_writes([(node.file, 1 << 20, [b"x" * 512])])
                pool.drain()
    finally:
        node.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("pyqemu-io")]


def test_pool_reuses_read_buffers(tmp_path):
    path = str(tmp_path / "r.raw")
    with open(path, "wb") as f:
        f.write(os.urandom(1 << 20))
    with open_image(path, fmt="raw") as node, IOPool(workers=0, buffer_size=1 << 16) as pool:
        seen = set()
        for off in range(0, 1 << 20, 1 << 16):
            buf = pool.read(node.read_plan(off, 1 << 16), 1 << 16)
            assert bytes(buf) == node.pread(off, 1 << 16)
            seen.add(id(buf.obj))
            pool.release(buf)
        assert len(seen) == 1


def test_pool_bounds_the_buffers_in_flight(tmp_path):
    """Reads wait for buffers the writer hands back: never more than ``buffers`` exist."""
    src = str(tmp_path / "s.raw")
    data = os.urandom(4 << 20)
    with open(src, "wb") as f:
        f.write(data)
    dst = str(tmp_path / "d.raw")
    create_image("raw", dst, 4 << 20, {})
    with open_image(src, fmt="raw") as s, open_image(dst, fmt="raw", readonly=False) as d:
        with IOPool(workers=1, buffers=3, buffer_size=1 << 16) as pool:
            seen = set()
            for off in range(0, 4 << 20, 1 << 16):
                buf = pool.read(s.read_plan(off, 1 << 16), 1 << 16)
                seen.add(id(buf.obj))
                pool.submit_writes(d.write_plan(off, buf), release=buf)
            pool.drain()
            assert len(seen) <= 3
        assert d.pread(0, 4 << 20) == data


class _Recorder:
    """A write target that records its pwritev calls; the first one waits for ``gate``."""

    def __init__(self) -> None:
        self.data = bytearray(1 << 20)
        self.calls = []
        self.gate = threading.Event()
        self.entered = threading.Event()

    def pwritev(self, offset, bufs):
        if not self.calls:
            self.entered.set()
            assert self.gate.wait(60)
        joined = b"".join(bytes(b) for b in bufs)
        self.calls.append((offset, len(joined)))
        self.data[offset:offset + len(joined)] = joined


def test_writer_merges_queued_back_to_back_writes_in_order():
    node = _Recorder()
    with IOPool(workers=1) as pool:
        pool.submit_writes([(node, 0, [b"a" * 100])])  # the writer blocks in this one
        assert node.entered.wait(60)
        for i in range(10):  # queued meanwhile: contiguous, then an overlapping rewrite
            pool.submit_writes([(node, 100 + 50 * i, [b"%d" % i * 50])])
        pool.submit_writes([(node, 120, [b"z" * 10])])
        node.gate.set()
        pool.drain()
    assert bytes(node.data[:100]) == b"a" * 100
    assert bytes(node.data[120:130]) == b"z" * 10  # the later write wins
    assert bytes(node.data[130:150]) == b"0" * 20
    assert bytes(node.data[550:600]) == b"9" * 50
    # the ten queued writes went out in one call, the rewrite after them
    assert node.calls == [(0, 100), (100, 500), (120, 10)]
