"""Benchmark: nbdcopy of a 1 GiB qcow2 export from pyqemu-nbd against qemu-nbd.

The image (1 GiB virtual, 40% data in 10 MiB extents, written by qemu-io) is
served read-only with ``-e 4`` (so nbdcopy uses several connections) by each
server in turn, alternating, and copied by nbdcopy to a raw file.  The first
copy of each is compared with the image.  Prints the median wall time of the
copies, the ratio pyqemu/qemu (lower is better) and the absolute figures.
"""
from __future__ import annotations

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
PYQEMU_NBD = str(REPO / ".venv" / "bin" / "pyqemu-nbd")
RUNS = 5


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        sys.exit("%s is missing: run `make peer-tools`" % name)
    return path


def make_image(path: str) -> None:
    subprocess.run([tool("qemu-img"), "create", "-q", "-f", "qcow2", path, "1G"], check=True)
    cmds = []
    for i in range(100):
        if i % 5 < 2:
            cmds += ["-c", "write -q -P %d %dM 10M" % (i % 250 + 1, i * 10)]
    subprocess.run([tool("qemu-io"), "-f", "qcow2", *cmds, path], check=True)


def wait_socket(path: str, proc: subprocess.Popen) -> None:
    for _ in range(400):
        if proc.poll() is not None:
            sys.exit("server exited early")
        if os.path.exists(path):
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(path)
                return
            except OSError:
                pass
        time.sleep(0.025)
    sys.exit("server did not start")


def copy_once(server: str, image: str, work: str, verify: bool) -> float:
    sock = os.path.join(work, "b.sock")
    out = os.path.join(work, "out.raw")
    proc = subprocess.Popen([server, "-t", "-r", "-e", "4", "-k", sock, "-f", "qcow2", image],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_socket(sock, proc)
        if os.path.exists(out):
            os.unlink(out)
        t0 = time.perf_counter()
        subprocess.run([tool("nbdcopy"), "nbd+unix:///?socket=%s" % sock, out], check=True)
        elapsed = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(30)
    if verify:
        subprocess.run([tool("qemu-img"), "compare", "-q", "-f", "raw", "-F", "qcow2", out, image], check=True)
    os.unlink(out)
    return elapsed


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="nbd-bench-") as work:
        image = os.path.join(work, "big.qcow2")
        make_image(image)
        times = {"qemu-nbd": [], "pyqemu-nbd": []}
        servers = {"qemu-nbd": tool("qemu-nbd"), "pyqemu-nbd": PYQEMU_NBD}
        for run in range(RUNS):
            for name in ("qemu-nbd", "pyqemu-nbd") if run % 2 == 0 else ("pyqemu-nbd", "qemu-nbd"):
                times[name].append(copy_once(servers[name], image, work, verify=(run < 2)))
        q = statistics.median(times["qemu-nbd"])
        p = statistics.median(times["pyqemu-nbd"])
        print("nbdcopy of a 1 GiB qcow2 (40%% data), median of %d runs:" % RUNS)
        print("  qemu-nbd   %.3f s  (%s)" % (q, " ".join("%.3f" % t for t in times["qemu-nbd"])))
        print("  pyqemu-nbd %.3f s  (%s)" % (p, " ".join("%.3f" % t for t in times["pyqemu-nbd"])))
        print("  ratio pyqemu/qemu: %.2f" % (p / q))
    return 0


if __name__ == "__main__":
    sys.exit(main())
