"""vhdx create, writes through the log, and log replay against qemu-img/qemu-io 7.2.

Crashes are real: qemu-io is killed with SIGKILL at its N-th fdatasync by a
small LD_PRELOAD library built here with gcc, and pyqemu is killed the same
way at its N-th flush, so the images hold whatever log each left behind.
"""
from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys

import pytest
from conftest import PYQEMU_IMG, QEMU_IMG, QEMU_IO, both, run

from pyqemu.block import open_image

pytestmark = pytest.mark.slow


def _normalised(path) -> bytes:
    """The image without what QEMU fills randomly: creator version, header GUIDs/sequence/CRC, page 83."""
    b = bytearray(path.read_bytes())
    b[8:8 + 64] = bytes(64)
    for off in (64 << 10, 128 << 10):
        b[off + 4:off + 48] = bytes(44)
    meta_off = struct.unpack_from("<Q", b, (192 << 10) + 16 + 32 + 16)[0]
    b[meta_off + 65536 + 16:meta_off + 65536 + 32] = bytes(16)
    return bytes(b)


@pytest.mark.parametrize("size,opts", [
    ("10M", ""), ("10M", "subformat=fixed"), ("10M", "subformat=fixed,block_state_zero=off"),
    ("20M", "block_size=1M,log_size=2M,block_state_zero=off"), ("1000", "subformat=fixed"),
    ("0", ""), ("3000M", "block_size=1M"), ("2G", ""), ("101G", ""),
    ("70M", "subformat=fixed,block_size=32M,block_state_zero=off"),
    ("10M", "log_size=1.5M,block_size=1.5M"), ("10M", "block_size=300M"),
    ("10M", "nocow=on,preallocation=full,extent_size_hint=1M")])
def test_create_is_byte_identical(tmp_path, size, opts):
    o = ["-o", opts] if opts else []
    q = run(QEMU_IMG, "create", "-f", "vhdx", *o, "img.q", size, cwd=tmp_path)
    p = run(PYQEMU_IMG, "create", "-f", "vhdx", *o, "img.p", size, cwd=tmp_path)
    assert p.stdout.replace("img.p", "img.q") == q.stdout
    assert _normalised(tmp_path / "img.p") == _normalised(tmp_path / "img.q")
    assert "No errors" in run(QEMU_IMG, "check", "img.p", cwd=tmp_path).stdout
    q, p, _ = both("info", "--output=json", "img.p", cwd=tmp_path)
    assert p.stdout.split('"actual-size"')[0] == q.stdout.split('"actual-size"')[0]


@pytest.mark.parametrize("size,opts", [
    ("10M", "log_size=0"), ("10M", "block_size=3M"), ("10M", "subformat=foo"),
    ("10M", "subformat=differencing"), ("10M", "block_state_zero=maybe"), ("65T", ""),
    ("65T", "log_size=0"), ("10M", "log_size=4G"), ("10M", "log_size=abc"), ("10M", "foo=bar"),
    ("10M", "preallocation=bogus"), ("10M", "preallocation=metadata"), ("10M", "block_size=-1")])
def test_create_errors_match(tmp_path, size, opts):
    o = ["-o", opts] if opts else []
    q, p, err = both("create", "-f", "vhdx", *o, "x.vhdx", size, cwd=tmp_path)
    assert (p.returncode, p.stdout, err) == (q.returncode, q.stdout, q.stderr)


@pytest.mark.parametrize("opts", ["subformat=dynamic", "subformat=fixed,block_size=1M",
                                  "block_state_zero=off,block_size=2M"])
def test_convert_both_ways(src, opts):
    run(PYQEMU_IMG, "convert", "-O", "vhdx", "-o", opts, "s.raw", "p.vhdx", cwd=src)
    assert "No errors" in run(QEMU_IMG, "check", "p.vhdx", cwd=src).stdout
    assert run(QEMU_IMG, "compare", "s.raw", "p.vhdx", cwd=src).returncode == 0
    run(QEMU_IMG, "convert", "-O", "raw", "p.vhdx", "back.raw", cwd=src)
    assert (src / "back.raw").read_bytes() == (src / "s.raw").read_bytes()
    run(QEMU_IMG, "convert", "-O", "vhdx", "-o", opts, "s.raw", "q.vhdx", cwd=src)
    for cmd in (["info", "--output=json"], ["map", "--output=json"]):
        q, p, _ = both(*cmd, "q.vhdx", cwd=src)
        p2, _q2, _ = both(*cmd, "p.vhdx", cwd=src)
        assert p.stdout.split('"actual-size"')[0] == q.stdout.split('"actual-size"')[0]
        assert p2.stdout.replace("p.vhdx", "q.vhdx").split('"actual-size"')[0] == \
            q.stdout.split('"actual-size"')[0]


KILL_SHIM = r"""
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <stdatomic.h>
static atomic_int calls;
static void maybe_die(void) {
    const char *e = getenv("KILL_AT_SYNC");
    int n = e ? atoi(e) : 0;
    if (n > 0 && atomic_fetch_add(&calls, 1) + 1 == n) kill(getpid(), SIGKILL);
}
int fdatasync(int fd) { maybe_die(); return syscall(SYS_fdatasync, fd); }
int fsync(int fd) { maybe_die(); return syscall(SYS_fsync, fd); }
"""


@pytest.fixture
def shim(tmp_path):
    (tmp_path / "shim.c").write_text(KILL_SHIM)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", "shim.so", "shim.c"], cwd=tmp_path,
                   check=True, timeout=120)
    return str(tmp_path / "shim.so")


def _qemu_io_killed(tmp_path, shim, name, n):
    run(QEMU_IMG, "create", "-q", "-f", "vhdx", name, "100M", cwd=tmp_path)
    env = dict(os.environ, KILL_AT_SYNC=str(n), LD_PRELOAD=shim)
    r = subprocess.run([QEMU_IO, "-c", "write -P 5 0 64k", "-c", "write -P 6 50M 64k", name],
                       cwd=tmp_path, env=env, capture_output=True, timeout=120)
    return r.returncode


def _has_log(path) -> bool:
    b = path.read_bytes()[:192 << 10]
    best = max((struct.unpack_from("<Q", b, off + 8)[0], off) for off in (64 << 10, 128 << 10))
    return any(b[best[1] + 48:best[1] + 64])


def test_logs_qemu_left_behind_are_replayed(tmp_path, shim):
    """Kill real qemu-io at every flush of two allocating writes; pyqemu replays what it left."""
    dirty = 0
    for n in range(1, 40):
        name = "k%d.vhdx" % n
        rc = _qemu_io_killed(tmp_path, shim, name, n)
        if rc == 0:
            break
        assert rc == -signal.SIGKILL
        img = tmp_path / name
        (tmp_path / "q.vhdx").write_bytes(img.read_bytes())
        q, p, err = both("info", name, cwd=tmp_path)
        assert (p.returncode, err) == (q.returncode, q.stderr), n
        q = run(QEMU_IMG, "check", "-r", "all", "q.vhdx", cwd=tmp_path, check=False)
        p = run(PYQEMU_IMG, "check", "-r", "all", name, cwd=tmp_path, check=False)
        assert (p.returncode, p.stdout) == (q.returncode, q.stdout), n
        dirty += "corruptions" in q.stdout
        assert _has_log(img) == _has_log(tmp_path / "q.vhdx"), n
        assert run(QEMU_IMG, "compare", "q.vhdx", name, cwd=tmp_path).returncode == 0, n
        assert "No errors" in run(QEMU_IMG, "check", name, cwd=tmp_path).stdout
    else:
        raise AssertionError("qemu-io never finished")
    assert dirty >= 2   # at least one log per allocating write was left to replay


CHILD = r"""
import os, signal, sys
from pyqemu.block import open_image
from pyqemu.block.file import FileNode
limit = int(sys.argv[2])
calls = [0]
orig = FileNode.flush
def flush(self):
    calls[0] += 1
    if calls[0] == limit:
        os.kill(os.getpid(), signal.SIGKILL)
    orig(self)
FileNode.flush = flush
node = open_image(sys.argv[1], "vhdx", readonly=False)
node.pwrite(0, b"\x05" * 65536)
node.pwrite(50 << 20, b"\x06" * 65536)
node.close()
"""


def test_pyqemu_killed_at_every_flush_leaves_images_qemu_repairs(tmp_path):
    (tmp_path / "child.py").write_text(CHILD)
    dirty = 0
    for n in range(1, 60):
        name = "c%d.vhdx" % n
        run(PYQEMU_IMG, "create", "-q", "-f", "vhdx", name, "100M", cwd=tmp_path)
        r = subprocess.run([sys.executable, "child.py", name, str(n)], cwd=tmp_path,
                           capture_output=True, timeout=120)
        if r.returncode == 0:
            break
        assert r.returncode == -signal.SIGKILL, r.stderr
        img = tmp_path / name
        dirty += _has_log(img)
        mine = tmp_path / ("m%d.vhdx" % n)
        mine.write_bytes(img.read_bytes())
        out = run(QEMU_IMG, "check", "-r", "all", name, cwd=tmp_path).stdout
        assert "No errors" in out
        first = run(QEMU_IO, "-r", "-c", "read -P 5 0 64k", name, cwd=tmp_path, check=False).stdout
        second = run(QEMU_IO, "-r", "-c", "read -P 6 50M 64k", name, cwd=tmp_path, check=False).stdout
        if "failed" not in second:
            assert "failed" not in first, n     # writes land in order
        with open_image(str(mine), "vhdx", readonly=False) as node:   # pyqemu's own replay
            pass
        assert run(QEMU_IMG, "compare", name, str(mine), cwd=tmp_path).returncode == 0, n
    else:
        raise AssertionError("the child never finished")
    assert dirty >= 2
    with open_image(str(tmp_path / name)) as node:
        assert node.pread(0, 65536) == b"\x05" * 65536
        assert node.pread(50 << 20, 65536) == b"\x06" * 65536
