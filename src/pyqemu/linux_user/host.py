"""Direct host system calls through libc's syscall(2).

The host is x86-64 Linux, so for calls whose arguments are plain integers
and byte buffers the guest's request can be made to the kernel unchanged;
this keeps results (and errors) exactly the kernel's.
"""
from __future__ import annotations

import ctypes
from typing import Union

from pyqemu.linux_user.syscall_nr import X86_64_NUMBERS

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

Arg = Union[int, bytes, ctypes.Array, None]


def _conv(a: Arg):
    if a is None:
        return ctypes.c_void_p(0)
    if isinstance(a, int):
        return ctypes.c_long(a if a < (1 << 63) else a - (1 << 64))
    return a


def host_syscall(name: str, *args: Arg) -> int:
    """Call host syscall ``name``; returns the result or ``-errno``."""
    ret = _syscall(ctypes.c_long(X86_64_NUMBERS[name]), *[_conv(a) for a in args])
    if ret == -1:
        return -ctypes.get_errno()
    return ret


def buffer(size: int) -> ctypes.Array:
    return ctypes.create_string_buffer(size)
