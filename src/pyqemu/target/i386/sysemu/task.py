"""Hardware task switching with 32-bit TSSes (SDM vol. 3 ch. 7): far JMP or
CALL to a TSS or task gate, IRET with NT set, and task gates in the IDT.
16-bit TSSes raise TaskSwitchUnsupported."""
from __future__ import annotations

from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu.excp import (EXCP_GP, EXCP_NP, EXCP_TS, CpuException,
                                           TaskSwitchUnsupported)

SWITCH_JMP, SWITCH_IRET, SWITCH_CALL = 0, 1, 2

_SEG_ORDER = (c.R_ES, c.R_CS, c.R_SS, c.R_DS, c.R_FS, c.R_GS)


def _gdt_desc(cpu, selector: int):
    index = selector & ~7
    if selector & 4 or index + 7 > cpu.gdt.limit:
        raise CpuException(EXCP_GP, selector & 0xfffc)
    ptr = cpu.gdt.base + index
    return cpu.ldk(ptr, 4), cpu.ldk(ptr + 4, 4), ptr


def task_gate_target(cpu, gate_e1: int) -> int:
    """The TSS selector a task gate names."""
    return (gate_e1 >> 16) & 0xffff


def switch_task(cpu, selector: int, source: int, next_eip: int) -> None:
    """Switch to the task whose TSS ``selector`` names.

    ``next_eip`` is what the old task resumes at: the next instruction for
    JMP/CALL/INT n/IRET, the faulting one for an exception.
    """
    from pyqemu.target.i386.sysemu.seg import desc_base, desc_limit, load_seg_vm
    e1, e2, ptr = _gdt_desc(cpu, selector)
    typ = (e2 >> c.DESC_TYPE_SHIFT) & 0xf
    if e2 & c.DESC_S_MASK or typ not in (1, 3, 9, 11):
        raise CpuException(EXCP_GP, selector & 0xfffc)
    if typ in (1, 3):
        raise TaskSwitchUnsupported("task switch to a 16-bit TSS is not implemented")
    busy = bool(typ & 2)
    if (source == SWITCH_IRET) != busy:
        # JMP/CALL need an available TSS, IRET returns to a busy one
        raise CpuException(EXCP_GP if source != SWITCH_IRET else EXCP_TS, selector & 0xfffc)
    if not e2 & c.DESC_P_MASK:
        raise CpuException(EXCP_NP, selector & 0xfffc)
    limit = desc_limit(e1, e2)
    if limit < 103:
        raise CpuException(EXCP_TS, selector & 0xfffc)
    base = desc_base(e1, e2)
    # read the whole new state before changing anything
    new_cr3 = cpu.ldk(base + 0x1c, 4)
    new_eip = cpu.ldk(base + 0x20, 4)
    new_eflags = cpu.ldk(base + 0x24, 4)
    new_regs = [cpu.ldk(base + 0x28 + 4 * i, 4) for i in range(8)]
    new_segs = [cpu.ldk(base + 0x48 + 4 * i, 2) for i in range(6)]
    new_ldt = cpu.ldk(base + 0x60, 2)
    # save the old task
    old = cpu.tr
    if old.limit < 103:
        raise CpuException(EXCP_TS, old.selector & 0xfffc)
    old_eflags = cpu.get_eflags()
    if source in (SWITCH_JMP, SWITCH_IRET):
        old_eflags &= ~c.NT_MASK
    cpu.stk(old.base + 0x20, 4, next_eip)
    cpu.stk(old.base + 0x24, 4, old_eflags)
    for i in range(8):
        cpu.stk(old.base + 0x28 + 4 * i, 4, cpu.regs[i])
    for i, s in enumerate(_SEG_ORDER):
        cpu.stk(old.base + 0x48 + 4 * i, 2, cpu.segs[s])
    if source in (SWITCH_JMP, SWITCH_IRET):
        _, oe2, optr = _gdt_desc(cpu, old.selector)
        cpu.stk(optr + 4, 4, oe2 & ~c.DESC_TSS_BUSY_MASK)
    if source == SWITCH_CALL:
        cpu.stk(base, 2, old.selector)
        new_eflags |= c.NT_MASK
    if source != SWITCH_IRET:
        e2 |= c.DESC_TSS_BUSY_MASK
        cpu.stk(ptr + 4, 4, e2)
    # load the new task
    cpu.tr.selector, cpu.tr.base, cpu.tr.limit, cpu.tr.flags = selector, base, limit, e2
    cpu.cr[0] |= c.CR0_TS
    if cpu.cr[0] & c.CR0_PG and new_cr3 != cpu.cr[3]:
        cpu.cr[3] = new_cr3
        cpu.tlb.flush(keep_global=bool(cpu.cr[4] & c.CR4_PGE))
    cpu.set_eflags(new_eflags)
    cpu.rip = new_eip
    cpu.regs[:8] = new_regs
    if new_eflags & c.VM_MASK:
        for i, s in enumerate(_SEG_ORDER):
            load_seg_vm(cpu, s, new_segs[i])
    else:
        # selectors first with empty caches, then the checked loads
        for i, s in enumerate(_SEG_ORDER):
            cpu.load_seg_cache(s, new_segs[i], 0, 0, 0)
        cpu.cpl = new_segs[1] & 3
    _load_ldt(cpu, new_ldt)
    if not new_eflags & c.VM_MASK:
        _load_task_segs(cpu, new_segs)
    cpu.update_mode()


def _load_ldt(cpu, selector: int) -> None:
    from pyqemu.target.i386.sysemu.seg import desc_base, desc_limit
    if selector & 4:
        raise CpuException(EXCP_TS, selector & 0xfffc)
    if selector & 0xfffc == 0:
        cpu.ldt.selector, cpu.ldt.base, cpu.ldt.limit, cpu.ldt.flags = selector, 0, 0, 0
        return
    index = selector & ~7
    if index + 7 > cpu.gdt.limit:
        raise CpuException(EXCP_TS, selector & 0xfffc)
    ptr = cpu.gdt.base + index
    e1, e2 = cpu.ldk(ptr, 4), cpu.ldk(ptr + 4, 4)
    if e2 & c.DESC_S_MASK or (e2 >> c.DESC_TYPE_SHIFT) & 0xf != 2:
        raise CpuException(EXCP_TS, selector & 0xfffc)
    if not e2 & c.DESC_P_MASK:
        raise CpuException(EXCP_NP, selector & 0xfffc)
    cpu.ldt.selector, cpu.ldt.base = selector, desc_base(e1, e2)
    cpu.ldt.limit, cpu.ldt.flags = desc_limit(e1, e2), e2


def _load_task_segs(cpu, sels) -> None:
    """The checks of a task switch's segment loads; faults are #TS (or #NP/#SS)."""
    from pyqemu.target.i386.sysemu.seg import load_seg_cache_desc, read_descriptor
    cpl = sels[1] & 3
    for i, s in enumerate(_SEG_ORDER):
        sel = sels[i]
        if sel & 0xfffc == 0:
            if s in (c.R_CS, c.R_SS):
                raise CpuException(EXCP_TS, sel & 0xfffc)
            continue
        d = read_descriptor(cpu, sel)
        if d is None:
            raise CpuException(EXCP_TS, sel & 0xfffc)
        e1, e2, _ptr = d
        if not e2 & c.DESC_S_MASK:
            raise CpuException(EXCP_TS, sel & 0xfffc)
        dpl = (e2 >> c.DESC_DPL_SHIFT) & 3
        rpl = sel & 3
        if s == c.R_CS:
            if not e2 & c.DESC_CS_MASK:
                raise CpuException(EXCP_TS, sel & 0xfffc)
            if (e2 & c.DESC_C_MASK and dpl > rpl) or (not e2 & c.DESC_C_MASK and dpl != rpl):
                raise CpuException(EXCP_TS, sel & 0xfffc)
        elif s == c.R_SS:
            if e2 & c.DESC_CS_MASK or not e2 & c.DESC_W_MASK or dpl != cpl or rpl != cpl:
                raise CpuException(EXCP_TS, sel & 0xfffc)
        else:
            if e2 & (c.DESC_CS_MASK | c.DESC_R_MASK) == c.DESC_CS_MASK:
                raise CpuException(EXCP_TS, sel & 0xfffc)
            if not (e2 & c.DESC_CS_MASK and e2 & c.DESC_C_MASK) and (dpl < cpl or dpl < rpl):
                raise CpuException(EXCP_TS, sel & 0xfffc)
        if not e2 & c.DESC_P_MASK:
            raise CpuException(12 if s == c.R_SS else EXCP_NP, sel & 0xfffc)
        load_seg_cache_desc(cpu, s, sel, e1, e2)
