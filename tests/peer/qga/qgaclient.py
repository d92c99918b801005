"""A raw QGA client for the tests: bytes in, bytes out, with
guest-sync-delimited framing to find the start of each answer."""
from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, List, Optional

REPO = Path(__file__).resolve().parents[3]
PYQEMU_GA = str(REPO / ".venv" / "bin" / "pyqemu-ga")
QEMU_GA = shutil.which("qemu-ga") or "/usr/sbin/qemu-ga"


def wait_for_socket(path: str, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(path)
                s.close()
                return
            except OSError:
                pass
        if proc.poll() is not None:
            raise RuntimeError("agent exited with %s" % proc.returncode)
        time.sleep(0.05)
    raise RuntimeError("agent socket %s never appeared" % path)


class Agent:
    """A running agent (real or pyqemu) on a unix socket in a scratch dir."""

    def __init__(self, prog: str, workdir: Path, extra: Optional[List[str]] = None,
                 wrapper: Optional[List[str]] = None, env: Optional[dict] = None) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.sock = str(workdir / "qga.sock")
        argv = [prog, "-m", "unix-listen", "-p", self.sock, "-t", str(workdir),
                "-f", str(workdir / "qga.pid")] + list(extra or [])
        full_env = dict(os.environ, QGA_CONF=str(workdir / "none.conf"))
        full_env.update(env or {})
        self.proc = subprocess.Popen((wrapper or []) + argv, env=full_env,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(workdir / "stderr.log", "wb"))
        try:
            wait_for_socket(self.sock, self.proc)
        except BaseException:
            self.stop()
            raise

    def connect(self) -> "Client":
        return Client(self.sock)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Client:
    def __init__(self, path: str) -> None:
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.s.settimeout(10)
        self.buf = b""

    def close(self) -> None:
        self.s.close()

    def send(self, data: bytes) -> None:
        self.s.sendall(data)

    def _line(self) -> bytes:
        if b"\n" not in self.buf:
            # collect chunks and look for the newline in each new one only:
            # answers can be tens of megabytes
            parts = [self.buf]
            while True:
                chunk = self.s.recv(1 << 20)
                if not chunk:
                    raise EOFError("agent closed the connection")
                parts.append(chunk)
                if b"\n" in chunk:
                    break
            self.buf = b"".join(parts)
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def sync(self) -> None:
        """Flush the agent's parser with 0xFF and find our answer after the 0xFF delimiter."""
        token = random.randrange(1, 1 << 31)
        self.send(b"\xff" + b'{"execute":"guest-sync-delimited","arguments":{"id":%d}}' % token)
        while True:
            data = self._line()
            if b"\xff" in data:
                data = data[data.rindex(b"\xff") + 1:]
                if json.loads(data).get("return") == token:
                    return

    def raw(self, data: bytes, replies: int = 1) -> List[bytes]:
        self.send(data)
        return [self._line() for _ in range(replies)]

    def cmd(self, execute: str, **arguments: Any) -> bytes:
        req: dict = {"execute": execute}
        if arguments:
            req["arguments"] = {k.replace("_", "-"): v for k, v in arguments.items()}
        return self.raw(json.dumps(req).encode())[0]

    def call(self, execute: str, **arguments: Any) -> Any:
        return json.loads(self.cmd(execute, **arguments))

    def no_reply(self, req: bytes, wait: float = 0.5) -> bool:
        """Send ``req`` and check that nothing comes back (success-response false)."""
        self.send(req)
        self.s.settimeout(wait)
        try:
            got = self.s.recv(65536)
        except socket.timeout:
            got = b""
        finally:
            self.s.settimeout(10)
        self.buf += got
        return not got


def shape(v: Any) -> Any:
    """The structure of a JSON value: field names and types, not values."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(x) for x in v[:1]]
    return type(v).__name__
