"""-d in_asm against real qemu-x86_64/qemu-i386: every instruction line that
both logs contain (same guest address) must be byte-identical.

The two emulators do not translate exactly the same blocks (different CPUID
features make glibc pick other string routines, block boundaries differ), so
the comparison is per address, and it requires a large overlap so that it
cannot pass vacuously.
"""
import os
import shutil
import subprocess
import sys

import pytest

BIN = os.path.dirname(sys.executable)


def _lines(path):
    """address -> instruction line, and block start address -> its IN: line."""
    out, labels = {}, {}
    label = None
    with open(path) as f:
        for line in f:
            if line.startswith("IN:"):
                label = line
            elif line.startswith("0x"):
                addr = line.split(":", 1)[0]
                out[addr] = line
                if label is not None:
                    labels[addr] = label
                    label = None
    return out, labels


def _compare(tmp_path, ours, theirs, argv):
    assert shutil.which(theirs), theirs + " must be installed (make peer-tools)"
    a, b = tmp_path / "ours.log", tmp_path / "theirs.log"
    ra = subprocess.run([os.path.join(BIN, ours), "-d", "in_asm", "-D", str(a)] + argv,
                        capture_output=True, timeout=300)
    rb = subprocess.run([theirs, "-d", "in_asm", "-D", str(b)] + argv,
                        capture_output=True, timeout=300)
    assert ra.returncode == rb.returncode
    assert ra.stdout == rb.stdout
    (la, na), (lb, nb) = _lines(a), _lines(b)
    common = set(la) & set(lb)
    assert len(common) > 0.6 * len(lb)
    diff = sorted((la[k], lb[k]) for k in common if la[k] != lb[k])
    assert diff[:5] == []
    # the symbol a block is named after (IN: main) where both start a block
    starts = set(na) & set(nb)
    assert len(starts) > 100
    assert sorted((na[k], nb[k]) for k in starts if na[k] != nb[k])[:5] == []
    return len(common)


@pytest.mark.slow
def test_busybox_x86_64(tmp_path):
    busybox = shutil.which("busybox") or "/bin/busybox"
    assert _compare(tmp_path, "pyqemu-x86_64", "qemu-x86_64",
                    [busybox, "sh", "-c", "echo hi | sed s/h/H/"]) > 2000


@pytest.mark.slow
@pytest.mark.parametrize("bits", [32, 64])
def test_gcc_program_with_symbols(tmp_path, bits):
    gcc = shutil.which("gcc")
    assert gcc, "gcc-multilib must be installed"
    src = tmp_path / "p.c"
    src.write_text('#include <stdio.h>\n#include <math.h>\n'
                   'int main(int c, char **v) { volatile double x = c * 1.5;\n'
                   '  printf("%d %.3f %s\\n", c, sqrt(x) + sin(x), v[0]); return 3; }\n')
    exe = tmp_path / "p"
    subprocess.run([gcc, "-m%d" % bits, "-static", "-O2", "-o", str(exe), str(src), "-lm"],
                   check=True)
    tools = ("pyqemu-i386", "qemu-i386") if bits == 32 else ("pyqemu-x86_64", "qemu-x86_64")
    assert _compare(tmp_path, tools[0], tools[1], [str(exe)]) > 2000
