"""vhdx images qemu-img 7.2 writes, read and written by pyqemu (create and the log: test_vhdx_create_peer)."""
from __future__ import annotations

import struct

import pytest
from conftest import PYQEMU_IMG, QEMU_IMG, QEMU_IO, both, run

from pyqemu.block import open_image


@pytest.mark.parametrize("opts", ["subformat=dynamic", "subformat=fixed", "block_size=1M,log_size=2M",
                                  "block_state_zero=off", "block_size=32M"])
def test_images_from_qemu_read_identically(src, opts):
    run(QEMU_IMG, "convert", "-O", "vhdx", "-o", opts, "s.raw", "q.vhdx", cwd=src)
    run(PYQEMU_IMG, "convert", "-O", "raw", "q.vhdx", "p.raw", cwd=src)
    assert (src / "p.raw").read_bytes() == (src / "s.raw").read_bytes()
    for cmd in (["info", "--output=json"], ["map", "--output=json"]):
        q, p, _ = both(*cmd, "q.vhdx", cwd=src)
        assert p.stdout.split('"actual-size"')[0] == q.stdout.split('"actual-size"')[0], cmd
    q, p, _ = both("compare", "s.raw", "q.vhdx", cwd=src)
    assert (p.returncode, p.stdout) == (q.returncode, q.stdout)


def test_image_after_kill_during_write(tmp_path):
    run(QEMU_IMG, "create", "-q", "-f", "vhdx", "k.vhdx", "100M", cwd=tmp_path)
    run(QEMU_IO, "-c", "write -P 5 0 64k", "-c", "write -P 6 50M 1M", "-c", "sigraise 9", "k.vhdx",
        cwd=tmp_path, check=False)
    with open_image(str(tmp_path / "k.vhdx")) as n:
        assert n.pread(0, 65536) == b"\x05" * 65536
        assert n.pread(50 << 20, 1 << 20) == b"\x06" * (1 << 20)
        assert n.pread(1 << 20, 4096) == bytes(4096)


def test_bad_images_and_unsupported_operations(tmp_path):
    run(QEMU_IMG, "create", "-q", "-f", "vhdx", "g.vhdx", "100M", cwd=tmp_path)
    b = (tmp_path / "g.vhdx").read_bytes()
    both_heads = bytearray(b)
    both_heads[65536 + 100] ^= 1
    both_heads[131072 + 100] ^= 1
    one_head = bytearray(b)
    one_head[65536 + 100] ^= 1
    for name, data in (("heads", bytes(both_heads)), ("one", bytes(one_head)), ("short", b[:70000])):
        (tmp_path / name).write_bytes(data)
        q, p, err = both("info", "-f", "vhdx", name, cwd=tmp_path)
        assert (p.returncode != 0) == (q.returncode != 0), name
        assert "Traceback" not in p.stderr
        if name == "heads":
            assert err == q.stderr
    c = bytearray(b)
    struct.pack_into("<I", c, 65536 + 4, 0)
    (tmp_path / "c.vhdx").write_bytes(bytes(c))
    with open_image(str(tmp_path / "c.vhdx")) as n:   # the second header copy takes over
        assert n.length() == 100 << 20


def test_fuzzed_metadata_gives_clean_errors(tmp_path):
    """Mutations of headers, region table, metadata and BAT (checksums recomputed)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from pyqemu.block.vhdx import crc32c
    from pyqemu.util.error import QemuError

    run(QEMU_IMG, "create", "-q", "-f", "vhdx", "-o", "block_size=1M", "g.vhdx", "20M", cwd=tmp_path)
    run(QEMU_IO, "-c", "write -P 7 0 1M", "g.vhdx", cwd=tmp_path)
    base = (tmp_path / "g.vhdx").read_bytes()
    (tmp_path / "f.vhdx").write_bytes(base)
    spots = [(64 << 10, 80), (128 << 10, 80), (192 << 10, 80), (2 << 20, 64), (3 << 20, 224),
             ((3 << 20) + 65536, 48)]

    # CRC-32C in pure Python costs ~0.1 s per example here, hence the modest count
    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(st.integers(0, len(spots) - 1), st.integers(0, 223), st.integers(0, 255)),
                    min_size=1, max_size=6))
    def check(edits):
        b = bytearray(base)
        for spot, pos, val in edits:
            start, size = spots[spot]
            b[start + pos % size] = val
        for off, size in ((64 << 10, 4096), (128 << 10, 4096), (192 << 10, 65536)):
            struct.pack_into("<I", b, off + 4, 0)
            struct.pack_into("<I", b, off + 4, crc32c(bytes(b[off:off + size])))
        with open(tmp_path / "f.vhdx", "r+b") as f:   # rewrite only the metadata areas
            for off, size in ((64 << 10, 4096), (128 << 10, 4096), (192 << 10, 65536),
                              (2 << 20, 4096), (3 << 20, 65536 + 4096)):
                f.seek(off)
                f.write(b[off:off + size])
        try:
            n = open_image(str(tmp_path / "f.vhdx"), "vhdx")
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


@pytest.mark.parametrize("opts", ["block_size=1M", "subformat=fixed,block_size=1M", "block_state_zero=off"])
def test_writes_into_qemu_image_read_by_qemu(tmp_path, opts):
    run(QEMU_IMG, "create", "-q", "-f", "vhdx", "-o", opts, "w.vhdx", "20M", cwd=tmp_path)
    run(QEMU_IO, "-c", "write -P 1 0 100k", "w.vhdx", cwd=tmp_path)
    with open_image(str(tmp_path / "w.vhdx"), "vhdx", readonly=False) as n:
        n.pwrite(4096, b"\x02" * 8192)
        n.pwrite(5 * 2**20 - 100, b"\x03" * 300)
        n.pwrite(19 * 2**20, b"\x04" * 2**20)
    run(QEMU_IO, "-c", "read -P 1 0 4k", "-c", "read -P 2 4k 8k", "-c", "read -P 1 12k 88k",
        "-c", "read -P 0 100k 4M", "-c", "read -P 3 5242780 300", "-c", "read -P 0 6M 13M",
        "-c", "read -P 4 19M 1M", "w.vhdx", cwd=tmp_path)
    assert "No errors" in run(QEMU_IMG, "check", "w.vhdx", cwd=tmp_path).stdout
