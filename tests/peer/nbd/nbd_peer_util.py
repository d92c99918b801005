"""Helpers of the NBD peer tests: run tools, start pyqemu-nbd and qemu-nbd."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

VENV_BIN = os.path.dirname(sys.executable)
PYQEMU_NBD = os.path.join(VENV_BIN, "pyqemu-nbd")


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail("%s is missing: install it with `make peer-tools`" % tool)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_connectable(addr, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    family = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("server exited early: %s" % proc.stderr.read().decode(errors="replace")
                                 if proc.stderr else "server exited early")
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                if family == socket.AF_UNIX and not os.path.exists(addr):
                    raise OSError
                s.connect(addr)
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("server did not start listening")


class Server:
    """A running NBD server process; ``uri`` names its export."""

    def __init__(self, prog: str, image: str, tmp_path, args=(), tcp: bool = False,
                 export: str = "") -> None:
        self.tmp = tmp_path
        # A unix socket path must stay short; tmp_path may be long.
        if tcp:
            self.port = free_port()
            conn = ["-b", "127.0.0.1", "-p", str(self.port)]
            self.addr = ("127.0.0.1", self.port)
            self.uri = "nbd://127.0.0.1:%d/%s" % (self.port, export)
        else:
            self.sock = str(tmp_path / ("%s.sock" % os.path.basename(prog)))
            conn = ["-k", self.sock]
            self.addr = self.sock
            self.uri = "nbd+unix:///%s?socket=%s" % (export, self.sock)
        # -t: a probe connection must not end a non-persistent server.
        self.cmd = [prog, "-t"] + conn + list(args) + [image]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_connectable(self.addr, self.proc)

    def stop(self) -> str:
        if self.proc.stderr is None or self.proc.stderr.closed:
            return ""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
        self.proc.stdout.close()
        self.proc.stderr.close()
        return err


def run(cmd, check: bool = True, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("timeout", 120)
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d): %s%s" % (cmd, p.returncode, p.stdout, p.stderr))
    return p
