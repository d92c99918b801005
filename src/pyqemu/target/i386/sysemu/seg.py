"""Segmentation: descriptor loads with the protection checks, descriptor-table
instructions, LAR/LSL/VERR/VERW, far JMP/CALL/RET and IRET (SDM vol. 2/3).

Error codes follow the SDM: a bad selector faults with the selector's index
and TI bits (``sel & 0xfffc``); a null selector where one is not allowed with 0.
"""
from __future__ import annotations

from typing import Optional, Tuple

from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu.excp import EXCP_GP, EXCP_NP, EXCP_SS, EXCP_TS, CpuException

M32 = 0xffffffff
M64 = (1 << 64) - 1


def _gp(code: int = 0) -> CpuException:
    return CpuException(EXCP_GP, code)


def desc_base(e1: int, e2: int) -> int:
    return (e1 >> 16) | ((e2 & 0xff) << 16) | (e2 & 0xff000000)


def desc_limit(e1: int, e2: int) -> int:
    limit = (e1 & 0xffff) | (e2 & 0x000f0000)
    if e2 & c.DESC_G_MASK:
        limit = (limit << 12) | 0xfff
    return limit


def read_descriptor(cpu, selector: int) -> Optional[Tuple[int, int, int]]:
    """(e1, e2, linear address) of the selector's descriptor, None past the table limit."""
    table = cpu.ldt if selector & 4 else cpu.gdt
    index = selector & ~7
    if index + 7 > table.limit:
        return None
    ptr = table.base + index
    return cpu.ldk(ptr, 4), cpu.ldk(ptr + 4, 4), ptr


def _set_accessed(cpu, ptr: int, e2: int) -> int:
    # QEMU 7.2 sets the accessed bit only for MOV/POP Sreg-style loads, not for
    # the CS/SS of far transfers, interrupts and returns (compared with it in
    # tests/system/x86sys): neither in the descriptor nor in the cache
    if not e2 & c.DESC_A_MASK:
        e2 |= c.DESC_A_MASK
        cpu.stk(ptr + 4, 4, e2)
    return e2


def load_seg_cache_desc(cpu, seg: int, selector: int, e1: int, e2: int) -> None:
    # the cache keeps the whole high dword, as QEMU's (info registers shows it)
    cpu.load_seg_cache(seg, selector, desc_base(e1, e2), desc_limit(e1, e2), e2)


def load_seg_vm(cpu, seg: int, selector: int) -> None:
    """A segment as virtual-8086 mode sees it (IRET to v86, interrupts from v86)."""
    selector &= 0xffff
    cpu.load_seg_cache(seg, selector, selector << 4, 0xffff,
                       c.DESC_P_MASK | c.DESC_S_MASK | c.DESC_W_MASK | c.DESC_A_MASK |
                       (3 << c.DESC_DPL_SHIFT))


def load_seg(cpu, seg: int, selector: int) -> None:
    """mov sreg / pop sreg / lds...: load with the checks of the current mode."""
    selector &= 0xffff
    if not cpu.cr[0] & c.CR0_PE or cpu.eflags & c.VM_MASK:
        # Only selector and base change: limit and rights stay, so unreal mode works.
        cpu.segs[seg] = selector
        cpu.seg_base[seg] = selector << 4
        if seg == c.R_FS:
            cpu.fs_base = selector << 4
        elif seg == c.R_GS:
            cpu.gs_base = selector << 4
        return
    cpl = cpu.cpl
    if selector & 0xfffc == 0:
        if seg == c.R_SS and (not cpu.code64 or cpl == 3 or (selector & 3) != cpl):
            raise _gp(0)
        cpu.load_seg_cache(seg, selector, 0, 0, 0 if seg != c.R_SS else cpl << c.DESC_DPL_SHIFT)
        return
    d = read_descriptor(cpu, selector)
    if d is None:
        raise _gp(selector & 0xfffc)
    e1, e2, ptr = d
    if not e2 & c.DESC_S_MASK:
        raise _gp(selector & 0xfffc)
    rpl = selector & 3
    dpl = (e2 >> c.DESC_DPL_SHIFT) & 3
    if seg == c.R_SS:
        if e2 & c.DESC_CS_MASK or not e2 & c.DESC_W_MASK:
            raise _gp(selector & 0xfffc)
        if rpl != cpl or dpl != cpl:
            raise _gp(selector & 0xfffc)
    else:
        if e2 & (c.DESC_CS_MASK | c.DESC_R_MASK) == c.DESC_CS_MASK:
            raise _gp(selector & 0xfffc)           # execute-only code
        if not (e2 & c.DESC_CS_MASK and e2 & c.DESC_C_MASK):
            if dpl < cpl or dpl < rpl:
                raise _gp(selector & 0xfffc)
    if not e2 & c.DESC_P_MASK:
        raise CpuException(EXCP_SS if seg == c.R_SS else EXCP_NP, selector & 0xfffc)
    e2 = _set_accessed(cpu, ptr, e2)
    load_seg_cache_desc(cpu, seg, selector, e1, e2)


# ---------------------------------------------------------------------------
# descriptor tables
# ---------------------------------------------------------------------------

def _need_pe_cpl0(cpu) -> None:
    if not cpu.cr[0] & c.CR0_PE or cpu.eflags & c.VM_MASK:
        raise CpuException(6)
    if cpu.cpl != 0:
        raise _gp(0)


def lgdt(cpu, limit: int, base: int, opsize: int) -> None:
    """lgdt/lidt operand: 16-bit limit, base of 24 (o16), 32 or 64 bits."""
    if cpu.cpl != 0:
        raise _gp(0)
    cpu.gdt.limit = limit & 0xffff
    cpu.gdt.base = base & (M64 if opsize == 64 else (0xffffff if opsize == 16 else M32))


def lidt(cpu, limit: int, base: int, opsize: int) -> None:
    if cpu.cpl != 0:
        raise _gp(0)
    cpu.idt.limit = limit & 0xffff
    cpu.idt.base = base & (M64 if opsize == 64 else (0xffffff if opsize == 16 else M32))


def sgdt(cpu) -> Tuple[int, int]:
    return cpu.gdt.limit, cpu.gdt.base


def sidt(cpu) -> Tuple[int, int]:
    return cpu.idt.limit, cpu.idt.base


def _system_desc(cpu, selector: int, want_types, nf_excp: int):
    """Fetch a GDT system descriptor (16 bytes in long mode) for LLDT/LTR."""
    if selector & 4:
        raise _gp(selector & 0xfffc)
    entry_limit = 15 if cpu.lma else 7
    index = selector & ~7
    if index + entry_limit > cpu.gdt.limit:
        raise _gp(selector & 0xfffc)
    ptr = cpu.gdt.base + index
    e1, e2 = cpu.ldk(ptr, 4), cpu.ldk(ptr + 4, 4)
    typ = (e2 >> c.DESC_TYPE_SHIFT) & 0xf
    if e2 & c.DESC_S_MASK or typ not in want_types:
        raise _gp(selector & 0xfffc)
    if not e2 & c.DESC_P_MASK:
        raise CpuException(nf_excp, selector & 0xfffc)
    base = desc_base(e1, e2)
    if cpu.lma:
        e3 = cpu.ldk(ptr + 8, 4)
        base |= e3 << 32
    return e1, e2, ptr, base


def lldt(cpu, selector: int) -> None:
    _need_pe_cpl0(cpu)
    selector &= 0xffff
    if selector & 0xfffc == 0:
        cpu.ldt.selector, cpu.ldt.base, cpu.ldt.limit, cpu.ldt.flags = selector, 0, 0, 0
        return
    e1, e2, _ptr, base = _system_desc(cpu, selector, (2,), EXCP_NP)
    cpu.ldt.selector, cpu.ldt.base = selector, base
    cpu.ldt.limit, cpu.ldt.flags = desc_limit(e1, e2), e2


def ltr(cpu, selector: int) -> None:
    """Load TR from an available TSS (type 1 or 9) and mark it busy."""
    _need_pe_cpl0(cpu)
    selector &= 0xffff
    if selector & 0xfffc == 0:
        raise _gp(0)
    e1, e2, ptr, base = _system_desc(cpu, selector, (9,) if cpu.lma else (1, 9), EXCP_NP)
    # the cache keeps the type as read (available), as QEMU's does; memory gets busy
    cpu.tr.selector, cpu.tr.base = selector, base
    cpu.tr.limit, cpu.tr.flags = desc_limit(e1, e2), e2
    cpu.stk(ptr + 4, 4, e2 | c.DESC_TSS_BUSY_MASK)


def sldt(cpu) -> int:
    return cpu.ldt.selector


def str_(cpu) -> int:
    return cpu.tr.selector


# ---------------------------------------------------------------------------
# LAR, LSL, VERR, VERW: results are (ok -> ZF) and the value
# ---------------------------------------------------------------------------

_LSL_SYS_OK = (1, 2, 3, 9, 11)
_LAR_SYS_OK = (1, 2, 3, 4, 5, 9, 11, 12)


def _probe(cpu, selector: int):
    selector &= 0xffff
    if selector & 0xfffc == 0:
        return None
    return read_descriptor(cpu, selector)


def _visible(cpu, selector: int, e2: int, sys_ok) -> bool:
    rpl = selector & 3
    dpl = (e2 >> c.DESC_DPL_SHIFT) & 3
    if e2 & c.DESC_S_MASK:
        if e2 & c.DESC_CS_MASK and e2 & c.DESC_C_MASK:
            return True                       # conforming code: no privilege check
        return dpl >= cpu.cpl and dpl >= rpl
    typ = (e2 >> c.DESC_TYPE_SHIFT) & 0xf
    if cpu.lma:
        sys_ok = (2, 9, 11) if sys_ok is _LSL_SYS_OK else (2, 9, 11, 12)
    return typ in sys_ok and dpl >= cpu.cpl and dpl >= rpl


def lar(cpu, selector: int) -> Tuple[bool, int]:
    d = _probe(cpu, selector)
    if d is None or not _visible(cpu, selector, d[1], _LAR_SYS_OK):
        return False, 0
    return True, d[1] & 0x00f0ff00


def lsl(cpu, selector: int) -> Tuple[bool, int]:
    d = _probe(cpu, selector)
    if d is None or not _visible(cpu, selector, d[1], _LSL_SYS_OK):
        return False, 0
    return True, desc_limit(d[0], d[1])


def verr(cpu, selector: int) -> bool:
    d = _probe(cpu, selector)
    if d is None or not d[1] & c.DESC_S_MASK:
        return False
    e2 = d[1]
    if e2 & c.DESC_CS_MASK:
        if not e2 & c.DESC_R_MASK:
            return False
        if e2 & c.DESC_C_MASK:
            return True
    return _visible(cpu, selector, e2, ())


def verw(cpu, selector: int) -> bool:
    d = _probe(cpu, selector)
    if d is None or not d[1] & c.DESC_S_MASK:
        return False
    e2 = d[1]
    if e2 & c.DESC_CS_MASK or not e2 & c.DESC_W_MASK:
        return False
    return _visible(cpu, selector, e2, ())


# ---------------------------------------------------------------------------
# stacks
# ---------------------------------------------------------------------------

def sp_mask(flags: int) -> int:
    return M32 if flags & c.DESC_B_MASK else 0xffff


class _Stack:
    """Pushes/pops on SS:ESP with a stack-size mask, written back by commit()."""

    def __init__(self, cpu, base: int, sp: int, mask: int, mmu_idx: int) -> None:
        self.cpu, self.base, self.sp, self.mask, self.idx = cpu, base, sp, mask, mmu_idx

    def push(self, value: int, size: int) -> None:
        self.sp = (self.sp - size) & M64
        self.cpu.st_idx(self.base + (self.sp & self.mask), size, value, self.idx)

    def pop(self, size: int) -> int:
        v = self.cpu.ld_idx(self.base + (self.sp & self.mask), size, self.idx)
        self.sp = (self.sp + size) & M64
        return v


def set_esp(cpu, sp: int, mask: int) -> None:
    """Write back only the stack pointer bits the stack size covers."""
    r = cpu.regs
    if mask == 0xffff:
        r[4] = (r[4] & ~0xffff) | (sp & 0xffff)
    elif mask == M32:
        r[4] = sp & M32
    else:
        r[4] = sp & M64


def tss_stack(cpu, dpl: int) -> Tuple[int, int]:
    """(SS, ESP) for privilege ``dpl`` from the 32- or 16-bit TSS (#TS if outside it)."""
    if not cpu.tr.flags & c.DESC_P_MASK:
        raise CpuException(EXCP_TS, cpu.tr.selector & 0xfffc)
    shift = ((cpu.tr.flags >> c.DESC_TYPE_SHIFT) >> 3) & 1
    index = (dpl * 4 + 2) << shift
    if index + (4 << shift) - 1 > cpu.tr.limit:
        raise CpuException(EXCP_TS, cpu.tr.selector & 0xfffc)
    if shift == 0:
        return cpu.ldk(cpu.tr.base + index + 2, 2), cpu.ldk(cpu.tr.base + index, 2)
    return cpu.ldk(cpu.tr.base + index + 4, 2), cpu.ldk(cpu.tr.base + index, 4)


def tss64_stack(cpu, level: int) -> int:
    """RSP0-2 (level 0-2) or IST1-7 (level 4-10) of the 64-bit TSS."""
    index = 8 * level + 4
    if index + 7 > cpu.tr.limit:
        raise CpuException(EXCP_TS, cpu.tr.selector & 0xfffc)
    return cpu.ldk(cpu.tr.base + index, 8)


def load_inner_ss(cpu, ss: int, dpl: int) -> Tuple[int, int]:
    """Checks of the new SS on a privilege change (all faults are #TS)."""
    if ss & 0xfffc == 0:
        raise CpuException(EXCP_TS, 0)
    if (ss & 3) != dpl:
        raise CpuException(EXCP_TS, ss & 0xfffc)
    d = read_descriptor(cpu, ss)
    if d is None:
        raise CpuException(EXCP_TS, ss & 0xfffc)
    e1, e2, ptr = d
    if ((e2 >> c.DESC_DPL_SHIFT) & 3) != dpl or not e2 & c.DESC_S_MASK or \
            e2 & c.DESC_CS_MASK or not e2 & c.DESC_W_MASK:
        raise CpuException(EXCP_TS, ss & 0xfffc)
    if not e2 & c.DESC_P_MASK:
        raise CpuException(EXCP_SS, ss & 0xfffc)
    return e1, e2


# ---------------------------------------------------------------------------
# far JMP / CALL / RET
# ---------------------------------------------------------------------------

def _code_desc(cpu, sel: int):
    if sel & 0xfffc == 0:
        raise _gp(0)
    d = read_descriptor(cpu, sel)
    if d is None:
        raise _gp(sel & 0xfffc)
    return d


def _check_direct_code(cpu, sel: int, e2: int) -> None:
    if not e2 & c.DESC_CS_MASK:
        raise _gp(sel & 0xfffc)
    dpl = (e2 >> c.DESC_DPL_SHIFT) & 3
    if e2 & c.DESC_C_MASK:
        if dpl > cpu.cpl:
            raise _gp(sel & 0xfffc)
    elif (sel & 3) > cpu.cpl or dpl != cpu.cpl:
        raise _gp(sel & 0xfffc)
    if not e2 & c.DESC_P_MASK:
        raise CpuException(EXCP_NP, sel & 0xfffc)


def _limit_ok(cpu, e1: int, e2: int, eip: int) -> bool:
    if cpu.lma and e2 & c.DESC_L_MASK:
        return True
    return eip <= desc_limit(e1, e2)


def _gate(cpu, sel: int, e1: int, e2: int, ptr: int) -> Tuple[int, int, int]:
    """Checks of a call gate; returns (target selector, offset, parameter count)."""
    typ = (e2 >> c.DESC_TYPE_SHIFT) & 0xf
    dpl = (e2 >> c.DESC_DPL_SHIFT) & 3
    if typ not in ((12,) if cpu.lma else (4, 12)):
        raise _gp(sel & 0xfffc)
    if dpl < cpu.cpl or dpl < (sel & 3):
        raise _gp(sel & 0xfffc)
    if not e2 & c.DESC_P_MASK:
        raise CpuException(EXCP_NP, sel & 0xfffc)
    offset = e1 & 0xffff
    if typ == 12:
        offset |= e2 & 0xffff0000
    if cpu.lma:
        offset |= cpu.ldk(ptr + 8, 4) << 32
    return e1 >> 16, offset, e2 & 0x1f


def _task_target(cpu, sel: int, e1: int, e2: int, source: int, next_eip: int) -> bool:
    """JMP/CALL to a TSS or task gate: switch tasks and return True."""
    from pyqemu.target.i386.sysemu import task
    typ = (e2 >> c.DESC_TYPE_SHIFT) & 0xf
    if cpu.lma or typ not in (1, 3, 5, 9, 11):
        return False
    dpl = (e2 >> c.DESC_DPL_SHIFT) & 3
    if dpl < cpu.cpl or dpl < (sel & 3):
        raise _gp(sel & 0xfffc)
    if typ == 5:
        if not e2 & c.DESC_P_MASK:
            raise CpuException(EXCP_NP, sel & 0xfffc)
        sel = task.task_gate_target(cpu, e1)
    task.switch_task(cpu, sel, source, next_eip)
    return True


def ljmp(cpu, sel: int, eip: int, next_eip: int) -> None:
    """Far JMP in protected mode (real/v86: load CS as a real-mode segment)."""
    sel &= 0xffff
    if not cpu.cr[0] & c.CR0_PE or cpu.eflags & c.VM_MASK:
        cpu.segs[c.R_CS], cpu.seg_base[c.R_CS] = sel, sel << 4
        cpu.rip = eip
        return
    e1, e2, ptr = _code_desc(cpu, sel)
    if e2 & c.DESC_S_MASK:
        _check_direct_code(cpu, sel, e2)
        if not _limit_ok(cpu, e1, e2, eip):
            raise _gp(0)
        load_seg_cache_desc(cpu, c.R_CS, (sel & 0xfffc) | cpu.cpl, e1, e2)
        cpu.rip = eip
        return
    if _task_target(cpu, sel, e1, e2, 0, next_eip):
        return
    gsel, goff, _n = _gate(cpu, sel, e1, e2, ptr)
    g1, g2, gptr = _code_desc(cpu, gsel)
    if not g2 & c.DESC_S_MASK or not g2 & c.DESC_CS_MASK:
        raise _gp(gsel & 0xfffc)
    gdpl = (g2 >> c.DESC_DPL_SHIFT) & 3
    if (g2 & c.DESC_C_MASK and gdpl > cpu.cpl) or (not g2 & c.DESC_C_MASK and gdpl != cpu.cpl):
        raise _gp(gsel & 0xfffc)
    if not g2 & c.DESC_P_MASK:
        raise CpuException(EXCP_NP, gsel & 0xfffc)
    if not cpu.lma and not (g2 & c.DESC_B_MASK or (e2 >> 8) & 0xf == 12):
        goff &= 0xffff
    if not _limit_ok(cpu, g1, g2, goff):
        raise _gp(0)
    load_seg_cache_desc(cpu, c.R_CS, (gsel & 0xfffc) | cpu.cpl, g1, g2)
    cpu.rip = goff


def lcall(cpu, sel: int, eip: int, opsize: int, next_eip: int) -> None:
    """Far CALL (``opsize`` 2, 4 or 8 bytes), through a call gate with a stack
    switch from the TSS when it goes to an inner privilege level."""
    sel &= 0xffff
    ss_mask = sp_mask(cpu.seg_flags[c.R_SS]) if not cpu.code64 else M64
    if not cpu.cr[0] & c.CR0_PE or cpu.eflags & c.VM_MASK:
        st = _Stack(cpu, cpu.seg_base[c.R_SS], cpu.regs[4], ss_mask, cpu.mmu_index())
        st.push(cpu.segs[c.R_CS], opsize)
        st.push(next_eip, opsize)
        set_esp(cpu, st.sp, ss_mask)
        cpu.segs[c.R_CS], cpu.seg_base[c.R_CS] = sel, sel << 4
        cpu.rip = eip
        return
    e1, e2, ptr = _code_desc(cpu, sel)
    if e2 & c.DESC_S_MASK:
        _check_direct_code(cpu, sel, e2)
        if not _limit_ok(cpu, e1, e2, eip):
            raise _gp(0)
        st = _Stack(cpu, cpu.seg_base[c.R_SS], cpu.regs[4], ss_mask, cpu.mmu_index())
        st.push(cpu.segs[c.R_CS], opsize)
        st.push(next_eip, opsize)
        load_seg_cache_desc(cpu, c.R_CS, (sel & 0xfffc) | cpu.cpl, e1, e2)
        set_esp(cpu, st.sp, ss_mask)
        cpu.rip = eip
        return
    if _task_target(cpu, sel, e1, e2, 2, next_eip):
        return
    gsel, goff, nparams = _gate(cpu, sel, e1, e2, ptr)
    gate32 = ((e2 >> c.DESC_TYPE_SHIFT) & 0xf) == 12
    gsize = 8 if cpu.lma else (4 if gate32 else 2)
    if gsel & 0xfffc == 0:
        raise _gp(0)
    d = read_descriptor(cpu, gsel)
    if d is None:
        raise _gp(gsel & 0xfffc)
    g1, g2, gptr = d
    gdpl = (g2 >> c.DESC_DPL_SHIFT) & 3
    if not g2 & c.DESC_S_MASK or not g2 & c.DESC_CS_MASK or gdpl > cpu.cpl:
        raise _gp(gsel & 0xfffc)
    if cpu.lma and not (g2 & c.DESC_L_MASK and not g2 & c.DESC_B_MASK):
        raise _gp(gsel & 0xfffc)
    if not g2 & c.DESC_P_MASK:
        raise CpuException(EXCP_NP, gsel & 0xfffc)
    old_ss, old_sp, old_cs = cpu.segs[c.R_SS], cpu.regs[4], cpu.segs[c.R_CS]
    if not g2 & c.DESC_C_MASK and gdpl < cpu.cpl:
        # inner privilege: new stack from the TSS, then the caller's SS:ESP and parameters
        if cpu.lma:
            new_ss, new_sp = gdpl, tss64_stack(cpu, gdpl)
            ss1, ss2 = 0, (gdpl << c.DESC_DPL_SHIFT) | c.DESC_P_MASK | c.DESC_S_MASK | \
                c.DESC_W_MASK | c.DESC_A_MASK
            st = _Stack(cpu, 0, new_sp, M64, c.MMU_KERNEL_IDX)
        else:
            new_ss, new_sp = tss_stack(cpu, gdpl)
            ss1, ss2 = load_inner_ss(cpu, new_ss, gdpl)
            st = _Stack(cpu, desc_base(ss1, ss2), new_sp, sp_mask(ss2), c.MMU_KERNEL_IDX)
        old_base, old_mask = cpu.seg_base[c.R_SS], ss_mask
        st.push(old_ss, gsize)
        st.push(old_sp, gsize)
        for i in range(nparams - 1, -1, -1) if not cpu.lma else ():
            v = cpu.ld_idx(old_base + ((old_sp + i * gsize) & old_mask), gsize, c.MMU_KERNEL_IDX)
            st.push(v, gsize)
        st.push(old_cs, gsize)
        st.push(next_eip, gsize)
        if cpu.lma:
            cpu.load_seg_cache(c.R_SS, new_ss, 0, M32, ss2)
        else:
            load_seg_cache_desc(cpu, c.R_SS, new_ss, ss1, ss2)
        new_mask = st.mask
    else:
        st = _Stack(cpu, cpu.seg_base[c.R_SS], old_sp, ss_mask, cpu.mmu_index())
        st.push(old_cs, gsize)
        st.push(next_eip, gsize)
        new_mask = ss_mask
    load_seg_cache_desc(cpu, c.R_CS, (gsel & 0xfffc) | gdpl if not g2 & c.DESC_C_MASK else
                        (gsel & 0xfffc) | cpu.cpl, g1, g2)
    set_esp(cpu, st.sp, new_mask)
    cpu.rip = goff


def _validate_data_segs(cpu) -> None:
    """On a return to an outer level, data segments the new CPL may not use become null."""
    for seg in (c.R_ES, c.R_DS, c.R_FS, c.R_GS):
        f = cpu.seg_flags[seg]
        dpl = (f >> c.DESC_DPL_SHIFT) & 3
        if (cpu.segs[seg] & 0xfffc) == 0:
            continue
        if (not f & c.DESC_CS_MASK or not f & c.DESC_C_MASK) and dpl < cpu.cpl:
            cpu.load_seg_cache(seg, 0, 0, 0, 0)


def _load_eflags(cpu, value: int, opsize: int) -> None:
    """IRET/POPF rules: which flags the current privilege may change."""
    cpl = cpu.cpl
    iopl = (cpu.eflags >> 12) & 3
    mask = c.TF_MASK | c.AC_MASK | c.ID_MASK | c.NT_MASK | c.RF_MASK | 0xfd5
    if cpl == 0:
        mask |= c.IF_MASK | c.IOPL_MASK
    elif cpl <= iopl:
        mask |= c.IF_MASK
    if opsize == 2:
        mask &= 0xffff
    cur = cpu.get_eflags()
    cpu.set_eflags((cur & ~mask) | (value & mask))


def lret_iret(cpu, opsize: int, is_iret: bool, addend: int) -> None:
    """Protected-mode far RET (``addend`` = imm16) and IRET without NT."""
    st = _Stack(cpu, cpu.seg_base[c.R_SS], cpu.regs[4],
                M64 if cpu.code64 else sp_mask(cpu.seg_flags[c.R_SS]), cpu.mmu_index())
    new_eip = st.pop(opsize)
    new_cs = st.pop(opsize) & 0xffff
    new_eflags = st.pop(opsize) if is_iret else 0
    if is_iret and opsize == 4 and new_eflags & c.VM_MASK and cpu.cpl == 0 and not cpu.lma:
        _iret_to_vm86(cpu, st, new_eip, new_cs, new_eflags)
        return
    e1, e2, ptr = _code_desc(cpu, new_cs)
    rpl = new_cs & 3
    dpl = (e2 >> c.DESC_DPL_SHIFT) & 3
    if not e2 & c.DESC_S_MASK or not e2 & c.DESC_CS_MASK or rpl < cpu.cpl:
        raise _gp(new_cs & 0xfffc)
    if (e2 & c.DESC_C_MASK and dpl > rpl) or (not e2 & c.DESC_C_MASK and dpl != rpl):
        raise _gp(new_cs & 0xfffc)
    if not e2 & c.DESC_P_MASK:
        raise CpuException(EXCP_NP, new_cs & 0xfffc)
    st.sp += addend
    if rpl == cpu.cpl and not (cpu.code64 and is_iret):
        load_seg_cache_desc(cpu, c.R_CS, new_cs, e1, e2)
        set_esp(cpu, st.sp, st.mask)
    else:
        new_sp = st.pop(opsize)
        new_ss = st.pop(opsize) & 0xffff
        if new_ss & 0xfffc == 0:
            # a null SS is allowed when returning to 64-bit code below ring 3
            if not (cpu.lma and e2 & c.DESC_L_MASK and rpl != 3):
                raise _gp(0)
            ss1, ss2 = 0, (rpl << c.DESC_DPL_SHIFT) | c.DESC_S_MASK | c.DESC_W_MASK | \
                c.DESC_P_MASK | c.DESC_B_MASK | c.DESC_A_MASK
            ss_base, ss_limit = 0, M32
        else:
            if (new_ss & 3) != rpl:
                raise _gp(new_ss & 0xfffc)
            d = read_descriptor(cpu, new_ss)
            if d is None:
                raise _gp(new_ss & 0xfffc)
            ss1, ss2, sptr = d
            if not ss2 & c.DESC_S_MASK or ss2 & c.DESC_CS_MASK or not ss2 & c.DESC_W_MASK or \
                    ((ss2 >> c.DESC_DPL_SHIFT) & 3) != rpl:
                raise _gp(new_ss & 0xfffc)
            if not ss2 & c.DESC_P_MASK:
                raise CpuException(EXCP_SS, new_ss & 0xfffc)
            ss_base, ss_limit = desc_base(ss1, ss2), desc_limit(ss1, ss2)
        old_cpl = cpu.cpl
        load_seg_cache_desc(cpu, c.R_CS, new_cs, e1, e2)
        cpu.load_seg_cache(c.R_SS, new_ss, ss_base, ss_limit, ss2)
        mask = M64 if cpu.code64 else sp_mask(ss2)
        set_esp(cpu, new_sp + addend, mask)
        if rpl != old_cpl:
            _validate_data_segs(cpu)
        if is_iret:
            # privilege checks use the CPL before the return
            cpu.cpl = old_cpl
    if is_iret:
        _load_eflags(cpu, new_eflags, opsize)
        cpu.cpl = cpu.seg_flags[c.R_SS] >> c.DESC_DPL_SHIFT & 3
    cpu.rip = new_eip


def _iret_to_vm86(cpu, st: _Stack, eip: int, cs: int, eflags: int) -> None:
    new_esp = st.pop(4)
    new_ss = st.pop(4)
    segs = [st.pop(4) for _ in range(4)]          # ES, DS, FS, GS
    cpu.set_eflags(eflags)
    for seg, sel in zip((c.R_ES, c.R_DS, c.R_FS, c.R_GS), segs):
        load_seg_vm(cpu, seg, sel)
    load_seg_vm(cpu, c.R_CS, cs)
    load_seg_vm(cpu, c.R_SS, new_ss)
    cpu.regs[4] = new_esp & M32
    cpu.rip = eip & 0xffff


def iret_real(cpu, opsize: int) -> None:
    """IRET in real mode (and v86 with IOPL 3)."""
    mask = sp_mask(cpu.seg_flags[c.R_SS])
    st = _Stack(cpu, cpu.seg_base[c.R_SS], cpu.regs[4], mask, cpu.mmu_index())
    new_eip = st.pop(opsize)
    new_cs = st.pop(opsize) & 0xffff
    new_eflags = st.pop(opsize)
    set_esp(cpu, st.sp, mask)
    cpu.segs[c.R_CS], cpu.seg_base[c.R_CS] = new_cs, new_cs << 4
    cpu.rip = new_eip & (0xffff if opsize == 2 else M32)
    fmask = c.TF_MASK | c.AC_MASK | c.ID_MASK | c.IF_MASK | c.NT_MASK | c.RF_MASK | 0xfd5
    if not cpu.eflags & c.VM_MASK:
        fmask |= c.IOPL_MASK
    if opsize == 2:
        fmask &= 0xffff
    cur = cpu.get_eflags()
    cpu.set_eflags((cur & ~fmask) | (new_eflags & fmask))


def iret(cpu, opsize: int, next_eip: int) -> None:
    """IRET/IRETD/IRETQ in any mode."""
    if not cpu.cr[0] & c.CR0_PE:
        iret_real(cpu, opsize)
        return
    if cpu.eflags & c.VM_MASK:
        if (cpu.eflags >> 12) & 3 != 3:
            raise _gp(0)
        iret_real(cpu, opsize)
        return
    if cpu.eflags & c.NT_MASK:
        if cpu.lma:
            raise _gp(0)
        from pyqemu.target.i386.sysemu import task
        task.switch_task(cpu, cpu.ldk(cpu.tr.base, 2), task.SWITCH_IRET, next_eip)
        return
    lret_iret(cpu, opsize, True, 0)


def io_allowed_by_iopl(cpu) -> bool:
    """IN/OUT/INS/OUTS need the TSS bitmap check when this is False."""
    if not cpu.cr[0] & c.CR0_PE:
        return True
    if cpu.eflags & c.VM_MASK:
        return False
    return cpu.cpl <= (cpu.eflags >> 12) & 3


def check_io(cpu, port: int, size: int) -> None:
    """The I/O permission bitmap of the 32/64-bit TSS: #GP(0) unless every bit
    for ports [port, port+size) is clear.  Call only when io_allowed_by_iopl()
    is False."""
    tr = cpu.tr
    typ = (tr.flags >> c.DESC_TYPE_SHIFT) & 0xf
    if not tr.flags & c.DESC_P_MASK or typ not in (9, 11) or tr.limit < 103:
        raise _gp(0)
    offset = cpu.ldk(tr.base + 0x66, 2) + (port >> 3)
    if offset + 1 > tr.limit:
        raise _gp(0)
    bits = cpu.ldk(tr.base + offset, 2) >> (port & 7)
    if bits & ((1 << size) - 1):
        raise _gp(0)
