"""pyqemu-io beside real qemu-io: same commands, same output (timings masked), same image bytes."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest

PYQEMU_IO = os.path.join(os.path.dirname(sys.executable), "pyqemu-io")
MiB = 1 << 20


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail("%s is missing: install it with `make peer-tools`" % tool)
    return path


def mask(text: str) -> str:
    """Timings and program names are the only expected differences (as QEMU's iotests filter)."""
    text = re.sub(r"[0-9]+\.[0-9]+ sec \(.*\)$", "X sec (X)", text, flags=re.M)
    text = re.sub(r"^[0-9]+,[0-9]+,[0-9:.]+,[0-9.]+,[0-9.]+$", "TERSE", text, flags=re.M)
    return re.sub(r"[^\s`']*qemu-io", "PROG", text)


def run_both(tmp_path, fmt, cmds, opts=(), setup=None):
    outs = []
    for name, prog in (("q", need("qemu-io")), ("p", PYQEMU_IO)):
        img = str(tmp_path / ("%s.%s" % (name, fmt)))
        if fmt == "qcow2":
            subprocess.run([need("qemu-img"), "create", "-q", "-f", "qcow2", img, "4M"], check=True)
        else:
            with open(img, "wb") as f:
                f.truncate(4 * MiB)
        if setup:
            setup(img)
        argv = [prog, "-f", fmt, *opts]
        for c in cmds:
            argv += ["-c", c]
        p = subprocess.run(argv + [img], capture_output=True, text=True, timeout=60)
        with open(img, "rb") as f:
            data = f.read()
        outs.append((p.returncode, mask(p.stdout), mask(p.stderr.replace(img, "IMG")), data))
    return outs


SEQUENCES = {
    "rw": ["write -P 0xab 0 64k", "read -P 0xab 0 64k", "read -v 0 40", "read -P 0xac 0 512",
           "readv -P 0xab 0 512 1k", "writev -P 3 4k 512 512", "read -q 0 4k", "read -C 0 512",
           "aio_write -P 7 2M 4k", "aio_flush", "aio_read -P 7 2M 4k", "aio_flush", "flush",
           "write -s /etc/hostname 8k 3000", "write -s /nonexistent 0 1", "write -n 0 1"],
    "zero_discard_map": ["write -P 1 0 128k", "write -z 64k 64k", "write -z -u 64k 4k", "discard 0 4k",
                         "map", "alloc 0 1M", "alloc 64k", "length", "info"],
    "errors": ["bogus", "read 0", "read 3M 2M", "read x 1", "read 0 1y", "write -P 0x1ff 0 1",
               "write -z -P 1 0 1", "write -u 0 1", "read -s 1 0 4", "help nosuch", "open /x"],
    "truncate_close": ["truncate 8M", "length", "write -P 9 7M 4k", "map", "close", "read 0 1", "length"],
    "compressed": ["write -c -P 3 0 64k", "write -c 64k 1k", "write -c 0 100", "write -c 1 512",
                   "read -P 3 0 64k", "map"],
    "sizes": ["write -P 5 1k 3k", "read -P 5 1k 3k", "write 1023 1", "read 0 1536", "write -P 0x0 4095 2"],
}


@pytest.mark.parametrize("fmt,seq", [(f, s) for s in sorted(SEQUENCES) for f in ("raw", "qcow2")
                                     if not (s == "compressed" and f == "raw")])
def test_same_output_and_bytes_as_qemu_io(tmp_path, fmt, seq):
    q, p = run_both(tmp_path, fmt, SEQUENCES[seq])
    assert p[0] == q[0]
    assert p[1] == q[1]
    assert p[2] == q[2]
    if fmt == "raw":
        assert p[3] == q[3]


def test_qcow2_written_by_pyqemu_io_is_clean_and_equal(tmp_path):
    q, p = run_both(tmp_path, "qcow2", SEQUENCES["zero_discard_map"] + SEQUENCES["rw"])
    a, b = str(tmp_path / "q.qcow2"), str(tmp_path / "p.qcow2")
    subprocess.run([need("qemu-img"), "check", b], check=True, capture_output=True)
    subprocess.run([need("qemu-img"), "compare", a, b], check=True, capture_output=True)


def test_read_only_image_refuses_writes(tmp_path):
    q, p = run_both(tmp_path, "raw", ["write 0 1", "discard 0 1", "read 0 1"], opts=["-r"])
    assert p[:3] == q[:3]
    assert "Block node is read-only" in p[2]


@pytest.mark.parametrize("argv", [["--bogus"], ["-c"], ["-f", "qcow2", "-c", "read 0 1", "/nonexistent"],
                                  ["-t", "bogus", "-c", "read 0 1", "/nonexistent"], ["a", "b"]])
def test_command_line_errors(argv):
    q = subprocess.run([need("qemu-io")] + argv, capture_output=True, text=True, timeout=30)
    p = subprocess.run([PYQEMU_IO] + argv, capture_output=True, text=True, timeout=30)
    assert p.returncode == q.returncode != 0
    assert mask(p.stderr) == mask(q.stderr)
    assert bool(p.stdout) == bool(q.stdout)   # the usage text, where qemu-io prints it


@pytest.mark.parametrize("script", ["write -P 0x22 0 512\nread -P 0x22 0 512\nquit\n",
                                    "write -P 0x22 0 512\nbogus\nread -P 0x23 0 512\n"])
def test_interactive_commands_from_stdin_as_qemu_io(tmp_path, script):
    outs = []
    for name, prog in (("q", need("qemu-io")), ("p", PYQEMU_IO)):
        img = str(tmp_path / ("%s.raw" % name))
        with open(img, "wb") as f:
            f.truncate(MiB)
        p = subprocess.run([prog, "-f", "raw", img], input=script, capture_output=True, text=True, timeout=30)
        outs.append((p.returncode, mask(p.stdout), mask(p.stderr)))
    assert outs[0] == outs[1]
    assert "PROG> wrote 512/512 bytes at offset 0" in outs[1][1]


def _wait_socket(path, proc):
    for _ in range(300):
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read())
        if os.path.exists(path):
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(path)
                return
            except OSError:
                pass
        time.sleep(0.05)
    raise AssertionError("qemu-nbd did not start")


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_pyqemu_io_against_real_qemu_nbd(tmp_path, fmt):
    img = str(tmp_path / ("img." + fmt))
    subprocess.run([need("qemu-img"), "create", "-q", "-f", fmt, img, "4M"], check=True)
    sock = str(tmp_path / "q.sock")
    srv = subprocess.Popen([need("qemu-nbd"), "-t", "-k", sock, "-f", fmt, img],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_socket(sock, srv)
        uri = "nbd+unix:///?socket=%s" % sock
        cmds = ["write -P 0x33 64k 64k", "read -P 0x33 64k 64k", "write -z 1M 1M", "discard 0 4k",
                "map", "info", "length", "read 4M 1"]
        outs = []
        for prog in (need("qemu-io"), PYQEMU_IO):
            argv = [prog, "-f", "raw"]
            for c in cmds:
                argv += ["-c", c]
            p = subprocess.run(argv + [uri], capture_output=True, text=True, timeout=60)
            outs.append((p.returncode, mask(p.stdout), mask(p.stderr)))
        assert outs[0] == outs[1]
        bad = subprocess.run([PYQEMU_IO, "-c", "read 0 1", "nbd+unix:///nosuch?socket=%s" % sock],
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode == 1
        assert "Requested export not available\nserver reported: export 'nosuch' not present" in bad.stderr
    finally:
        srv.terminate()
        srv.wait(10)
        srv.stderr.close()
    chk = subprocess.run([need("qemu-io"), "-f", fmt, "-c", "read -P 0x33 64k 64k", "-c", "read -P 0 1M 1M", img],
                         capture_output=True, text=True, timeout=60)
    assert chk.returncode == 0 and "verification failed" not in chk.stdout


def test_snapshot_and_open_with_options(tmp_path):
    for prog in (need("qemu-io"), PYQEMU_IO):
        img = str(tmp_path / "s.raw")
        with open(img, "wb") as f:
            f.write(b"\x01" * MiB)
        p = subprocess.run([prog, "-s", "-f", "raw", "-c", "write -P 5 0 4k", "-c", "read -P 5 0 4k", img],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and "verification failed" not in p.stdout
        p = subprocess.run([prog, "-c", "open -o driver=raw,file.filename=%s" % img, "-c", "length",
                            "-c", "read -P 1 0 4k"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and p.stdout.startswith("1 MiB\n")
        with open(img, "rb") as f:
            assert f.read() == b"\x01" * MiB


def test_help_lists_commands_as_qemu_io(tmp_path):
    q = subprocess.run([need("qemu-io"), "-c", "help"], capture_output=True, text=True, timeout=30).stdout
    p = subprocess.run([PYQEMU_IO, "-c", "help"], capture_output=True, text=True, timeout=30).stdout
    qlines = set(q.splitlines())
    plines = [line for line in p.splitlines() if not line.startswith("open ")]
    # Every command pyqemu-io has is listed exactly as qemu-io lists it.
    assert [line for line in plines if line not in qlines] == []
    assert p.endswith("\nUse 'help commandname' for extended help.\n")
    t0 = subprocess.run([PYQEMU_IO, "-c", "sleep 200"], capture_output=True, text=True, timeout=30)
    assert t0.returncode == 0
