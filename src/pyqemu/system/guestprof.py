"""A sampling profiler of the emulator itself, for developers:
``PYQEMU_PROFILE=FILE pyqemu-system-x86_64 ...`` (bench/guest_profile.py reads
FILE and names the guest functions from a System.map).

A SIGPROF timer (every 5 ms of CPU time) looks at what the interpreter is
doing: translating a block (any frame in tcg/ or a translator), a device or
the main loop, or running generated code; in the last case it records the
guest pc of the running CPU (the start of the block being executed, written
back at every block exit).  On exit (and every 2000 samples) the counts are written to FILE, one
``kind value count`` line each, most frequent first.

Python 3.9 syntax (PyPy runs it).
"""
from __future__ import annotations

import atexit
import os
import signal
import time
from collections import Counter
from typing import Any, Optional

_counts: "Counter[tuple]" = Counter()
_path: Optional[str] = None
_t0 = time.monotonic()

_TRANSLATE_FILES = ("/tcg/optimize.py", "/tcg/backend_py.py", "/tcg/ir.py",
                    "/target/i386/translate.py", "/target/i386/translate_sys.py",
                    "/target/i386/sysemu/translator.py", "/tcg/region.py")


def _classify(frame: Any) -> tuple:
    from pyqemu.system import cpus
    f = frame
    depth = 0
    while f is not None and depth < 40:
        name = f.f_code.co_filename
        for part in _TRANSLATE_FILES:
            if name.endswith(part):
                return ("translate", part.rsplit("/", 1)[1] + ":" + f.f_code.co_name)
        f = f.f_back
        depth += 1
    cpu = cpus.current_cpu
    if cpu is None:
        return ("other", frame.f_code.co_filename.rsplit("/", 1)[-1] + ":" + frame.f_code.co_name)
    fname = frame.f_code.co_filename
    if fname.startswith("<"):
        kind = "guest-interp" if "interp" in fname else "guest"
        return (kind, (cpu.seg_base[1] + cpu.rip) & 0xffffffffffffffff)
    return ("helper", (frame.f_code.co_filename.rsplit("/", 1)[-1] + ":" + frame.f_code.co_name,
                       (cpu.seg_base[1] + cpu.rip) & 0xffffffffffffffff))


def _handler(signum: int, frame: Any) -> None:
    try:
        _counts[_classify(frame)] += 1
        _counts[("total", "")] += 1
        if _counts[("total", "")] % 2000 == 0:
            _write()
    except Exception:  # never disturb the run being measured
        _counts[("error", "")] += 1


def _dump() -> None:
    signal.setitimer(signal.ITIMER_PROF, 0, 0)
    _write()


def _write() -> None:
    if _path is None:
        return
    from pyqemu.system import cpus
    with open(_path, "w") as f:
        f.write("wall %.1f\ncpu %.1f\ninsns %d\n" % (
            time.monotonic() - _t0, time.process_time(),
            sum(c.insn_count for c in (cpus.all_cpus or ()))))
        inval_pages: "Counter[int]" = Counter()
        for c in cpus.all_cpus or ():
            tr = getattr(c, "_translator", None)
            if tr is not None:
                f.write("tbs %d translations=%d invalidations=%d\n" % (
                    c.cpu_index if hasattr(c, "cpu_index") else 0,
                    tr.cache.translations, tr.cache.invalidations))
                # the cache counts, per physical page, the code writes that dropped blocks
                inval_pages.update(getattr(tr.cache, "inval_pages", {}))
        for pn, n in inval_pages.most_common(30):
            f.write("inval-page %x %d\n" % (pn << 12, n))
        for (kind, value), n in _counts.most_common():
            if isinstance(value, tuple):
                value = "%s@%x" % value
            elif isinstance(value, int):
                value = "%x" % value
            f.write("%s %s %d\n" % (kind, value, n))


def start_from_env() -> None:
    global _path
    path = os.environ.get("PYQEMU_PROFILE")
    if not path or _path is not None:
        return
    _path = path
    global _t0
    _t0 = time.monotonic()
    signal.signal(signal.SIGPROF, _handler)
    signal.setitimer(signal.ITIMER_PROF, 0.005, 0.005)
    atexit.register(_dump)
