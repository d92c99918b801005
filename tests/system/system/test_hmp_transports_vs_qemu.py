"""HMP over stdio (-nographic), a TCP socket and a pty: the machine core's
commands typed into pyqemu-system-x86_64 and into qemu-system-x86_64 must
produce the same bytes (readline echo included), the banner's version aside.
"""
from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import time

import pytest

SCRIPT = (b"info status\nstop\ninfo status\ncont\nxp /2xb 0\nxp /4xw 0xffff0\ninfo ramblock\n"
          b"info qom-tree\np 1+2\np /x 255\ni /b 0x80\no /b 0x80 1\nsystem_reset\ninfo name\n"
          b"info uuid\nqom-list /objects\ninfo memdev\ninfo kvm-missing\nx /2x 0\nquit\n")
COMMON = ["-M", "none", "-m", "1", "-name", "vm1", "-uuid", "12345678-1234-1234-1234-123456789abc"]


BANNER = b"QEMU 7.2.0 monitor - type 'help' for more information\r\n(qemu) "


def _norm(data: bytes) -> bytes:
    data = data.replace(b"QEMU 7.2.22 monitor", b"QEMU 7.2.0 monitor")
    # On a pty QEMU's greeting depends on when its once-a-second poll notices the
    # peer (none, once or twice): compare the sessions after the greeting.
    while True:
        if data.startswith(BANNER):
            data = data[len(BANNER):]
        elif data.startswith(b"(qemu) QEMU 7.2.0 monitor"):
            data = data[len(b"(qemu) "):]
        else:
            break
    # The echo of the final "quit" races the exit on both programs: stop at its prompt.
    return data[:data.rfind(b"(qemu) ")]


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _read_all(fd: int, timeout: float = 30) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if not r:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:            # EIO: the pty's other side is gone
            break
        if not chunk:
            break
        out += chunk
    return out


def over_stdio(binary: str) -> bytes:
    p = subprocess.run([binary] + COMMON + ["-nographic"], input=SCRIPT, capture_output=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def over_tcp(binary: str) -> bytes:
    port = _free_port()
    proc = subprocess.Popen([binary] + COMMON + ["-display", "none", "-monitor",
                            "tcp:127.0.0.1:%d,server=on,wait=off" % port],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.05)
        s.sendall(SCRIPT)
        out = _read_all(s.fileno())
        s.close()
        assert proc.wait(timeout=30) == 0
        return out
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def over_pty(binary: str) -> bytes:
    # stdout on a terminal of its own, so the "redirected to" line is not held in a buffer
    # (QEMU prints it on stdout, pyqemu's chardev layer on stderr: both go there).
    out_master, out_slave = os.openpty()
    proc = subprocess.Popen([binary] + COMMON + ["-display", "none", "-monitor", "pty"],
                            stdin=subprocess.DEVNULL, stdout=out_slave, stderr=out_slave)
    os.close(out_slave)
    try:
        line = b""
        while b"\n" not in line:
            r, _, _ = select.select([out_master], [], [], 20)
            assert r, "no pty announced"
            c = os.read(out_master, 1)
            assert c, proc.communicate()
            line += c
        m = re.match(rb"char device redirected to (/dev/pts/\d+) \(label compat_monitor0\)\r?\n", line)
        assert m, line
        fd = os.open(m.group(1), os.O_RDWR | os.O_NOCTTY)
        try:
            import tty
            tty.setraw(fd)
            # QEMU notices a pty's peer by polling once a second; until then it drops output.
            time.sleep(1.5)
            out = b""
            # Take the greeting (none, one or two, see _norm) before typing.
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                r, _, _ = select.select([fd], [], [], 0.3)
                if r:
                    out += os.read(fd, 65536)
                elif b"(qemu) " in out:
                    break
            # Typed line by line, each after the previous command's prompt, as a person would.
            for cmd in SCRIPT.splitlines(True):
                prompts = out.count(b"(qemu) ")
                os.write(fd, cmd)
                if cmd == b"quit\n":
                    break
                deadline = time.monotonic() + 20
                while out.count(b"(qemu) ") <= prompts and time.monotonic() < deadline:
                    r, _, _ = select.select([fd], [], [], 0.5)
                    if r:
                        out += os.read(fd, 65536)
            out += _read_all(fd)
        finally:
            os.close(fd)
        assert proc.wait(timeout=30) == 0
        return out
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        os.close(out_master)


@pytest.mark.slow
@pytest.mark.parametrize("transport", [over_stdio, over_tcp, over_pty], ids=["stdio", "tcp", "pty"])
def test_hmp_session_matches_qemu(pyqemu_system, real_qemu, transport):
    want = _norm(transport(real_qemu))
    got = _norm(transport(pyqemu_system))
    assert b"VM status: paused\r\n" in got and b"0000000000000000: 0x00 0x00\r\n" in got
    assert got == want
