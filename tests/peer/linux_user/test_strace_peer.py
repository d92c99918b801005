"""-strace output of a static program: pyqemu against real qemu-x86_64/qemu-i386."""
import re
import shutil
import subprocess
import sys
import os

import pytest

BIN = os.path.dirname(sys.executable)
SRC = r'''
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    printf("hello %d\n", argc);
    open("/pyqemu-no-such-file", O_RDONLY);
    close(99);
    char b[4];
    read(0, b, 0);
    return 3;
}
'''


def normalise(text, pid):
    out = []
    for line in text.splitlines():
        line = re.sub(r"\b%d\b" % pid, "PID", line)
        line = re.sub(r"0x[0-9a-f]{6,}", "ADDR", line)   # addresses (stack, heap)
        line = re.sub(r"-?\b[0-9]{6,}\b", "NUM", line)    # pointers printed as numbers
        out.append(line)
    return out


@pytest.mark.parametrize("bits,ours,theirs", [(64, "pyqemu-x86_64", "qemu-x86_64"),
                                              (32, "pyqemu-i386", "qemu-i386")])
def test_strace_matches_qemu(tmp_path, bits, ours, theirs):
    assert shutil.which(theirs), "qemu-user must be installed"
    src = tmp_path / "t.c"
    src.write_text(SRC)
    prog = str(tmp_path / "t")
    subprocess.run(["gcc", "-O1", "-static", "-o", prog, str(src)] + (["-m32"] if bits == 32 else []),
                   check=True)
    results = []
    for cmd in ([theirs], [os.path.join(BIN, ours)]):
        p = subprocess.Popen(cmd + ["-strace", prog], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
        out, err = p.communicate(timeout=300)
        results.append((p.returncode, out, normalise(err.decode(), p.pid)))
    (rc_q, out_q, lines_q), (rc_p, out_p, lines_p) = results
    assert rc_p == rc_q == 3 and out_p == out_q
    assert lines_p == lines_q
