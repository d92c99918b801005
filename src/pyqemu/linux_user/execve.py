"""execve: the new program runs under pyqemu too.

The guest's execve becomes a host execve of a fresh emulator (of the
program's own word size) with the options the current one inherits (-L,
-cpu, -strace ...).  '#!' scripts are resolved here as the kernel would,
so the interpreter is emulated as well.
"""
from __future__ import annotations

import errno
import os
import sys
from typing import List, Optional, Tuple

import pyqemu

MAX_SHEBANG = 256
# Where the pyqemu package lives, fixed when the emulator starts (the guest may
# chdir later, and PYTHONPATH may hold a relative path).
PACKAGE_ROOT = os.path.abspath(os.path.dirname(os.path.dirname(pyqemu.__file__)))


def _launcher(bits: int) -> List[str]:
    """A host command line that starts pyqemu-x86_64 or pyqemu-i386."""
    entry = "main_x86_64" if bits == 64 else "main_i386"
    paths = [PACKAGE_ROOT]
    code = ("import sys; sys.path[:0] = %r; sys.argv[0] = %r; "
            "from pyqemu.cli.user import %s; %s()" %
            (paths, "pyqemu-x86_64" if bits == 64 else "pyqemu-i386", entry, entry))
    return [sys.executable, "-c", code]


def _classify(path: str) -> Tuple[Optional[int], bytes, int]:
    """(ELF word size or None, first line for scripts, errno or 0)."""
    try:
        if not os.path.isfile(path):
            return None, b"", errno.EACCES if os.path.exists(path) else errno.ENOENT
        if not os.access(path, os.X_OK):
            return None, b"", errno.EACCES
        with open(path, "rb") as f:
            head = f.read(MAX_SHEBANG)
    except OSError as exc:
        return None, b"", exc.errno or errno.EACCES
    if head[:4] == b"\x7fELF" and len(head) >= 20:
        machine = int.from_bytes(head[18:20], "little")
        if head[4] == 2 and machine == 62:
            return 64, b"", 0
        if head[4] == 1 and machine == 3:
            return 32, b"", 0
        return None, b"", errno.ENOEXEC
    if head[:2] == b"#!":
        return None, head[2:].split(b"\n", 1)[0], 0
    return None, b"", errno.ENOEXEC


def prepare_exec(proc, path: bytes, argv: List[bytes]) -> Tuple[List, int]:
    """The host command for the guest's execve(path, argv), or ([], errno)."""
    spath = os.fsdecode(path)
    if not spath:
        return [], errno.ENOENT
    bits, shebang, err = _classify(spath)
    if err:
        return [], err
    args = [os.fsdecode(a) for a in argv]
    if bits is None:
        # A script: the interpreter (and at most one argument) runs the file.
        line = shebang.strip()
        if not line:
            return [], errno.ENOEXEC
        interp, _sep, arg = line.replace(b"\t", b" ").partition(b" ")
        arg = arg.strip()
        new_argv = [os.fsdecode(interp)] + ([os.fsdecode(arg)] if arg else []) + [spath] + args[1:]
        ibits, _s, ierr = _classify(os.fsdecode(interp))
        if ierr or ibits is None:
            return [], ierr or errno.ENOEXEC
        return _launcher(ibits) + proc.exec_options + ["-0", new_argv[0], new_argv[0]] + new_argv[1:], 0
    argv0 = args[0] if args else spath
    return _launcher(bits) + proc.exec_options + ["-0", argv0, spath] + args[1:], 0
