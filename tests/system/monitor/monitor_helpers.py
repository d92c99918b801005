"""Helpers shared by the monitor system and peer tests (imported by name: unique module)."""
import os
import re
import socket
import sys
import time

PYQEMU = os.path.join(os.path.dirname(sys.executable), "pyqemu-system-x86_64")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_path(path, proc, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            raise AssertionError("emulator exited early: %r" % proc.stderr.read())
        time.sleep(0.02)
    raise AssertionError("%s never appeared" % path)


def connect_tcp(port, proc, timeout=10):
    end = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            if time.monotonic() > end or proc.poll() is not None:
                raise
            time.sleep(0.02)


def read_until(sock, marker, timeout=10):
    """Bytes from a socket up to and including ``marker``."""
    sock.settimeout(timeout)
    buf = b""
    while marker not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed; got %r" % buf)
        buf += chunk
    return buf


ESC_RE = re.compile(rb"\x1b\[([KDC])")


def strip_echo(raw):
    """What a terminal shows for monitor output: readline's redraws applied.

    Handles CR, LF, cursor left/right (ESC [ D / C) and erase to end of line
    (ESC [ K) - all QEMU's line editor sends.  Lines end with CR LF in the result.
    """
    lines = [bytearray()]
    col = 0
    i = 0
    n = len(raw)
    while i < n:
        m = ESC_RE.match(raw, i)
        line = lines[-1]
        if m:
            op = m.group(1)
            if op == b"D":
                col = max(0, col - 1)
            elif op == b"C":
                col += 1
            else:
                del line[col:]
            i = m.end()
            continue
        c = raw[i]
        i += 1
        if c == 0x0D:
            col = 0
        elif c == 0x0A:
            lines.append(bytearray())
            col = 0
        else:
            while len(line) < col:
                line.append(0x20)
            if col < len(line):
                line[col] = c
            else:
                line.append(c)
            col += 1
    return b"\r\n".join(bytes(x) for x in lines)


def connect_unix(path, proc, timeout=10):
    """Connect to a unix socket an emulator creates (it may exist before it listens)."""
    end = time.monotonic() + timeout
    wait_path(path, proc, timeout)
    while True:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > end or proc.poll() is not None:
                raise
            time.sleep(0.02)
