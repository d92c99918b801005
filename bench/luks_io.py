"""Benchmark: encrypted I/O of pyqemu against QEMU 7.2, alternating, same run.

A LUKS image (aes-256-xts-plain64, the default) and a LUKS-encrypted qcow2
image are made once with a short iter-time (so that opening costs little
next to the data).  Each tool then writes the whole disk with a pattern
(qemu-io / pyqemu-io ``write -P``), reads it back verifying the pattern,
and converts it to raw.  Prints the median wall time of each, the ratio
pyqemu/qemu, and each tool's peak RSS.

Run: .venv/bin/python bench/luks_io.py [--size-mib N] [--runs N]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BIN = os.path.dirname(sys.executable)
SECRET = "secret,id=sec0,data=benchmark"
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list) -> tuple:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=CHILD_ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("failed: %s" % " ".join(cmd))
    return elapsed, usage.ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    qemu = {"img": shutil.which("qemu-img"), "io": shutil.which("qemu-io")}
    if not all(qemu.values()):
        raise SystemExit("qemu-img/qemu-io (qemu-utils) are needed for the comparison")
    ours = {"img": os.path.join(BIN, "pyqemu-img"), "io": os.path.join(BIN, "pyqemu-io")}
    size = "%dM" % args.size_mib
    with tempfile.TemporaryDirectory() as d:
        images = {
            "luks": (os.path.join(d, "b.luks"), "driver=luks,key-secret=sec0,file.filename=%s",
                     ["-f", "luks", "-o", "key-secret=sec0,iter-time=50"]),
            "qcow2+luks": (os.path.join(d, "b.qcow2"), "driver=qcow2,encrypt.key-secret=sec0,file.filename=%s",
                           ["-f", "qcow2", "-o", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=50"]),
        }
        print("%d MiB, median of %d runs, alternating; wall s (peak RSS MiB)" % (args.size_mib, args.runs))
        print("%-34s %16s %16s %7s" % ("operation", "qemu", "pyqemu", "ratio"))
        for name, (path, opts, create) in images.items():
            subprocess.run([ours["img"], "create", "-q", "--object", SECRET, *create, path, size], check=True)
            spec = opts % path
            out = os.path.join(d, "out.raw")
            ops = [("write -P", "io", ["--object", SECRET, "--image-opts", spec, "-c",
                                       "write -P 0x5a 0 %s" % size]),
                   ("read -P", "io", ["--object", SECRET, "--image-opts", spec, "-c", "read -P 0x5a 0 %s" % size]),
                   ("convert -O raw", "img", ["convert", "--object", SECRET, "--image-opts", spec, "-O", "raw", out])]
            for label, tool, argv in ops:
                times = {"qemu": [], "pyqemu": []}
                rss = {"qemu": 0, "pyqemu": 0}
                for _ in range(args.runs):
                    for who, progs in (("qemu", qemu), ("pyqemu", ours)):
                        t, r = timed([progs[tool], *argv])
                        times[who].append(t)
                        rss[who] = max(rss[who], r)
                q, p = statistics.median(times["qemu"]), statistics.median(times["pyqemu"])
                print("%-34s %8.2f (%4d) %8.2f (%4d) %6.2fx" % ("%s %s" % (name, label), q, rss["qemu"] >> 10,
                                                              p, rss["pyqemu"] >> 10, p / q))


if __name__ == "__main__":
    main()
