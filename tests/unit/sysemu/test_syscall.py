from __future__ import annotations

import pytest

from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu import msr, syscall
from pyqemu.target.i386.sysemu.excp import CpuException

from sysemu_helpers import enter_pm, setup_long_idt


def test_syscall_sysret_64(mach):
    cpu = mach.cpu
    setup_long_idt(mach)
    with pytest.raises(CpuException) as e:
        syscall.syscall(cpu, 0)
    assert e.value.vector == 6                       # SCE clear: #UD
    msr.wrmsr(cpu, msr.MSR_EFER, cpu.efer | c.EFER_SCE)
    msr.wrmsr(cpu, msr.MSR_STAR, (0x10 << 48) | (0x08 << 32))
    msr.wrmsr(cpu, msr.MSR_LSTAR, 0xffffffff81800000)
    msr.wrmsr(cpu, msr.MSR_FMASK, c.IF_MASK | c.TF_MASK)
    syscall.sysret(cpu, 8)                           # start in ring 3 via sysret
    assert cpu.cpl == 3 and cpu.segs[c.R_CS] == 0x23 and cpu.segs[c.R_SS] == 0x1b
    assert cpu.code64
    cpu.set_eflags(0x202)
    syscall.syscall(cpu, 0x401000)
    assert cpu.cpl == 0 and cpu.rip == 0xffffffff81800000 and cpu.segs[c.R_CS] == 0x08
    assert cpu.regs[1] == 0x401000 and cpu.regs[11] == 0x202
    assert not cpu.get_eflags() & c.IF_MASK
    syscall.sysret(cpu, 8)
    assert cpu.rip == 0x401000 and cpu.cpl == 3 and cpu.get_eflags() & c.IF_MASK
    with pytest.raises(CpuException):
        syscall.sysret(cpu, 8)                       # only ring 0 may sysret


def test_swapgs(mach):
    cpu = mach.cpu
    setup_long_idt(mach)
    msr.wrmsr(cpu, msr.MSR_GSBASE, 0x1000)
    msr.wrmsr(cpu, msr.MSR_KERNELGSBASE, 0xffff888000000000)
    syscall.swapgs(cpu)
    assert cpu.gs_base == 0xffff888000000000 and cpu.seg_base[c.R_GS] == cpu.gs_base
    assert msr.rdmsr(cpu, msr.MSR_KERNELGSBASE) == 0x1000


def test_sysenter_sysexit_32(mach):
    cpu = mach.cpu
    enter_pm(mach)
    msr.wrmsr(cpu, msr.MSR_IA32_SYSENTER_CS, 0x08)
    msr.wrmsr(cpu, msr.MSR_IA32_SYSENTER_ESP, 0x9000)
    msr.wrmsr(cpu, msr.MSR_IA32_SYSENTER_EIP, 0xc0001000)
    cpu.regs[1], cpu.regs[2] = 0x7000, 0x8048000
    syscall.sysexit(cpu, 4)
    assert cpu.cpl == 3 and cpu.segs[c.R_CS] == 0x1b and cpu.rip == 0x8048000
    assert cpu.regs[4] == 0x7000 and cpu.mode == 32
    syscall.sysenter(cpu)
    assert cpu.cpl == 0 and cpu.rip == 0xc0001000 and cpu.regs[4] == 0x9000


def test_sti_shadow_and_hlt(mach):
    cpu = mach.cpu
    syscall.sti(cpu)
    assert not syscall.interrupts_enabled(cpu)      # the instruction after STI runs first
    syscall.end_of_insn(cpu)
    assert syscall.interrupts_enabled(cpu)
    syscall.hlt(cpu)
    assert cpu.halted
