"""qcow (version 1) against qemu-img 7.2: create, convert both ways, compressed, backing, bad headers."""
from __future__ import annotations

import struct

import pytest
from conftest import PYQEMU_IMG, QEMU_IMG, QEMU_IO, both, run

from pyqemu.block import open_image


@pytest.mark.parametrize("size", ["1001", "100M", "5G"])
def test_create_is_byte_identical(tmp_path, size):
    for d, tool in (("q", QEMU_IMG), ("p", PYQEMU_IMG)):
        (tmp_path / d).mkdir()
        run(QEMU_IMG, "create", "-q", "-f", "qcow", "base.qcow", "1M", cwd=tmp_path / d)
        out = run(tool, "create", "-f", "qcow", "d.qcow", size, cwd=tmp_path / d).stdout
        out2 = run(tool, "create", "-f", "qcow", "-b", "base.qcow", "-F", "qcow", "o.qcow", size,
                   cwd=tmp_path / d).stdout
        if d == "q":
            q_out = (out, out2)
    assert (out, out2) == q_out
    for name in ("d.qcow", "o.qcow"):
        assert (tmp_path / "p" / name).read_bytes() == (tmp_path / "q" / name).read_bytes()


def test_convert_both_directions(src):
    run(PYQEMU_IMG, "convert", "-O", "qcow", "s.raw", "p.qcow", cwd=src)
    run(QEMU_IMG, "convert", "-O", "qcow", "s.raw", "q.qcow", cwd=src)
    assert (src / "p.qcow").read_bytes() == (src / "q.qcow").read_bytes()
    for img in ("q.qcow",):
        run(PYQEMU_IMG, "convert", "-O", "raw", img, "p.raw", cwd=src)
        assert (src / "p.raw").read_bytes() == (src / "s.raw").read_bytes()
        for cmd in (["info", "--output=json"], ["map", "--output=json"]):
            q, p, _ = both(*cmd, img, cwd=src)
            assert p.stdout.replace(" ", "").split("actual-size")[0] == \
                q.stdout.replace(" ", "").split("actual-size")[0]


def test_compressed_clusters_read_like_qemu(tmp_path):
    # qemu-img 7.2's convert -c fails for qcow; qemu-io writes single compressed clusters
    run(QEMU_IMG, "create", "-q", "-f", "qcow", "c.qcow", "12M", cwd=tmp_path)
    run(QEMU_IO, "-c", "write -c -P 0xab 0 4k", "-c", "write -c -P 0x11 1536k 4k", "-c",
        "write -P 0x11 2M 388k", "-c", "write -c -P 0x22 7M 4k", "-c", "write -c -P 0x33 12284k 4k",
        "c.qcow", cwd=tmp_path)
    run(PYQEMU_IMG, "convert", "-O", "raw", "c.qcow", "p.raw", cwd=tmp_path)
    run(QEMU_IMG, "convert", "-O", "raw", "c.qcow", "q.raw", cwd=tmp_path)
    assert (tmp_path / "p.raw").read_bytes() == (tmp_path / "q.raw").read_bytes()
    q, p, _ = both("map", "--output=json", "c.qcow", cwd=tmp_path)
    assert p.stdout == q.stdout


def test_writes_over_compressed_and_backing(tmp_path):
    run(QEMU_IMG, "create", "-q", "-f", "qcow", "base.qcow", "4M", cwd=tmp_path)
    run(QEMU_IO, "-c", "write -P 0x61 0 1M", "base.qcow", cwd=tmp_path)
    run(QEMU_IMG, "create", "-q", "-f", "qcow", "c.qcow", "4M", cwd=tmp_path)
    run(QEMU_IO, "-c", "write -c -P 0x61 0 4k", "-c", "write -c -P 0x61 4k 4k", "-c",
        "write -P 0x61 8k 1016k", "c.qcow", cwd=tmp_path)
    run(QEMU_IMG, "create", "-q", "-f", "qcow", "-b", "c.qcow", "-F", "qcow", "top.qcow", cwd=tmp_path)
    with open_image(str(tmp_path / "c.qcow"), readonly=False) as n:
        n.pwrite(4096 + 10, b"\x62" * 20)             # inside a compressed cluster
    with open_image(str(tmp_path / "top.qcow"), readonly=False) as n:
        n.pwrite(2 << 20, b"\x63" * 700)
    run(QEMU_IO, "-c", "read -P 0x61 0 4106", "-c", "read -P 0x62 4106 20", "-c", "read -P 0x61 4126 8k",
        "c.qcow", cwd=tmp_path)
    run(QEMU_IO, "-c", "read -P 0x61 0 4106", "-c", "read -P 0x62 4106 20", "-c", "read -P 0x63 2M 700",
        "-c", "read -P 0 3M 1M", "top.qcow", cwd=tmp_path)


def test_bad_headers_same_errors(tmp_path):
    run(QEMU_IMG, "create", "-q", "-f", "qcow", "g.qcow", "10M", cwd=tmp_path)
    b = (tmp_path / "g.qcow").read_bytes()
    cases = {"version": (4, ">I", 3), "size": (24, ">Q", 1), "cbits": (32, ">B", 17),
             "l2bits": (33, ">B", 14), "crypt": (36, ">I", 7), "huge": (24, ">Q", (1 << 64) - 1),
             "bfsize": (8, ">QI", 48, 5000)}
    for name, (off, fmt, *vals) in cases.items():
        c = bytearray(b)
        struct.pack_into(fmt, c, off, *vals)
        (tmp_path / name).write_bytes(bytes(c))
        q, p, err = both("info", "-f", "qcow", name, cwd=tmp_path)
        assert (p.returncode, err) == (q.returncode, q.stderr), name
