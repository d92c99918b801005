from __future__ import annotations

import pytest

from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu import msr
from pyqemu.target.i386.sysemu.control import write_cr, write_cr0
from pyqemu.target.i386.sysemu.excp import CpuException


def test_reset_state(mach):
    cpu = mach.cpu
    assert cpu.seg_base[c.R_CS] == 0xffff0000 and cpu.segs[c.R_CS] == 0xf000
    assert cpu.rip == 0xfff0 and cpu.cr[0] == 0x60000010
    assert cpu.regs[2] == cpu.cpuid(1, 0)[0]
    assert cpu.get_eflags() == 2 and cpu.mode == 16 and cpu.cpl == 0
    assert cpu.idt.limit == 0xffff and cpu.dr[6] == 0xffff0ff0 and cpu.dr[7] == 0x400


def test_msrs_read_back_unknown_and_privilege(mach):
    cpu = mach.cpu
    assert msr.rdmsr(cpu, msr.MSR_PAT) == 0x0007040600070406
    assert msr.rdmsr(cpu, msr.MSR_IA32_APICBASE) == 0xfee00900
    for index, value in ((0x200, 0x80000006), (0x201, 0xff80000800), (0x2ff, 0xc06),
                         (0x250, 0x0606060606060606), (msr.MSR_LSTAR, 0xffffffff81000000),
                         (msr.MSR_IA32_SYSENTER_EIP, 0x1234)):
        msr.wrmsr(cpu, index, value)
        assert msr.rdmsr(cpu, index) == value
    # QEMU 7.2 (checked in tests/peer/sysemu): unknown MSRs read 0, writes vanish
    assert msr.rdmsr(cpu, 0x12345) == 0
    msr.wrmsr(cpu, 0x12345, 7)
    msr.wrmsr(cpu, msr.MSR_MTRRcap, 0)
    assert msr.rdmsr(cpu, msr.MSR_MTRRcap) == 0x508
    msr.wrmsr(cpu, msr.MSR_EFER, c.EFER_SCE | c.EFER_NXE | c.EFER_LME | (1 << 20))
    assert msr.rdmsr(cpu, msr.MSR_EFER) == c.EFER_SCE | c.EFER_NXE | c.EFER_LME
    cpu.load_seg_cache(c.R_SS, 0x23, 0, 0xffffffff, 3 << c.DESC_DPL_SHIFT)
    with pytest.raises(CpuException) as e:
        msr.rdmsr(cpu, msr.MSR_PAT)
    assert (e.value.vector, e.value.error_code) == (13, 0)


def test_tsc_follows_source_and_write(mach):
    cpu = mach.cpu
    cpu.tsc_source = lambda: 1000
    msr.wrmsr(cpu, msr.MSR_IA32_TSC, 5000)
    cpu.tsc_source = lambda: 1500
    assert msr.rdtsc(cpu) == 5500


def test_cr_checks(mach):
    cpu = mach.cpu
    with pytest.raises(CpuException):
        write_cr0(cpu, 0x80000000)                 # PG without PE
    with pytest.raises(CpuException):
        write_cr(cpu, 4, 1 << 30)                  # reserved CR4 bit
    msr.wrmsr(cpu, msr.MSR_EFER, c.EFER_LME)
    before = cpu.cr[0]
    write_cr0(cpu, c.CR0_PE | c.CR0_PG)            # long mode needs PAE first: ignored
    assert cpu.cr[0] == before and not cpu.lma
    write_cr(cpu, 4, c.CR4_PAE)
    write_cr0(cpu, c.CR0_PE | c.CR0_PG)
    assert cpu.efer & c.EFER_LMA and cpu.lma
