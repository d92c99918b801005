"""vdi against qemu-img 7.2: create, convert both ways, check, bad images."""
from __future__ import annotations

import struct

import pytest
from conftest import PYQEMU_IMG, QEMU_IMG, QEMU_IO, both, info_json, run

from pyqemu.block import open_image


@pytest.mark.parametrize("size", ["1000", "10M", "1500k", "3G", "5T"])
@pytest.mark.parametrize("opts", ["static=off", "static=on"])
def test_create_matches_qemu(tmp_path, size, opts):
    if opts == "static=on" and size == "5T":
        size = "2G"  # the static data area is a sparse file; keep it modest
    (tmp_path / "q").mkdir()
    (tmp_path / "p").mkdir()
    q = run(QEMU_IMG, "create", "-f", "vdi", "-o", opts, "d.vdi", size, cwd=tmp_path / "q")
    p = run(PYQEMU_IMG, "create", "-f", "vdi", "-o", opts, "d.vdi", size, cwd=tmp_path / "p")
    assert p.stdout == q.stdout
    assert info_json(QEMU_IMG, "d.vdi", "vdi", tmp_path / "p") == \
        info_json(QEMU_IMG, "d.vdi", "vdi", tmp_path / "q")
    assert info_json(PYQEMU_IMG, "d.vdi", "vdi", tmp_path / "q") == \
        info_json(QEMU_IMG, "d.vdi", "vdi", tmp_path / "q")
    assert (tmp_path / "p/d.vdi").stat().st_size == (tmp_path / "q/d.vdi").stat().st_size
    assert "No errors" in run(QEMU_IMG, "check", "d.vdi", cwd=tmp_path / "p").stdout
    # everything but the UUIDs is the same as qemu-img's header and block map
    with open(tmp_path / "p/d.vdi", "rb") as f:
        pb = f.read(1 << 20)
    with open(tmp_path / "q/d.vdi", "rb") as f:
        qb = f.read(1 << 20)
    assert pb[:0x188] + pb[0x1a8:] == qb[:0x188] + qb[0x1a8:]


@pytest.mark.parametrize("opts", ["static=off", "static=on"])
def test_convert_both_directions(src, opts):
    run(PYQEMU_IMG, "convert", "-O", "vdi", "-o", opts, "s.raw", "p.vdi", cwd=src)
    assert "No errors" in run(QEMU_IMG, "check", "p.vdi", cwd=src).stdout
    assert run(QEMU_IMG, "compare", "-F", "vdi", "s.raw", "p.vdi", cwd=src).returncode == 0
    run(QEMU_IMG, "convert", "-O", "vdi", "-o", opts, "s.raw", "q.vdi", cwd=src)
    run(PYQEMU_IMG, "convert", "-O", "raw", "q.vdi", "p.raw", cwd=src)
    assert (src / "p.raw").read_bytes() == (src / "s.raw").read_bytes()
    assert info_json(PYQEMU_IMG, "q.vdi", "vdi", src) == info_json(QEMU_IMG, "q.vdi", "vdi", src)
    q, p, _ = both("check", "--output=json", "q.vdi", cwd=src)
    assert (p.returncode, p.stdout) == (q.returncode, q.stdout)
    if opts == "static=off":
        q, p, _ = both("map", "--output=json", "q.vdi", cwd=src)
        assert p.stdout == q.stdout
        # same allocation order, so the same file
        assert (src / "p.vdi").read_bytes()[0x1a8:] == (src / "q.vdi").read_bytes()[0x1a8:]


def test_writes_into_qemu_image(tmp_path):
    run(QEMU_IMG, "create", "-q", "-f", "vdi", "d.vdi", "8M", cwd=tmp_path)
    run(QEMU_IO, "-f", "vdi", "-c", "write -P 0x41 2M 5k", "d.vdi", cwd=tmp_path)
    with open_image(str(tmp_path / "d.vdi"), "vdi", readonly=False) as n:
        n.pwrite(2 * 2**20 + 4096, b"\x42" * 8192)
        n.pwrite(5 * 2**20 - 1000, b"\x43" * 3000)
    run(QEMU_IO, "-f", "vdi", "-c", "read -P 0x41 2M 4k", "-c", "read -P 0x42 2052k 8k",
        "-c", "read -P 0 4M 1047576", "-c", "read -P 0x43 5241880 3000", "-c", "read -P 0 6M 2M",
        "d.vdi", cwd=tmp_path)
    assert "No errors" in run(QEMU_IMG, "check", "d.vdi", cwd=tmp_path).stdout


def test_check_reports_corruptions_like_qemu(tmp_path):
    run(QEMU_IMG, "create", "-q", "-f", "vdi", "d.vdi", "8M", cwd=tmp_path)
    run(QEMU_IO, "-f", "vdi", "-c", "write 0 1M", "-c", "write 3M 1M", "d.vdi", cwd=tmp_path)
    b = bytearray((tmp_path / "d.vdi").read_bytes())
    struct.pack_into("<III", b, 512 + 4, 0, 1000, 1)  # block 1 duplicates 0, block 2 too large
    (tmp_path / "d.vdi").write_bytes(bytes(b))
    for args in (["check", "d.vdi"], ["check", "--output=json", "d.vdi"], ["check", "-r", "all", "d.vdi"]):
        q, p, err = both(*args, cwd=tmp_path)
        assert (p.returncode, p.stdout, err) == (q.returncode, q.stdout, q.stderr), args


def _bad_images(tmp_path):
    run(QEMU_IMG, "create", "-q", "-f", "vdi", "g.vdi", "4M", cwd=tmp_path)
    b = (tmp_path / "g.vdi").read_bytes()

    def put(fmt, off, *vals):
        c = bytearray(b)
        struct.pack_into(fmt, c, off, *vals)
        return bytes(c)

    return {"sig": put("<I", 0x40, 0x12345678), "version": put("<I", 0x44, 0x00020000),
            "bmap_align": put("<I", 0x154, 0x201), "data_align": put("<I", 0x158, 0x401),
            "sector": put("<I", 0x168, 4096), "block": put("<I", 0x178, 4096),
            "disk": put("<Q", 0x170, 5 << 20), "huge": put("<Q", 0x170, 1 << 62),
            "link": put("<B", 0x1a8, 1), "parent": put("<B", 0x1b8, 1),
            "blocks": put("<I", 0x180, 0x7FFFFFFF), "many_blocks": put("<I", 0x180, 20000), "odd": put("<Q", 0x170, (4 << 20) - 100),
            "empty": b"", "short": b[:300]}


@pytest.mark.slow
def test_bad_images_same_errors(tmp_path):
    for name, data in _bad_images(tmp_path).items():
        (tmp_path / name).write_bytes(data)
        q, p, err = both("info", "-f", "vdi", name, cwd=tmp_path)
        assert (p.returncode != 0) == (q.returncode != 0), name
        if q.returncode:
            assert err == q.stderr, name
        else:
            assert info_json(PYQEMU_IMG, name, "vdi", tmp_path) == info_json(QEMU_IMG, name, "vdi", tmp_path)
        assert "Traceback" not in p.stderr


_WRITER = """
import sys
from pyqemu.block import open_image
n = open_image(sys.argv[1], "vdi", readonly=False)
i = 0
while True:
    n.pwrite((i * 7919 % 60) * 1048576 + 512, bytes([i % 251 + 1]) * 70000)
    if i == 20:
        print("go", flush=True)
    i += 1
"""


def test_kill_during_writes_keeps_image_consistent(tmp_path):
    """kill -9 while blocks are being allocated: qemu-img check finds no corruption."""
    import os
    import signal
    import subprocess
    import sys

    run(QEMU_IMG, "create", "-q", "-f", "vdi", "k.vdi", "64M", cwd=tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path / "k.vdi")],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "go\n"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    r = run(QEMU_IMG, "check", "k.vdi", cwd=tmp_path, check=False)
    assert r.returncode == 0 and "No errors" in r.stdout, r.stdout + r.stderr
    run(QEMU_IMG, "convert", "-O", "raw", "k.vdi", "k.raw", cwd=tmp_path)
