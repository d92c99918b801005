"""Build the C test programs once per session and run them natively and emulated."""
import os
import shutil
import subprocess
import sys

import pytest

PROGS = os.path.join(os.path.dirname(__file__), "progs")
BIN = os.path.dirname(sys.executable)
# variant -> (gcc flags, emulator, emulator options)
VARIANTS = {
    "static64": (["-static"], "pyqemu-x86_64", []),
    "static32": (["-m32", "-static"], "pyqemu-i386", []),
    "pie64": (["-fPIE", "-pie"], "pyqemu-x86_64", ["-L", "/"]),
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


@pytest.fixture(scope="session")
def builder(tmp_path_factory):
    return Builder(str(tmp_path_factory.mktemp("progs")))


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
