"""pyqemu-img against Debian's qemu-img 7.2: same images, both directions."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

QEMU_IMG = shutil.which("qemu-img")
QEMU_IO = shutil.which("qemu-io")
PYQEMU_IMG = os.path.join(os.path.dirname(sys.executable), "pyqemu-img")

pytestmark = pytest.mark.skipif(QEMU_IMG is None and not os.environ.get("CI"), reason="qemu-img (qemu-utils) is required")


def run(prog, *args, cwd=None, check=True):
    p = subprocess.run([prog, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError("%s %s failed (%d): %s" % (prog, args, p.returncode, p.stderr))
    return p


def both(*args, cwd):
    """The same command through both tools: (qemu result, pyqemu result), prefixes normalised."""
    q = run(QEMU_IMG, *args, cwd=cwd, check=False)
    p = run(PYQEMU_IMG, *args, cwd=cwd, check=False)
    return q, p, p.stderr.replace("pyqemu-img", "qemu-img")


@pytest.fixture
def src(tmp_path):
    """A 64 MiB raw image with data in a few places."""
    run(QEMU_IMG, "create", "-q", "-f", "raw", "s.raw", "64M", cwd=tmp_path)
    run(QEMU_IO, "-f", "raw", "-c", "write -P 0xab 1M 3M", "-c", "write -P 0x11 20M 100k",
        "-c", "write -P 0x22 63M 1M", "s.raw", cwd=tmp_path)
    return tmp_path


@pytest.mark.parametrize("opts", [
    [], ["-c"], ["-c", "-o", "compression_type=zstd"],
    ["-o", "cluster_size=512,refcount_bits=1"], ["-o", "cluster_size=2M,refcount_bits=64"],
    ["-o", "compat=0.10"], ["-o", "lazy_refcounts=on"],
])
def test_convert_to_qcow2_is_accepted_by_qemu_img(src, opts):
    run(PYQEMU_IMG, "convert", "-O", "qcow2", *opts, "s.raw", "t.qcow2", cwd=src)
    assert run(QEMU_IMG, "check", "t.qcow2", cwd=src).returncode == 0
    assert "No errors were found" in run(QEMU_IMG, "check", "t.qcow2", cwd=src).stdout
    assert run(QEMU_IMG, "compare", "s.raw", "t.qcow2", cwd=src).returncode == 0
    for cmd in (["info", "--output=json"], ["check", "--output=json"], ["map", "--output=json"],
                ["map"], ["info"]):
        q, p, _ = both(*cmd, "t.qcow2", cwd=src)
        if cmd[0] == "info":  # disk usage depends on how the file system allocated blocks
            qj = q.stdout.replace(" ", "")
            pj = p.stdout.replace(" ", "")
            assert [ln for ln in qj.splitlines() if "size" not in ln or "virtual" in ln] == \
                   [ln for ln in pj.splitlines() if "size" not in ln or "virtual" in ln]
        else:
            assert p.stdout == q.stdout, cmd
        assert p.returncode == q.returncode


@pytest.mark.parametrize("opts", [[], ["-c"], ["-o", "cluster_size=4k"], ["-o", "compat=0.10"],
                                  ["-c", "-o", "compression_type=zstd"]])
def test_images_written_by_qemu_img_read_identically(src, opts):
    run(QEMU_IMG, "convert", "-O", "qcow2", *opts, "s.raw", "q.qcow2", cwd=src)
    run(PYQEMU_IMG, "convert", "-O", "raw", "q.qcow2", "back.raw", cwd=src)
    with open(src / "s.raw", "rb") as a, open(src / "back.raw", "rb") as b:
        assert a.read() == b.read()
    q, p, _ = both("check", "--output=json", "q.qcow2", cwd=src)
    assert json.loads(p.stdout) == json.loads(q.stdout)
    q, p, _ = both("map", "--output=json", "q.qcow2", cwd=src)
    assert p.stdout == q.stdout


def test_backing_chain_depth_3_map_and_compare(tmp_path):
    run(QEMU_IMG, "create", "-q", "-f", "raw", "b0.raw", "8M", cwd=tmp_path)
    run(QEMU_IO, "-f", "raw", "-c", "write -P 1 0 4M", "b0.raw", cwd=tmp_path)
    prev, pfmt = "b0.raw", "raw"
    for i in (1, 2, 3):
        run(PYQEMU_IMG, "create", "-q", "-f", "qcow2", "-b", prev, "-F", pfmt, "o%d.qcow2" % i, cwd=tmp_path)
        run(QEMU_IO, "-c", "write -P %d %dM 512k" % (i + 1, i), "-c", "write -z %dM 64k" % (i + 4),
            "o%d.qcow2" % i, cwd=tmp_path)
        prev, pfmt = "o%d.qcow2" % i, "qcow2"
    for cmd in (["map", "--output=json"], ["info", "--backing-chain", "--output=json"], ["check"]):
        q, p, _ = both(*cmd, "o3.qcow2", cwd=tmp_path)
        if cmd[0] == "info":
            strip = lambda s: [ln for ln in s.splitlines() if "actual-size" not in ln]
            assert strip(p.stdout) == strip(q.stdout)
        else:
            assert p.stdout == q.stdout
    run(PYQEMU_IMG, "convert", "-O", "qcow2", "o3.qcow2", "flat.qcow2", cwd=tmp_path)
    assert run(QEMU_IMG, "compare", "o3.qcow2", "flat.qcow2", cwd=tmp_path).returncode == 0
    assert run(PYQEMU_IMG, "compare", "o3.qcow2", "flat.qcow2", cwd=tmp_path).stdout == "Images are identical.\n"


def test_create_output_and_errors_match(tmp_path):
    for args in (["create", "-f", "qcow2", "a.qcow2", "1G"],
                 ["create", "-f", "qcow2", "-o", "cluster_size=4k,refcount_bits=1", "a.qcow2", "1M"],
                 ["create", "-f", "raw", "a.raw", "1M"],
                 ["create", "-f", "qcow2", "a.qcow2", "1x"],
                 ["create", "-f", "qcow2", "a.qcow2"],
                 ["create", "-f", "qcow2", "-o", "compat=0.10,refcount_bits=1", "a.qcow2", "1M"],
                 ["info", "nosuch"], ["check", "a.raw"]):
        q, p, perr = both(*args, cwd=tmp_path)
        assert (p.stdout, perr, p.returncode) == (q.stdout, q.stderr, q.returncode), args
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", "r.qcow2", "1G", cwd=tmp_path)
    run(PYQEMU_IMG, "create", "-q", "-f", "qcow2", "p.qcow2", "1G", cwd=tmp_path)
    with open(tmp_path / "r.qcow2", "rb") as a, open(tmp_path / "p.qcow2", "rb") as b:
        assert a.read() == b.read()  # the very same bytes as qemu-img creates


def test_compare_exit_codes(src):
    run(QEMU_IMG, "create", "-q", "-f", "raw", "z.raw", "64M", cwd=src)
    run(QEMU_IMG, "create", "-q", "-f", "raw", "small.raw", "32M", cwd=src)
    for args in (["s.raw", "z.raw"], ["z.raw", "small.raw"], ["-s", "z.raw", "small.raw"],
                 ["z.raw", "nosuch"]):
        q, p, perr = both("compare", *args, cwd=src)
        assert (p.stdout, perr, p.returncode) == (q.stdout, q.stderr, q.returncode), args


def test_check_finds_and_repairs_leaks(src):
    run(QEMU_IMG, "convert", "-O", "qcow2", "s.raw", "t.qcow2", cwd=src)
    # leak a cluster: raise the refcount of a free cluster by hand with qemu-io's raw access
    size = os.path.getsize(src / "t.qcow2")
    idx = (size + 65535) // 65536
    with open(src / "t.qcow2", "r+b") as f:
        f.truncate((idx + 1) * 65536)  # one more cluster, unused but counted as used
        f.seek(0x20000 + 2 * idx)
        f.write(b"\0\1")
    q, p, perr = both("check", "t.qcow2", cwd=src)
    assert (p.stdout, perr, p.returncode) == (q.stdout, q.stderr, q.returncode) and p.returncode == 3
    assert run(PYQEMU_IMG, "check", "-r", "leaks", "t.qcow2", cwd=src).returncode == 0
    assert run(QEMU_IMG, "check", "t.qcow2", cwd=src).returncode == 0


def test_locking_against_qemu_io(src):
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", "l.qcow2", "1M", cwd=src)
    holder = subprocess.Popen([QEMU_IO, "-c", "sleep 20000", "l.qcow2"], cwd=src,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20  # qemu-io takes its locks once it has started
        while True:
            p = run(PYQEMU_IMG, "info", "l.qcow2", cwd=src, check=False)
            if p.returncode != 0 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert p.returncode == 1
        assert p.stderr == ("pyqemu-img: Could not open 'l.qcow2': Failed to get shared \"write\" lock\n"
                            "Is another process using the image [l.qcow2]?\n")
        assert run(PYQEMU_IMG, "info", "-U", "l.qcow2", cwd=src).returncode == 0
    finally:
        holder.kill()
        holder.wait()
    # and the other way round: pyqemu holding the image for writing locks out qemu-img
    code = ("import sys,time; from pyqemu.block import open_image; n=open_image('l.qcow2', readonly=False);"
            "print('ready', flush=True); sys.stdin.readline()")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=src, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        q = run(QEMU_IMG, "check", "l.qcow2", cwd=src, check=False)
        assert q.returncode == 1 and 'Failed to get shared "write" lock' in q.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


@pytest.mark.parametrize("args", [["r.qcow2", "2M"], ["r.qcow2", "-1M"], ["r.qcow2", "+1M"],
                                  ["-f", "raw", "r.raw", "512k"], ["r.qcow2", "1x"], ["r.qcow2"]])
def test_resize_matches_qemu_img(tmp_path, args):
    results = []
    for tool in (QEMU_IMG, PYQEMU_IMG):
        for f in ("r.qcow2", "r.raw"):
            if os.path.exists(tmp_path / f):
                os.unlink(tmp_path / f)
        run(QEMU_IMG, "create", "-q", "-f", "qcow2", "r.qcow2", "1M", cwd=tmp_path)
        run(QEMU_IMG, "create", "-q", "-f", "raw", "r.raw", "1M", cwd=tmp_path)
        p = run(tool, "resize", *args, cwd=tmp_path, check=False)
        info = run(QEMU_IMG, "info", "--output=json", "r.qcow2", cwd=tmp_path).stdout
        results.append((p.stdout, p.stderr.replace("pyqemu-img", "qemu-img"), p.returncode,
                        json.loads(info)["virtual-size"]))
    assert results[0] == results[1]


def test_shrink_and_grow_keep_the_image_consistent(src):
    run(PYQEMU_IMG, "convert", "-O", "qcow2", "s.raw", "t.qcow2", cwd=src)
    run(PYQEMU_IMG, "resize", "--shrink", "t.qcow2", "1500k", cwd=src)
    run(PYQEMU_IMG, "resize", "t.qcow2", "64M", cwd=src)
    assert run(QEMU_IMG, "check", "t.qcow2", cwd=src).returncode == 0
    run(QEMU_IMG, "convert", "-O", "raw", "t.qcow2", "t.raw", cwd=src)
    with open(src / "s.raw", "rb") as a, open(src / "t.raw", "rb") as b:
        want, got = a.read(1500 * 1024), b.read()
    assert got[:len(want)] == want and got[len(want):] == bytes(len(got) - len(want))


def _read(path, n=None):
    with open(path, "rb") as f:
        return f.read() if n is None else f.read(n)


def test_snapshots_both_directions(tmp_path):
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", "sn.qcow2", "4M", cwd=tmp_path)
    run(QEMU_IO, "-c", "write -P 1 0 1M", "sn.qcow2", cwd=tmp_path)
    run(PYQEMU_IMG, "snapshot", "-c", "first", "sn.qcow2", cwd=tmp_path)
    assert run(QEMU_IMG, "check", "sn.qcow2", cwd=tmp_path).returncode == 0
    # pyqemu writes over shared clusters: copy-on-write of L2 tables and data
    code = ("from pyqemu.block import open_image\n"
            "with open_image('sn.qcow2', readonly=False) as n: n.pwrite(4096, b'\\2' * 70000)\n")
    run(sys.executable, "-c", code, cwd=tmp_path)
    assert run(QEMU_IMG, "check", "sn.qcow2", cwd=tmp_path).returncode == 0
    run(QEMU_IMG, "snapshot", "-c", "second snap", "sn.qcow2", cwd=tmp_path)
    for cmd in (["snapshot", "-l"], ["info"], ["info", "--output=json"], ["check", "--output=json"]):
        q, p, _ = both(*cmd, "sn.qcow2", cwd=tmp_path)
        if cmd[0] == "info":
            strip = lambda s: [ln for ln in s.splitlines() if "disk size" not in ln and "actual-size" not in ln]
            assert strip(p.stdout) == strip(q.stdout)
        else:
            assert p.stdout == q.stdout
    run(PYQEMU_IMG, "snapshot", "-a", "first", "sn.qcow2", cwd=tmp_path)
    assert run(QEMU_IMG, "check", "sn.qcow2", cwd=tmp_path).returncode == 0
    assert "read 1048576/1048576" in run(QEMU_IO, "-c", "read -P 1 0 1M", "sn.qcow2", cwd=tmp_path).stdout
    run(PYQEMU_IMG, "snapshot", "-d", "1", "sn.qcow2", cwd=tmp_path)
    run(QEMU_IMG, "snapshot", "-a", "second snap", "sn.qcow2", cwd=tmp_path)
    run(PYQEMU_IMG, "convert", "-O", "raw", "sn.qcow2", "now.raw", cwd=tmp_path)
    want = bytearray(b"\1" * (1 << 20))
    want[4096:4096 + 70000] = b"\2" * 70000
    assert _read(tmp_path / "now.raw", 1 << 20) == bytes(want)
    run(PYQEMU_IMG, "snapshot", "-d", "second snap", "sn.qcow2", cwd=tmp_path)
    assert run(QEMU_IMG, "check", "sn.qcow2", cwd=tmp_path).returncode == 0
    q, p, perr = both("snapshot", "-d", "nosuch", "sn.qcow2", cwd=tmp_path)
    assert (p.stdout, perr, p.returncode) == (q.stdout, q.stderr, q.returncode)
    q, p, perr = both("snapshot", "-a", "nosuch", "sn.qcow2", cwd=tmp_path)
    assert (p.stdout, perr, p.returncode) == (q.stdout, q.stderr, q.returncode)


@pytest.mark.parametrize("args", [
    ["-O", "qcow2", "s.raw"], ["-O", "qcow2", "--size", "1G"], ["--output=json", "-O", "qcow2", "t.qcow2"],
    ["-O", "raw", "t.qcow2"], ["--output=json", "-O", "raw", "--size", "1G"],
    ["-O", "qcow2", "-o", "cluster_size=4k,refcount_bits=1", "--size", "3G"], [],
    ["--size", "1G", "s.raw"], ["-O", "qcow2", "-o", "cluster_size=2M,refcount_bits=64", "--size", "100T"],
    ["--output=json", "-O", "qcow2", "-o", "compat=0.10,cluster_size=512", "t.qcow2"],
])
def test_measure_matches_qemu_img(src, args):
    run(QEMU_IMG, "convert", "-c", "-O", "qcow2", "s.raw", "t.qcow2", cwd=src)
    q, p, perr = both("measure", *args, cwd=src)
    assert (p.stdout, perr, p.returncode) == (q.stdout, q.stderr, q.returncode)


def _chain(d):
    run(QEMU_IMG, "create", "-q", "-f", "raw", "b1.raw", "4M", cwd=d)
    run(QEMU_IO, "-f", "raw", "-c", "write -P 1 0 4M", "b1.raw", cwd=d)
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", "-b", "b1.raw", "-F", "raw", "o1.qcow2", cwd=d)
    run(QEMU_IO, "-c", "write -P 2 1M 1M", "o1.qcow2", cwd=d)
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", "-b", "o1.qcow2", "-F", "qcow2", "o2.qcow2", cwd=d)
    run(QEMU_IO, "-c", "write -P 3 3M 64k", "-c", "write -z 0 64k", "o2.qcow2", cwd=d)
    run(QEMU_IMG, "convert", "-O", "raw", "o2.qcow2", "want.raw", cwd=d)


def test_safe_and_unsafe_rebase(tmp_path):
    _chain(tmp_path)
    run(QEMU_IMG, "create", "-q", "-f", "raw", "new.raw", "4M", cwd=tmp_path)
    run(QEMU_IO, "-f", "raw", "-c", "write -P 9 2M 512k", "new.raw", cwd=tmp_path)
    run(PYQEMU_IMG, "rebase", "-b", "new.raw", "-F", "raw", "o2.qcow2", cwd=tmp_path)
    assert run(QEMU_IMG, "check", "o2.qcow2", cwd=tmp_path).returncode == 0
    info = json.loads(run(QEMU_IMG, "info", "--output=json", "o2.qcow2", cwd=tmp_path).stdout)
    assert (info["backing-filename"], info["backing-filename-format"]) == ("new.raw", "raw")
    assert run(QEMU_IMG, "compare", "want.raw", "o2.qcow2", cwd=tmp_path).returncode == 0
    run(PYQEMU_IMG, "rebase", "-u", "-b", "", "o2.qcow2", cwd=tmp_path)
    assert "backing-filename" not in run(QEMU_IMG, "info", "--output=json", "o2.qcow2", cwd=tmp_path).stdout
    for args in (["rebase", "o2.qcow2"], ["rebase", "-b", "x", "o2.qcow2"],
                 ["rebase", "-b", "nosuch", "-F", "raw", "o2.qcow2"]):
        q, p, perr = both(*args, cwd=tmp_path)
        assert (perr, p.returncode) == (q.stderr, q.returncode), args


@pytest.mark.parametrize("args", [[], ["-b", "b1.raw"], ["-d"]])
def test_commit(tmp_path, args):
    _chain(tmp_path)
    p = run(PYQEMU_IMG, "commit", *args, "o2.qcow2", cwd=tmp_path)
    assert p.stdout == "Image committed.\n"
    for img in ("o1.qcow2", "o2.qcow2"):
        assert run(QEMU_IMG, "check", img, cwd=tmp_path).returncode == 0
    assert run(QEMU_IMG, "compare", "want.raw", "o2.qcow2", cwd=tmp_path).returncode == 0
    base = ["-F", "raw", "b1.raw"] if args[:1] == ["-b"] else ["o1.qcow2"]
    assert run(QEMU_IMG, "compare", "-f", "raw", "want.raw", *base, cwd=tmp_path).returncode == 0
    if not args:  # emptied: nothing allocated in the top image any more
        m = json.loads(run(QEMU_IMG, "map", "--output=json", "o2.qcow2", cwd=tmp_path).stdout)
        assert all(e["depth"] > 0 for e in m)


@pytest.mark.parametrize("mode", ["metadata", "falloc", "full"])
def test_qcow2_preallocation(tmp_path, mode):
    run(PYQEMU_IMG, "create", "-q", "-f", "qcow2", "-o", "preallocation=" + mode, "p.qcow2", "3M", cwd=tmp_path)
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", "-o", "preallocation=" + mode, "q.qcow2", "3M", cwd=tmp_path)
    assert run(QEMU_IMG, "check", "p.qcow2", cwd=tmp_path).returncode == 0
    assert os.path.getsize(tmp_path / "p.qcow2") == os.path.getsize(tmp_path / "q.qcow2")
    q = run(QEMU_IMG, "map", "--output=json", "q.qcow2", cwd=tmp_path).stdout
    assert run(QEMU_IMG, "map", "--output=json", "p.qcow2", cwd=tmp_path).stdout == q
    assert run(PYQEMU_IMG, "map", "--output=json", "q.qcow2", cwd=tmp_path).stdout == q
    if mode == "metadata":
        assert _read(tmp_path / "p.qcow2") == _read(tmp_path / "q.qcow2")
    run(PYQEMU_IMG, "resize", "--preallocation=" + mode, "p.qcow2", "5M", cwd=tmp_path)
    assert run(QEMU_IMG, "check", "p.qcow2", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("args", [
    ["if=s.raw", "of=dd.qcow2", "-O", "qcow2", "bs=1M", "count=3", "skip=1"], ["if=s.raw", "of=dd.raw", "bs=1x"],
    ["if=s.raw"], ["if=s.raw", "of=dd.raw", "bs=4k", "skip=100"], ["if=s.raw", "of=dd.raw", "count=5"],
    ["if=nosuch", "of=dd.raw"], ["if=s.raw", "of=dd.raw", "bs=64k", "skip=20", "count=400"],
])
def test_dd_matches_qemu_img(src, args):
    outs = []
    for tool in (QEMU_IMG, PYQEMU_IMG):
        for f in ("dd.qcow2", "dd.raw", "back.raw"):
            if os.path.exists(src / f):
                os.unlink(src / f)
        p = run(tool, "dd", *args, cwd=src, check=False)
        made = [f for f in ("dd.qcow2", "dd.raw") if os.path.exists(src / f)]
        content = None
        if made:
            run(QEMU_IMG, "convert", "-O", "raw", made[0], "back.raw", cwd=src)
            content = _read(src / "back.raw")
        outs.append((p.stdout, p.stderr.replace("pyqemu-img", "qemu-img"), p.returncode, content))
    assert outs[0] == outs[1]


def test_bench_runs_reads_and_writes(src):
    p = run(PYQEMU_IMG, "bench", "-c", "200", "-d", "2", "-o", "4096", "-S", "8192", "s.raw", cwd=src)
    q = run(QEMU_IMG, "bench", "-c", "200", "-d", "2", "-o", "4096", "-S", "8192", "s.raw", cwd=src)
    assert p.stdout.splitlines()[0] == q.stdout.splitlines()[0]
    assert p.stdout.splitlines()[1].startswith("Run completed in ")
    run(PYQEMU_IMG, "bench", "-w", "--pattern=0x5a", "-c", "16", "-s", "64k", "-f", "raw", "s.raw", cwd=src)
    assert _read(src / "s.raw", 1 << 20) == b"\x5a" * (1 << 20)


def test_amend_sequence_keeps_content_and_consistency(src):
    run(QEMU_IMG, "convert", "-O", "qcow2", "s.raw", "am.qcow2", cwd=src)
    run(QEMU_IO, "-c", "write -z 1M 64k", "-c", "write -z 100k 64k", "am.qcow2", cwd=src)
    run(QEMU_IMG, "convert", "-O", "raw", "am.qcow2", "want.raw", cwd=src)
    for o, field, value in (("compat=0.10", "compat", "0.10"), ("compat=1.1,lazy_refcounts=on", "lazy-refcounts", True),
                            ("refcount_bits=8", "refcount-bits", 8), ("refcount_bits=1", "refcount-bits", 1),
                            ("refcount_bits=64", "refcount-bits", 64), ("lazy_refcounts=off", "lazy-refcounts", False)):
        run(PYQEMU_IMG, "amend", "-o", o, "am.qcow2", cwd=src)
        assert run(QEMU_IMG, "check", "am.qcow2", cwd=src).returncode == 0, o
        assert run(QEMU_IMG, "compare", "want.raw", "am.qcow2", cwd=src).returncode == 0, o
        info = json.loads(run(QEMU_IMG, "info", "--output=json", "am.qcow2", cwd=src).stdout)
        assert info["format-specific"]["data"][field] == value, o
    for args in (["-o", "cluster_size=4k", "am.qcow2"], ["am.qcow2"], ["-o", "foo=1", "am.qcow2"],
                 ["-o", "compat=0.10,refcount_bits=8", "am.qcow2"], ["-f", "raw", "-o", "size=1M", "s.raw"]):
        q, p, perr = both("amend", *args, cwd=src)
        assert (p.stdout, perr, p.returncode) == (q.stdout, q.stderr, q.returncode), args


def test_extended_l2_both_directions(tmp_path):
    run(QEMU_IMG, "create", "-q", "-f", "raw", "eb.raw", "4M", cwd=tmp_path)
    run(QEMU_IO, "-f", "raw", "-c", "write -P 7 0 4M", "eb.raw", cwd=tmp_path)
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", "-b", "eb.raw", "-F", "raw", "e.qcow2",
        cwd=tmp_path)
    run(QEMU_IO, "-c", "write -P 1 4k 8k", "-c", "write -P 2 70k 3k", "-c", "write -z 200k 100k",
        "-c", "write -z -u 1M 64k", "-c", "discard 512k 64k", "-c", "write -P 3 2M 64k", "e.qcow2", cwd=tmp_path)
    for cmd in (["map", "--output=json"], ["info", "--output=json"], ["check", "--output=json"]):
        q, p, _ = both(*cmd, "e.qcow2", cwd=tmp_path)
        assert p.stdout == q.stdout, cmd
    run(QEMU_IMG, "convert", "-O", "raw", "e.qcow2", "want.raw", cwd=tmp_path)
    run(PYQEMU_IMG, "convert", "-O", "raw", "e.qcow2", "got.raw", cwd=tmp_path)
    assert _read(tmp_path / "want.raw") == _read(tmp_path / "got.raw")
    # pyqemu writes into subclustered clusters: whole clusters are rewritten from what the guest sees
    code = ("from pyqemu.block import open_image\n"
            "with open_image('e.qcow2', readonly=False) as n:\n"
            "    n.pwrite(5000, b'x' * 100); n.pwrite(204810, b'y' * 10)\n"
            "    n.pwrite_zeroes(2 << 20, 65536, may_unmap=True); n.pwrite(3 << 20, b'z' * 200000)\n")
    run(sys.executable, "-c", code, cwd=tmp_path)
    run(QEMU_IO, "-f", "raw", "-c", "write -P 0x78 5000 100", "-c", "write -P 0x79 204810 10",
        "-c", "write -z 2M 64k", "-c", "write -P 0x7a 3M 200000", "want.raw", cwd=tmp_path)
    assert run(QEMU_IMG, "check", "e.qcow2", cwd=tmp_path).returncode == 0
    assert run(QEMU_IMG, "compare", "want.raw", "e.qcow2", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("opts", ["extended_l2=on", "extended_l2=on,cluster_size=2M",
                                  "extended_l2=on,preallocation=metadata"])
def test_extended_l2_images_written_by_pyqemu(src, opts):
    if "preallocation" in opts:
        run(PYQEMU_IMG, "create", "-q", "-f", "qcow2", "-o", opts, "x.qcow2", "64M", cwd=src)
        run(PYQEMU_IMG, "convert", "-n", "-O", "qcow2", "s.raw", "x.qcow2", cwd=src)
    else:
        run(PYQEMU_IMG, "convert", "-O", "qcow2", "-o", opts, "s.raw", "x.qcow2", cwd=src)
    assert run(QEMU_IMG, "check", "x.qcow2", cwd=src).returncode == 0
    assert run(QEMU_IMG, "compare", "s.raw", "x.qcow2", cwd=src).returncode == 0
    q, p, _ = both("map", "--output=json", "x.qcow2", cwd=src)
    assert p.stdout == q.stdout


def test_external_data_file(src):
    run(PYQEMU_IMG, "create", "-q", "-f", "qcow2", "-o", "data_file=d1.raw", "d1.qcow2", "4M", cwd=src)
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", "-o", "data_file=d2.raw", "d2.qcow2", "4M", cwd=src)
    h1, h2 = _read(src / "d1.qcow2"), _read(src / "d2.qcow2")
    assert h1 == h2.replace(b"d2.raw", b"d1.raw")  # the same layout as qemu-img's
    for img in ("d1.qcow2", "d2.qcow2"):
        run(QEMU_IO, "-c", "write -P 1 1M 64k", "-c", "write -P 2 3M 4k", "-c", "write -z 0 64k", img, cwd=src)
    for cmd in (["map", "--output=json"], ["map"], ["info"], ["check", "--output=json"]):
        q, p, _ = both(*cmd, "d2.qcow2", cwd=src)
        assert p.stdout == q.stdout, cmd
    code = ("from pyqemu.block import open_image\n"
            "with open_image('d1.qcow2', readonly=False) as n:\n"
            "    n.pwrite(2 << 20, b'w' * 100000); n.pwrite(1 << 20, b'v' * 10)\n")
    run(sys.executable, "-c", code, cwd=src)
    run(QEMU_IO, "-c", "write -P 0x77 2M 100000", "-c", "write -P 0x76 1M 10", "d2.qcow2", cwd=src)
    assert run(QEMU_IMG, "check", "d1.qcow2", cwd=src).returncode == 0
    assert run(QEMU_IMG, "compare", "d1.qcow2", "d2.qcow2", cwd=src).returncode == 0
    # data_file_raw: the data file is itself a raw image of the disk
    run(PYQEMU_IMG, "convert", "-O", "qcow2", "-o", "data_file=d3.raw,data_file_raw=on", "s.raw", "d3.qcow2",
        cwd=src)
    assert run(QEMU_IMG, "check", "d3.qcow2", cwd=src).returncode == 0
    assert _read(src / "d3.raw") == _read(src / "s.raw")
    q, p, _ = both("map", "--output=json", "d3.qcow2", cwd=src)
    assert p.stdout == q.stdout
    for args in (["snapshot", "-c", "s", "d2.qcow2"],
                 ["create", "-f", "qcow2", "-b", "s.raw", "-F", "raw", "-o", "data_file=x.raw,data_file_raw=on",
                  "x.qcow2", "1M"]):
        q, p, perr = both(*args, cwd=src)
        assert (perr, p.returncode) == (q.stderr, q.returncode), args


@pytest.mark.parametrize("param", ["s1", "1", "snapshot.name=s1", "snapshot.id=1", "nosuch", "snapshot.foo=1"])
def test_convert_from_a_snapshot(tmp_path, param):
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", "sl.qcow2", "4M", cwd=tmp_path)
    run(QEMU_IO, "-c", "write -P 1 0 1M", "sl.qcow2", cwd=tmp_path)
    run(QEMU_IMG, "snapshot", "-c", "s1", "sl.qcow2", cwd=tmp_path)
    run(QEMU_IO, "-c", "write -P 2 0 64k", "sl.qcow2", cwd=tmp_path)
    results = []
    for tool, out in ((QEMU_IMG, "q.raw"), (PYQEMU_IMG, "p.raw")):
        r = run(tool, "convert", "-l", param, "-O", "raw", "sl.qcow2", out, cwd=tmp_path, check=False)
        data = _read(tmp_path / out) if os.path.exists(tmp_path / out) else None
        results.append((r.stderr.replace("pyqemu-img", "qemu-img"), r.returncode, data))
    assert results[0] == results[1]


@pytest.mark.parametrize("mode", ["leaks", "all"])
def test_check_repair_output_matches(tmp_path, mode):
    def damaged(name):
        run(QEMU_IMG, "create", "-q", "-f", "qcow2", name, "4M", cwd=tmp_path)
        run(QEMU_IO, "-c", "write -P 1 0 256k", name, cwd=tmp_path)
        with open(tmp_path / name, "r+b") as f:
            f.seek(0x20000 + 2 * 3)
            f.write(b"\0\3")  # leaked reference
            f.seek(0x20000 + 2 * 20)
            f.write(b"\0\2")  # leaked cluster
            if mode == "all":
                f.seek(0x20000 + 2 * 6)
                f.write(b"\0\0")  # lost refcount: QEMU rebuilds the refcount structure
            f.truncate(21 * 65536)
    damaged("a.qcow2")
    damaged("b.qcow2")
    q = run(QEMU_IMG, "check", "-r", mode, "a.qcow2", cwd=tmp_path, check=False)
    p = run(PYQEMU_IMG, "check", "-r", mode, "b.qcow2", cwd=tmp_path, check=False)
    assert (p.stdout, p.stderr, p.returncode) == (q.stdout, q.stderr, q.returncode)
    if mode == "all":
        assert run(QEMU_IMG, "check", "b.qcow2", cwd=tmp_path).returncode == 0


def test_version_and_usage_errors(tmp_path):
    p = run(PYQEMU_IMG, "--version", cwd=tmp_path)
    assert p.stdout.splitlines() == ["pyqemu-img version 7.2.0 (pyqemu 0.1.0)",
                                     "Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers"]
    for args in ([], ["nosuchcmd"], ["info"], ["check", "--output=xml", "x"]):
        q, p, perr = both(*args, cwd=tmp_path)
        assert (perr, p.returncode) == (q.stderr, q.returncode), args


def test_raw_files_are_seen_in_whole_sectors(tmp_path):
    (tmp_path / "tiny.raw").write_bytes(b"abc")
    run(QEMU_IMG, "create", "-q", "-f", "raw", "r5.raw", "1000", cwd=tmp_path)
    assert os.path.getsize(tmp_path / "r5.raw") == 1024
    for args in (["info", "--output=json", "-f", "raw", "tiny.raw"], ["map", "--output=json", "-f", "raw", "tiny.raw"],
                 ["info", "--image-opts", "driver=raw,offset=100,size=1000,file.filename=r5.raw"],
                 ["info", "--image-opts", "driver=raw,offset=2000,file.filename=r5.raw"],
                 ["info", "--image-opts", "driver=raw,offset=0,size=1000,file.filename=r5.raw"]):
        q, p, perr = both(*args, cwd=tmp_path)
        assert (p.stdout, perr, p.returncode) == (q.stdout, q.stderr, q.returncode), args
    run(PYQEMU_IMG, "create", "-q", "-f", "raw", "p5.raw", "1000", cwd=tmp_path)
    assert os.path.getsize(tmp_path / "p5.raw") == 1024
    run(PYQEMU_IMG, "convert", "-f", "raw", "-O", "raw", "tiny.raw", "t.raw", cwd=tmp_path)
    assert _read(tmp_path / "t.raw") == b"abc" + bytes(509)
