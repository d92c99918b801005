"""Sizes as QEMU prints and reads them.

``size_to_str`` formats like qemu-img's human output (``1 GiB``, ``192 KiB``,
``11.3 MiB``): three significant digits, the largest binary unit that keeps
the number at or above about 1000/1024.
"""
from __future__ import annotations

import math

from pyqemu.util.opts import strtosz

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40
PiB = 1 << 50
EiB = 1 << 60

_SUFFIXES = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def _c_g3(value: float) -> str:
    """C's ``%0.3g``."""
    return "%0.3g" % value


def size_to_str(value: int) -> str:
    """Format a byte count the way QEMU's ``size_to_str`` does."""
    if value <= 0:
        return "0 B"
    _, exp = math.frexp(value / (1000.0 / 1024.0))
    idx = (exp - 1) // 10
    idx = max(0, min(idx, len(_SUFFIXES) - 1))
    return "%s %s" % (_c_g3(value / float(1 << (idx * 10))), _SUFFIXES[idx])


def parse_size_arg(text: str, default_suffix: str = "B") -> int:
    """A size as typed on a command line (``1G``, ``512k``, ``0x1000``).

    Raises ValueError/OverflowError; callers word the error for their option.
    """
    return strtosz(text, default_suffix)
