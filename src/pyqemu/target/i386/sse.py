"""SSE/SSE2 instructions (the subset implemented so far; the rest raise #UD)."""
from __future__ import annotations


def handles(d, c: int) -> bool:
    return False


def grp15_mem(d, k: int) -> None:
    from pyqemu.target.i386.translate import Unsupported
    raise Unsupported()
