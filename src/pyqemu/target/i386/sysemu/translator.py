"""The x86 translator for a system-mode CPU: one decoder (translate.py), blocks
compiled against the CPU's soft MMU, indexed by the physical address of their
code as QEMU's are.

* Generated code reaches memory through ``cpu.views[mmu_idx]`` (an
  ``MMUView``): the TB flags carry the CPL, so each block is compiled against
  the view of its MMU index and needs no change in the backend.
* Lookup: a per-(CS base, flags) map from EIP to block answers the execution
  loop.  A TLB flush empties it, except after a CR3 load that keeps global
  pages: the lookups of blocks whose code lies only on global pages (still
  mapped the same way by the retained TLB entries) survive, so kernel code is
  not looked up again after every context switch.  A dropped lookup is found
  again through the physical address of the code (re-translated only if no
  block for that physical code exists).
* Writes to a physical page holding code reach ``code_write_hook`` (the soft
  MMU withdraws its fast path).  As QEMU's tb_invalidate_phys_page_range,
  only the blocks whose code bytes overlap the written bytes are dropped: a
  per-page bitmap of the bytes covered by blocks answers the common case (a
  store to data next to code, or to a site the kernel patches outside any
  block) without looking at the blocks.  The page stays marked as code
  while blocks remain on it.  Code is tracked machine-wide: a store from any
  CPU drops the blocks of every CPU (``_CodeGroup``).

Python 3.9 syntax (PyPy runs it).
"""
from __future__ import annotations

import weakref
from typing import Dict, List, Optional, Set, Tuple

from pyqemu.exec.softmmu import ACCESS_FETCH, PAGE_MASK
from pyqemu.tcg.backend_py import PyCodegen
from pyqemu.tcg.ir import Block, Builder
from pyqemu.tcg import tier
from pyqemu.tcg.optimize import optimize
from pyqemu.tcg.tb import TB, TBCache
from pyqemu.target.i386 import translate as T
from pyqemu.target.i386 import translate_sys  # noqa: F401 - registers the system handlers
from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu.excp import CpuException
from pyqemu.util import log

M32 = 0xffffffff
M64 = (1 << 64) - 1


class SysTB(TB):
    # ranges: (physical page, first byte, end byte) of the code, per page;
    # vpns: the linear pages of the code
    __slots__ = ("phys_pc", "phys_page2", "lin_page2", "ranges", "vpns")


# the longest x86 instruction: the bytes a decoder-raised #UD may depend on
MAX_INSN_LEN = 15
_ONES = b"\x01" * 4096


class _CodePage:
    """The blocks with code on one physical page and the bytes they cover."""

    __slots__ = ("ranges", "bitmap")

    def __init__(self) -> None:
        self.ranges: List[Tuple[int, int, SysTB]] = []
        # one byte per byte of the page: nonzero where some block's code lies
        # (rebuilt after an invalidation; never misses a covered byte)
        self.bitmap = bytearray(4096)

    def add(self, start: int, end: int, tb: SysTB) -> None:
        self.ranges.append((start, end, tb))
        self.bitmap[start:end] = _ONES[:end - start]

    def rebuild(self) -> None:
        self.ranges = [r for r in self.ranges if r[2].valid]
        bm = self.bitmap = bytearray(4096)
        for start, end, _tb in self.ranges:
            bm[start:end] = _ONES[:end - start]


class _CodePageMarker:
    """What TBCache expects of its ``mem``: marks physical code pages in the TLB."""

    def __init__(self, tlb) -> None:
        self.tlb = tlb
        self.on_code_write = None

    def mark_code(self, pn: int) -> None:
        self.tlb.mark_code_page(pn << 12)


class _SamePageMap:
    """The EIP map as the tiering code sees it when it builds a region of hot
    blocks (tcg/tier.py, tcg/region.py calls only ``get``): only blocks that
    start on the head's linear page, the only ones whose mapping is sure to
    stay that of the head, as for chained jumps.  A filtering view, so a
    block going hot costs a few lookups, not a scan of every block."""

    __slots__ = ("m", "page")

    def __init__(self, m: Dict[int, TB], page: int) -> None:
        self.m = m
        self.page = page

    def get(self, pc: int, default: Optional[TB] = None) -> Optional[TB]:
        tb = self.m.get(pc)
        if tb is None or (tb.cs_base + pc) >> 12 != self.page:
            return default
        return tb


class _SamePageMaps:
    """The cache as the tiering code sees it (see _SamePageMap)."""

    def __init__(self, cache: "PhysTBCache", head: TB) -> None:
        self.cache = cache
        self.page = (head.cs_base + head.pc) >> 12

    def pc_map(self, cs_base: int, flags: int) -> _SamePageMap:
        return _SamePageMap(self.cache.pc_map(cs_base, flags), self.page)


class _CodeGroup:
    """The block caches of every CPU over one physical address space.  As in
    QEMU, translated code is tracked machine-wide: a page with code of any CPU
    is marked in every CPU's TLB, and a store from any CPU drops the blocks
    it overlaps in every cache (Linux patches its text on one CPU while the
    others run it).  Caches are held weakly: a machine that goes away leaves
    nothing behind."""

    def __init__(self) -> None:
        self.refs: List["weakref.ref[PhysTBCache]"] = []

    def members(self) -> List["PhysTBCache"]:
        live = [c for c in (r() for r in self.refs) if c is not None]
        if len(live) != len(self.refs):
            self.refs = [weakref.ref(c) for c in live]
        return live

    def join(self, cache: "PhysTBCache") -> None:
        for other in self.members():
            for pn in other.code:
                cache.tlb.mark_code_page(pn << 12)
        self.refs.append(weakref.ref(cache))

    def mark(self, pn: int) -> None:
        for cache in self.members():
            cache.tlb.mark_code_page(pn << 12)

    def unmark_if_unused(self, pn: int) -> None:
        caches = self.members()
        if any(pn in cache.code for cache in caches):
            return
        # no translated code left there: stores may take the fast path again
        for cache in caches:
            cache.tlb.unmark_code_page(pn << 12)

    def code_write(self, paddr: int, size: int) -> None:
        start = paddr & 0xfff
        end = start + size
        if end > 4096:
            self._write(paddr >> 12, start, 4096)
            self._write((paddr >> 12) + 1, 0, end - 4096)
        else:
            self._write(paddr >> 12, start, end)

    def _write(self, pn: int, start: int, end: int) -> None:
        found = False
        for cache in self.members():
            if pn in cache.code:
                found = True
                cache.invalidate_range(pn, start, end)
        if not found:
            self.unmark_if_unused(pn)


# physical address space -> its caches' group
_groups: "weakref.WeakKeyDictionary[object, _CodeGroup]" = weakref.WeakKeyDictionary()


def _mmu_idx(flags: int) -> int:
    return c.MMU_USER_IDX if (flags >> T.SYSF_CPL_SHIFT) & 3 == 3 else c.MMU_KERNEL_IDX


class PhysTBCache(TBCache):
    """Blocks keyed by (physical pc, eip, CS base, flags); pages are physical."""

    def __init__(self, tlb) -> None:
        super().__init__(_CodePageMarker(tlb))
        self.tlb = tlb
        self.phys: Dict[Tuple[int, int, int, int], SysTB] = {}
        # physical page number -> its blocks and covered bytes
        self.code: Dict[int, _CodePage] = {}
        group = _groups.get(tlb.as_)
        if group is None:
            group = _groups[tlb.as_] = _CodeGroup()
        self.group = group
        group.join(self)
        tlb.code_write_hook = group.code_write
        tlb.flush_hooks.append(self.flush_virtual)
        tlb.flush_global_hooks.append(self.flush_virtual_nonglobal)
        tlb.flush_page_hooks.append(self.flush_virtual_page)
        # linear page -> the (CS base, flags, eip) lookups of blocks with code on it
        self.vpages: Dict[int, set] = {}
        # linear pages of lookups that a CR3 load keeping global pages must
        # drop: one of their TLB entries was not global (or missing)
        self.volatile: Set[int] = set()
        # physical page number -> code writes that dropped blocks (PYQEMU_PROFILE)
        self.inval_pages: Dict[int, int] = {}

    def remember(self, tb: TB, m: Dict[int, TB]) -> None:
        """Enter tb in the EIP map ``m`` (of its CS base and flags)."""
        m[tb.pc] = tb
        key = (tb.cs_base, tb.flags, tb.pc)
        table = self.tlb.tables[_mmu_idx(tb.flags)]
        vpages = self.vpages
        for vpn in tb.vpns:
            s = vpages.get(vpn)
            if s is None:
                s = vpages[vpn] = set()
            s.add(key)
            # find_tb has just translated through these entries: a global one
            # keeps its mapping across CR3 loads, and so may the lookup
            e = table.get(vpn << 12)
            if e is None or not e.is_global:
                self.volatile.add(vpn)

    def invalidate_range(self, pn: int, start: int, end: int) -> None:
        """Drop this cache's blocks with code in bytes [start, end) of
        physical page pn."""
        page = self.code.get(pn)
        if page is None:
            return
        bm = page.bitmap
        if end - start == 1:
            if not bm[start]:
                return
        elif not any(bm[start:end]):
            return
        hit = [tb for s, e, tb in page.ranges if s < end and start < e and tb.valid]
        if not hit:
            return
        self.inval_pages[pn] = self.inval_pages.get(pn, 0) + 1
        touched = set()
        for tb in hit:
            self._drop(tb)
            for ppn, _s, _e in tb.ranges:
                touched.add(ppn)
        for ppn in touched:
            self._rebuild(ppn)

    def _rebuild(self, pn: int) -> None:
        page = self.code.get(pn)
        if page is None:
            return
        page.rebuild()
        if not page.ranges:
            del self.code[pn]
            self.page_tbs.pop(pn, None)
            self.group.unmark_if_unused(pn)

    def add(self, tb: TB) -> None:
        self.phys[(tb.phys_pc, tb.pc, tb.cs_base, tb.flags)] = tb
        self.remember(tb, self.pc_map(tb.cs_base, tb.flags))
        self.translations += 1
        # a tiered function (tcg/tier.py) swaps in compiled code once hot
        attach = getattr(tb.fn, "tier_attach", None)
        if attach is not None:
            attach(tb, _SamePageMaps(self, tb))
        for pn, start, end in tb.ranges:
            page = self.code.get(pn)
            if page is None:
                page = self.code[pn] = _CodePage()
                self.group.mark(pn)
            page.add(start, end, tb)

    def _drop(self, tb: TB) -> None:
        self.unlink(tb)
        key = (tb.phys_pc, tb.pc, tb.cs_base, tb.flags)
        if self.phys.get(key) is tb:
            del self.phys[key]
        m = self.by_pc.get((tb.cs_base, tb.flags))
        if m is not None and m.get(tb.pc) is tb:
            del m[tb.pc]

    def invalidate_page(self, pn: int) -> None:
        """Drop every block with code on physical page pn."""
        self.invalidate_range(pn, 0, 4096)

    def flush_virtual(self) -> None:
        """Forget EIP -> block lookups (the mapping of virtual pages changed).
        The maps are emptied in place: the execution loop holds them."""
        for m in self.by_pc.values():
            m.clear()
        self.vpages.clear()
        self.volatile.clear()

    def flush_virtual_nonglobal(self) -> None:
        """A TLB flush that kept the global entries (CR3 load with CR4.PGE):
        forget the lookups that went through any other entry."""
        by_pc = self.by_pc
        vpages = self.vpages
        for vpn in self.volatile:
            for cs_base, flags, pc in vpages.pop(vpn, ()):
                m = by_pc.get((cs_base, flags))
                if m is not None:
                    m.pop(pc, None)
        self.volatile.clear()

    def flush_virtual_page(self, vpage: int) -> None:
        """INVLPG: forget the lookups of blocks with code on that linear page."""
        for cs_base, flags, pc in self.vpages.pop(vpage >> 12, ()):
            m = self.by_pc.get((cs_base, flags))
            if m is not None:
                m.pop(pc, None)

    def flush(self) -> None:
        for pn in list(self.code):
            self.invalidate_page(pn)
        self.phys.clear()
        self.flush_virtual()


def _code_ranges(lin: int, size: int, mask: int, pages) -> Tuple[tuple, tuple]:
    """The physical byte ranges (page, start, end) and the linear pages of the
    code [lin, lin + size) (linear addresses wrap at ``mask``), over the
    (linear, physical) page pairs fetched; bytes of a page that was not
    fetched were not read."""
    fetched = dict(pages)
    ranges = []
    vpns = []
    end = lin + size
    while lin < end:
        stop = min(end, (lin | 0xfff) + 1)
        lpn = (lin & mask) >> 12
        ppn = fetched.get(lpn)
        if ppn is not None:
            ranges.append((ppn, lin & 0xfff, ((stop - 1) & 0xfff) + 1))
            vpns.append(lpn)
        lin = stop
    return tuple(ranges), tuple(vpns)


def sys_flags(cpu) -> int:
    """TB flags of the CPU's current state (QEMU's hflags that the decoder uses)."""
    f = T.SYSF_SYS | (cpu.cpl << T.SYSF_CPL_SHIFT)
    if cpu.code64:
        f |= T.SYSF_CODE64
    elif cpu.code32:
        f |= T.SYSF_CODE32
    pe = cpu.cr[0] & c.CR0_PE
    vm86 = cpu.eflags & c.VM_MASK
    if pe:
        f |= T.SYSF_PE
    if vm86:
        f |= T.SYSF_VM86
    if cpu.ss32:
        f |= T.SYSF_SS32
    if cpu.lma:
        f |= T.SYSF_LMA
    if not cpu.code64:
        b = cpu.seg_base
        if not pe or vm86 or not cpu.code32 or b[c.R_ES] | b[c.R_DS] | b[c.R_SS]:
            f |= T.SYSF_ADDSEG
    return f


def _mode_of(flags: int) -> int:
    if flags & T.SYSF_CODE64:
        return 64
    return 32 if flags & T.SYSF_CODE32 else 16


class SysTranslator(T.Translator):
    """The translator of one system-mode CPU (each CPU has its own TLB)."""

    def __init__(self, cpu) -> None:
        self.cpu = cpu
        self.mem = cpu.views[0]
        self.cache = PhysTBCache(cpu.tlb)
        self.g = T.X86Globals()
        self.page_cache: Dict[int, bytes] = {}
        self._phys_pages: Optional[set] = None
        self._mmu_idx = 0

    @staticmethod
    def flags_for(cpu) -> int:
        return sys_flags(cpu)

    def find_tb(self, pc: int, flags: int, max_insns: int = 0) -> TB:
        cpu = self.cpu
        cs_base = cpu.seg_base[c.R_CS]
        m = self.cache.pc_map(cs_base, flags)
        tb = m.get(pc)
        if tb is not None:
            return tb
        idx = _mmu_idx(flags)
        lin = (cs_base + pc) & (M64 if flags & T.SYSF_CODE64 else M32)
        phys = cpu.tlb.translate(lin, ACCESS_FETCH, idx)
        tb = self.cache.phys.get((phys, pc, cs_base, flags))
        if tb is not None and tb.phys_page2 >= 0:
            # a block spanning two pages is only valid while both map the same way
            try:
                p2 = cpu.tlb.translate(tb.lin_page2, ACCESS_FETCH, idx) >> 12
            except CpuException:
                p2 = -1
            if p2 != tb.phys_page2:
                tb = None
        if tb is None:
            tb = self._translate_sys(pc, flags, max_insns, cs_base, idx)
        self.cache.remember(tb, m)
        return tb

    def fetch_page(self, lin: int, d: T.Disas) -> bytes:
        cpu = self.cpu
        cr2 = cpu.cr[2]
        try:
            phys = cpu.tlb.translate(lin, ACCESS_FETCH, self._mmu_idx)
        except CpuException:
            if d.insns:
                # the block just ends before this instruction: no fault yet
                cpu.cr[2] = cr2
            raise
        self._phys_pages.append((lin >> 12, phys >> 12))
        return cpu.as_.read_bytes(phys & PAGE_MASK, 4096)

    def _translate_sys(self, pc: int, flags: int, max_insns: int, cs_base: int,
                       idx: int) -> SysTB:
        from pyqemu.exec.cpu_loop import ONE_INSN_FLAG
        if flags & ONE_INSN_FLAG:
            max_insns = 1
        self._phys_pages = []
        self._mmu_idx = idx
        view = self.cpu.views[idx]
        block = Block(pc)
        b = Builder(block)
        d = T.Disas(self, b, pc, _mode_of(flags), max_insns or T.MAX_INSNS, flags, cs_base)
        d.run()
        if log.enabled("in_asm"):
            from pyqemu.target.i386.disas import in_asm_block
            log.log(in_asm_block((cs_base + pc) & M64, d.code_bytes(), d.mode, ""))
        if log.enabled("op"):
            log.log("OP:\n" + block.dump() + "\n")
        if not tier.lazy_optimize():
            optimize(block, b.const)
        if log.enabled("op_opt"):
            log.log("OP after optimization and liveness analysis:\n" + block.dump() + "\n")
        fn, src = PyCodegen(block, view, T._restore).compile("<tb %x:%x>" % (cs_base, pc))
        if log.enabled("out_asm"):
            log.log("OUT: [size=%d]\n%s\n" % (len(src), src))
        tb = SysTB(pc, cs_base, flags)
        tb.fn = fn
        tb.src = src
        tb.ninsns = block.ninsns
        tb.size = d.pc - pc
        pages = self._phys_pages
        tb.phys_pc = (pages[0][1] << 12) | ((cs_base + pc) & 0xfff)
        tb.phys_page2 = -1
        tb.lin_page2 = 0
        for lpn, ppn in pages[1:]:
            if ppn != pages[0][1]:
                tb.phys_page2, tb.lin_page2 = ppn, lpn << 12
        tb.pages = tuple(sorted({p for _l, p in pages}))
        size = tb.size
        if d.insns and d.pc == d.insns[-1]:
            # the decoder gave up on the last instruction (#UD at its start):
            # the block depends on the bytes it looked at, which may be
            # patched into a valid instruction later
            size += MAX_INSN_LEN
        mask = M64 if flags & T.SYSF_CODE64 else M32
        tb.ranges, tb.vpns = _code_ranges((cs_base + pc) & mask, max(size, 1), mask, pages)
        self.cache.add(tb)
        return tb


def get_sys_translator(cpu) -> SysTranslator:
    tr = getattr(cpu, "_translator", None)
    if tr is None:
        tr = cpu._translator = SysTranslator(cpu)
    return tr
