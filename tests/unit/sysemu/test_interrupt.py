from __future__ import annotations

import pytest

from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu import interrupt
from pyqemu.target.i386.sysemu.excp import CpuException, TripleFault

from sysemu_helpers import CODE64, DATA32, enter_pm, ring3_with_tss, setup_long_idt


def test_real_mode_ivt(mach):
    cpu = mach.cpu
    cpu.load_seg_cache(c.R_CS, 0x100, 0x1000, 0xffff, cpu.seg_flags[c.R_CS])
    cpu.load_seg_cache(c.R_SS, 0, 0, 0xffff, cpu.seg_flags[c.R_SS])
    cpu.rip, cpu.regs[4] = 0x20, 0x7000
    cpu.idt.base = 0
    mach.w(0x21 * 4, 2, 0x5678)
    mach.w(0x21 * 4 + 2, 2, 0x0200)
    cpu.eflags |= c.IF_MASK
    interrupt.deliver(cpu, 0x21, is_int=True, next_eip=0x22)
    assert cpu.segs[c.R_CS] == 0x200 and cpu.seg_base[c.R_CS] == 0x2000
    assert cpu.rip == 0x5678 and not cpu.eflags & c.IF_MASK
    assert [mach.r(0x7000 - 2 * i, 2) for i in (1, 2, 3)] == [0x202 | 0, 0x100, 0x22]


def test_protected_fault_from_ring3_switches_stack(mach):
    cpu = mach.cpu
    ring3_with_tss(mach)
    cpu.idt.base, cpu.idt.limit = 0x3000, 0x7ff
    mach.gate(0x3000, 13, 0x08, 0x4444, 14, 0)        # 32-bit interrupt gate
    cpu.rip = 0x1500
    cpu.eflags |= c.IF_MASK
    interrupt.deliver(cpu, 13, 0x28)
    assert cpu.cpl == 0 and cpu.rip == 0x4444 and cpu.regs[4] == 0x9000 - 24
    assert [mach.r(0x9000 - 4 * i, 4) for i in range(1, 7)] == [
        0x23, 0x8000, 0x202 | c.IF_MASK, 0x1b, 0x1500, 0x28]
    assert not cpu.eflags & c.IF_MASK


def test_int_gate_dpl_check(mach):
    cpu = mach.cpu
    ring3_with_tss(mach)
    cpu.idt.base, cpu.idt.limit = 0x3000, 0x7ff
    mach.gate(0x3000, 0x80, 0x08, 0x4444, 15, 0)
    with pytest.raises(CpuException) as e:
        interrupt.do_interrupt(cpu, 0x80, True, 0, 0x1502, False)
    assert (e.value.vector, e.value.error_code) == (13, 0x80 * 8 + 2)
    mach.gate(0x3000, 0x80, 0x08, 0x4444, 15, 3)      # trap gate usable from ring 3
    interrupt.deliver(cpu, 0x80, is_int=True, next_eip=0x1502)
    assert cpu.rip == 0x4444 and mach.r(0x9000 - 20, 4) == 0x1502


def test_double_and_triple_fault(mach):
    cpu = mach.cpu
    enter_pm(mach)
    cpu.regs[4] = 0x8000
    cpu.idt.base, cpu.idt.limit = 0x3000, 0x7ff
    # #GP's gate is not present: #NP while delivering #GP -> #DF
    mach.gate(0x3000, 8, 0x08, 0x8888, 14, 0)
    interrupt.deliver(cpu, 13, 0)
    assert cpu.rip == 0x8888 and mach.r(0x8000 - 16, 4) == 0    # #DF's error code 0
    # without a #DF gate either: shutdown
    cpu.idt.limit = 8 * 8 - 1
    with pytest.raises(TripleFault):
        interrupt.deliver(cpu, 13, 0)
    assert cpu.shutdown_request


def test_long_mode_ring3_to_ring0_and_ist(mach):
    cpu = mach.cpu
    setup_long_idt(mach)
    mach.gate(0x3000, 14, 0x08, 0xffffffff81000000, 14, 0, size=16)
    mach.gate(0x3000, 2, 0x08, 0x500000, 14, 0, size=16, ist=1)
    cpu.load_seg_cache(c.R_CS, 0x1b, 0, 0xffffffff, CODE64 | (3 << 13))
    cpu.load_seg_cache(c.R_SS, 0x23, 0, 0xffffffff, DATA32 | (3 << 13))
    cpu.regs[4], cpu.rip = 0x7008, 0x401234
    interrupt.deliver(cpu, 14, 6)
    assert cpu.cpl == 0 and cpu.rip == 0xffffffff81000000 and cpu.segs[c.R_SS] == 0
    assert cpu.regs[4] == 0xa000 - 48
    assert [mach.r(0xa000 - 8 * i, 8) for i in range(1, 7)] == [0x23, 0x7008, 0x2, 0x1b,
                                                                0x401234, 6]
    interrupt.deliver(cpu, 2, 0, is_hw=True)     # NMI on IST1, no error code
    assert cpu.regs[4] == 0xc000 - 40 and cpu.rip == 0x500000


def test_interrupt_from_v86_pushes_data_segments(mach):
    from pyqemu.target.i386.sysemu import seg
    cpu = mach.cpu
    ring3_with_tss(mach)
    cpu.idt.base, cpu.idt.limit = 0x3000, 0x7ff
    mach.gate(0x3000, 0x41, 0x08, 0x4444, 14, 3)
    seg.load_seg_vm(cpu, c.R_CS, 0xf000)
    seg.load_seg_vm(cpu, c.R_SS, 0x700)
    for s, sel in ((c.R_ES, 0x11), (c.R_DS, 0x22), (c.R_FS, 0x33), (c.R_GS, 0x44)):
        seg.load_seg_vm(cpu, s, sel)
    cpu.set_eflags(0x23002)
    cpu.regs[4], cpu.rip = 0xff0, 0x1234
    interrupt.deliver(cpu, 0x41, is_int=True, next_eip=0x1236)
    assert not cpu.vm86 and cpu.cpl == 0 and cpu.rip == 0x4444
    frame = [mach.r(0x9000 - 4 * i, 4) for i in range(9, 0, -1)]
    assert frame == [0x1236, 0xf000, 0x23002, 0xff0, 0x700, 0x11, 0x22, 0x33, 0x44]
    assert [cpu.segs[s] for s in (c.R_ES, c.R_DS, c.R_FS, c.R_GS)] == [0, 0, 0, 0]


def test_faults_while_delivering_a_page_fault(mach):
    from pyqemu.target.i386.sysemu.control import write_cr, write_cr0
    cpu = mach.cpu
    enter_pm(mach)
    cpu.idt.base, cpu.idt.limit = 0x3000, 0x7ff
    mach.gate(0x3000, 14, 0x08, 0xe000, 14, 0)
    mach.gate(0x3000, 8, 0x08, 0x8000, 14, 0)
    # identity map the first 4 MiB except the page at 0x7000
    pd, pt = 0x10000, 0x11000
    mach.w(pd, 4, pt | 3)
    for i in range(1024):
        if i != 7:
            mach.w(pt + 4 * i, 4, (i << 12) | 3)
    write_cr(cpu, 3, pd)
    write_cr0(cpu, cpu.cr[0] | c.CR0_PG)
    # #PF whose frame cannot be pushed: #PF again -> #DF, which cannot be pushed either
    cpu.regs[4] = 0x8000
    with pytest.raises(TripleFault):
        interrupt.deliver(cpu, 14, 2)
    assert cpu.cr[2] == 0x7ffc
    # #PF whose gate is not present: #NP (contributory) after #PF -> #DF
    cpu.shutdown_request = False
    cpu.regs[4] = 0x9000
    mach.w(0x3000 + 14 * 8 + 4, 4, mach.r(0x3000 + 14 * 8 + 4, 4) & ~c.DESC_P_MASK)
    interrupt.deliver(cpu, 14, 2)
    assert cpu.rip == 0x8000 and mach.r(0x9000 - 16, 4) == 0
