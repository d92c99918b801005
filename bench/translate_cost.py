"""Benchmark: what translating one block costs, stage by stage, on CPython and PyPy.

A real run is recorded first (under CPython): every block the x86 translator
is asked for, with the code pages it read.  The recorded blocks are then
translated again, outside any emulator, by a fresh interpreter per set and
per Python implementation, timing each stage of every block:

  decode    guest bytes -> IR (target/i386/translate.py, Disas.run)
  optimize  tcg/optimize.py
  interp    the interpreter tier's pre-decode (tcg/interp.py build)
  codegen   Python source + compile() (tcg/backend_py.py compile_python),
            which a block only pays once it is hot

Two passes over the set: the first is cold (as at start-up, where PyPy's
cost is its interpreter and tracer), the second warm.  Figures are CPU
microseconds per block and per guest instruction.

Sets: ``user`` is /bin/ls -l / (dynamic, run with -L /) under
pyqemu-x86_64; ``busybox`` is a static busybox's sh running a few applets;
``sys`` is the first seconds of the Debian kernel booting under
``-M pc,host-unpack=on`` (needs .cache/linux from scripts/linux-guest.py;
skipped when absent).  The recording also says how many of the blocks ever
got hot (were compiled to Python) in that run.

    .venv/bin/python bench/translate_cost.py [--dir DIR] [user|busybox|sys ...]

With ``--dir`` the recordings are kept in DIR and reused by later runs, so
that code changes are compared on the same blocks.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SRC = os.path.join(ROOT, "src")
PYPY = os.path.join(ROOT, ".venv-pypy", "bin", "python")
SYS_CPU_SECONDS = 40.0


# -- recording ---------------------------------------------------------------------

class _Recorder:
    """Collects (block key, pages read) of every translation; pages deduplicated."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.contents = {}        # bytes -> id
        self.blocks = []          # (pc, flags, max_insns, cs_base, ((lin_pn, id), ...))
        self.cur = None
        self.tbs = []

    def page(self, lin_pn: int, data: bytes) -> None:
        cid = self.contents.setdefault(bytes(data), len(self.contents))
        if self.cur is not None:
            self.cur.append((lin_pn, cid))

    def dump(self, path: str) -> None:
        hot = sum(1 for tb in self.tbs if not hasattr(tb.fn, "tier_attach"))
        pages = [None] * len(self.contents)
        for data, cid in self.contents.items():
            pages[cid] = data
        with open(path, "wb") as f:
            pickle.dump({"kind": self.kind, "pages": pages, "blocks": self.blocks,
                         "hot": hot, "total": len(self.tbs)}, f)


def record_user(out: str, argv) -> None:
    from pyqemu.target.i386 import translate as T
    rec = _Recorder("user")
    real_fetch = T.Translator.fetch_page
    real_translate = T.Translator._translate

    def fetch_page(self, lin, d):
        data = real_fetch(self, lin, d)
        rec.page(lin >> 12, data)
        return data

    def _translate(self, pc, flags, max_insns):
        rec.cur = []
        tb = real_translate(self, pc, flags, max_insns)
        rec.blocks.append((pc, flags, max_insns, 0, tuple(rec.cur)))
        rec.cur = None
        rec.tbs.append(tb)
        return tb

    T.Translator.fetch_page = fetch_page
    T.Translator._translate = _translate
    real_exit = os._exit

    def _exit(status):
        rec.dump(out)
        real_exit(status)
    os._exit = _exit
    from pyqemu.cli.user import main_x86_64
    try:
        main_x86_64(argv)
    except SystemExit:
        rec.dump(out)
        raise


def record_sys(out: str, budget: float, argv) -> None:
    import threading
    from pyqemu.exec.main_loop import main_loop
    from pyqemu.system import vl
    from pyqemu.system.runstate import runstate
    from pyqemu.target.i386.sysemu import translator as ST
    rec = _Recorder("sys")
    real_fetch = ST.SysTranslator.fetch_page
    real_translate = ST.SysTranslator._translate_sys

    def fetch_page(self, lin, d):
        data = real_fetch(self, lin, d)
        rec.page(lin >> 12, data)
        return data

    def _translate_sys(self, pc, flags, max_insns, cs_base, idx):
        rec.cur = []
        tb = real_translate(self, pc, flags, max_insns, cs_base, idx)
        rec.blocks.append((pc, flags, max_insns, cs_base, tuple(rec.cur)))
        rec.cur = None
        rec.tbs.append(tb)
        return tb

    ST.SysTranslator.fetch_page = fetch_page
    ST.SysTranslator._translate_sys = _translate_sys

    def watch():
        while time.process_time() < budget:
            time.sleep(0.2)
        main_loop().bh_schedule(lambda: runstate().request_shutdown("host-signal"))
    threading.Thread(target=watch, daemon=True).start()
    try:
        vl.qemu_main(argv)
    finally:
        rec.dump(out)


# -- replaying -----------------------------------------------------------------------

class _ReplayMem:
    """Just what the translator, the interpreter tier and the backend take from memory."""

    def __init__(self) -> None:
        self.rpages = {}
        self.wpages = {}

    def load(self, addr, size):
        raise RuntimeError("not executed")

    def store(self, addr, val, size):
        raise RuntimeError("not executed")


class _ReplayTranslator:
    """Stands in for a Translator: serves the recorded code pages to ``Disas``."""

    def __init__(self, g, mem) -> None:
        self.g = g
        self.mem = mem
        self.pages = {}

    def fetch_page(self, lin, d):
        return self.pages[lin >> 12]


def measure(path: str, passes: int, codegen: bool) -> dict:
    from pyqemu.tcg import interp, tier
    from pyqemu.tcg.backend_py import LOOP_LIMIT, PyCodegen
    from pyqemu.tcg.ir import Block, Builder
    from pyqemu.tcg.optimize import optimize
    from pyqemu.target.i386 import translate as T
    from pyqemu.target.i386 import translate_sys  # noqa: F401  (system handlers)
    from pyqemu.target.i386.sysemu.translator import _mode_of
    with open(path, "rb") as f:
        data = pickle.load(f)
    pages = data["pages"]
    mem = _ReplayMem()
    tr = _ReplayTranslator(T.X86Globals(), mem)
    sysmode = data["kind"] == "sys"
    clock = time.process_time
    results = []
    lazy = getattr(tier, "lazy_optimize", lambda: False)()
    for _ in range(passes):
        t = {"decode": 0.0, "optimize": 0.0, "interp": 0.0, "codegen": 0.0}
        insns = 0
        ops_before = ops_after = 0
        for pc, flags, max_insns, cs_base, pgs in data["blocks"]:
            tr.pages = {pn: pages[cid] for pn, cid in pgs}
            t0 = clock()
            block = Block(pc)
            b = Builder(block)
            if sysmode:
                d = T.Disas(tr, b, pc, _mode_of(flags), max_insns or T.MAX_INSNS, flags, cs_base)
            else:
                d = T.Disas(tr, b, pc, 64 if flags & 1 else 32, max_insns or T.MAX_INSNS)
            d.run()
            t1 = clock()
            ops_before += len(block.ops)
            if lazy:
                # as the translators do: a new block is interpreted as decoded
                # and only optimized once hot, just before it is compiled
                interp.build(block, mem, T._restore, LOOP_LIMIT, 20, None)
                t2 = clock()
                optimize(block, b.const)
                t3 = clock()
                t2, t3 = t1 + (t3 - t2), t3
            else:
                optimize(block, b.const)
                t2 = clock()
                interp.build(block, mem, T._restore, LOOP_LIMIT, 20, None)
                t3 = clock()
            ops_after += len(block.ops)
            if codegen:
                PyCodegen(block, mem, T._restore).compile_python("<tb 0x%x>" % pc)
            t4 = clock()
            t["decode"] += t1 - t0
            t["optimize"] += t2 - t1
            t["interp"] += t3 - t2
            t["codegen"] += t4 - t3
            insns += block.ninsns
        results.append({"times": t, "insns": insns, "ops_before": ops_before,
                        "ops_after": ops_after})
    return {"blocks": len(data["blocks"]), "hot": data["hot"], "total": data["total"],
            "lazy": lazy, "passes": results}


# -- driver ---------------------------------------------------------------------------

def _record(kind: str, tmp: str) -> str:
    out = os.path.join(tmp, kind + ".pickle")
    env = dict(os.environ, PYTHONPATH=SRC)
    me = os.path.abspath(__file__)
    if kind == "user":
        cmd = [sys.executable, me, "_record_user", out, "-L", "/", "/bin/ls", "-l", "/"]
    elif kind == "busybox":
        bb = shutil.which("busybox") or "/bin/busybox"
        script = ("x=$(echo hello world | tr a-z A-Z); echo $x | wc -c; "
                  "printf '%s\\n' 3 1 2 | sort -n | head -n 2; seq 1 200 | md5sum; "
                  "echo abc | sed s/b/X/; ls / > /dev/null")
        cmd = [sys.executable, me, "_record_user", out, bb, "sh", "-c", script]
    else:
        from pyqemu.hw.i386.initramfs import fetch_debian_guest
        guest = fetch_debian_guest()
        cmd = [sys.executable, me, "_record_sys", out, str(SYS_CPU_SECONDS),
               "-M", "pc,host-unpack=on", "-kernel", guest["kernel"], "-initrd",
               guest["initrd"], "-append", "console=ttyS0", "-display", "none", "-nodefaults",
               "-no-reboot", "-m", "256", "-serial", "file:" + os.path.join(tmp, "serial.txt")]
    p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if not os.path.exists(out):
        raise SystemExit("recording %s failed: %s" % (kind, p.stderr.decode(errors="replace")))
    return out


def _report(name: str, res: dict) -> None:
    print("  %s: %d blocks (%d of %d got hot in the recorded run); optimize %s" % (
        name, res["blocks"], res["hot"], res["total"],
        "when hot" if res.get("lazy") else "every block"))
    hot = res["hot"] / max(res["total"], 1)
    for i, p in enumerate(res["passes"]):
        t = p["times"]
        n = res["blocks"]
        ni = max(p["insns"], 1)
        print("    pass %d (%s): %d guest insns, IR ops %d -> %d" % (
            i + 1, "cold" if i == 0 else "warm", p["insns"], p["ops_before"], p["ops_after"]))
        print("      %-9s %10s %10s %10s" % ("stage", "total s", "us/block", "us/insn"))
        for k in ("decode", "optimize", "interp", "codegen"):
            print("      %-9s %10.3f %10.1f %10.2f" % (k, t[k], t[k] / n * 1e6, t[k] / ni * 1e6))
        # what the recorded run paid: every block is decoded and pre-decoded,
        # only hot ones are compiled (and, with lazy optimization, optimized)
        opt = t["optimize"] * (hot if res.get("lazy") else 1.0)
        run = t["decode"] + t["interp"] + opt + t["codegen"] * hot
        print("      %-9s %10.3f %10.1f %10.2f" % ("as run", run, run / n * 1e6, run / ni * 1e6))


def main() -> None:
    args = sys.argv[1:]
    keep = None
    if args[:1] == ["--dir"]:
        keep, args = args[1], args[2:]
        os.makedirs(keep, exist_ok=True)
    kinds = args or ["user", "busybox", "sys"]
    tmp = keep or tempfile.mkdtemp()
    try:
        for kind in kinds:
            if kind == "sys" and not os.path.isdir(os.path.join(ROOT, ".cache", "linux")):
                print("%s: skipped (no .cache/linux; see scripts/linux-guest.py)" % kind)
                continue
            path = os.path.join(tmp, kind + ".pickle")
            if not os.path.exists(path):
                t0 = time.time()
                path = _record(kind, tmp)
                print("%s: recorded in %.0f s" % (kind, time.time() - t0))
            else:
                print("%s: recording %s" % (kind, path))
            for name, py in (("CPython", sys.executable), ("PyPy", PYPY)):
                if not os.path.exists(py):
                    print("  %s: not installed (%s)" % (name, py))
                    continue
                p = subprocess.run([py, os.path.abspath(__file__), "_measure", path],
                                   env=dict(os.environ, PYTHONPATH=SRC), capture_output=True)
                if p.returncode != 0:
                    print("  %s: failed\n%s" % (name, p.stderr.decode(errors="replace")))
                    continue
                _report(name, json.loads(p.stdout))
    finally:
        if keep is None:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "_record_user":
        record_user(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) > 2 and sys.argv[1] == "_record_sys":
        record_sys(sys.argv[2], float(sys.argv[3]), sys.argv[4:])
    elif len(sys.argv) > 2 and sys.argv[1] == "_measure":
        print(json.dumps(measure(sys.argv[2], int(os.environ.get("PASSES", "2")),
                                 os.environ.get("CODEGEN", "1") != "0")))
    else:
        main()
