"""x86 paging: 32-bit (with PSE), PAE and 4-level page walks, #PF error
codes, accessed/dirty bits, and the monitor's ``info tlb`` / ``info mem``.

``tlb_fill`` is the soft MMU's refill callback; it raises the guest's #PF
(CR2 set) or #GP (non-canonical address) itself.
"""
from __future__ import annotations

from typing import List, Tuple

from pyqemu.exec.softmmu import ACCESS_FETCH, ACCESS_WRITE, PAGE_EXEC, PAGE_READ, PAGE_WRITE
from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu.excp import EXCP_GP, EXCP_PF, CpuException

PG_PRESENT = 1
PG_RW = 2
PG_USER = 4
PG_PWT = 8
PG_PCD = 0x10
PG_ACCESSED = 0x20
PG_DIRTY = 0x40
PG_PSE = 0x80
PG_GLOBAL = 0x100
PG_NX = 1 << 63

PF_P, PF_W, PF_U, PF_RSVD, PF_ID = 1, 2, 4, 8, 16

PHYS_BITS = 40                                  # CPUID 0x80000008 of qemu64
PHYS_MASK = (1 << PHYS_BITS) - 1
_ADDR_MASK = PHYS_MASK & ~0xfff
# bits that must be zero in PAE / long-mode entries (besides the NX bit when NXE is off)
_RSVD_HI = ((1 << 52) - 1) & ~PHYS_MASK


def _pf(cpu, addr: int, error_code: int):
    cpu.cr[2] = addr
    return CpuException(EXCP_PF, error_code)


def tlb_fill(cpu, vaddr: int, access: int, mmu_idx: int) -> Tuple[int, int, int, bool]:
    """Translate vaddr for ``access`` -> (paddr, prot, page_size, is_global)."""
    if mmu_idx == c.MMU_PHYS_IDX or not cpu.cr[0] & c.CR0_PG:
        return (vaddr & cpu.a20_mask & 0xffffffff if not cpu.lma else vaddr & cpu.a20_mask,
                PAGE_READ | PAGE_WRITE | PAGE_EXEC, 4096, False)
    return walk(cpu, vaddr, access, mmu_idx == c.MMU_USER_IDX)


def walk(cpu, addr: int, access: int, is_user: bool) -> Tuple[int, int, int, bool]:
    """The page walk of the SDM vol. 3 ch. 4, setting A/D bits in guest memory."""
    as_ = cpu.as_
    a20 = cpu.a20_mask
    cr4 = cpu.cr[4]
    is_write = access == ACCESS_WRITE
    nxe = bool(cpu.efer & c.EFER_NXE)
    rsvd = _RSVD_HI | (0 if nxe else PG_NX)
    # accumulated rights: ptep holds RW|US ANDed and NX ORed (stored inverted while walking)
    if cr4 & c.CR4_PAE:
        ptep = PG_NX | PG_RW | PG_USER
        if cpu.lma:
            sext = addr >> 47
            if sext != 0 and sext != (1 << 17) - 1:
                raise CpuException(EXCP_GP, 0)
            addr &= (1 << 48) - 1
            pml4e_addr = ((cpu.cr[3] & _ADDR_MASK) + ((addr >> 39) & 511) * 8) & a20
            pml4e = as_.read(pml4e_addr, 8)
            if not pml4e & PG_PRESENT:
                raise _fault(cpu, addr, access, is_user, 0)
            if pml4e & (rsvd | PG_PSE):
                raise _fault(cpu, addr, access, is_user, PF_RSVD)
            _set_bits(as_, pml4e_addr, pml4e, PG_ACCESSED)
            ptep &= pml4e ^ PG_NX
            pdpe_addr = ((pml4e & _ADDR_MASK) + ((addr >> 30) & 511) * 8) & a20
            pdpe = as_.read(pdpe_addr, 8)
            if not pdpe & PG_PRESENT:
                raise _fault(cpu, addr, access, is_user, 0)
            # qemu64 and friends lack 1 GiB pages: PS here is a reserved bit
            if pdpe & (rsvd | PG_PSE):
                raise _fault(cpu, addr, access, is_user, PF_RSVD)
            _set_bits(as_, pdpe_addr, pdpe, PG_ACCESSED)
            ptep &= pdpe ^ PG_NX
        else:
            pdpe_addr = ((cpu.cr[3] & ~0x1f & 0xffffffff) + ((addr >> 30) & 3) * 8) & a20
            pdpe = as_.read(pdpe_addr, 8)
            if not pdpe & PG_PRESENT:
                raise _fault(cpu, addr, access, is_user, 0)
            if pdpe & (rsvd | PG_NX | 0x1e6):
                raise _fault(cpu, addr, access, is_user, PF_RSVD)
        pde_addr = ((pdpe & _ADDR_MASK) + ((addr >> 21) & 511) * 8) & a20
        pde = as_.read(pde_addr, 8)
        if not pde & PG_PRESENT:
            raise _fault(cpu, addr, access, is_user, 0)
        if pde & rsvd:
            raise _fault(cpu, addr, access, is_user, PF_RSVD)
        ptep &= pde ^ PG_NX
        if pde & PG_PSE:
            if pde & 0x1fe000:
                raise _fault(cpu, addr, access, is_user, PF_RSVD)
            page_size = 2 << 20
            pte_addr, pte = pde_addr, pde
            base = pde & _ADDR_MASK & ~(page_size - 1)
        else:
            _set_bits(as_, pde_addr, pde, PG_ACCESSED)
            pte_addr = ((pde & _ADDR_MASK) + ((addr >> 12) & 511) * 8) & a20
            pte = as_.read(pte_addr, 8)
            if not pte & PG_PRESENT:
                raise _fault(cpu, addr, access, is_user, 0)
            if pte & rsvd:
                raise _fault(cpu, addr, access, is_user, PF_RSVD)
            ptep &= pte ^ PG_NX
            page_size = 4096
            base = pte & _ADDR_MASK
        ptep ^= PG_NX
    else:
        pde_addr = ((cpu.cr[3] & 0xfffff000) + ((addr >> 20) & 0xffc)) & a20
        pde = as_.read(pde_addr, 4)
        if not pde & PG_PRESENT:
            raise _fault(cpu, addr, access, is_user, 0)
        ptep = pde & (PG_RW | PG_USER)
        if pde & PG_PSE and cr4 & c.CR4_PSE:
            page_size = 4 << 20
            pte_addr, pte = pde_addr, pde
            # PSE-36: bits 13..20 of the PDE are physical address bits 32..39
            base = (pde & 0xffc00000) | ((pde & 0x1fe000) << 19)
        else:
            _set_bits(as_, pde_addr, pde, PG_ACCESSED, 4)
            pte_addr = ((pde & 0xfffff000) + ((addr >> 10) & 0xffc)) & a20
            pte = as_.read(pte_addr, 4)
            if not pte & PG_PRESENT:
                raise _fault(cpu, addr, access, is_user, 0)
            ptep &= pte
            page_size = 4096
            base = pte & 0xfffff000
    # rights check (SDM 4.6)
    wp = bool(cpu.cr[0] & c.CR0_WP)
    if is_user:
        if not ptep & PG_USER:
            raise _fault(cpu, addr, access, is_user, PF_P)
        writable = bool(ptep & PG_RW)
    else:
        writable = bool(ptep & PG_RW) or not wp
        if access == ACCESS_FETCH and ptep & PG_USER and cr4 & c.CR4_SMEP:
            raise _fault(cpu, addr, access, is_user, PF_P)
    if is_write and not writable:
        raise _fault(cpu, addr, access, is_user, PF_P)
    nx = bool(ptep & PG_NX) and nxe
    if access == ACCESS_FETCH and nx:
        raise _fault(cpu, addr, access, is_user, PF_P)
    # accessed on the leaf; dirty on a write.  Without D set, write stays out of
    # the TLB entry so the first write comes back here to set it.
    size = 4 if not cr4 & c.CR4_PAE else 8
    new = pte | PG_ACCESSED | (PG_DIRTY if is_write else 0)
    if new != pte:
        as_.write(pte_addr, size, new)
    prot = PAGE_READ
    if writable and new & PG_DIRTY:
        prot |= PAGE_WRITE
    if not nx:
        prot |= PAGE_EXEC
    is_global = bool(pte & PG_GLOBAL) and bool(cr4 & c.CR4_PGE)
    paddr = (base + (addr & (page_size - 1))) & a20
    return paddr & ~0xfff, prot, page_size, is_global


def _set_bits(as_, addr: int, entry: int, bits: int, size: int = 8) -> None:
    if entry & bits != bits:
        as_.write(addr, size, entry | bits)


def _fault(cpu, addr: int, access: int, is_user: bool, code: int) -> CpuException:
    # A reserved-bit fault carries RSVD without P: that is QEMU 7.2's error code
    # (tests/peer/sysemu), where hardware would also set P.
    if access == ACCESS_WRITE:
        code |= PF_W
    if is_user:
        code |= PF_U
    if access == ACCESS_FETCH and ((cpu.efer & c.EFER_NXE and cpu.cr[4] & c.CR4_PAE)
                                   or cpu.cr[4] & c.CR4_SMEP):
        code |= PF_ID
    if cpu.lma and addr >> 47:
        addr |= ((1 << 64) - 1) & ~((1 << 48) - 1)
    return _pf(cpu, addr, code)


def invlpg(cpu, addr: int) -> None:
    cpu.tlb.flush_page(addr)


# ---------------------------------------------------------------------------
# info tlb / info mem (the HMP text of QEMU's target/i386/monitor.c formats)
# ---------------------------------------------------------------------------

def _canon(cpu, addr: int) -> int:
    if cpu.lma and addr & (1 << 47):
        addr |= ((1 << 64) - 1) & ~((1 << 48) - 1)
    return addr


def _pte_line(cpu, addr: int, pte: int, mask: int) -> str:
    addr = _canon(cpu, addr)
    bits = "".join(ch if pte & b else "-" for ch, b in (
        ("X", PG_NX), ("G", PG_GLOBAL), ("P", PG_PSE), ("D", PG_DIRTY), ("A", PG_ACCESSED),
        ("C", PG_PCD), ("T", PG_PWT), ("U", PG_USER), ("W", PG_RW)))
    return "%016x: %016x %s" % (addr, pte & mask, bits)


def _entries(cpu, table: int, n: int, size: int) -> List[Tuple[int, int]]:
    data = cpu.as_.read_bytes(table & cpu.a20_mask, n * size)
    out = []
    for i in range(n):
        e = int.from_bytes(data[i * size:(i + 1) * size], "little")
        if e & PG_PRESENT:
            out.append((i, e))
    return out


def info_tlb(cpu) -> str:
    """HMP ``info tlb``: every present leaf mapping."""
    if not cpu.cr[0] & c.CR0_PG:
        return "PG disabled\n"
    lines: List[str] = []
    pmask = 0x3fffffffff000
    if cpu.cr[4] & c.CR4_PAE:
        if cpu.lma:
            for l1, e1 in _entries(cpu, cpu.cr[3] & _ADDR_MASK, 512, 8):
                for l2, e2 in _entries(cpu, e1 & _ADDR_MASK, 512, 8):
                    va2 = (l1 << 39) | (l2 << 30)
                    if e2 & PG_PSE:
                        lines.append(_pte_line(cpu, va2, e2, 0x3ffffc0000000))
                        continue
                    _tlb_pd(cpu, lines, e2 & _ADDR_MASK, va2, pmask)
        else:
            for l1, e1 in _entries(cpu, cpu.cr[3] & ~0x1f & 0xffffffff, 4, 8):
                _tlb_pd(cpu, lines, e1 & _ADDR_MASK, l1 << 30, pmask)
    else:
        for l1, e1 in _entries(cpu, cpu.cr[3] & 0xfffff000, 1024, 4):
            if e1 & PG_PSE and cpu.cr[4] & c.CR4_PSE:
                lines.append(_pte_line(cpu, l1 << 22, e1, 0xffc00000))
                continue
            for l2, e2 in _entries(cpu, e1 & 0xfffff000, 1024, 4):
                lines.append(_pte_line(cpu, (l1 << 22) | (l2 << 12), e2 & ~PG_PSE, 0xfffff000))
    return "".join(line + "\n" for line in lines)


def _tlb_pd(cpu, lines: List[str], pd: int, va: int, pmask: int) -> None:
    for l3, e3 in _entries(cpu, pd, 512, 8):
        va3 = va | (l3 << 21)
        if e3 & PG_PSE:
            lines.append(_pte_line(cpu, va3, e3, 0x3ffffffe00000))
            continue
        for l4, e4 in _entries(cpu, e3 & _ADDR_MASK, 512, 8):
            lines.append(_pte_line(cpu, va3 | (l4 << 12), e4 & ~PG_PSE, pmask))


class _MemPrinter:
    """Merges consecutive pages of equal rights into ``start-end size prot`` lines."""

    def __init__(self, cpu) -> None:
        self.cpu = cpu
        self.start = -1
        self.prot = 0
        self.lines: List[str] = []

    def at(self, end: int, prot: int) -> None:
        if prot == self.prot:
            return
        if self.start != -1:
            cpu = self.cpu
            self.lines.append("%016x-%016x %016x %s%s%s" % (
                _canon(cpu, self.start), _canon(cpu, end), _canon(cpu, end - self.start),
                "u" if self.prot & PG_USER else "-", "r", "w" if self.prot & PG_RW else "-"))
        self.start = end if prot else -1
        self.prot = prot


def info_mem(cpu) -> str:
    """HMP ``info mem``: the mapped virtual ranges with their rights."""
    if not cpu.cr[0] & c.CR0_PG:
        return "PG disabled\n"
    p = _MemPrinter(cpu)
    keep = PG_USER | PG_RW | PG_PRESENT
    if cpu.cr[4] & c.CR4_PAE:
        if cpu.lma:
            ents1 = dict(_entries(cpu, cpu.cr[3] & _ADDR_MASK, 512, 8))
            for l1 in range(512):
                e1 = ents1.get(l1)
                if e1 is None:
                    p.at(l1 << 39, 0)
                    continue
                ents2 = dict(_entries(cpu, e1 & _ADDR_MASK, 512, 8))
                for l2 in range(512):
                    e2 = ents2.get(l2)
                    va = (l1 << 39) | (l2 << 30)
                    if e2 is None:
                        p.at(va, 0)
                    elif e2 & PG_PSE:
                        p.at(va, e2 & e1 & keep)
                    else:
                        _mem_pd(cpu, p, e2 & _ADDR_MASK, va, e2 & e1 & keep)
            p.at(1 << 48, 0)
        else:
            ents1 = dict(_entries(cpu, cpu.cr[3] & ~0x1f & 0xffffffff, 4, 8))
            for l1 in range(4):
                e1 = ents1.get(l1)
                if e1 is None:
                    p.at(l1 << 30, 0)
                else:
                    _mem_pd(cpu, p, e1 & _ADDR_MASK, l1 << 30, keep)
            p.at(1 << 32, 0)
    else:
        ents1 = dict(_entries(cpu, cpu.cr[3] & 0xfffff000, 1024, 4))
        for l1 in range(1024):
            e1 = ents1.get(l1)
            if e1 is None:
                p.at(l1 << 22, 0)
            elif e1 & PG_PSE and cpu.cr[4] & c.CR4_PSE:
                p.at(l1 << 22, e1 & keep)
            else:
                ents2 = dict(_entries(cpu, e1 & 0xfffff000, 1024, 4))
                for l2 in range(1024):
                    e2 = ents2.get(l2)
                    p.at((l1 << 22) | (l2 << 12), e2 & e1 & keep if e2 is not None else 0)
        p.at(1 << 32, 0)
    return "".join(line + "\n" for line in p.lines)


def _mem_pd(cpu, p: _MemPrinter, pd: int, va: int, upper: int) -> None:
    ents3 = dict(_entries(cpu, pd, 512, 8))
    for l3 in range(512):
        e3 = ents3.get(l3)
        va3 = va | (l3 << 21)
        if e3 is None:
            p.at(va3, 0)
        elif e3 & PG_PSE:
            p.at(va3, e3 & upper)
        else:
            ents4 = dict(_entries(cpu, e3 & _ADDR_MASK, 512, 8))
            for l4 in range(512):
                e4 = ents4.get(l4)
                p.at(va3 | (l4 << 12), e4 & e3 & upper if e4 is not None else 0)


# ---------------------------------------------------------------------------
# debug translation (monitor, gdbstub): no rights checks, no A/D bits, no faults
# ---------------------------------------------------------------------------

def get_phys_debug(cpu, addr: int):
    """The physical address ``addr`` maps to, or None when it is not mapped."""
    a20 = cpu.a20_mask
    if not cpu.cr[0] & c.CR0_PG:
        return addr & a20 & (0xffffffff if not cpu.lma else (1 << 64) - 1)
    rd = cpu.as_.read
    if cpu.cr[4] & c.CR4_PAE:
        if cpu.lma:
            sext = addr >> 47
            if sext != 0 and sext != (1 << 17) - 1:
                return None
            addr &= (1 << 48) - 1
            e = rd(((cpu.cr[3] & _ADDR_MASK) + ((addr >> 39) & 511) * 8) & a20, 8)
            if not e & PG_PRESENT:
                return None
            e = rd(((e & _ADDR_MASK) + ((addr >> 30) & 511) * 8) & a20, 8)
        else:
            e = rd(((cpu.cr[3] & ~0x1f & 0xffffffff) + ((addr >> 30) & 3) * 8) & a20, 8)
        if not e & PG_PRESENT:
            return None
        e = rd(((e & _ADDR_MASK) + ((addr >> 21) & 511) * 8) & a20, 8)
        if not e & PG_PRESENT:
            return None
        if e & PG_PSE:
            return ((e & _ADDR_MASK & ~0x1fffff) | (addr & 0x1fffff)) & a20
        e = rd(((e & _ADDR_MASK) + ((addr >> 12) & 511) * 8) & a20, 8)
        if not e & PG_PRESENT:
            return None
        return ((e & _ADDR_MASK) | (addr & 0xfff)) & a20
    addr &= 0xffffffff
    e = rd(((cpu.cr[3] & 0xfffff000) + ((addr >> 20) & 0xffc)) & a20, 4)
    if not e & PG_PRESENT:
        return None
    if e & PG_PSE and cpu.cr[4] & c.CR4_PSE:
        return ((e & 0xffc00000) | ((e & 0x1fe000) << 19) | (addr & 0x3fffff)) & a20
    e = rd(((e & 0xfffff000) + ((addr >> 10) & 0xffc)) & a20, 4)
    if not e & PG_PRESENT:
        return None
    return ((e & 0xfffff000) | (addr & 0xfff)) & a20
