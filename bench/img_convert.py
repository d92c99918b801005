"""Benchmark: pyqemu-img convert against qemu-img convert, alternating, same run.

A 1 GiB sparse raw image with 40% data (1 MiB extents, half random and half
text so that compression has something to do) is converted raw->qcow2,
qcow2->raw and raw->compressed qcow2 by both tools in turn.  Prints the
median wall time of each, the ratio pyqemu/qemu, the median CPU time (user +
system, all threads) and its ratio, each tool's peak RSS, and the load
average: on a shared machine wall times follow the load, CPU times much less.

Run: .venv/bin/python bench/img_convert.py [--size-mib N] [--runs N]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PYQEMU_IMG = os.path.join(os.path.dirname(sys.executable), "pyqemu-img")


def make_source(path: str, size_mib: int) -> None:
    rnd = random.Random(42)
    text = (b"The quick brown fox jumps over the lazy dog. 0123456789 " * 20000)[:768 << 10]
    with open(path, "wb") as f:
        f.truncate(size_mib << 20)
        for i in range(size_mib):
            if rnd.random() < 0.4:
                f.seek(i << 20)
                f.write(os.urandom(256 << 10) + text)


# pyqemu runs as an installed program does: with its bytecode cache (a developer's
# PYTHONDONTWRITEBYTECODE would make every run compile its modules again)
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list) -> tuple:
    """Wall time, CPU time and peak RSS (KiB) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=CHILD_ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit("failed: %s" % " ".join(cmd))
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--compressed-runs", type=int, default=1)
    args = ap.parse_args()
    qemu_img = shutil.which("qemu-img")
    if not qemu_img:
        raise SystemExit("qemu-img is not installed (apt-get install qemu-utils)")
    work = tempfile.mkdtemp(prefix="pyqemu-bench-")
    try:
        src = os.path.join(work, "src.raw")
        make_source(src, args.size_mib)
        ref_qcow2 = os.path.join(work, "ref.qcow2")
        subprocess.run([qemu_img, "convert", "-O", "qcow2", src, ref_qcow2], check=True)
        # warm-up: writes pyqemu's bytecode cache, brings the source into the page cache
        subprocess.run([PYQEMU_IMG, "convert", "-O", "raw", ref_qcow2, os.path.join(work, "warm.raw")],
                       check=True, env=CHILD_ENV)
        os.unlink(os.path.join(work, "warm.raw"))
        cases = [
            ("raw->qcow2", ["convert", "-O", "qcow2", src], "out.qcow2", args.runs),
            ("qcow2->raw", ["convert", "-O", "raw", ref_qcow2], "out.raw", args.runs),
            ("raw->qcow2 -c", ["convert", "-c", "-O", "qcow2", src], "out.qcow2", args.compressed_runs),
        ]
        print("source: %d MiB raw, 40%% data; median of alternating runs" % args.size_mib)
        print("%-14s %9s %9s %6s  %9s %9s %6s  %8s %8s  %5s" % (
            "case", "qemu wall", "py wall", "ratio", "qemu CPU", "py CPU", "ratio", "qemu RSS", "py RSS",
            "load"))
        for name, argv, out, runs in cases:
            if runs <= 0:
                continue
            wall = {"q": [], "p": []}
            cpu = {"q": [], "p": []}
            rss = {"q": 0, "p": 0}
            dst = os.path.join(work, out)
            for _ in range(runs):
                for key, prog in (("q", qemu_img), ("p", PYQEMU_IMG)):
                    if os.path.exists(dst):
                        os.unlink(dst)
                    t, c, r = timed([prog] + argv + [dst])
                    wall[key].append(t)
                    cpu[key].append(c)
                    rss[key] = max(rss[key], r)
            wq, wp = statistics.median(wall["q"]), statistics.median(wall["p"])
            cq, cp = statistics.median(cpu["q"]), statistics.median(cpu["p"])
            print("%-14s %8.2fs %8.2fs %5.2fx  %8.2fs %8.2fs %5.2fx  %5.1fMiB %5.1fMiB  %5.1f" % (
                name, wq, wp, wp / wq, cq, cp, cp / max(cq, 0.001), rss["q"] / 1024.0, rss["p"] / 1024.0,
                os.getloadavg()[0]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
