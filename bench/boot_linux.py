"""Time to the Linux guest's init marker: real qemu-system-x86_64 (TCG)
against pyqemu-system-x86_64 (CPython, PyPy; with and without host-side
unpacking of the bzImage), all with the same Debian kernel, initramfs and
command line (scripts/linux-guest.py builds them into .cache/linux).

Prints wall-clock seconds to the marker, the ratio to real QEMU, and the
guest instruction count where it can be measured (real QEMU: a second run
with -icount shift=0, asked over QMP with query-replay at the marker).
A configuration that does not reach the marker within its time limit is
reported as such, never with a made-up number. Not part of `make test`.

    .venv/bin/python bench/boot_linux.py [--timeout S] [--only qemu,cpython,...]
"""
from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from pyqemu.hw.i386.initramfs import INIT_MARKER, fetch_debian_guest  # noqa: E402

CMDLINE = "console=ttyS0 quiet"


def configs(guest: dict) -> list:
    base = ["-kernel", guest["kernel"], "-initrd", guest["initrd"], "-append", CMDLINE,
            "-nographic", "-no-reboot", "-m", "256"]
    out = []
    qemu = shutil.which("qemu-system-x86_64")
    out.append(("qemu", "qemu-system-x86_64 (TCG)", [qemu, "-accel", "tcg"] + base if qemu else None))
    for tag, venv, what in (("cpython", ".venv", "CPython"), ("pypy", ".venv-pypy", "PyPy")):
        # the package itself runs from src/ (PYTHONPATH, set in main) on either interpreter
        py = REPO / venv / "bin" / "python"
        cmd = [str(py), "-m", "pyqemu.cli.system"] if py.exists() else None
        out.append((tag, "pyqemu on %s" % what, cmd and cmd + ["-M", "pc"] + base))
        out.append((tag + "-unpack", "pyqemu on %s, host-unpack=on" % what,
                    cmd and cmd + ["-M", "pc,host-unpack=on"] + base))
        # guest time counted in instructions (8 ns each): the guest's timer
        # ticks no longer eat a slow emulator's time (docs/system.md)
        out.append((tag + "-unpack-icount", "pyqemu on %s, host-unpack=on, -icount shift=3" % what,
                    cmd and cmd + ["-M", "pc,host-unpack=on", "-icount", "shift=3,sleep=off"] + base))
    return out


def time_to_marker(cmd: list, timeout: float, qmp_path: str = "") -> tuple:
    """(seconds to the marker or None, icount or None, last output line)."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    t0 = time.monotonic()
    buf = b""
    found = None
    icount = None
    try:
        while time.monotonic() - t0 < timeout:
            if not sel.select(timeout=1.0):
                if proc.poll() is not None:
                    break
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buf = (buf + chunk)[-65536:]
            if INIT_MARKER.encode() in buf:
                found = time.monotonic() - t0
                if qmp_path:
                    icount = query_icount(qmp_path)
                break
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        proc.stdout.close()
    last = buf.decode(errors="replace").strip().splitlines()[-1:] or [""]
    return found, icount, last[0]


def query_icount(path: str) -> int:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(path)
    f = s.makefile("rw")
    f.readline()
    for cmd in ("qmp_capabilities", "stop", "query-replay"):
        f.write(json.dumps({"execute": cmd}) + "\n")
        f.flush()
        while True:
            r = json.loads(f.readline())
            if "event" not in r:
                break
    s.close()
    return int(r["return"]["icount"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per run (default 1800)")
    ap.add_argument("--only", default="", help="comma-separated: qemu,cpython,cpython-unpack,"
                    "cpython-unpack-icount,pypy,pypy-unpack,pypy-unpack-icount")
    args = ap.parse_args()
    os.environ["PYTHONPATH"] = str(REPO / "src") + (
        ":" + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")
    guest = fetch_debian_guest()
    only = set(filter(None, args.only.split(",")))
    results = {}
    for tag, desc, cmd in configs(guest):
        if only and tag not in only:
            continue
        if cmd is None:
            print("%-16s %s: not available (program not installed)" % (tag, desc))
            continue
        icount = None
        if "icount" in tag:
            # the instruction count comes from the same run (query-replay at the marker)
            with tempfile.TemporaryDirectory() as d:
                qmp = os.path.join(d, "qmp.sock")
                secs, icount, last = time_to_marker(
                    cmd + ["-qmp", "unix:%s,server=on,wait=off" % qmp], args.timeout, qmp)
        else:
            secs, _, last = time_to_marker(cmd, args.timeout)
        if secs is None:
            print("%-16s %s: did NOT reach the init marker within %d s (last output: %r)"
                  % (tag, desc, args.timeout, last[:100]))
            continue
        results[tag] = secs
        line = "%-16s %s: %.1f s to the init marker" % (tag, desc, secs)
        if tag == "qemu":
            with tempfile.TemporaryDirectory() as d:
                qmp = os.path.join(d, "qmp.sock")
                _, icount, _ = time_to_marker(cmd + ["-icount", "shift=0", "-qmp",
                                                     "unix:%s,server=on,wait=off" % qmp],
                                              args.timeout, qmp)
            if icount:
                line += ", %.2f billion guest instructions (-icount shift=0 run)" % (icount / 1e9)
        elif icount:
            line += ", %.2f billion guest instructions, %.1f guest MIPS" % (icount / 1e9,
                                                                           icount / 1e6 / secs)
        else:
            line += ", guest instructions: counted only with -icount (the -icount rows)"
        if tag != "qemu" and "qemu" in results:
            line += ", %.1fx real QEMU" % (secs / results["qemu"])
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
