"""The cpio 'newc' writer: layout as the kernel and GNU cpio read it."""
import stat
import subprocess

import pytest

from pyqemu.util.cpio import CpioWriter, build_newc, read_newc
from pyqemu.util.error import QemuError


def test_header_layout_and_alignment():
    data = build_newc([("dir", "bin", None), ("file", "bin/a", b"xyz")])
    assert data.startswith(b"070701")
    assert len(data) % 4 == 0
    # name "bin\0" (4 bytes) after the 110-byte header lands on 114 -> padded to 116
    assert data[110:114] == b"bin\0"
    assert data[116:122] == b"070701"
    members = read_newc(data)
    assert [(n, stat.S_IFMT(m)) for n, m, _, _ in members] == [
        ("bin", stat.S_IFDIR), ("bin/a", stat.S_IFREG)]
    assert members[1][2] == b"xyz"
    assert data.rstrip(b"\0").endswith(b"TRAILER!!!")


def test_devices_and_symlinks_round_trip():
    import io
    buf = io.BytesIO()
    w = CpioWriter(buf)
    w.add_chardev("dev/console", 5, 1)
    w.add_symlink("bin/sh", "busybox")
    w.close()
    (con, cmode, _, rdev), (sh, smode, target, _) = read_newc(buf.getvalue())
    assert con == "dev/console" and stat.S_ISCHR(cmode) and rdev == (5, 1)
    assert sh == "bin/sh" and stat.S_ISLNK(smode) and target == b"busybox"


def test_bad_members_are_refused():
    with pytest.raises(QemuError, match="duplicate"):
        build_newc([("dir", "a", None), ("dir", "a", None)])
    with pytest.raises(QemuError, match="invalid cpio member name"):
        build_newc([("file", "TRAILER!!!", b"")])
    with pytest.raises(QemuError, match="not a cpio"):
        read_newc(b"garbage" * 20)


def test_gnu_cpio_extracts_it(tmp_path):
    data = build_newc([("dir", "d", None), ("exec", "d/run", b"#!/bin/sh\n"),
                       ("symlink", "d/link", "run"), ("file", "odd", b"12345")])
    res = subprocess.run(["cpio", "-id", "--quiet"], input=data, cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "d/run").read_bytes() == b"#!/bin/sh\n"
    assert (tmp_path / "d/run").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "d/link").is_symlink()
    assert (tmp_path / "odd").read_bytes() == b"12345"
