"""gdb-multiarch drives pyqemu-x86_64 -g: breakpoints, stepping, registers, memory."""
import os
import shutil
import socket
import subprocess

import pytest

from lu_support import pypy_heavy, PROGS, emulator


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pypy_heavy
@pytest.mark.parametrize("flags,emu_opts", [(["-static"], []), (["-fPIE", "-pie"], ["-L", "/"])],
                         ids=["static", "pie"])
def test_gdb_session(tmp_path, flags, emu_opts):
    gdb = shutil.which("gdb-multiarch")
    assert gdb, "gdb-multiarch must be installed (make peer-tools)"
    prog = str(tmp_path / "hello")
    subprocess.run(["gcc", "-g", "-O0", "-o", prog, os.path.join(PROGS, "hello.c")] + flags, check=True)
    port = _free_port()
    emu = subprocess.Popen(emulator("static64") + emu_opts + ["-g", str(port), prog, "5", "word"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        cmds = ["set confirm off", "set tcp connect-timeout 60", "file " + prog,
                "target remote 127.0.0.1:%d" % port, "break main", "continue",
                "p argc", "p/x $rip == (long)&main + 0 || 1", "info registers rip",
                "x/s argv[2]", "stepi", "p/x $pc", "next", "next", "p i",
                "set var argc = 2", "p argc", "x/2xb main", "delete", "continue"]
        args = [gdb, "-nx", "-batch"]
        for c in cmds:
            args += ["-ex", c]
        out = subprocess.run(args, capture_output=True, text=True, timeout=300)
        status = emu.wait(timeout=120)
    finally:
        if emu.poll() is None:
            emu.kill()
            emu.wait()
    text = out.stdout
    assert "Breakpoint 1, main (argc=3" in text, text + out.stderr
    assert "$1 = 3" in text
    assert "<main+" in text                       # info registers rip, symbolised
    assert '"word"' in text                       # memory read through the stub
    assert "$4 = 1" in text                       # the loop variable after two `next`
    assert "$5 = 2" in text                       # register/memory write through the stub
    assert "exited with code 05" in text
    assert status == 5
    # argc was changed to 2 by gdb before the loop re-read it: only argv[1] printed.
    assert emu.stdout.read() == b"argv[1]=5\nenv=(unset)\nsizeof(long)=8\n"
