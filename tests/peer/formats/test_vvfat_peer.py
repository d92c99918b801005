"""vvfat (fat:dir, read-only) against qemu-img 7.2: the same directory gives the same disk bytes.

Times in the directory entries come from the files' stat (local time), so
both tools see the same values; mtools (mdir, mcopy) reads what pyqemu
exports as a foreign check of the FAT layout.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import PYQEMU_IMG, QEMU_IMG, both, run

pytestmark = pytest.mark.slow
STAMP = 1600000000
# access time in the future: with relatime a read by one tool does not move it before the other runs
ATIME = 3800000000


def _tree(root):
    """Names that exercise QEMU's short-name rules, long names, nesting and cluster edges."""
    files = {
        "a.txt": b"hello\n", "LongFileName.bin": bytes(range(256)) * 20, "README": b"r" * 8192,
        "exact.dat": b"\x01" * 16384, "over.dat": b"\x02" * 8193, "empty": b"",
        "two.dots.tar.gz": b"tgz", ".hidden": b"h", "Mixed Case Name.TXT": b"m" * 100,
        "lowercase.longext": b"x", "dup1234567890.txt": b"1", "dup1234567891.txt": b"2",
        "dup1234567892.txt": b"3", "UPPER.TXT": b"u", "upper.txt~": b"v",
        "sp ace.c": b"s", "bad[char]+=.x": b"b", "ünïcödé.txt": "unicode".encode(),
        "sub/b.txt": b"world\n", "sub/deeper/c.txt": b"c" * 20000, "sub/deeper/empty_dir/.keep": b"",
        "emptydir/.x": b"",
    }
    for i in range(40):
        files["many/file_number_%03d.data" % i] = bytes([i]) * (i * 37)
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for n in filenames + dirnames:
            os.utime(os.path.join(dirpath, n), (ATIME, STAMP + len(n) * 3601))
    os.utime(root, (ATIME, STAMP))


@pytest.mark.parametrize("spec", ["fat:{d}", "fat:floppy:{d}", "fat:12:{d}", "fat:floppy:16:{d}",
                                  "fat:32:{d}"])
def test_disk_bytes_match_qemu(tmp_path, spec):
    _tree(tmp_path / "d")
    name = spec.format(d="d")
    q = run(QEMU_IMG, "convert", "-O", "raw", name, "q.raw", cwd=tmp_path)
    p = run(PYQEMU_IMG, "convert", "-O", "raw", name, "p.raw", cwd=tmp_path)
    assert p.stderr.replace("pyqemu-img", "qemu-img") == q.stderr
    qb, pb = (tmp_path / "q.raw").read_bytes(), (tmp_path / "p.raw").read_bytes()
    assert len(pb) == len(qb)
    if pb != qb:
        first = next(i for i in range(len(qb)) if qb[i] != pb[i])
        raise AssertionError("differs first at byte %d (sector %d)" % (first, first // 512))
    for cmd in (["info"], ["info", "--output=json"], ["map", "--output=json"]):
        q, p, err = both(*cmd, name, cwd=tmp_path)
        assert (p.returncode, p.stdout, err) == (q.returncode, q.stdout, q.stderr), cmd


def test_mtools_reads_the_exported_disk(tmp_path):
    _tree(tmp_path / "d")
    run(PYQEMU_IMG, "convert", "-O", "raw", "fat:floppy:d", "f.img", cwd=tmp_path)
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    listing = subprocess.run(["mdir", "-/", "-i", "f.img", "::"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    for name in ("LongFileName.bin", "two.dots.tar.gz", "file_number_039.data", "c.txt"):
        assert name in listing.stdout
    out = tmp_path / "c.txt"
    subprocess.run(["mcopy", "-i", "f.img", "::/sub/deeper/c.txt", str(out)], cwd=tmp_path, env=env,
                   check=True, timeout=60)
    assert out.read_bytes() == b"c" * 20000


def test_errors_match_qemu(tmp_path):
    (tmp_path / "d").mkdir()
    for i in range(600):
        (tmp_path / "d" / ("f%03d" % i)).write_bytes(b"")
    opts = 'json:{"driver": "vvfat", "dir": "%s", "label": "%s"}'
    for args in (["info", "fat:nosuchdir"], ["info", "fat:d"],
                 ["info", opts % ("d", "LABEL_TOO_LONG")]):
        q, p, err = both(*args, cwd=tmp_path)
        assert (p.returncode, err) == (q.returncode, q.stderr), args


def test_label_option(tmp_path):
    _tree(tmp_path / "d")
    name = "json:" + json.dumps({"driver": "raw", "file": {"driver": "vvfat", "dir": "d",
                                                           "floppy": True, "label": "MYDISK"}})
    run(QEMU_IMG, "convert", "-O", "raw", name, "q.raw", cwd=tmp_path)
    run(PYQEMU_IMG, "convert", "-O", "raw", name, "p.raw", cwd=tmp_path)
    assert (tmp_path / "p.raw").read_bytes() == (tmp_path / "q.raw").read_bytes()
