"""pyqemu-ga against qemu-ga: request round trips and file-read throughput.

Both agents listen on unix sockets in a scratch directory; runs alternate
A/B and the median of each is printed with the ratio (pyqemu / qemu, lower
is better).
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYQEMU_GA = str(REPO / ".venv" / "bin" / "pyqemu-ga")
QEMU_GA = shutil.which("qemu-ga") or "/usr/sbin/qemu-ga"
PINGS = 2000
READ_MB = 16
RUNS = 5


class Conn:
    def __init__(self, path: str) -> None:
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.f = self.s.makefile("rb")

    def call(self, req: dict) -> dict:
        self.s.sendall(json.dumps(req).encode())
        return json.loads(self.f.readline())


def start(prog: str, d: Path) -> subprocess.Popen:
    d.mkdir()
    sock = d / "s"
    p = subprocess.Popen([prog, "-m", "unix-listen", "-p", str(sock), "-t", str(d)],
                         env=dict(os.environ, QGA_CONF=str(d / "none")), stderr=subprocess.DEVNULL)
    for _ in range(200):
        if sock.exists():
            return p
        time.sleep(0.05)
    p.kill()
    sys.exit("%s did not start" % prog)


def pings(c: Conn) -> float:
    t = time.perf_counter()
    for _ in range(PINGS):
        c.call({"execute": "guest-ping"})
    return (time.perf_counter() - t) / PINGS * 1e6


def reads(c: Conn, path: str) -> float:
    h = c.call({"execute": "guest-file-open", "arguments": {"path": path}})["return"]
    t = time.perf_counter()
    total = 0
    while True:
        r = c.call({"execute": "guest-file-read", "arguments": {"handle": h, "count": 1 << 20}})["return"]
        total += len(base64.b64decode(r["buf-b64"]))
        if r["eof"]:
            break
    dt = time.perf_counter() - t
    c.call({"execute": "guest-file-close", "arguments": {"handle": h}})
    return total / dt / (1 << 20)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        data = d / "data"
        data.write_bytes(os.urandom(READ_MB << 20))
        procs = {"qemu-ga": start(QEMU_GA, d / "q"), "pyqemu-ga": start(PYQEMU_GA, d / "p")}
        try:
            conns = {"qemu-ga": Conn(str(d / "q" / "s")), "pyqemu-ga": Conn(str(d / "p" / "s"))}
            res: dict = {k: {"ping": [], "read": []} for k in conns}
            for _ in range(RUNS):
                for name, c in conns.items():
                    res[name]["ping"].append(pings(c))
                    res[name]["read"].append(reads(c, str(data)))
        finally:
            for p in procs.values():
                p.terminate()
                p.wait()
    q, p = res["qemu-ga"], res["pyqemu-ga"]
    qp, pp = statistics.median(q["ping"]), statistics.median(p["ping"])
    qr, pr = statistics.median(q["read"]), statistics.median(p["read"])
    print("guest-ping round trip: qemu-ga %.1f us, pyqemu-ga %.1f us, ratio %.2f" % (qp, pp, pp / qp))
    print("guest-file-read 1 MiB chunks: qemu-ga %.0f MiB/s, pyqemu-ga %.0f MiB/s, time ratio %.2f"
          % (qr, pr, qr / pr))


if __name__ == "__main__":
    main()
