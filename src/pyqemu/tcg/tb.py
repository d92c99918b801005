"""Translation blocks and their cache.

Blocks are keyed by (pc, cs_base, flags).  A block never crosses a guest page
(the frontend stops at page ends), and each block is registered on the page(s)
its bytes come from, so a write to such a page (reported by GuestMemory's
``on_code_write``) invalidates exactly those blocks and unchains every jump
into them.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

from pyqemu.tcg.ir import Block


class TB:
    __slots__ = ("pc", "cs_base", "flags", "fn", "size", "ninsns", "jmp", "jmp_in", "pages",
                 "src", "valid", "block", "regions")

    def __init__(self, pc: int, cs_base: int, flags: int) -> None:
        self.pc = pc
        self.cs_base = cs_base
        self.flags = flags
        self.fn: Optional[Callable] = None
        self.size = 0
        self.ninsns = 0
        self.jmp: List[Optional["TB"]] = [None, None]
        self.jmp_in: List[Tuple["TB", int]] = []
        self.pages: Tuple[int, ...] = ()
        self.src = ""
        self.valid = True
        self.block: Optional[Block] = None
        # callbacks of the regions (tcg.region) compiled with this block's code
        self.regions: List[Callable[[], None]] = []


class TBCache:
    """All translations made for one guest address space."""

    def __init__(self, mem) -> None:
        self.mem = mem
        self.tbs: Dict[Tuple[int, int, int], TB] = {}
        # The execution loop's fast lookup: (cs_base, flags) -> {pc: TB}
        self.by_pc: Dict[Tuple[int, int], Dict[int, TB]] = {}
        self.page_tbs: Dict[int, List[TB]] = {}
        self.translations = 0
        self.invalidations = 0
        mem.on_code_write = self.invalidate_page

    def get(self, pc: int, cs_base: int, flags: int) -> Optional[TB]:
        return self.tbs.get((pc, cs_base, flags))

    def pc_map(self, cs_base: int, flags: int) -> Dict[int, TB]:
        m = self.by_pc.get((cs_base, flags))
        if m is None:
            m = self.by_pc[(cs_base, flags)] = {}
        return m

    def add(self, tb: TB) -> None:
        self.tbs[(tb.pc, tb.cs_base, tb.flags)] = tb
        self.pc_map(tb.cs_base, tb.flags)[tb.pc] = tb
        self.translations += 1
        # A tiered function (tcg.tier) swaps in compiled code once hot.
        attach = getattr(tb.fn, "tier_attach", None)
        if attach is not None:
            attach(tb, self)
        for pn in tb.pages:
            self.page_tbs.setdefault(pn, []).append(tb)
            self.mem.mark_code(pn)

    def chain(self, src: TB, n: int, dst: TB) -> None:
        src.jmp[n] = dst
        dst.jmp_in.append((src, n))

    def invalidate_page(self, pn: int) -> None:
        for tb in self.page_tbs.pop(pn, ()):
            if not tb.valid:
                continue
            self.unlink(tb)
            key = (tb.pc, tb.cs_base, tb.flags)
            if self.tbs.get(key) is tb:
                del self.tbs[key]
                m = self.by_pc.get((tb.cs_base, tb.flags))
                if m is not None and m.get(tb.pc) is tb:
                    del m[tb.pc]

    def unlink(self, tb: TB) -> None:
        """Mark ``tb`` invalid, stop the regions built on it and cut its chained jumps."""
        tb.valid = False
        self.invalidations += 1
        regions, tb.regions = tb.regions, []
        for stop in regions:
            stop()
        for src, n in tb.jmp_in:
            if src.jmp[n] is tb:
                src.jmp[n] = None
        tb.jmp_in = []
        for i in range(len(tb.jmp)):
            tb.jmp[i] = None

    def flush(self) -> None:
        for pn in list(self.page_tbs):
            self.invalidate_page(pn)
