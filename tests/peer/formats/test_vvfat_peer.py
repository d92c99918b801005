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


def _host_tree(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for d in dirnames:
            out[os.path.normpath(os.path.join(rel, d))] = None
        for f in filenames:
            with open(os.path.join(dirpath, f), "rb") as fh:
                out[os.path.normpath(os.path.join(rel, f))] = fh.read()
    return out


def _guest_changes(tmp_path, spec):
    """The sector writes a guest makes: mtools edits a copy of the exported disk, we diff it."""
    run(QEMU_IMG, "convert", "-O", "raw", spec.format(d="d"), "base.img", cwd=tmp_path)
    mod = tmp_path / "mod.img"
    mod.write_bytes((tmp_path / "base.img").read_bytes())
    (tmp_path / "New Long Name.txt").write_bytes(b"brand new\n" * 500)
    (tmp_path / "inner.bin").write_bytes(bytes(range(256)) * 90)
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1", MTOOLS_NO_VFAT="0")
    for cmd in (["mcopy", "-i", "mod.img", "New Long Name.txt", "::/"],
                ["mmd", "-i", "mod.img", "::/made_by_guest"],
                ["mcopy", "-i", "mod.img", "inner.bin", "::/made_by_guest/"],
                ["mdel", "-i", "mod.img", "::/README"],
                ["mren", "-i", "mod.img", "::/sub/b.txt", "::/sub/renamed.txt"],
                ):
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True, timeout=60)
    a, b = (tmp_path / "base.img").read_bytes(), mod.read_bytes()
    cmds = []
    s = 0
    while s < len(a):
        if a[s:s + 512] == b[s:s + 512]:
            s += 512
            continue
        e = s
        while e < len(a) and a[e:e + 512] != b[e:e + 512]:
            e += 512
        chunk = tmp_path / ("w%d" % s)
        chunk.write_bytes(b[s:e])
        cmds += ["-c", "write -s %s %d %d" % (chunk, s, e - s)]
        s = e
    out = tmp_path / "expected"
    subprocess.run(["mcopy", "-s", "-i", "mod.img", "::/*", str(out)], cwd=tmp_path, env=env,
                   check=True, capture_output=True, timeout=60)
    return cmds


def test_rw_writes_reach_the_directory_as_with_qemu(tmp_path):
    import shutil
    _tree(tmp_path / "d")
    (tmp_path / "expected").mkdir()
    cmds = _guest_changes(tmp_path, "fat:floppy:{d}")
    shutil.copytree(tmp_path / "d", tmp_path / "q", symlinks=True)
    shutil.copytree(tmp_path / "d", tmp_path / "p", symlinks=True)
    pyio = os.path.join(os.path.dirname(PYQEMU_IMG), "pyqemu-io")
    q = run("/usr/bin/qemu-io", "-f", "raw", *cmds, "fat:floppy:rw:q", cwd=tmp_path, check=False)
    p = run(pyio, "-f", "raw", *cmds, "fat:floppy:rw:p", cwd=tmp_path)
    assert p.returncode == 0
    ours = _host_tree(tmp_path / "p")
    # QEMU 7.2's rw mode (beta) is not deterministic on this sequence: most runs
    # write back the same tree, some write the new file in the new directory
    # as zeroes, some abort on an assertion in commit_direntries.  Compare
    # names with QEMU when it succeeded; contents against the guest's own view.
    if q.returncode == 0:
        assert sorted(ours) == sorted(_host_tree(tmp_path / "q"))
    guest = _host_tree(tmp_path / "expected")
    by_name = {k.lower(): v for k, v in ours.items()}   # mcopy prints short names in capitals
    for path, data in guest.items():
        if data is not None:
            assert by_name[path.lower()] == data, path
    assert ours["New Long Name.txt"] == b"brand new\n" * 500
    assert ours["made_by_guest/inner.bin"] == bytes(range(256)) * 90
    assert "sub/renamed.txt" in ours and "sub/b.txt" not in ours
    assert "README" in ours      # deletions are not written back, by QEMU either
