"""convert --target-image-opts, --salvage and -p, info's normalised names: against qemu-img 7.2."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys

import pytest

QEMU_IMG = shutil.which("qemu-img")
QEMU_IO = shutil.which("qemu-io")
PYQEMU_IMG = os.path.join(os.path.dirname(sys.executable), "pyqemu-img")

pytestmark = pytest.mark.skipif(QEMU_IMG is None and not os.environ.get("CI"),
                                reason="qemu-img (qemu-utils) is required")


def run(prog, *args, cwd, check=True):
    p = subprocess.run([prog, *args], cwd=cwd, capture_output=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError("%s %s failed (%d): %s" % (prog, args, p.returncode, p.stderr))
    return p


def outcome(p):
    return p.stdout, p.stderr.replace(b"pyqemu-img", b"qemu-img"), p.returncode


def _digest(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("cmd", [
    ["--target-image-opts", "a.qcow2", "driver=qcow2,file.filename=T"],          # needs -n
    ["-n", "--target-image-opts", "-O", "qcow2", "a.qcow2", "driver=qcow2,file.filename=T"],
    ["-n", "--target-image-opts", "a.qcow2", "driver=qcow2,file.filename=T"],
    ["-n", "--target-image-opts", "a.qcow2", "T"],                               # a node reference
    ["-n", "--target-image-opts", "a.qcow2", "driver=raw,file.filename=nosuch"],
    ["-n", "--target-image-opts", "-p", "a.qcow2", "file.filename=T"],           # probed target
    ["-n", "--target-image-opts", "-o", "cluster_size=4k", "a.qcow2", "driver=qcow2,file.filename=T"],
    ["-n", "--target-image-opts", "-t", "none", "a.qcow2", "driver=qcow2,file.filename=T"],
    ["-n", "--target-image-opts", "a.qcow2", "driver=raw,offset=1M,file.filename=R"],
    ["-n", "--target-image-opts", "a.qcow2", "driver=raw,offset=1M,size=512k,file.filename=R"],
])
def test_target_image_opts_match_qemu_img(tmp_path, cmd):
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", "a.qcow2", "4M", cwd=tmp_path)
    run(QEMU_IO, "-c", "write -P 5 0 1M", "-c", "write -P 6 3M 64k", "a.qcow2", cwd=tmp_path)
    results = []
    for tool in (QEMU_IMG, PYQEMU_IMG):
        for name in ("T", "R"):
            if os.path.exists(tmp_path / name):
                os.unlink(tmp_path / name)
        run(QEMU_IMG, "create", "-q", "-f", "qcow2", "T", "6M", cwd=tmp_path)
        run(QEMU_IMG, "create", "-q", "-f", "raw", "R", "8M", cwd=tmp_path)
        p = run(tool, "convert", *cmd, cwd=tmp_path, check=False)
        results.append((outcome(p), _digest(tmp_path / "T"), _digest(tmp_path / "R")))
    assert results[0][0] == results[1][0]
    assert results[0][2] == results[1][2]
    if results[0][0][2] == 0 and "T" in cmd[-1]:
        # the data, not the layout: both wrote the same guest view into the existing image
        assert run(QEMU_IMG, "compare", "a.qcow2", "T", cwd=tmp_path).returncode == 0
        assert run(QEMU_IMG, "check", "T", cwd=tmp_path).returncode == 0


def _image_with_bad_compressed_cluster(tmp_path):
    """1 MiB of 0x41 compressed into a qcow2 whose second cluster cannot be decompressed."""
    run(QEMU_IMG, "create", "-q", "-f", "raw", "s.raw", "1M", cwd=tmp_path)
    run(QEMU_IO, "-f", "raw", "-c", "write -P 0x41 0 1M", "s.raw", cwd=tmp_path)
    run(QEMU_IMG, "convert", "-c", "-O", "qcow2", "s.raw", "c.qcow2", cwd=tmp_path)
    with open(tmp_path / "c.qcow2", "r+b") as f:
        data = f.read()
        l1 = struct.unpack(">Q", data[40:48])[0]
        l2 = struct.unpack(">Q", data[l1:l1 + 8])[0] & 0x00FFFFFFFFFFFE00
        entry = struct.unpack(">Q", data[l2 + 8:l2 + 16])[0]
        assert entry >> 62 == 1  # compressed
        f.seek(entry & ((1 << 54) - 1))
        f.write(b"\xff" * 64)


@pytest.mark.parametrize("args", [["-O", "raw"], ["--salvage", "-O", "raw"], ["--salvage", "-O", "qcow2"],
                                  ["--salvage", "-c", "-O", "qcow2"]])
def test_read_errors_and_salvage_match_qemu_img(tmp_path, args):
    _image_with_bad_compressed_cluster(tmp_path)
    q = run(QEMU_IMG, "convert", *args, "c.qcow2", "q.out", cwd=tmp_path, check=False)
    p = run(PYQEMU_IMG, "convert", *args, "c.qcow2", "p.out", cwd=tmp_path, check=False)
    assert outcome(p) == outcome(q)
    if q.returncode == 0:
        # the unreadable cluster comes out as zeroes, the rest as it was
        assert run(QEMU_IMG, "compare", "q.out", "p.out", cwd=tmp_path).returncode == 0
        if "qcow2" in args and "-c" not in args:
            assert run(PYQEMU_IMG, "map", "--output=json", "p.out", cwd=tmp_path).stdout == \
                run(QEMU_IMG, "map", "--output=json", "q.out", cwd=tmp_path).stdout


@pytest.mark.parametrize("args", [["-O", "raw", "e.qcow2"], ["-O", "raw", "a.qcow2"], ["-S", "0", "-O", "raw", "a.qcow2"],
                                  ["-c", "-O", "qcow2", "a.qcow2"], ["-O", "qcow2", "a.qcow2"]])
def test_progress_display_matches_qemu_img(tmp_path, args):
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", "e.qcow2", "4M", cwd=tmp_path)
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", "a.qcow2", "64M", cwd=tmp_path)
    run(QEMU_IO, "-c", "write -P 5 0 1M", "-c", "write -P 6 9M 5M", "-c", "write -P 7 30M 64k",
        "a.qcow2", cwd=tmp_path)
    q = run(QEMU_IMG, "convert", "-p", *args, "q.out", cwd=tmp_path)
    p = run(PYQEMU_IMG, "convert", "-p", *args, "p.out", cwd=tmp_path)
    assert p.stdout == q.stdout


@pytest.mark.parametrize("spec", [
    'json:{"driver":"raw","file":{"driver":"file","filename":"r.raw"}}',
    'json:{"driver":"raw","offset":512,"file":{"driver":"file","filename":"r.raw"}}',
    'json:{"driver":"raw","size":512,"offset":1024,"file":{"driver":"file","filename":"r.raw","locking":"off"}}',
    'json:{"driver":"raw","file":{"driver":"raw","offset":512,"file":{"driver":"file","filename":"r.raw"}}}',
    'json:{"file":{"driver":"file","filename":"r.raw"}}',
    'json:{"driver":"qcow2","file":{"driver":"file","filename":"t.qcow2"},"l2-cache-size":"1M","node-name":"n"}',
    'json:{"driver":"qcow2","file":{"driver":"raw","size":1048576,"file":{"driver":"file","filename":"t.qcow2"}}}',
    'json:{"driver":"qcow2","file":"t.qcow2"}',
    'json:{"driver":"raw","file":{"driver":"null-co","size":1024}}',
    'json:{"driver":"null-co","size":1024,"read-zeroes":true}',
    'json:{"driver":"null-co"}',
    'json:{"driver":"raw","file":{"driver":"file","filename":"./r.raw"}}',
])
@pytest.mark.parametrize("output", ["human", "json"])
def test_info_shows_qemus_normalised_name(tmp_path, spec, output):
    run(QEMU_IMG, "create", "-q", "-f", "raw", "r.raw", "1M", cwd=tmp_path)
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", "t.qcow2", "1M", cwd=tmp_path)
    q = run(QEMU_IMG, "info", "--output=" + output, spec, cwd=tmp_path, check=False)
    p = run(PYQEMU_IMG, "info", "--output=" + output, spec, cwd=tmp_path, check=False)
    assert outcome(p) == outcome(q)


def test_image_opts_name_in_info(tmp_path):
    run(QEMU_IMG, "create", "-q", "-f", "raw", "r.raw", "1M", cwd=tmp_path)
    for opts in ("driver=raw,size=1048576,file.filename=r.raw", "driver=raw,file.filename=r.raw,file.locking=off",
                 "r.raw"):
        q = run(QEMU_IMG, "info", "--image-opts", opts, cwd=tmp_path, check=False)
        p = run(PYQEMU_IMG, "info", "--image-opts", opts, cwd=tmp_path, check=False)
        assert outcome(p) == outcome(q), opts
