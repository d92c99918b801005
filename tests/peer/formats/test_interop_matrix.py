"""The interop matrix: every read-write format and subformat against Debian's qemu-img 7.2.

For each row: pyqemu-img converts a raw disk into the format and real
qemu-img converts it back (the same bytes as the source); real qemu-img
converts the source into the format and pyqemu-img converts it back; real
`qemu-img check` finds pyqemu's image clean (or both tools say the format
has no checks); `info --output=json` agrees on everything but what QEMU
fills from the host or at random; `map` of qemu-img's image is the same.
"""
from __future__ import annotations

import json
import random

import pytest
from conftest import PYQEMU_IMG, QEMU_IMG, QEMU_IO, both, run

# format, -o options (empty: the format's defaults)
MATRIX = [
    ("qcow", ""),
    ("qed", ""), ("qed", "cluster_size=4k,table_size=2"),
    ("vmdk", "subformat=monolithicSparse"), ("vmdk", "subformat=monolithicFlat"),
    ("vmdk", "subformat=twoGbMaxExtentSparse"), ("vmdk", "subformat=twoGbMaxExtentFlat"),
    ("vmdk", "subformat=streamOptimized"), ("vmdk", "compat6=on"), ("vmdk", "hwversion=6"),
    ("vmdk", "adapter_type=ide"), ("vmdk", "adapter_type=lsilogic"), ("vmdk", "adapter_type=buslogic"),
    ("vmdk", "subformat=monolithicFlat,adapter_type=legacyESX"), ("vmdk", "zeroed_grain=on"),
    ("vdi", "static=off"), ("vdi", "static=on"),
    ("vpc", "subformat=dynamic"), ("vpc", "subformat=fixed"), ("vpc", "force_size=on"),
    ("vpc", "subformat=fixed,force_size=on"),
    ("vhdx", "subformat=dynamic"), ("vhdx", "subformat=fixed"),
    ("vhdx", "block_size=1M,block_state_zero=off"),
    ("parallels", ""), ("parallels", "cluster_size=64k"),
]

# formats real qemu-img 7.2 has no `check` for
NO_CHECK = {"qcow", "vpc"}

SIZE = 12 << 20

pytestmark = pytest.mark.slow   # ~2 s a row alone, more under load


@pytest.fixture
def disk(src):
    """conftest's scattered patterns plus random (incompressible) data and a last partial sector run."""
    rnd = random.Random(1)
    with open(src / "s.raw", "r+b") as f:
        f.seek(5 << 20)
        f.write(rnd.randbytes(300 * 1024 + 7))
        f.seek(SIZE - 700)
        f.write(rnd.randbytes(700))
    return src


def _same_as_source(path, source) -> None:
    """Back-converted bytes equal the source; a vpc size rounded up to a CHS geometry reads zeroes past it."""
    got, want = path.read_bytes(), source.read_bytes()
    assert got[:len(want)] == want
    assert not any(got[len(want):])


def _info(prog, name, cwd) -> dict:
    """info JSON without what depends on the host, the file name or QEMU's random numbers."""
    d = json.loads(run(prog, "info", "--output=json", name, cwd=cwd).stdout)
    d.pop("actual-size", None)
    d.pop("filename", None)
    spec = d.get("format-specific", {}).get("data", {})
    spec.pop("cid", None)
    for ext in spec.get("extents", []):
        ext.pop("filename", None)
        ext.pop("actual-size", None)
    return d


def _ids(case):
    return "%s-%s" % (case[0], case[1] or "default")


@pytest.mark.parametrize("fmt,opts", MATRIX, ids=[_ids(c) for c in MATRIX])
def test_matrix(disk, fmt, opts):
    o = ["-o", opts] if opts else []
    # ours -> theirs
    run(PYQEMU_IMG, "convert", "-f", "raw", "-O", fmt, *o, "s.raw", "p.img", cwd=disk)
    run(QEMU_IMG, "convert", "-f", fmt, "-O", "raw", "p.img", "p-back.raw", cwd=disk)
    _same_as_source(disk / "p-back.raw", disk / "s.raw")
    # theirs -> ours
    run(QEMU_IMG, "convert", "-f", "raw", "-O", fmt, *o, "s.raw", "q.img", cwd=disk)
    run(PYQEMU_IMG, "convert", "-f", fmt, "-O", "raw", "q.img", "q-back.raw", cwd=disk)
    _same_as_source(disk / "q-back.raw", disk / "s.raw")
    # qemu-img check on our image; both tools' check on theirs
    r = run(QEMU_IMG, "check", "--output=json", "-f", fmt, "p.img", cwd=disk, check=False)
    if fmt in NO_CHECK:
        assert r.returncode == 63 and "does not support checks" in r.stderr
    else:
        assert r.returncode == 0, r.stdout + r.stderr
        rep = json.loads(r.stdout)
        assert rep.get("corruptions", 0) == 0 and rep.get("leaks", 0) == 0, rep
    q, p, err = both("check", "-f", fmt, "q.img", cwd=disk)
    assert (p.returncode, p.stdout, err) == (q.returncode, q.stdout, q.stderr)
    # info: ours as qemu-img sees it == theirs; pyqemu-img's view of theirs == qemu-img's
    assert _info(QEMU_IMG, "p.img", disk) == _info(QEMU_IMG, "q.img", disk)
    assert _info(PYQEMU_IMG, "q.img", disk) == _info(QEMU_IMG, "q.img", disk)
    assert _info(PYQEMU_IMG, "p.img", disk) == _info(QEMU_IMG, "p.img", disk)
    # map of theirs: the same ranges, flags and offsets (holes of a fixed/static/flat
    # image's file are "zero": true, "data": true, and left out of the human form)
    for out in ("json", "human"):
        q, p, err = both("map", "--output=" + out, "-f", fmt, "q.img", cwd=disk)
        assert (p.returncode, p.stdout, err) == (q.returncode, q.stdout, q.stderr), out


@pytest.mark.slow
@pytest.mark.parametrize("sub", ["twoGbMaxExtentSparse", "twoGbMaxExtentFlat"])
def test_split_vmdk_across_extents(tmp_path, sub):
    """Data across the 2 GiB extent boundaries survives both directions."""
    size = (4 << 30) + (3 << 20)
    run(QEMU_IMG, "create", "-q", "-f", "raw", "s.raw", str(size), cwd=tmp_path)
    run(QEMU_IO, "-f", "raw", "-c", "write -P 0x5c %d 1M" % ((2 << 30) - (512 << 10)),
        "-c", "write -P 0x6d %d 2M" % ((4 << 30) - 4096), "-c", "write -P 0x7e 0 64k", "s.raw", cwd=tmp_path)
    o = ["-o", "subformat=" + sub]
    run(PYQEMU_IMG, "convert", "-O", "vmdk", *o, "s.raw", "p.vmdk", cwd=tmp_path)
    assert "No errors" in run(QEMU_IMG, "check", "p.vmdk", cwd=tmp_path).stdout
    assert run(QEMU_IMG, "compare", "-f", "raw", "-F", "vmdk", "s.raw", "p.vmdk", cwd=tmp_path).returncode == 0
    run(QEMU_IMG, "convert", "-O", "vmdk", *o, "s.raw", "q.vmdk", cwd=tmp_path)
    assert sorted(x.name for x in tmp_path.glob("p*.vmdk")) == \
        sorted(x.name.replace("q", "p", 1) for x in tmp_path.glob("q*.vmdk"))
    r = run(PYQEMU_IMG, "compare", "-f", "raw", "-F", "vmdk", "s.raw", "q.vmdk", cwd=tmp_path, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _info(PYQEMU_IMG, "q.vmdk", tmp_path) == _info(QEMU_IMG, "q.vmdk", tmp_path)
    assert _info(QEMU_IMG, "p.vmdk", tmp_path) == _info(QEMU_IMG, "q.vmdk", tmp_path)


RAW_WINDOWS = [(0, None), (512, None), (1 << 20, 3 << 20), (4096, 1 << 20), (5 << 20, 7 << 20)]


@pytest.mark.parametrize("offset,size", RAW_WINDOWS)
def test_raw_offset_and_size(disk, offset, size):
    """A window of a raw file (json: raw with offset/size) reads and converts alike in both tools."""
    spec = {"driver": "raw", "offset": offset, "file": {"driver": "file", "filename": "s.raw"}}
    if size is not None:
        spec["size"] = size
    name = "json:" + json.dumps(spec)
    for tool, out in ((QEMU_IMG, "q.raw"), (PYQEMU_IMG, "p.raw")):
        run(tool, "convert", "-O", "raw", name, out, cwd=disk)
    want = (disk / "s.raw").read_bytes()[offset:offset + size if size is not None else None]
    assert (disk / "p.raw").read_bytes() == (disk / "q.raw").read_bytes() == want
    q, p, _ = both("info", "--output=json", name, cwd=disk)
    assert json.loads(p.stdout)["virtual-size"] == json.loads(q.stdout)["virtual-size"] == len(want)


def test_raw_window_writes_stay_inside(disk):
    """pyqemu-io writes through an offset/size window land where qemu-io reads them, and nowhere else."""
    import os
    import sys
    pyqemu_io = os.path.join(os.path.dirname(sys.executable), "pyqemu-io")
    before = (disk / "s.raw").read_bytes()
    opts = "driver=raw,offset=1048576,size=2097152,file.driver=file,file.filename=s.raw"
    run(pyqemu_io, "--image-opts", "-c", "write -P 0x99 0 4k", "-c", "write -P 0x98 2093056 4k", opts, cwd=disk)
    r = run(pyqemu_io, "--image-opts", "-c", "write 2097152 512", opts, cwd=disk, check=False)
    q = run(QEMU_IO, "--image-opts", "-c", "write 2097152 512", opts, cwd=disk, check=False)
    assert r.stdout.replace("pyqemu-io", "qemu-io") == q.stdout
    run(QEMU_IO, "-f", "raw", "-c", "read -P 0x99 1M 4k", "-c", "read -P 0x98 3141632 4k", "s.raw", cwd=disk)
    after = (disk / "s.raw").read_bytes()
    assert after[:1 << 20] == before[:1 << 20] and after[3 << 20:] == before[3 << 20:]


@pytest.mark.parametrize("fmt,opts", [("vmdk", ""), ("vmdk", "subformat=streamOptimized"),
                                      ("vmdk", "subformat=twoGbMaxExtentSparse"),
                                      ("vmdk", "subformat=monolithicFlat"), ("vpc", ""), ("vdi", ""),
                                      ("qed", ""), ("vhdx", ""), ("parallels", "")])
def test_convert_compressed(disk, fmt, opts):
    """convert -c: what qemu-img accepts gives the source back; what it refuses, pyqemu-img refuses alike."""
    o = ["-o", opts] if opts else []
    q, p, err = both("convert", "-c", "-f", "raw", "-O", fmt, *o, "s.raw", "c.img", cwd=disk)
    assert (p.returncode, p.stdout, err) == (q.returncode, q.stdout, q.stderr)
    if q.returncode == 0:
        run(QEMU_IMG, "convert", "-f", fmt, "-O", "raw", "c.img", "c.raw", cwd=disk)
        _same_as_source(disk / "c.raw", disk / "s.raw")
        assert "No errors" in run(QEMU_IMG, "check", "-f", fmt, "c.img", cwd=disk).stdout
