import os
import re
import socket
import subprocess
import sys
import time

import pytest

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


ECHO_RE = re.compile(rb"\x1b\[[KDC]")


def strip_echo(text):
    """Remove readline's redraw sequences so the screen reads as lines."""
    return ECHO_RE.sub(b"", text)


@pytest.fixture
def emulator():
    """Start emulators (pyqemu or a real QEMU); all are killed after the test."""
    procs = []

    def start(args, prog=PYQEMU, stdin=subprocess.DEVNULL):
        p = subprocess.Popen([prog] + list(args), stdin=stdin, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        procs.append(p)
        return p
    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)
        for f in (p.stdin, p.stdout, p.stderr):
            if f is not None:
                f.close()
