"""vpc (VHD) against qemu-img 7.2: create, convert both ways, geometry, bad images."""
from __future__ import annotations

import struct

import pytest
from conftest import PYQEMU_IMG, QEMU_IMG, QEMU_IO, both, info_json, run

from pyqemu.block import open_image


@pytest.mark.parametrize("size", ["10M", "1G", "3000M", "127G", "2040G"])
@pytest.mark.parametrize("opts", ["subformat=dynamic", "subformat=fixed,force_size=on",
                                  "force_size=on"])
def test_create_matches_qemu(tmp_path, size, opts):
    (tmp_path / "q").mkdir()
    (tmp_path / "p").mkdir()
    q = run(QEMU_IMG, "create", "-f", "vpc", "-o", opts, "d.vhd", size, cwd=tmp_path / "q")
    p = run(PYQEMU_IMG, "create", "-f", "vpc", "-o", opts, "d.vhd", size, cwd=tmp_path / "p")
    assert p.stdout == q.stdout
    assert info_json(QEMU_IMG, "d.vhd", "vpc", tmp_path / "p") == \
        info_json(QEMU_IMG, "d.vhd", "vpc", tmp_path / "q")
    assert info_json(PYQEMU_IMG, "d.vhd", "vpc", tmp_path / "q") == \
        info_json(QEMU_IMG, "d.vhd", "vpc", tmp_path / "q")
    assert (tmp_path / "p/d.vhd").stat().st_size == (tmp_path / "q/d.vhd").stat().st_size


def test_chs_rounding_many_sizes(tmp_path):
    """Sizes that are no CHS product round up exactly as qemu-img rounds them."""
    for mib in (1, 3, 17, 100, 255, 510, 2000, 4000, 33000, 130000):
        for tool, d in ((QEMU_IMG, "q"), (PYQEMU_IMG, "p")):
            run(tool, "create", "-q", "-f", "vpc", "%s.vhd" % d, "%dM" % mib, cwd=tmp_path)
        assert info_json(QEMU_IMG, "p.vhd", "vpc", tmp_path)["virtual-size"] == \
            info_json(QEMU_IMG, "q.vhd", "vpc", tmp_path)["virtual-size"]


@pytest.mark.parametrize("opts", ["subformat=dynamic", "subformat=fixed", "force_size=on"])
def test_convert_both_directions(src, opts):
    run(PYQEMU_IMG, "convert", "-f", "raw", "-O", "vpc", "-o", opts, "s.raw", "p.vhd", cwd=src)
    assert run(QEMU_IMG, "compare", "-f", "raw", "-F", "vpc", "s.raw", "p.vhd", cwd=src).returncode == 0
    run(QEMU_IMG, "convert", "-f", "raw", "-O", "vpc", "-o", opts, "s.raw", "q.vhd", cwd=src)
    run(PYQEMU_IMG, "convert", "-f", "vpc", "-O", "raw", "q.vhd", "p.raw", cwd=src)
    run(QEMU_IMG, "convert", "-f", "vpc", "-O", "raw", "q.vhd", "q.raw", cwd=src)
    assert (src / "p.raw").read_bytes() == (src / "q.raw").read_bytes()
    assert info_json(PYQEMU_IMG, "q.vhd", "vpc", src) == info_json(QEMU_IMG, "q.vhd", "vpc", src)
    if "fixed" not in opts:
        q, p, _ = both("map", "--output=json", "-f", "vpc", "q.vhd", cwd=src)
        assert p.stdout == q.stdout


def test_writes_into_qemu_image_are_read_by_qemu(tmp_path):
    run(QEMU_IMG, "create", "-q", "-f", "vpc", "d.vhd", "20M", cwd=tmp_path)
    run(QEMU_IO, "-f", "vpc", "-c", "write -P 0x41 3M 5k", "d.vhd", cwd=tmp_path)
    with open_image(str(tmp_path / "d.vhd"), "vpc", readonly=False) as n:
        n.pwrite(3 * 2**20 + 4096, b"\x42" * 8192)      # inside an allocated block
        n.pwrite(10 * 2**20 - 1024, b"\x43" * 2048)      # across two new blocks
    run(QEMU_IO, "-f", "vpc", "-c", "read -P 0x41 3M 4k", "-c", "read -P 0x42 3076k 8k",
        "-c", "read -P 0x43 10239k 2k", "-c", "read -P 0 11M 1M", "d.vhd", cwd=tmp_path)


def _set_creator(path, creator):
    b = bytearray(path.read_bytes())
    for off in (0, len(b) - 512):
        b[off + 28:off + 32] = creator
        struct.pack_into(">I", b, off + 64, 0)
        struct.pack_into(">I", b, off + 64, ~sum(b[off:off + 512]) & 0xFFFFFFFF)
    path.write_bytes(bytes(b))


@pytest.mark.parametrize("creator", [b"win ", b"vpc ", b"d2v ", b"tap\0"])
def test_size_source_by_creator(tmp_path, creator):
    """Hyper-V style images use current_size, Virtual PC ones the CHS geometry."""
    run(QEMU_IMG, "create", "-q", "-f", "vpc", "-o", "force_size=on", "d.vhd", "10001k", cwd=tmp_path)
    _set_creator(tmp_path / "d.vhd", creator)
    assert info_json(PYQEMU_IMG, "d.vhd", "vpc", tmp_path) == info_json(QEMU_IMG, "d.vhd", "vpc", tmp_path)


def _corrupt(tmp_path):
    run(QEMU_IMG, "create", "-q", "-f", "vpc", "g.vhd", "100M", cwd=tmp_path)
    b = (tmp_path / "g.vhd").read_bytes()

    def dyn(off, val):
        c = bytearray(b)
        struct.pack_into(">I", c, 512 + off, val)
        struct.pack_into(">I", c, 512 + 36, 0)
        struct.pack_into(">I", c, 512 + 36, ~sum(c[512:1536]) & 0xFFFFFFFF)
        return bytes(c)

    flipped = bytearray(b)
    flipped[100] ^= 1
    bat = bytearray(b)
    struct.pack_into(">I", bat, 1536, 0x100000)
    return {"trunc": b[:1000], "csum": bytes(flipped), "bs": dyn(32, 1000),
            "entries": dyn(28, 0x7FFFFFFF), "small_table": dyn(28, 3), "magic": dyn(0, 0),
            "bat": bytes(bat), "tiny": b"conectix", "empty": b""}


def test_bad_images_same_errors(tmp_path):
    for name, data in _corrupt(tmp_path).items():
        (tmp_path / name).write_bytes(data)
        q, p, err = both("info", "-f", "vpc", name, cwd=tmp_path)
        assert (p.returncode != 0) == (q.returncode != 0), name
        assert err == q.stderr, name
        assert "Traceback" not in p.stderr
