"""The soft-MMU TLB: virtual page -> (physical page, rights, host buffer).

One table per MMU index (kernel, user, physical ...), keyed by the 4 KiB
virtual page number, as QEMU's CPUTLB.  A miss calls the target's
``fill(vaddr, access, mmu_idx) -> (paddr, prot, page_size, is_global)``,
which walks the page tables and raises the guest's fault itself.

The fast path for translated code is :meth:`SoftMMU.host_addr`: for RAM it
returns ``(mmap, offset)`` so generated code can use ``struct.Struct``
``unpack_from``/``pack_into`` directly; ``None`` means take the slow path
(:meth:`ld`/:meth:`st`), which dispatches MMIO and ROM through the memory API.

Pages that hold translated code are registered with :meth:`mark_code_page`;
their write fast path is withdrawn so every store to them reaches
``code_write_hook(paddr, size)``, the translator's invalidation entry.

Translated code does not call into the TLB on a hit: :class:`MMUView` (one
per MMU index) gives it the backend's memory contract, ``rpages``/``wpages``
dicts from virtual page number to the 4 KiB host buffer of that page, kept
equal to the TLB's RAM entries (filled on refill, emptied on every flush),
and ``load``/``store`` slow paths that refill, fault or dispatch MMIO.

Python 3.9 syntax (the translator runs on PyPy).
"""
from __future__ import annotations

import contextlib
import struct
from typing import Callable, Dict, List, Optional, Set, Tuple

ACCESS_READ = 0
ACCESS_WRITE = 1
ACCESS_FETCH = 2

PAGE_READ = 1
PAGE_WRITE = 2
PAGE_EXEC = 4

PAGE_BITS = 12
PAGE_SIZE = 1 << PAGE_BITS
PAGE_MASK = ~(PAGE_SIZE - 1)

_ACCESS_PROT = (PAGE_READ, PAGE_WRITE, PAGE_EXEC)
_LE = {1: struct.Struct("<B"), 2: struct.Struct("<H"), 4: struct.Struct("<I"),
       8: struct.Struct("<Q")}

FillFn = Callable[[int, int, int], Tuple[int, int, int, bool]]


class TLBEntry:
    """One cached translation of a 4 KiB virtual page."""

    __slots__ = ("vpage", "ppage", "prot", "mem", "off", "write_fast", "is_global")

    def __init__(self, vpage: int, ppage: int, prot: int, mem, off: int,
                 write_fast: bool, is_global: bool) -> None:
        self.vpage = vpage
        self.ppage = ppage
        self.prot = prot
        self.mem = mem            # the RAM block's mmap, or None for MMIO / partial pages
        self.off = off            # offset of the page inside mem
        self.write_fast = write_fast
        self.is_global = is_global


class SoftMMU:
    """A CPU's TLB in front of its page walk, over one physical AddressSpace."""

    def __init__(self, address_space, fill: FillFn, nb_mmu_modes: int = 3) -> None:
        self.as_ = address_space
        self.fill = fill
        self.tables: List[Dict[int, TLBEntry]] = [{} for _ in range(nb_mmu_modes)]
        # physical page -> set of (mmu_idx, vpage) mapping it, for invalidation
        self._phys: Dict[int, Set[Tuple[int, int]]] = {}
        # per MMU index, one aligned region (base, mask) covering every large
        # page entered since the last flush, as QEMU keeps it; flush_page inside
        # it flushes the whole index (a large page occupies many 4 KiB entries)
        self._large: List[Optional[Tuple[int, int]]] = [None] * nb_mmu_modes
        # per MMU index, the virtual pages of non-global entries: a CR3 load
        # drops only those, without looking at the (many) global ones
        self._nonglobal: List[Set[int]] = [set() for _ in range(nb_mmu_modes)]
        self.code_pages: Set[int] = set()
        self.code_write_hook: Optional[Callable[[int, int], None]] = None
        self._view = None
        # the backend's fast tables: virtual page number -> page buffer, per index
        self.rpages: List[Dict[int, memoryview]] = [{} for _ in range(nb_mmu_modes)]
        self.wpages: List[Dict[int, memoryview]] = [{} for _ in range(nb_mmu_modes)]
        self._bufs: Dict[int, memoryview] = {}
        # called after every flush (the translator forgets its virtual-PC lookups);
        # a one-page flush calls flush_page_hooks(vpage) instead when it can, a
        # flush that kept the global entries flush_global_hooks() when set
        self.flush_hooks: List[Callable[[], None]] = []
        self.flush_page_hooks: List[Callable[[int], None]] = []
        self.flush_global_hooks: List[Callable[[], None]] = []

    # -- lookup ------------------------------------------------------------
    def lookup(self, vaddr: int, access: int, mmu_idx: int) -> TLBEntry:
        """The entry for vaddr allowing ``access``; refills (and may fault)."""
        vpage = vaddr & PAGE_MASK
        e = self.tables[mmu_idx].get(vpage)
        if e is not None and e.prot & _ACCESS_PROT[access]:
            return e
        return self._refill(vaddr, access, mmu_idx)

    def _add_large(self, mmu_idx: int, vaddr: int, page_size: int) -> None:
        mask = ~(page_size - 1)
        old = self._large[mmu_idx]
        if old is not None:
            # widen the region until it holds both the old one and this page
            mask &= old[1]
            while (old[0] ^ vaddr) & mask:
                mask <<= 1
        self._large[mmu_idx] = (vaddr & mask, mask)

    def _refill(self, vaddr: int, access: int, mmu_idx: int) -> TLBEntry:
        self.check_topology()
        paddr, prot, page_size, is_global = self.fill(vaddr, access, mmu_idx)
        vpage = vaddr & PAGE_MASK
        ppage = paddr & PAGE_MASK
        if page_size > PAGE_SIZE:
            self._add_large(mmu_idx, vaddr, page_size)
        mem, off, ro = self._host_page(ppage)
        write_fast = mem is not None and not ro and ppage not in self.code_pages
        if ro:
            # ROM: reads from the buffer, writes go to the memory API (ignored there)
            write_fast = False
        e = TLBEntry(vpage, ppage, prot, mem, off, write_fast, is_global)
        self.tables[mmu_idx][vpage] = e
        if is_global:
            self._nonglobal[mmu_idx].discard(vpage)
        else:
            self._nonglobal[mmu_idx].add(vpage)
        self._phys.setdefault(ppage, set()).add((mmu_idx, vpage))
        vpn = vpage >> PAGE_BITS
        if mem is not None:
            buf = self._bufs.get(ppage)
            if buf is None:
                buf = self._bufs[ppage] = memoryview(mem)[off:off + PAGE_SIZE]
            if prot & PAGE_READ:
                self.rpages[mmu_idx][vpn] = buf
            if write_fast and prot & PAGE_WRITE:
                self.wpages[mmu_idx][vpn] = buf
            else:
                self.wpages[mmu_idx].pop(vpn, None)
        else:
            self.rpages[mmu_idx].pop(vpn, None)
            self.wpages[mmu_idx].pop(vpn, None)
        return e

    def check_topology(self) -> None:
        """Flush when the memory map changed (PAM, BAR moves): cached buffers are stale."""
        view = self.as_.flat_view()
        if view is not self._view:
            self.flush()
            self._bufs.clear()
            self._view = view

    def _host_page(self, ppage: int):
        r = self.as_.lookup(ppage)
        if r is None or r.mr.ram_block is None or r.start > ppage or r.end < ppage + PAGE_SIZE:
            return None, 0, False
        mr = r.mr
        return mr.ram_block.mem, mr.ram_offset + r.offset + (ppage - r.start), r.readonly

    def host_addr(self, vaddr: int, access: int, mmu_idx: int):
        """Fast-path contract: (mmap, offset) of vaddr for RAM, else None.

        The caller must not cross the 4 KiB page with one access.
        """
        e = self.lookup(vaddr, access, mmu_idx)
        if e.mem is None or (access == ACCESS_WRITE and not e.write_fast):
            return None
        return e.mem, e.off + (vaddr & (PAGE_SIZE - 1))

    def translate(self, vaddr: int, access: int, mmu_idx: int) -> int:
        """Physical address of vaddr (faults as an access would)."""
        e = self.lookup(vaddr, access, mmu_idx)
        return e.ppage | (vaddr & (PAGE_SIZE - 1))

    # -- loads and stores (the slow path) ------------------------------------
    def ld(self, vaddr: int, size: int, mmu_idx: int, access: int = ACCESS_READ) -> int:
        off = vaddr & (PAGE_SIZE - 1)
        if off + size <= PAGE_SIZE:
            # hit path inlined: this is every helper's memory access
            e = self.tables[mmu_idx].get(vaddr - off)
            if e is not None and e.prot & _ACCESS_PROT[access] and e.mem is not None:
                return _LE[size].unpack_from(e.mem, e.off + off)[0]
        if (vaddr & (PAGE_SIZE - 1)) + size > PAGE_SIZE:
            # Check both pages before touching either, as the hardware does.
            n = PAGE_SIZE - (vaddr & (PAGE_SIZE - 1))
            self.lookup(vaddr, access, mmu_idx)
            self.lookup(vaddr + n, access, mmu_idx)
            v = 0
            for i in range(size):
                v |= self.ld(vaddr + i, 1, mmu_idx, access) << (8 * i)
            return v
        e = self.lookup(vaddr, access, mmu_idx)
        if e.mem is not None:
            return _LE[size].unpack_from(e.mem, e.off + (vaddr & (PAGE_SIZE - 1)))[0]
        return self.as_.read(e.ppage | (vaddr & (PAGE_SIZE - 1)), size)

    def ld_code(self, vaddr: int, size: int, mmu_idx: int) -> int:
        return self.ld(vaddr, size, mmu_idx, ACCESS_FETCH)

    def st(self, vaddr: int, size: int, value: int, mmu_idx: int) -> None:
        value &= (1 << (8 * size)) - 1
        off = vaddr & (PAGE_SIZE - 1)
        if off + size <= PAGE_SIZE:
            e = self.tables[mmu_idx].get(vaddr - off)
            if e is not None and e.write_fast and e.prot & PAGE_WRITE:
                _LE[size].pack_into(e.mem, e.off + off, value)
                return
        if (vaddr & (PAGE_SIZE - 1)) + size > PAGE_SIZE:
            n = PAGE_SIZE - (vaddr & (PAGE_SIZE - 1))
            self.lookup(vaddr, ACCESS_WRITE, mmu_idx)
            self.lookup(vaddr + n, ACCESS_WRITE, mmu_idx)
            for i in range(size):
                self.st(vaddr + i, 1, value >> (8 * i), mmu_idx)
            return
        e = self.lookup(vaddr, ACCESS_WRITE, mmu_idx)
        paddr = e.ppage | (vaddr & (PAGE_SIZE - 1))
        if e.write_fast:
            _LE[size].pack_into(e.mem, e.off + (vaddr & (PAGE_SIZE - 1)), value)
            return
        if e.ppage in self.code_pages and self.code_write_hook is not None:
            self.code_write_hook(paddr, size)
        self.as_.write(paddr, size, value)
        if e.mem is None:
            # an MMIO write may have remapped memory (PAM, PCI BARs)
            self.check_topology()

    def read_bytes(self, vaddr: int, length: int, mmu_idx: int) -> bytes:
        out = bytearray()
        while length > 0:
            n = min(length, PAGE_SIZE - (vaddr & (PAGE_SIZE - 1)))
            out += self.as_.read_bytes(self.translate(vaddr, ACCESS_READ, mmu_idx), n)
            vaddr += n
            length -= n
        return bytes(out)

    # -- invalidation ----------------------------------------------------------
    def flush(self, keep_global: bool = False) -> None:
        """Drop every entry (``keep_global``: all but global pages, as a CR3 load
        with CR4.PGE set)."""
        for idx, table in enumerate(self.tables):
            if keep_global:
                for vpage in list(self._nonglobal[idx]):
                    self._drop(idx, vpage)
            else:
                table.clear()
                self._nonglobal[idx].clear()
                self.rpages[idx].clear()
                self.wpages[idx].clear()
                self._large[idx] = None
        if not keep_global:
            self._phys.clear()
        if keep_global and self.flush_global_hooks:
            for hook in self.flush_global_hooks:
                hook()
        else:
            self._flushed()

    def _flushed(self) -> None:
        for hook in self.flush_hooks:
            hook()

    def flush_mmuidx(self, mmu_idx: int) -> None:
        for vpage in list(self.tables[mmu_idx]):
            self._drop(mmu_idx, vpage)
        self._large[mmu_idx] = None
        self._flushed()

    def flush_page(self, vaddr: int) -> None:
        """invlpg: forget vaddr's page in every MMU index."""
        vpage = vaddr & PAGE_MASK
        whole = False
        for idx in range(len(self.tables)):
            large = self._large[idx]
            if large is not None and vaddr & large[1] == large[0]:
                self.flush_mmuidx(idx)
                whole = True
            else:
                self._drop(idx, vpage)
        if whole or not self.flush_page_hooks:
            self._flushed()
        else:
            for hook in self.flush_page_hooks:
                hook(vpage)

    def _drop(self, idx: int, vpage: int) -> None:
        self.rpages[idx].pop(vpage >> PAGE_BITS, None)
        self.wpages[idx].pop(vpage >> PAGE_BITS, None)
        e = self.tables[idx].pop(vpage, None)
        self._nonglobal[idx].discard(vpage)
        if e is not None:
            s = self._phys.get(e.ppage)
            if s is not None:
                s.discard((idx, vpage))
                if not s:
                    del self._phys[e.ppage]

    def flush_phys_page(self, paddr: int) -> None:
        """Forget every virtual mapping of the physical page holding paddr."""
        ppage = paddr & PAGE_MASK
        for idx, vpage in list(self._phys.get(ppage, ())):
            self._drop(idx, vpage)

    # -- translated-code tracking ----------------------------------------------
    def mark_code_page(self, paddr: int) -> None:
        """The translator made a block from this physical page: route its writes
        through ``code_write_hook``."""
        ppage = paddr & PAGE_MASK
        if ppage not in self.code_pages:
            self.code_pages.add(ppage)
            for idx, vpage in self._phys.get(ppage, ()):
                self.tables[idx][vpage].write_fast = False
                self.wpages[idx].pop(vpage >> PAGE_BITS, None)

    def unmark_code_page(self, paddr: int) -> None:
        """No translated code left on the page: writes may take the fast path again."""
        ppage = paddr & PAGE_MASK
        if ppage in self.code_pages:
            self.code_pages.discard(ppage)
            self.flush_phys_page(ppage)


class MMUView:
    """One MMU index of a :class:`SoftMMU` with the memory interface generated
    code and helpers use (see the module docstring); addresses are linear."""

    def __init__(self, tlb: SoftMMU, mmu_idx: int) -> None:
        self.tlb = tlb
        self.mmu_idx = mmu_idx
        self.rpages = tlb.rpages[mmu_idx]
        self.wpages = tlb.wpages[mmu_idx]
        # One vCPU thread runs guest code: locked RMW helpers need no real lock.
        self.lock = contextlib.nullcontext()

    def load(self, addr: int, size: int) -> int:
        if size == 16:
            self.tlb.lookup(addr, ACCESS_READ, self.mmu_idx)
            self.tlb.lookup(addr + 15, ACCESS_READ, self.mmu_idx)
            return self.tlb.ld(addr, 8, self.mmu_idx) | \
                (self.tlb.ld(addr + 8, 8, self.mmu_idx) << 64)
        return self.tlb.ld(addr, size, self.mmu_idx)

    def store(self, addr: int, value: int, size: int) -> None:
        tlb = self.tlb
        if size == 16:
            tlb.lookup(addr, ACCESS_WRITE, self.mmu_idx)
            tlb.lookup(addr + 15, ACCESS_WRITE, self.mmu_idx)
            tlb.st(addr, 8, value & 0xffffffffffffffff, self.mmu_idx)
            tlb.st(addr + 8, 8, value >> 64, self.mmu_idx)
            return
        tlb.st(addr, size, value, self.mmu_idx)

    def read(self, addr: int, length: int) -> bytes:
        return self.tlb.read_bytes(addr, length, self.mmu_idx)

    def write(self, addr: int, data: bytes) -> None:
        tlb = self.tlb
        chunks = []
        pos = 0
        # translate every page first: a fault leaves memory untouched
        while pos < len(data):
            n = min(len(data) - pos, PAGE_SIZE - ((addr + pos) & (PAGE_SIZE - 1)))
            chunks.append((tlb.translate(addr + pos, ACCESS_WRITE, self.mmu_idx), pos, n))
            pos += n
        for paddr, pos, n in chunks:
            if paddr & PAGE_MASK in tlb.code_pages and tlb.code_write_hook is not None:
                tlb.code_write_hook(paddr, n)
            tlb.as_.write_bytes(paddr, data[pos:pos + n])
