"""kill -9 pyqemu-io at every write and flush of allocating writes, for each format with metadata.

After each crash: the image opens in real qemu-img and in pyqemu; `qemu-img
check` finds no corruption (leaks at most, which `pyqemu-img check -r`
repairs) where the format has a check; the data of every write completed
before the last completed flush reads back exactly; everything else reads
either as it was (zeroes) or as the write in progress left it, byte by byte,
and nothing lands outside the written ranges.
"""
from __future__ import annotations

import shutil

import pytest
from conftest import PYQEMU_IMG, QEMU_IMG, QEMU_IO, run
from crashkit import flushed_writes, pattern_ranges, run_killed, started_writes

from pyqemu.block import open_image

pytestmark = pytest.mark.slow

SIZE = 16 << 20
# allocating writes in ascending order (streamOptimized vmdk accepts nothing else):
# cluster-aligned, unaligned, crossing cluster and block boundaries
COMMANDS = ["write -P 1 0 8192", "flush",
            "write -P 2 1049088 5000", "write -P 3 2096640 4096", "flush",
            "write -P 4 5000000 3000", "write -P 5 9437184 8192", "flush",
            "write -P 6 15728640 4096"]

# image name -> (create options, whether qemu-img 7.2 has a check for it)
FORMATS = {
    "qcow": ("", False), "qed": ("", True), "vdi": ("", True), "vpc": ("", False),
    "vmdk": ("", True), "vmdk-stream": ("subformat=streamOptimized", True),
    "parallels": ("", True),
}
# vhdx has its own crash tests (pyqemu and real qemu-io killed at every flush, logs replayed
# both ways) in test_vhdx_create_peer.py


def _fmt(name: str) -> str:
    return name.split("-")[0]


def _check_consistent(cwd, fmt: str, has_check: bool) -> None:
    """No corruption; what a crash may leave is repaired by `check -r` as QEMU repairs it."""
    if not has_check:
        return
    r = run(QEMU_IMG, "check", "-f", fmt, "img", cwd=cwd, check=False)
    if r.returncode == 0:
        return
    tool, mode = PYQEMU_IMG, "leaks"
    if fmt == "parallels" and r.returncode == 2:
        # the in-use flag of an image open read-write (a crash always leaves it) and data
        # appended before its BAT entry: QEMU's answer is `check -r all` (pyqemu-img
        # cannot open in-use images for repair yet)
        for line in r.stderr.splitlines():
            assert line in ("ERROR image was not closed correctly",
                            "ERROR space leaked at the end of the image %s" % line.split()[-1]), r.stderr
        tool, mode = QEMU_IMG, "all"
    else:
        assert r.returncode == 3, r.stdout + r.stderr      # leaked clusters at most
    shutil.copy(cwd / "img", cwd / "img-q")
    q = run(QEMU_IMG, "check", "-r", mode, "-f", fmt, "img-q", cwd=cwd, check=False)
    p = run(tool, "check", "-r", mode, "-f", fmt, "img", cwd=cwd, check=False)
    assert (p.returncode, p.stdout) == (q.returncode, q.stdout)
    after = run(QEMU_IMG, "check", "-f", fmt, "img", cwd=cwd, check=False)
    assert after.returncode in (0, 3) and "corrupt" not in after.stdout, after.stdout + after.stderr


def _check_data(cwd, fmt: str, flushed, started) -> None:
    run(QEMU_IMG, "convert", "-f", fmt, "-O", "raw", "img", "q.raw", cwd=cwd)
    disk = (cwd / "q.raw").read_bytes()
    with open_image(str(cwd / "img"), fmt) as node:     # in-process: a pyqemu-img run per kill costs
        assert node.pread(0, node.length()) == disk     # both tools read the crash alike
    assert len(disk) >= SIZE
    if flushed:
        args = []
        for p, off, n in pattern_ranges(flushed):
            args += ["-c", "read -P %d %d %d" % (p, off, n)]
        r = run(QEMU_IO, "-r", "-f", fmt, *args, "img", cwd=cwd, check=False)
        assert "failed" not in r.stdout + r.stderr and "Pattern verification" not in r.stdout, r.stdout
    rest = bytearray(disk)
    for p, off, n in pattern_ranges(started):
        piece = disk[off:off + n]
        assert not piece.translate(None, bytes([0, p])), (p, off)   # old (zero) or new bytes only
        rest[off:off + n] = bytes(n)
    assert not any(rest)                                            # nothing written elsewhere


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_kill_at_every_write_and_flush(tmp_path, name):
    fmt = _fmt(name)
    opts, has_check = FORMATS[name]
    o = ["-o", opts] if opts else []
    run(QEMU_IMG, "create", "-q", "-f", fmt, *o, "fresh", str(SIZE), cwd=tmp_path)
    fresh = (tmp_path / "fresh").read_bytes()
    for n in range(1, 400):
        (tmp_path / "img").write_bytes(fresh)
        crash = run_killed(tmp_path, ["-f", fmt, "img"], COMMANDS, n)
        _check_consistent(tmp_path, fmt, has_check)
        _check_data(tmp_path, fmt, flushed_writes(COMMANDS, crash), started_writes(COMMANDS, crash))
        if not crash.killed:
            assert crash.completed == len(COMMANDS)
            break
    else:
        raise AssertionError("pyqemu-io was still killed after 400 file calls")
    assert n > len(COMMANDS)    # every request and flush was a kill point at least once
