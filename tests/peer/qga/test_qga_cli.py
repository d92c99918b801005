"""The command line of pyqemu-ga against qemu-ga's: output, messages, exit codes."""
import os
import re
import subprocess

import pytest

from qgaclient import PYQEMU_GA, QEMU_GA


def _run(prog, args, tmp_path, conf=None):
    env = dict(os.environ, QGA_CONF=str(conf or tmp_path / "none.conf"))
    try:
        r = subprocess.run([prog] + args, env=env, capture_output=True, timeout=3)
        status = r.returncode
    except subprocess.TimeoutExpired as exc:
        # still running: it got past start-up
        r, status = exc, "running"
    text = (r.stdout or b"") + (r.stderr or b"")
    text = text.decode("utf-8", "replace").replace(QEMU_GA, "qemu-ga").replace("pyqemu-ga", "qemu-ga")
    # GLib writes its curly quotes as '?' outside a UTF-8 locale
    text = text.replace("\u201c", "?").replace("\u201d", "?")
    # log time stamps, and GLib's "** (process:PID): CRITICAL **: time:" prefix
    text = re.sub(r"(?m)^\d+\.\d+: ", "", text)
    text = re.sub(r"(?m)^\*\* \(process:\d+\): CRITICAL \*\*: [\d:.]+: ", "", text)
    text = re.sub(r"(?m)^qemu-ga: (error loading|must specify)", r"\1", text)
    return sorted(line for line in text.splitlines() if line), status


CASES = [
    ["-V"], ["-b", "help"], ["-b", "?"], ["-x"], ["--bogus"], ["-m"],
    ["-D"], ["-D", "-m", "isa-serial"], ["-D", "-m", "unix-listen"], ["-D", "-m", "unix-listen", "-p", "/s"],
    ["-D", "-F"], ["-D", "-F/tmp/hook", "-l", "/tmp/l", "-f", "/tmp/p", "-t", "/tmp", "-v", "-r", "-d"],
    ["-D", "-b", "a,b,c", "-b", "d", "--block-rpcs=e"],
    ["-m", "foo", "-p", "x"], ["-m", "vsock-listen", "-p", "bogus"],
    ["-m", "unix-listen", "-p", "/nonexistent-dir/x/s"],
    ["-m", "virtio-serial", "-p", "/nonexistent-dir/port"],
]


@pytest.mark.parametrize("args", CASES, ids=[" ".join(a) for a in CASES])
def test_same_as_qemu_ga(tmp_path, args):
    args = args + (["-t", str(tmp_path)] if "-D" not in args and "-t" not in args else [])
    assert _run(PYQEMU_GA, args, tmp_path) == _run(QEMU_GA, args, tmp_path)


CONFS = [
    "[general]\nverbose=1\nblock-rpcs=guest-ping;guest-info\nmethod=unix-listen\npath=/tmp/y\nfsfreeze-hook=\n",
    "[general]\nverbose=maybe\n",
    "garbage\n",
    "# only a comment\n[general]\ndaemon=true\nretry-path=0\nstatedir=/srv\npidfile=/p\nlogfile=/l\n",
    "[other]\nmethod=isa-serial\n",
]


@pytest.mark.parametrize("conf", CONFS)
def test_config_file_same_as_qemu_ga(tmp_path, conf):
    f = tmp_path / "qemu-ga.conf"
    f.write_text(conf)
    for extra in ([], ["-b", "guest-exec", "-m", "isa-serial"]):
        assert _run(PYQEMU_GA, ["-D"] + extra, tmp_path, f) == _run(QEMU_GA, ["-D"] + extra, tmp_path, f)
