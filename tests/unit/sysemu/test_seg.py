from __future__ import annotations

import pytest

from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu import seg
from pyqemu.target.i386.sysemu.excp import CpuException, TaskSwitchUnsupported

from sysemu_helpers import CODE32, DATA32, enter_pm, ring3_with_tss, setup_long_idt


def fault(fn, *a):
    with pytest.raises(CpuException) as e:
        fn(*a)
    return e.value.vector, e.value.error_code


def test_real_mode_load_keeps_limit_for_unreal_mode(mach):
    cpu = mach.cpu
    cpu.seg_limit[c.R_DS] = 0xffffffff         # as left by a protected-mode load
    seg.load_seg(cpu, c.R_DS, 0x1234)
    assert cpu.seg_base[c.R_DS] == 0x12340 and cpu.seg_limit[c.R_DS] == 0xffffffff


def test_protected_load_checks(mach):
    cpu = mach.cpu
    enter_pm(mach)
    assert cpu.mode == 32 and cpu.cpl == 0 and cpu.rip == 0x100
    assert cpu.seg_limit[c.R_DS] == 0xffffffff
    # the accessed bit was set in the GDT
    assert mach.r(0x1000 + 0x10 + 4, 4) & c.DESC_A_MASK
    assert fault(seg.load_seg, cpu, c.R_SS, 0) == (13, 0)          # null SS
    seg.load_seg(cpu, c.R_DS, 0)                                   # null DS is fine
    assert fault(seg.load_seg, cpu, c.R_SS, 0x20 | 3) == (13, 0x20)  # RPL != CPL
    assert fault(seg.load_seg, cpu, c.R_SS, 0x08) == (13, 0x08)    # code as stack
    assert fault(seg.load_seg, cpu, c.R_DS, 0x200) == (13, 0x200)  # beyond GDT limit
    mach.desc(0x1000, 0x28, 0, 0xfffff, DATA32 & ~c.DESC_P_MASK)
    assert fault(seg.load_seg, cpu, c.R_DS, 0x28) == (11, 0x28)
    assert fault(seg.load_seg, cpu, c.R_SS, 0x28) == (12, 0x28)
    # execute-only code is not readable data
    mach.desc(0x1000, 0x30, 0, 0xfffff, CODE32 & ~c.DESC_R_MASK)
    assert fault(seg.load_seg, cpu, c.R_ES, 0x30) == (13, 0x30)


def test_lar_lsl_verr_verw(mach):
    cpu = mach.cpu
    enter_pm(mach)
    mach.desc(0x1000, 0x28, 0x10000, 0x1234, DATA32 & ~c.DESC_G_MASK)
    ok, limit = seg.lsl(cpu, 0x28)
    assert ok and limit == 0x1234
    ok, rights = seg.lar(cpu, 0x08)
    # the far jump into 0x08 leaves the accessed bit alone, as QEMU 7.2 does
    assert ok and rights & 0xff00 == CODE32 & 0xff00
    assert seg.verr(cpu, 0x08) and not seg.verw(cpu, 0x08) and seg.verw(cpu, 0x10)
    assert seg.lsl(cpu, 0) == (False, 0)


def test_ltr_lldt_and_tables(mach):
    cpu = mach.cpu
    enter_pm(mach)
    mach.desc(0x1000, 0x38, 0x5000, 0x67, c.DESC_P_MASK | (9 << 8))
    seg.ltr(cpu, 0x38)
    assert cpu.tr.base == 0x5000 and seg.str_(cpu) == 0x38
    assert (mach.r(0x1000 + 0x38 + 4, 4) >> 8) & 0xf == 11      # now busy
    assert fault(seg.ltr, cpu, 0x38) == (13, 0x38)               # busy TSS refused
    mach.desc(0x1000, 0x40, 0x6000, 0xff, c.DESC_P_MASK | (2 << 8))
    seg.lldt(cpu, 0x40)
    assert cpu.ldt.base == 0x6000 and seg.sldt(cpu) == 0x40
    seg.lidt(cpu, 0x7ff, 0x12345678, 16)
    assert seg.sidt(cpu) == (0x7ff, 0x345678)


def test_call_gate_to_ring0_and_lret_back(mach):
    cpu = mach.cpu
    ring3_with_tss(mach)
    mach.gate(0x1000, 0x48 // 8, 0x08, 0x4000, 12, 3)
    # one parameter on the caller's stack
    mach.w(0x1000 + 0x48 + 4, 4, mach.r(0x1000 + 0x48 + 4, 4) | 1)
    cpu.regs[4] = 0x7ffc
    mach.w(0x7ffc, 4, 0xcafe)
    seg.lcall(cpu, 0x48 | 3, 0, 4, 0x1234)
    assert cpu.cpl == 0 and cpu.rip == 0x4000 and cpu.segs[c.R_CS] == 0x08
    assert cpu.segs[c.R_SS] == 0x10 and cpu.regs[4] == 0x9000 - 20
    assert [mach.r(0x9000 - 4 * i, 4) for i in range(1, 6)] == [0x23, 0x7ffc, 0xcafe, 0x1b,
                                                                 0x1234]
    seg.lret_iret(cpu, 4, False, 4)
    assert cpu.cpl == 3 and cpu.rip == 0x1234 and cpu.regs[4] == 0x8000
    assert cpu.segs[c.R_CS] == 0x1b and cpu.segs[c.R_SS] == 0x23


def test_far_jmp_privilege_checks_and_task_switch(mach):
    cpu = mach.cpu
    ring3_with_tss(mach)
    assert fault(seg.ljmp, cpu, 0x08, 0, 0) == (13, 0x08)      # ring-0 code from ring 3
    assert fault(seg.ljmp, cpu, 0x1b, 0x1000000000, 0) == (13, 0)  # beyond the limit
    assert fault(seg.ljmp, cpu, 0x38 | 3, 0, 0) == (13, 0x38)   # a busy TSS
    # a TSS whose selectors are null: the switch itself faults with #TS
    mach.desc(0x1000, 0x50, 0x5100, 0x67, c.DESC_P_MASK | (9 << 8) | (3 << 13))
    assert fault(seg.ljmp, cpu, 0x50 | 3, 0, 0) == (10, 0)
    mach.desc(0x1000, 0x58, 0x5200, 0x67, c.DESC_P_MASK | (1 << 8) | (3 << 13))
    with pytest.raises(TaskSwitchUnsupported):
        seg.ljmp(cpu, 0x58 | 3, 0, 0)             # 16-bit TSS


def test_iret_to_v86_and_real_mode_iret(mach):
    cpu = mach.cpu
    enter_pm(mach)
    cpu.regs[4] = 0x8000
    frame = [0x10, 0x1000, c.VM_MASK | 2 | c.IF_MASK, 0x8fe0, 0x3000, 0x11, 0x22, 0x33, 0x44]
    for i, v in enumerate(frame):
        mach.w(0x8000 + 4 * i, 4, v)
    seg.iret(cpu, 4, 0)
    assert cpu.eflags & c.VM_MASK and cpu.cpl == 3 and cpu.rip == 0x10
    assert cpu.seg_base[c.R_CS] == 0x10000 and cpu.seg_base[c.R_GS] == 0x440
    assert cpu.regs[4] == 0x8fe0 and cpu.seg_base[c.R_SS] == 0x30000


def test_iretq_same_privilege(mach):
    cpu = mach.cpu
    setup_long_idt(mach)
    cpu.regs[4] = 0x9000
    for i, v in enumerate([0x401000, 0x08, 0x202, 0x9100, 0x10]):
        mach.w(0x9000 + 8 * i, 8, v)
    seg.iret(cpu, 8, 0)
    assert cpu.rip == 0x401000 and cpu.regs[4] == 0x9100 and cpu.eflags & c.IF_MASK
    assert cpu.code64


def test_io_permission_bitmap(mach):
    cpu = mach.cpu
    ring3_with_tss(mach)
    assert not seg.io_allowed_by_iopl(cpu)
    # TSS limit 0x67 with no room for a bitmap: every port faults
    mach.w(0x5000 + 0x66, 2, 0x68)
    assert fault(seg.check_io, cpu, 0x80, 1) == (13, 0)
    # a bitmap at 0x68 with ports 0x3f8-0x3ff allowed, others denied
    cpu.tr.limit = 0x68 + 0x2000
    mach.as_.write_bytes(0x5068, b"\xff" * 0x2001)
    mach.w(0x5068 + 0x3f8 // 8, 1, 0)
    seg.check_io(cpu, 0x3f8, 4)
    seg.check_io(cpu, 0x3fc, 4)
    assert fault(seg.check_io, cpu, 0x3fe, 4) == (13, 0)      # 0x400 is denied
    assert fault(seg.check_io, cpu, 0x80, 1) == (13, 0)
    cpu.set_eflags(cpu.get_eflags() | (3 << 12))
    assert seg.io_allowed_by_iopl(cpu)
