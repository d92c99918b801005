"""Benchmark: a CPU-bound C program natively, under qemu-x86_64 and under pyqemu-x86_64.

Prints wall and CPU times, guest MIPS (per CPU second, robust on a loaded machine) (guest instructions from the emulator's own counter,
cross-checked with valgrind's exact count of the native run when available) and
the ratio to qemu-x86_64.  Run: python bench/user_cpu.py [rounds [long_rounds]]

A few rounds are dominated by start-up (translation, the tiers' warm-up, on
PyPy the JIT's tracing).  With ``long_rounds`` each pyqemu also runs that
many rounds and a third figure is printed: the steady-state rate, i.e. the
extra guest instructions of the long run divided by its extra CPU time.

The translator's tier settings pass through the environment to both pyqemu
runs: ``PYQEMU_TCG_HOT=0`` compiles every block at once (no interpreter tier),
``PYQEMU_TCG_HOT=never`` only interprets, ``PYQEMU_TCG_REGIONS=0`` turns off
multi-block regions (see docs/tcg.md, "Tiers").
"""
from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SRC = os.path.join(ROOT, "src")

# Runs pyqemu-x86_64 in-process and writes the guest instruction count to a file.
RUNNER = r"""
import sys
import pyqemu.exec.cpu_loop as loop
out = sys.argv[1]
real = loop.cpu_exec
def counting(cpu):
    try:
        return real(cpu)
    finally:
        with open(out, "w") as f:
            f.write(str(cpu.insn_count))
loop.cpu_exec = counting
from pyqemu.cli.user import main_x86_64
main_x86_64(sys.argv[2:])
"""


def timed(cmd, env=None, runs=1):
    """Median wall time and CPU time (user+sys of the child: robust on a loaded machine)."""
    times, cpus = [], []
    out = None
    for _ in range(runs):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, env=env)
        times.append(time.perf_counter() - t)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
        if p.returncode != 0:
            raise SystemExit("failed: %s\n%s" % (" ".join(cmd), p.stderr.decode(errors="replace")))
        out = p.stdout
    return statistics.median(times), statistics.median(cpus), out


def main() -> None:
    rounds = sys.argv[1] if len(sys.argv) > 1 else "3"
    long_rounds = sys.argv[2] if len(sys.argv) > 2 else None
    tmp = tempfile.mkdtemp()
    try:
        prog = os.path.join(tmp, "user_cpu")
        subprocess.run(["gcc", "-O2", "-static", "-o", prog, os.path.join(HERE, "user_cpu.c")],
                       check=True)
        t_native, c_native, ref = timed([prog, rounds], runs=3)
        print("native:            %8.3f s wall %8.3f s cpu" % (t_native, c_native))
        native_insns = None
        if shutil.which("valgrind"):
            cg = os.path.join(tmp, "cg.out")
            p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + cg, prog,
                                rounds], capture_output=True)
            for line in p.stderr.decode().splitlines():
                if "Collected" in line:
                    native_insns = int(line.split()[-1])
        if native_insns:
            print("guest instructions (valgrind, native run): %d" % native_insns)
        t_qemu = None
        if shutil.which("qemu-x86_64"):
            t_qemu, c_qemu, out = timed(["qemu-x86_64", prog, rounds], runs=3)
            assert out == ref, "qemu-x86_64 output differs"
            insns = native_insns or 0
            print("qemu-x86_64:       %8.3f s wall %8.3f s cpu  %s" % (
                t_qemu, c_qemu, "%.0f MIPS (cpu)" % (insns / max(c_qemu, 1e-3) / 1e6) if insns else ""))
        env = dict(os.environ, PYTHONPATH=SRC)
        tiers = ["%s=%s" % (k, v) for k, v in sorted(os.environ.items())
                 if k in ("PYQEMU_TCG_HOT", "PYQEMU_TCG_REGIONS")]
        if tiers:
            print("translator settings: " + " ".join(tiers))
        for name, py in (("pyqemu (CPython)", sys.executable),
                         ("pyqemu (PyPy)", shutil.which("pypy3"))):
            if not py:
                print("%s: not available" % name)
                continue
            cnt = os.path.join(tmp, "count")
            t, cpu, out = timed([py, "-c", RUNNER, cnt, prog, rounds], env=env)
            if out != ref:
                print("%s: OUTPUT DIFFERS" % name)
                continue
            with open(cnt) as f:
                insns = int(f.read())
            ratio = "  %.0fx qemu-x86_64's cpu time" % (cpu / max(c_qemu, 1e-3)) if t_qemu else ""
            print("%-18s %8.3f s wall %8.3f s cpu  %d guest insns  %.2f guest MIPS (cpu)%s" % (
                name + ":", t, cpu, insns, insns / cpu / 1e6, ratio))
            if long_rounds:
                t2, cpu2, out2 = timed([py, "-c", RUNNER, cnt, prog, long_rounds], env=env)
                _, _, ref2 = timed([prog, long_rounds])
                if out2 != ref2:
                    print("%s, %s rounds: OUTPUT DIFFERS" % (name, long_rounds))
                    continue
                with open(cnt) as f:
                    insns2 = int(f.read())
                print("%-18s %8.3f s wall %8.3f s cpu  %d guest insns  %.2f guest MIPS (cpu), %s rounds"
                      % ("", t2, cpu2, insns2, insns2 / cpu2 / 1e6, long_rounds))
                print("%-18s steady state (%s minus %s rounds): %.2f guest MIPS (cpu)" % (
                    "", long_rounds, rounds, (insns2 - insns) / max(cpu2 - cpu, 1e-3) / 1e6))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
