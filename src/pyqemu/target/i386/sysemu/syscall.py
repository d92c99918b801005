"""SYSCALL/SYSRET, SYSENTER/SYSEXIT, SWAPGS, HLT and the STI interrupt shadow."""
from __future__ import annotations

from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu.excp import EXCP_GP, EXCP_UD, CpuException
from pyqemu.target.i386.sysemu.msr import (MSR_CSTAR, MSR_FMASK, MSR_IA32_SYSENTER_CS,
                                          MSR_IA32_SYSENTER_EIP, MSR_IA32_SYSENTER_ESP,
                                          MSR_KERNELGSBASE, MSR_LSTAR, MSR_STAR)

M32 = 0xffffffff
_FLAT = c.DESC_P_MASK | c.DESC_S_MASK | c.DESC_A_MASK | c.DESC_G_MASK
_CODE = _FLAT | c.DESC_CS_MASK | c.DESC_R_MASK
_DATA = _FLAT | c.DESC_W_MASK | c.DESC_B_MASK
_DPL3 = 3 << c.DESC_DPL_SHIFT


def syscall(cpu, next_eip: int) -> None:
    if not cpu.efer & c.EFER_SCE:
        raise CpuException(EXCP_UD)
    star = cpu.msrs[MSR_STAR]
    sel = (star >> 32) & 0xffff
    if cpu.lma:
        from_64 = cpu.code64
        cpu.regs[1] = next_eip
        cpu.regs[11] = cpu.get_eflags()
        cpu.load_seg_cache(c.R_SS, (sel + 8) & 0xfffc, 0, M32, _DATA)
        cpu.load_seg_cache(c.R_CS, sel & 0xfffc, 0, M32, _CODE | c.DESC_L_MASK)
        cpu.set_eflags(cpu.get_eflags() & ~cpu.msrs[MSR_FMASK])
        cpu.rip = cpu.msrs[MSR_LSTAR] if from_64 else cpu.msrs[MSR_CSTAR]
    else:
        cpu.regs[1] = next_eip & M32
        cpu.load_seg_cache(c.R_SS, (sel + 8) & 0xfffc, 0, M32, _DATA)
        cpu.load_seg_cache(c.R_CS, sel & 0xfffc, 0, M32, _CODE | c.DESC_B_MASK)
        cpu.eflags &= ~(c.IF_MASK | c.RF_MASK | c.VM_MASK)
        cpu.rip = star & M32


def sysret(cpu, opsize: int) -> None:
    """SYSRET to 64-bit code (``opsize`` 8) or 32-bit code (4)."""
    if not cpu.efer & c.EFER_SCE:
        raise CpuException(EXCP_UD)
    if not cpu.cr[0] & c.CR0_PE or cpu.cpl != 0:
        raise CpuException(EXCP_GP, 0)
    sel = (cpu.msrs[MSR_STAR] >> 48) & 0xffff
    if cpu.lma:
        cpu.set_eflags(cpu.regs[11] & 0x3c7fd7 | 2)
        if opsize == 8:
            cpu.load_seg_cache(c.R_CS, (sel + 16) | 3, 0, M32, _CODE | c.DESC_L_MASK | _DPL3)
            cpu.rip = cpu.regs[1]
        else:
            cpu.load_seg_cache(c.R_CS, sel | 3, 0, M32, _CODE | c.DESC_B_MASK | _DPL3)
            cpu.rip = cpu.regs[1] & M32
    else:
        cpu.load_seg_cache(c.R_CS, sel | 3, 0, M32, _CODE | c.DESC_B_MASK | _DPL3)
        cpu.rip = cpu.regs[1] & M32
        cpu.eflags |= c.IF_MASK
    cpu.load_seg_cache(c.R_SS, (sel + 8) | 3, 0, M32, _DATA | _DPL3)


def sysenter(cpu) -> None:
    cs = cpu.msrs[MSR_IA32_SYSENTER_CS] & 0xffff
    if not cpu.cr[0] & c.CR0_PE or cs & 0xfffc == 0:
        raise CpuException(EXCP_GP, 0)
    cpu.eflags &= ~(c.VM_MASK | c.IF_MASK | c.RF_MASK)
    cpu.load_seg_cache(c.R_SS, (cs + 8) & 0xfffc, 0, M32, _DATA)
    if cpu.lma:
        cpu.load_seg_cache(c.R_CS, cs & 0xfffc, 0, M32, _CODE | c.DESC_L_MASK)
    else:
        cpu.load_seg_cache(c.R_CS, cs & 0xfffc, 0, M32, _CODE | c.DESC_B_MASK)
    cpu.regs[4] = cpu.msrs[MSR_IA32_SYSENTER_ESP]
    cpu.rip = cpu.msrs[MSR_IA32_SYSENTER_EIP]
    if not cpu.lma:
        cpu.regs[4] &= M32
        cpu.rip &= M32


def sysexit(cpu, opsize: int) -> None:
    cs = cpu.msrs[MSR_IA32_SYSENTER_CS] & 0xffff
    if not cpu.cr[0] & c.CR0_PE or cpu.cpl != 0 or cs & 0xfffc == 0:
        raise CpuException(EXCP_GP, 0)
    if opsize == 8:
        cpu.load_seg_cache(c.R_CS, ((cs + 32) & 0xfffc) | 3, 0, M32,
                           _CODE | c.DESC_L_MASK | _DPL3)
        cpu.load_seg_cache(c.R_SS, ((cs + 40) & 0xfffc) | 3, 0, M32, _DATA | _DPL3)
        cpu.regs[4] = cpu.regs[1]
        cpu.rip = cpu.regs[2]
    else:
        cpu.load_seg_cache(c.R_CS, ((cs + 16) & 0xfffc) | 3, 0, M32, _CODE | c.DESC_B_MASK | _DPL3)
        cpu.load_seg_cache(c.R_SS, ((cs + 24) & 0xfffc) | 3, 0, M32, _DATA | _DPL3)
        cpu.regs[4] = cpu.regs[1] & M32
        cpu.rip = cpu.regs[2] & M32


def swapgs(cpu) -> None:
    """64-bit mode only (the decoder raises #UD elsewhere); ring 0 only."""
    if cpu.cpl != 0:
        raise CpuException(EXCP_GP, 0)
    k = cpu.msrs[MSR_KERNELGSBASE]
    cpu.msrs[MSR_KERNELGSBASE] = cpu.gs_base
    cpu.gs_base = k
    cpu.sync_fs_gs()


def hlt(cpu) -> None:
    """HLT: ring 0 only; the loop then sleeps until an interrupt (EXCP_HLT)."""
    if cpu.cpl != 0:
        raise CpuException(EXCP_GP, 0)
    cpu.halted = True


def sti(cpu) -> None:
    """STI: IF set, and interrupts stay blocked for one more instruction
    unless IF was already set."""
    if not cpu.eflags & c.IF_MASK:
        cpu.inhibit_irq = True
    cpu.eflags |= c.IF_MASK


def interrupts_enabled(cpu) -> bool:
    """May the loop deliver an external interrupt now?"""
    return bool(cpu.eflags & c.IF_MASK) and not cpu.inhibit_irq


def end_of_insn(cpu) -> None:
    """Call after the instruction following STI/MOV SS: the shadow ends."""
    cpu.inhibit_irq = False
