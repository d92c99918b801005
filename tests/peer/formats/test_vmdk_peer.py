"""vmdk against qemu-img 7.2: every subformat both ways, descriptors, backing, bad images."""
from __future__ import annotations

import struct

import pytest
from conftest import PYQEMU_IMG, QEMU_IMG, QEMU_IO, both, info_json, run

from pyqemu.block import open_image

SUBFORMATS = ["monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat",
              "streamOptimized"]


def _no_cid(d):
    spec = d.get("format-specific", {}).get("data", {})
    spec.pop("cid", None)
    return d


@pytest.mark.parametrize("opts", [s and "subformat=" + s for s in SUBFORMATS] + [
    "adapter_type=lsilogic,hwversion=7,toolsversion=5", "compat6=on,adapter_type=legacyESX",
    "zeroed_grain=on,adapter_type=buslogic", "subformat=streamOptimized,zeroed_grain=on"])
def test_create_matches_qemu(tmp_path, opts):
    for d, tool in (("q", QEMU_IMG), ("p", PYQEMU_IMG)):
        (tmp_path / d).mkdir()
        out = run(tool, "create", "-f", "vmdk", "-o", opts, "d.vmdk", "5G", cwd=tmp_path / d).stdout
        if d == "q":
            q_out = out
    assert out == q_out
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == \
        sorted(p.name for p in (tmp_path / "q").iterdir())
    for f in (tmp_path / "q").iterdir():
        qs, ps = f.stat().st_size, (tmp_path / "p" / f.name).stat().st_size
        # a descriptor file's length varies with the digits of its random CID
        assert qs == ps or (qs < 4096 and abs(qs - ps) < 8)
    assert _no_cid(info_json(QEMU_IMG, "d.vmdk", "vmdk", tmp_path / "p")) == \
        _no_cid(info_json(QEMU_IMG, "d.vmdk", "vmdk", tmp_path / "q"))
    assert info_json(PYQEMU_IMG, "d.vmdk", "vmdk", tmp_path / "q") == \
        info_json(QEMU_IMG, "d.vmdk", "vmdk", tmp_path / "q")
    q, p, _ = both("info", "d.vmdk", cwd=tmp_path / "q")
    assert p.stdout.split("\n")[3:] == q.stdout.split("\n")[3:]   # from cluster_size on
    assert "No errors" in run(QEMU_IMG, "check", "d.vmdk", cwd=tmp_path / "p").stdout


@pytest.mark.parametrize("sub", SUBFORMATS)
def test_convert_both_directions(src, sub):
    run(PYQEMU_IMG, "convert", "-O", "vmdk", "-o", "subformat=" + sub, "s.raw", "p.vmdk", cwd=src)
    assert "No errors" in run(QEMU_IMG, "check", "p.vmdk", cwd=src).stdout
    assert run(QEMU_IMG, "compare", "s.raw", "p.vmdk", cwd=src).returncode == 0
    run(QEMU_IMG, "convert", "-O", "vmdk", "-o", "subformat=" + sub, "s.raw", "q.vmdk", cwd=src)
    run(PYQEMU_IMG, "convert", "-O", "raw", "q.vmdk", "p.raw", cwd=src)
    assert (src / "p.raw").read_bytes() == (src / "s.raw").read_bytes()
    assert info_json(PYQEMU_IMG, "q.vmdk", "vmdk", src) == info_json(QEMU_IMG, "q.vmdk", "vmdk", src)
    if "Flat" not in sub:
        q, p, _ = both("map", "--output=json", "q.vmdk", cwd=src)
        assert p.stdout == q.stdout


def test_backing_chain(tmp_path):
    run(QEMU_IMG, "create", "-q", "-f", "vmdk", "base.vmdk", "8M", cwd=tmp_path)
    run(QEMU_IO, "-c", "write -P 0x61 0 2M", "base.vmdk", cwd=tmp_path)
    q, p, _ = both("create", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", "top.vmdk", cwd=tmp_path)
    assert p.stdout == q.stdout and p.returncode == 0
    with open_image(str(tmp_path / "top.vmdk"), readonly=False) as n:
        n.pwrite(65536 + 100, b"\x62" * 1000)   # copy-on-write of a partial grain
    run(QEMU_IO, "-c", "read -P 0x61 0 65636", "-c", "read -P 0x62 65636 1000",
        "-c", "read -P 0x61 66636 1000k", "-c", "read -P 0 2M 6M", "top.vmdk", cwd=tmp_path)
    q, p, _ = both("info", "--backing-chain", "--output=json", "top.vmdk", cwd=tmp_path)
    assert [_no_cid(x) for x in __import__("json").loads(p.stdout)] == \
        [_no_cid(x) for x in __import__("json").loads(q.stdout)]
    # qemu writes into a pyqemu overlay, pyqemu reads it
    run(QEMU_IO, "-c", "write -P 0x63 5M 4k", "top.vmdk", cwd=tmp_path)
    with open_image(str(tmp_path / "top.vmdk")) as n:
        assert n.pread(5 << 20, 4096) == b"\x63" * 4096
        assert n.pread(0, 4096) == b"\x61" * 4096


def test_hand_written_descriptor_with_several_extents(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"\x11" * 1024 * 1024)
    (tmp_path / "b.bin").write_bytes(b"\x00" * 512 + b"\x22" * 1024 * 1024)
    (tmp_path / "d.vmdk").write_text(
        '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="monolithicFlat"\n'
        '\n# Extent description\nRW 2048 FLAT "a.bin" 0\nRW 1024 ZERO\nRDONLY 2048 FLAT "b.bin" 1\n')
    run(QEMU_IMG, "convert", "-O", "raw", "d.vmdk", "q.raw", cwd=tmp_path)
    run(PYQEMU_IMG, "convert", "-O", "raw", "d.vmdk", "p.raw", cwd=tmp_path)
    assert (tmp_path / "p.raw").read_bytes() == (tmp_path / "q.raw").read_bytes()
    assert info_json(PYQEMU_IMG, "d.vmdk", "vmdk", tmp_path) == info_json(QEMU_IMG, "d.vmdk", "vmdk", tmp_path)


def _bad(tmp_path):
    run(QEMU_IMG, "create", "-q", "-f", "vmdk", "g.vmdk", "100M", cwd=tmp_path)
    b = (tmp_path / "g.vmdk").read_bytes()

    def put(fmt, off, *vals):
        c = bytearray(b)
        struct.pack_into(fmt, c, off, *vals)
        return bytes(c)

    return {"version": put("<I", 4, 7), "gran": put("<Q", 20, 3), "gtes": put("<I", 44, 4096),
            "capacity": put("<Q", 12, 1 << 50), "gd": put("<Q", 56, 1 << 40), "trunc": b[:600],
            "desc": b"# Disk DescriptorFile\nversion=1\n", "ext": b'# Disk DescriptorFile\ncreateType="monolithicFlat"\nRW 100 FLAT "nonexistent" 0\n'}


def test_bad_images_give_errors(tmp_path):
    for name, data in _bad(tmp_path).items():
        (tmp_path / name).write_bytes(data)
        q, p, err = both("info", "-f", "vmdk", name, cwd=tmp_path)
        assert (p.returncode != 0) == (q.returncode != 0), (name, q.stderr, err)
        assert "Traceback" not in p.stderr
        assert err.startswith("qemu-img: Could not open '%s': " % name) or not q.returncode, name


def test_check_grain_past_eof_like_qemu(tmp_path):
    run(QEMU_IMG, "create", "-q", "-f", "vmdk", "c.vmdk", "100M", cwd=tmp_path)
    run(QEMU_IO, "-c", "write -P 1 0 128k", "c.vmdk", cwd=tmp_path)
    q, p, err = both("check", "c.vmdk", cwd=tmp_path)
    assert (p.returncode, p.stdout, err) == (q.returncode, q.stdout, q.stderr)
    b = bytearray((tmp_path / "c.vmdk").read_bytes())
    gd = struct.unpack_from("<Q", b, 56)[0]
    gt = struct.unpack_from("<I", b, gd * 512)[0]
    struct.pack_into("<I", b, gt * 512 + 4, 100000)
    (tmp_path / "c.vmdk").write_bytes(bytes(b))
    q, p, err = both("check", "c.vmdk", cwd=tmp_path)
    assert (p.returncode, p.stdout, err) == (q.returncode, q.stdout, q.stderr)
