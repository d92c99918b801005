"""``-d`` log items, ``-D`` log file and ``-dfilter`` address ranges.

Modules test :func:`enabled` (or keep the bit from :func:`mask_of`) and write
with :func:`log`; the output goes to stderr unless ``-D`` names a file.
Items are registered with :func:`register`; the standard ones QEMU lists are
registered here so ``-d help`` always shows the full table.
"""
from __future__ import annotations

import sys
from typing import Dict, List, Optional, Tuple

from pyqemu.util.error import OptionError
from pyqemu.util.opts import parse_uint

_items: Dict[str, Tuple[int, str]] = {}
_order: List[str] = []
_mask = 0
_trace_patterns: List[str] = []
_stream = None
_filename: Optional[str] = None
_ranges: List[Tuple[int, int]] = []


def register(name: str, help: str) -> int:
    """Register a log item; returns its bit."""
    if name in _items:
        return _items[name][0]
    bit = 1 << len(_order)
    _items[name] = (bit, help)
    _order.append(name)
    return bit


for _name, _help in (
        ("out_asm", "show generated host assembly code for each compiled TB"),
        ("in_asm", "show target assembly code for each compiled TB"),
        ("op", "show micro ops for each compiled TB"),
        ("op_opt", "show micro ops after optimization"),
        ("op_ind", "show micro ops before indirect lowering"),
        ("int", "show interrupts/exceptions in short format"),
        ("exec", "show trace before each executed TB (lots of logs)"),
        ("cpu", "show CPU registers before entering a TB (lots of logs)"),
        ("fpu", "include FPU registers in the 'cpu' logging"),
        ("mmu", "log MMU-related activities"),
        ("pcall", "x86 only: show protected mode far calls/returns/exceptions"),
        ("cpu_reset", "show CPU state before CPU resets"),
        ("unimp", "log unimplemented functionality"),
        ("guest_errors", "log when the guest OS does something invalid (eg accessing a\n"
                         "non-existent register)"),
        ("page", "dump pages at beginning of user mode emulation"),
        ("nochain", "do not chain compiled TBs so that \"exec\" and \"cpu\" show\n"
                    "complete traces"),
        ("plugin", "output from TCG plugins"),
        ("strace", "log every user-mode syscall, its input, and its result"),
        ("tid", "open a separate log file per thread; filename must contain '%d'"),
):
    register(_name, _help)


def usage() -> str:
    """The text ``-d help`` prints."""
    lines = ["Log items (comma separated):"]
    for name in _order:
        if name == "strace":
            lines.append("")
        lines.append("%-15s %s" % (name, _items[name][1]))
    lines.append("trace:PATTERN   enable trace events")
    lines.append("")
    lines.append('Use "-d trace:help" to get a list of trace events.')
    return "\n".join(lines) + "\n\n"


def parse_items(text: str) -> Tuple[int, List[str]]:
    """``item[,item...]`` to (mask, trace patterns).

    ``all`` enables every item; a mask of 0 (``help`` or an unknown name)
    means the caller prints :func:`usage` and exits 1, as QEMU does.
    """
    mask = 0
    traces: List[str] = []
    for item in text.split(","):
        if item.startswith("trace:"):
            traces.append(item[6:])
            continue
        if item == "all":
            for bit, _ in _items.values():
                mask |= bit
            continue
        entry = _items.get(item)
        if entry is None:
            return 0, []
        mask |= entry[0]
    return mask, traces


def mask_of(name: str) -> int:
    return _items[name][0]


def set_mask(mask: int, traces: Optional[List[str]] = None) -> None:
    global _mask, _trace_patterns
    _mask = mask
    _trace_patterns = list(traces or [])


def get_mask() -> int:
    return _mask


def enabled(name: str) -> bool:
    entry = _items.get(name)
    return bool(entry and _mask & entry[0])


def set_file(filename: Optional[str]) -> None:
    """``-D file``: log there instead of stderr (``None`` back to stderr)."""
    global _stream, _filename
    if _stream is not None:
        _stream.close()
        _stream = None
    _filename = filename
    if filename:
        try:
            _stream = open(filename, "w", encoding="utf-8", errors="replace")
        except OSError as e:
            raise OptionError("could not open '%s': %s" % (filename, e.strerror))


def stream():
    return _stream if _stream is not None else sys.stderr


def log(text: str) -> None:
    s = stream()
    s.write(text)
    s.flush()


def parse_dfilter(text: str) -> List[Tuple[int, int]]:
    """``-dfilter start..end|start+size|start-size[,...]`` to inclusive ranges."""
    ranges = []
    for spec in text.split(","):
        op = None
        for cand in ("..", "+", "-"):
            idx = spec.find(cand, 1)
            if idx > 0:
                op, left, right = cand, spec[:idx], spec[idx + len(cand):]
                break
        if op is None:
            raise OptionError("Bad range specifier")
        try:
            lo = parse_uint(left)
        except (ValueError, OverflowError):
            raise OptionError("Invalid number to the left of %s" % op) from None
        try:
            hi = parse_uint(right)
        except (ValueError, OverflowError):
            raise OptionError("Invalid number to the right of %s" % op) from None
        if op == "..":
            begin, end = lo, hi
        elif op == "+":
            if hi == 0:
                raise OptionError("Invalid range")
            begin, end = lo, lo + hi - 1
        else:
            if hi == 0:
                raise OptionError("Invalid range")
            begin, end = lo - hi + 1, lo
        if begin > end or begin < 0 or end >= 1 << 64:
            raise OptionError("Invalid range")
        ranges.append((begin, end))
    return ranges


def set_dfilter(text: Optional[str]) -> None:
    global _ranges
    _ranges = parse_dfilter(text) if text else []


def in_dfilter(addr: int) -> bool:
    """True when ``addr`` passes ``-dfilter`` (always, with no filter)."""
    if not _ranges:
        return True
    for lo, hi in _ranges:
        if lo <= addr <= hi:
            return True
    return False
