"""Interrupt and exception delivery: real-mode IVT, protected-mode IDT
(interrupt and trap gates, stack switch from the TSS, from v86 mode), the
long-mode IDT (16-byte gates, IST), and the double/triple fault rules.

``deliver(cpu, ...)`` is the entry the execution loop calls for a pending
exception or interrupt; ``do_interrupt`` delivers one event and raises
CpuException if the delivery itself faults.
"""
from __future__ import annotations

from typing import Optional

from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu.excp import (ERROR_CODE_VECTORS, EXCP_DF, EXCP_GP, EXCP_NP,
                                           EXCP_PF, CpuException, TripleFault)
from pyqemu.target.i386.sysemu.seg import (M64, _Stack, desc_base, load_inner_ss,
                                          load_seg_cache_desc, read_descriptor, set_esp,
                                          sp_mask, tss64_stack, tss_stack)

_CONTRIBUTORY = (0, 10, 11, 12, 13)


def do_interrupt(cpu, vector: int, is_int: bool, error_code: int, next_eip: int,
                 is_hw: bool) -> None:
    """Deliver one event.  ``is_int``: INT n/INT3/INTO (return to next_eip and
    a DPL check); ``is_hw``: external interrupt (no error code)."""
    cpu.halted = False
    if not cpu.cr[0] & c.CR0_PE:
        _real(cpu, vector, is_int, next_eip)
    elif cpu.lma:
        _long(cpu, vector, is_int, error_code, next_eip, is_hw)
    else:
        _protected(cpu, vector, is_int, error_code, next_eip, is_hw)


def _real(cpu, vector: int, is_int: bool, next_eip: int) -> None:
    if vector * 4 + 3 > cpu.idt.limit:
        raise CpuException(EXCP_GP, vector * 8 + 2)
    ptr = cpu.idt.base + vector * 4
    offset = cpu.ldk(ptr, 2)
    selector = cpu.ldk(ptr + 2, 2)
    mask = sp_mask(cpu.seg_flags[c.R_SS])
    st = _Stack(cpu, cpu.seg_base[c.R_SS], cpu.regs[4], mask, c.MMU_KERNEL_IDX)
    st.push(cpu.get_eflags(), 2)
    st.push(cpu.segs[c.R_CS], 2)
    st.push(next_eip if is_int else cpu.rip, 2)
    set_esp(cpu, st.sp, mask)
    cpu.segs[c.R_CS], cpu.seg_base[c.R_CS] = selector, selector << 4
    cpu.rip = offset
    cpu.eflags &= ~(c.IF_MASK | c.TF_MASK | c.AC_MASK | c.RF_MASK)


def _gate_checks(cpu, vector: int, is_int: bool, entry: int):
    # The error code names the gate: vector * 8 + 2 in the 8-byte IDT; with
    # 16-byte gates QEMU 7.2 reports vector * 16 + 2, and so do we.
    code = vector * entry + 2
    dt = cpu.idt
    if vector * entry + entry - 1 > dt.limit:
        raise CpuException(EXCP_GP, code)
    ptr = dt.base + vector * entry
    e1, e2 = cpu.ldk(ptr, 4), cpu.ldk(ptr + 4, 4)
    typ = (e2 >> c.DESC_TYPE_SHIFT) & 0x1f
    if typ not in ((5, 6, 7, 14, 15) if entry == 8 else (14, 15)):
        raise CpuException(EXCP_GP, code)
    dpl = (e2 >> c.DESC_DPL_SHIFT) & 3
    if is_int and dpl < cpu.cpl:
        raise CpuException(EXCP_GP, code)
    if not e2 & c.DESC_P_MASK:
        raise CpuException(EXCP_NP, code)
    return ptr, e1, e2, typ


def _target_code(cpu, selector: int):
    if selector & 0xfffc == 0:
        raise CpuException(EXCP_GP, 0)
    d = read_descriptor(cpu, selector)
    if d is None:
        raise CpuException(EXCP_GP, selector & 0xfffc)
    e1, e2, _ptr = d
    dpl = (e2 >> c.DESC_DPL_SHIFT) & 3
    if not e2 & c.DESC_S_MASK or not e2 & c.DESC_CS_MASK or dpl > cpu.cpl:
        raise CpuException(EXCP_GP, selector & 0xfffc)
    if not e2 & c.DESC_P_MASK:
        raise CpuException(EXCP_NP, selector & 0xfffc)
    return e1, e2, dpl


def _has_error_code(vector: int, is_int: bool, is_hw: bool) -> bool:
    return not is_int and not is_hw and vector in ERROR_CODE_VECTORS


def _protected(cpu, vector: int, is_int: bool, error_code: int, next_eip: int,
               is_hw: bool) -> None:
    _ptr, e1, e2, typ = _gate_checks(cpu, vector, is_int, 8)
    if typ == 5:
        # task gate: the handler is another task; the error code goes on its stack
        from pyqemu.target.i386.sysemu import task
        task.switch_task(cpu, task.task_gate_target(cpu, e1), task.SWITCH_CALL,
                         next_eip if is_int else cpu.rip)
        if _has_error_code(vector, is_int, is_hw):
            mask = sp_mask(cpu.seg_flags[c.R_SS])
            st = _Stack(cpu, cpu.seg_base[c.R_SS], cpu.regs[4], mask, c.MMU_KERNEL_IDX)
            st.push(error_code, 4)
            set_esp(cpu, st.sp, mask)
        return
    selector = e1 >> 16
    offset = (e2 & 0xffff0000) | (e1 & 0xffff)
    ce1, ce2, dpl = _target_code(cpu, selector)
    vm86 = bool(cpu.eflags & c.VM_MASK)
    size = 4 if typ & 8 else 2
    if not ce2 & c.DESC_C_MASK and dpl < cpu.cpl:
        if vm86 and dpl != 0:
            raise CpuException(EXCP_GP, selector & 0xfffc)
        new_ss, new_sp = tss_stack(cpu, dpl)
        ss1, ss2 = load_inner_ss(cpu, new_ss, dpl)
        st = _Stack(cpu, desc_base(ss1, ss2), new_sp, sp_mask(ss2), c.MMU_KERNEL_IDX)
        inner = True
    elif ce2 & c.DESC_C_MASK or dpl == cpu.cpl:
        if vm86:
            raise CpuException(EXCP_GP, selector & 0xfffc)
        st = _Stack(cpu, cpu.seg_base[c.R_SS], cpu.regs[4], sp_mask(cpu.seg_flags[c.R_SS]),
                    c.MMU_KERNEL_IDX)
        inner = False
    else:
        raise CpuException(EXCP_GP, selector & 0xfffc)
    if ce2 & c.DESC_C_MASK:
        dpl = cpu.cpl          # conforming code keeps the privilege level
    if size == 2:
        offset &= 0xffff
    if inner:
        if vm86:
            for seg in (c.R_GS, c.R_FS, c.R_DS, c.R_ES):
                st.push(cpu.segs[seg], size)
        st.push(cpu.segs[c.R_SS], size)
        st.push(cpu.regs[4], size)
    st.push(cpu.get_eflags(), size)
    st.push(cpu.segs[c.R_CS], size)
    st.push(next_eip if is_int else cpu.rip, size)
    if _has_error_code(vector, is_int, is_hw):
        st.push(error_code, size)
    # all reads and pushes succeeded: now commit the new state
    if inner:
        if vm86:
            for seg in (c.R_ES, c.R_DS, c.R_FS, c.R_GS):
                cpu.load_seg_cache(seg, 0, 0, 0, 0)
        load_seg_cache_desc(cpu, c.R_SS, (new_ss & ~3) | dpl, ss1, ss2)
    set_esp(cpu, st.sp, st.mask)
    load_seg_cache_desc(cpu, c.R_CS, (selector & 0xfffc) | dpl, ce1, ce2)
    cpu.rip = offset
    if not typ & 1:
        cpu.eflags &= ~c.IF_MASK
    cpu.eflags &= ~(c.TF_MASK | c.VM_MASK | c.RF_MASK | c.NT_MASK)
    cpu.update_mode()


def _long(cpu, vector: int, is_int: bool, error_code: int, next_eip: int, is_hw: bool) -> None:
    ptr, e1, e2, typ = _gate_checks(cpu, vector, is_int, 16)
    selector = e1 >> 16
    offset = (e2 & 0xffff0000) | (e1 & 0xffff) | (cpu.ldk(ptr + 8, 4) << 32)
    ist = e2 & 7
    ce1, ce2, dpl = _target_code(cpu, selector)
    if not ce2 & c.DESC_L_MASK or ce2 & c.DESC_B_MASK:
        raise CpuException(EXCP_GP, selector & 0xfffc)
    if not ce2 & c.DESC_C_MASK and dpl < cpu.cpl:
        inner = True
    elif ce2 & c.DESC_C_MASK or dpl == cpu.cpl:
        inner = False
    else:
        raise CpuException(EXCP_GP, selector & 0xfffc)
    if ce2 & c.DESC_C_MASK:
        dpl = cpu.cpl
    if ist:
        sp = tss64_stack(cpu, ist + 3)
    elif inner:
        sp = tss64_stack(cpu, dpl)
    else:
        sp = cpu.regs[4]
    st = _Stack(cpu, 0, sp & ~0xf & M64, M64, c.MMU_KERNEL_IDX)
    st.push(cpu.segs[c.R_SS], 8)
    st.push(cpu.regs[4], 8)
    st.push(cpu.get_eflags(), 8)
    st.push(cpu.segs[c.R_CS], 8)
    st.push(next_eip if is_int else cpu.rip, 8)
    if _has_error_code(vector, is_int, is_hw):
        st.push(error_code, 8)
    if inner:
        # a null SS whose RPL is the new CPL
        cpu.load_seg_cache(c.R_SS, dpl, 0, 0, dpl << c.DESC_DPL_SHIFT)
    cpu.regs[4] = st.sp
    load_seg_cache_desc(cpu, c.R_CS, (selector & 0xfffc) | dpl, ce1, ce2)
    cpu.rip = offset
    if not typ & 1:
        cpu.eflags &= ~c.IF_MASK
    cpu.eflags &= ~(c.TF_MASK | c.VM_MASK | c.RF_MASK | c.NT_MASK)
    cpu.update_mode()


def deliver(cpu, vector: int, error_code: int = 0, is_int: bool = False,
            next_eip: Optional[int] = None, is_hw: bool = False) -> None:
    """Deliver an event, applying the SDM's double-fault table (vol. 3 table 6-5)
    to faults raised while delivering it.  A fault while delivering #DF raises
    TripleFault (the machine resets, or exits under -no-reboot)."""
    if next_eip is None:
        next_eip = cpu.rip
    first = vector if not (is_int or is_hw) else -1
    while True:
        try:
            do_interrupt(cpu, vector, is_int, error_code, next_eip, is_hw)
            return
        except CpuException as e:
            second = e.vector
            if first == EXCP_DF:
                cpu.shutdown_request = True
                raise TripleFault("triple fault") from None
            first_contrib = first in _CONTRIBUTORY
            second_contrib = second in _CONTRIBUTORY
            if (first_contrib and second_contrib) or \
                    (first == EXCP_PF and (second_contrib or second == EXCP_PF)):
                vector, error_code = EXCP_DF, 0
            else:
                vector, error_code = second, e.error_code
            first = vector
            is_int = is_hw = False


def raise_interrupt(cpu, vector: int, next_eip: int) -> None:
    """INT n / INT3 / INTO from translated code: deliver, as a software interrupt."""
    deliver(cpu, vector, 0, True, next_eip)
