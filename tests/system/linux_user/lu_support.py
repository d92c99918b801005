"""Shared helpers of the user-mode system tests: build the C programs, run them natively and emulated.

(A module with a unique name rather than conftest.py, so that test files of other
directories that also import helpers cannot pick up the wrong one.)
"""
import os
import shutil
import subprocess
import sys

import pytest

# Under PyPy (the second pass of `make test`) every emulated process starts a
# fresh, unwarmed JIT, which makes the multi-process tests several times slower;
# that pass runs each program in one build and leaves the process-heavy tests
# (busybox, host programs, gdb) to the CPython pass, which covers the same code.
IS_PYPY = sys.implementation.name == "pypy"
pypy_heavy = pytest.mark.skipif(IS_PYPY, reason="process-heavy: covered by the CPython pass")
PROGS = os.path.join(os.path.dirname(__file__), "progs")
BIN = os.path.dirname(sys.executable)
# variant -> (gcc flags, emulator, emulator options)
VARIANTS = {
    "static64": (["-static"], "pyqemu-x86_64", []),
    "static32": (["-m32", "-static"], "pyqemu-i386", []),
    "pie64": (["-fPIE", "-pie"], "pyqemu-x86_64", ["-L", "/"]),
    "pie32": (["-m32", "-fPIE", "-pie"], "pyqemu-i386", ["-L", "/"]),
}


class Builder:
    def __init__(self, outdir):
        self.outdir = outdir
        self.cache = {}

    def build(self, name, variant, extra=()):
        key = (name, variant, tuple(extra))
        if key not in self.cache:
            gcc = shutil.which("gcc")
            assert gcc, "gcc (and gcc-multilib for -m32) must be installed"
            out = os.path.join(self.outdir, "%s-%s" % (name, variant))
            cmd = [gcc, "-O1", "-o", out, os.path.join(PROGS, name + ".c")] + VARIANTS[variant][0] + list(extra)
            subprocess.run(cmd, check=True, capture_output=True)
            self.cache[key] = out
        return self.cache[key]


def emulator(variant):
    """The command that starts the emulator for ``variant`` (a list).

    The console script when this interpreter has it installed; otherwise (the
    PyPy run of `make test`, with PYTHONPATH=src) the same entry point through
    this interpreter.
    """
    name = VARIANTS[variant][1]
    script = os.path.join(BIN, name)
    if os.path.exists(script):
        return [script]
    from pyqemu.linux_user.execve import PACKAGE_ROOT

    entry = "main_x86_64" if name.endswith("x86_64") else "main_i386"
    return [sys.executable, "-c", "import sys; sys.path.insert(0, %r); sys.argv[0] = %r; "
            "from pyqemu.cli.user import %s; %s()" % (PACKAGE_ROOT, name, entry, entry)]


def run_both(prog, variant, args=(), native_args=None, env=None, timeout=600, cwd=None, stdin=None):
    """Run natively and under pyqemu; returns (native, emulated) CompletedProcess."""
    native = subprocess.run([prog] + list(native_args if native_args is not None else args),
                            capture_output=True, timeout=timeout, env=env, cwd=cwd, input=stdin)
    emu = subprocess.run(emulator(variant) + VARIANTS[variant][2] + [prog] + list(args),
                         capture_output=True, timeout=timeout, env=env, cwd=cwd, input=stdin)
    return native, emu
