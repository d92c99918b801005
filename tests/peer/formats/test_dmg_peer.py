"""dmg (read-only) against qemu-img/qemu-io 7.2 with UDIF images built per the format in the test.

Debian's qemu-img 7.2 has no dmg-bzip2/lzfse modules, so bzip2 chunks are
compared with the disk they were made from and with what Debian's dmg2img
decodes (pyqemu uses Python's bz2), and real qemu-img is checked to fail on
them as it says.
"""
from __future__ import annotations

import importlib.util
import os
import struct
import subprocess

import pytest
from conftest import PYQEMU_IMG, QEMU_IMG, QEMU_IO, both, run

_spec = importlib.util.spec_from_file_location(
    "dmg_images", os.path.join(os.path.dirname(__file__), "..", "..", "unit", "formats", "dmg_images.py"))
dmg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dmg)

pytestmark = pytest.mark.slow
RND = bytes((i * 7919 + 13) % 251 for i in range(16384))
RUNS = [(dmg.UDZO, b"\x11" * 4096 + RND[:4096]), (dmg.UDZE, bytes(65536)), (dmg.UDRW, RND),
        (dmg.UDIG, bytes(1024)), (dmg.UDZO, bytes(range(256)) * 64), (dmg.UDRW, b"\x22" * 512)]


def _noise(stderr: str) -> str:
    """Debian's loader complains about its missing dmg modules; that is packaging, not the driver."""
    return "".join(line for line in stderr.splitlines(True) if "qemu-block-extra" not in line)


@pytest.mark.parametrize("mode,tables", [("xml", 1), ("xml", 3), ("rsrc", 1), ("rsrc", 2)])
def test_images_read_identically(tmp_path, mode, tables):
    img, disk = dmg.build(RUNS, mode=mode, tables=tables)
    (tmp_path / "t.dmg").write_bytes(img)
    for prog, out in ((QEMU_IMG, "q.raw"), (PYQEMU_IMG, "p.raw")):
        run(prog, "convert", "-O", "raw", "t.dmg", out, cwd=tmp_path)
        assert (tmp_path / out).read_bytes() == disk, prog
    for cmd in (["info", "--output=json"], ["map", "--output=json"], ["info"]):
        q, p, _ = both(*cmd, "t.dmg", cwd=tmp_path)
        assert p.stdout.split('"actual-size"')[0].split("disk size")[0] == \
            q.stdout.split('"actual-size"')[0].split("disk size")[0], cmd
    q, p, _ = both("compare", "-f", "dmg", "-F", "raw", "t.dmg", "q.raw", cwd=tmp_path)
    assert (p.returncode, p.stdout) == (q.returncode, q.stdout) == (0, "Images are identical.\n")


def test_bzip2_chunks(tmp_path):
    img, disk = dmg.build([(dmg.UDBZ, b"\x33" * 8192 + RND)] + RUNS, tables=2)
    (tmp_path / "b.dmg").write_bytes(img)
    run(PYQEMU_IMG, "convert", "-O", "raw", "b.dmg", "p.raw", cwd=tmp_path)
    assert (tmp_path / "p.raw").read_bytes() == disk
    # a foreign reader (Debian's dmg2img) decodes the same image to the same disk
    subprocess.run(["dmg2img", "b.dmg", "d.raw"], cwd=tmp_path, check=True, capture_output=True,
                   timeout=120)
    assert (tmp_path / "d.raw").read_bytes() == disk
    q = run(QEMU_IMG, "convert", "-O", "raw", "b.dmg", "q.raw", cwd=tmp_path, check=False)
    assert q.returncode == 1 and "bzip2" in q.stderr      # Debian lacks the module, as documented


def _damaged(tmp_path):
    img, _ = dmg.build(RUNS)
    koly = len(img) - 512
    out = {"short": img[:300], "nokoly": img[:-512] + bytes(512), "odd": img + b"\0" * 100}
    b = bytearray(img)
    struct.pack_into(">Q", b, koly + 0x18, koly + 1)
    out["datafork"] = bytes(b)
    b = bytearray(img)
    struct.pack_into(">Q", b, koly + 0xD8, koly)
    out["xmloff"] = bytes(b)
    b = bytearray(img)
    struct.pack_into(">QQ", b, koly + 0xD8, 0, 0)
    out["noxml"] = bytes(b)
    b = bytearray(img)
    struct.pack_into(">Q", b, koly + 0x1EC, 1 << 63)
    out["negsize"] = bytes(b)
    big, _ = dmg.build([(dmg.UDRW, b"\x01" * 512)], extra=[(dmg.UDZO, 0, 1, 200000, 0, 10)])
    out["bigcount"] = big
    huge, _ = dmg.build([(dmg.UDRW, b"\x01" * 512)], extra=[(dmg.UDRW, 0, 1, 1, 0, 1 << 30)])
    out["biglength"] = huge
    adc, _ = dmg.build([(dmg.UDRW, b"\x01" * 512)], extra=[(dmg.UDCO, 0, 1, 4, 0, 10)])
    out["adc"] = adc
    bad_zlib, _ = dmg.build([(dmg.UDRW, b"\x01" * 512)], extra=[(dmg.UDZO, 0, 1, 4, 0, 100)])
    out["badzlib"] = bad_zlib
    rs, _ = dmg.build(RUNS, mode="rsrc")
    b = bytearray(rs)
    rsrc_off = struct.unpack_from(">Q", b, len(b) - 512 + 0x28)[0]
    struct.pack_into(">I", b, rsrc_off + 8, 0)
    out["rsrc0"] = bytes(b)
    return out


def test_damaged_images_fail_as_in_qemu(tmp_path):
    for name, data in _damaged(tmp_path).items():
        (tmp_path / (name + ".dmg")).write_bytes(data)
        for cmd in (["info", "-f", "dmg"], ["convert", "-f", "dmg", "-O", "raw"]):
            args = [*cmd, name + ".dmg"] + (["out_%s.raw" % name] if cmd[0] == "convert" else [])
            q, p, err = both(*args, cwd=tmp_path)
            assert "Traceback" not in p.stderr
            assert (p.returncode, p.stdout.split("disk size")[0]) == \
                (q.returncode, q.stdout.split("disk size")[0]), (name, cmd)
            assert err.replace("pyqemu-img", "qemu-img") == _noise(q.stderr), (name, cmd)


def test_qemu_io_reads_and_read_only(tmp_path):
    img, disk = dmg.build(RUNS, tables=2)
    (tmp_path / "t.dmg").write_bytes(img)
    pyio = os.path.join(os.path.dirname(PYQEMU_IMG), "pyqemu-io")
    for off, n in ((0, 512), (4096, 8192), (70000, 3000), (len(disk) - 512, 512)):
        cmd = ["-r", "-f", "dmg", "-c", "read -v %d %d" % (off, n), "t.dmg"]
        q = run(QEMU_IO, *cmd, cwd=tmp_path)
        p = run(pyio, *cmd, cwd=tmp_path)
        assert p.stdout.splitlines()[:-1] == q.stdout.splitlines()[:-1]
    q = run(QEMU_IO, "-c", "read 0 512", "t.dmg", cwd=tmp_path, check=False)
    p = run(pyio, "-c", "read 0 512", "t.dmg", cwd=tmp_path, check=False)
    assert (p.returncode, p.stderr.replace("pyqemu-io", "qemu-io")) == (q.returncode, _noise(q.stderr))
