"""Read-only commands fed crafted system files (in a private mount namespace)."""
import os
import shutil
import struct

import pytest

from qgaclient import PYQEMU_GA, QEMU_GA, Agent

# struct utmp on x86-64 glibc (384 bytes)
UTMP = struct.Struct("<h2xi32s4s32s256shhiii4i20s")


def _utmp_record(kind, user, line, sec, usec, pid=100):
    return UTMP.pack(kind, pid, line.encode(), b"", user.encode(), b"host", 0, 0, 0,
                     sec, usec, 0, 0, 0, 0, b"")


def _run_both(tmp_path, binds, requests):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.fail("needs root and unshare")
    out = []
    for prog, d in ((QEMU_GA, "real"), (PYQEMU_GA, "ours")):
        w = tmp_path / d
        w.mkdir()
        # /run is a private tmpfs, so files can be put there without touching the host
        mounts = "mount -t tmpfs none /run; " + "; ".join(
            'touch "%s"; mount --bind "%s" "%s"' % (dst, src, dst) for src, dst in binds)
        wrapper = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                   'set -e; %s; exec "$@"' % mounts, "sandbox"]
        a = Agent(prog, w, wrapper=wrapper)
        try:
            c = a.connect()
            out.append([c.cmd(r) for r in requests])
        finally:
            a.stop()
    return out


def test_get_users_from_utmp(tmp_path):
    utmp = tmp_path / "utmp"
    utmp.write_bytes(b"".join([
        _utmp_record(2, "reboot", "~", 1700000000, 0),           # BOOT_TIME: not a user
        _utmp_record(7, "alice", "pts/1", 1700000500, 250000),
        _utmp_record(7, "bob", "pts/2", 1700000100, 5),
        _utmp_record(7, "alice", "pts/3", 1700000200, 500000),    # earlier login wins
        _utmp_record(8, "carol", "pts/4", 1700000300, 0),         # DEAD_PROCESS
    ]))
    real, ours = _run_both(tmp_path, [(utmp, "/run/utmp")], ["guest-get-users"])
    assert ours == real
    assert b'"alice"' in real[0] and b'"carol"' not in real[0]


def test_osinfo_from_os_release(tmp_path):
    rel = tmp_path / "os-release"
    rel.write_text('NAME=two words\nPRETTY_NAME=\'sq two\'\nID="dq two"\nVERSION="a \\"b\\" c"\n'
                   'VERSION_ID=\'single\'\nVARIANT="x\\$y\\`z\\\\w"\nVARIANT_ID= spaced \n# comment\n')
    real, ours = _run_both(tmp_path, [(rel, "/etc/os-release")], ["guest-get-osinfo"])
    assert ours == real
    assert b'"name": "two"' in real[0] and b'"version": "a \\"b\\" c"' in real[0]


@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Kolkata", "UTC", "XYZ-3"])
def test_timezone(tmp_path, tz):
    got = []
    for prog, d in ((QEMU_GA, "real"), (PYQEMU_GA, "ours")):
        a = Agent(prog, tmp_path / d, env={"TZ": tz})
        try:
            got.append(a.connect().cmd("guest-get-timezone"))
        finally:
            a.stop()
    assert got[1] == got[0]
