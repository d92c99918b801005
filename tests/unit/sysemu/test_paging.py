from __future__ import annotations

import pytest

from pyqemu.exec.softmmu import ACCESS_FETCH, ACCESS_READ, ACCESS_WRITE
from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu import mmu
from pyqemu.target.i386.sysemu.control import write_cr, write_cr0
from pyqemu.target.i386.sysemu.excp import CpuException
from pyqemu.target.i386.sysemu.msr import MSR_EFER, wrmsr

P, RW, US, A, D, PS, G = 1, 2, 4, 0x20, 0x40, 0x80, 0x100


def setup32(mach):
    cpu = mach.cpu
    pd, pt = 0x10000, 0x11000
    mach.w(pd + 0 * 4, 4, pt | P | RW | US)
    mach.w(pt + 0x40 * 4, 4, 0x200000 | P | RW | US)      # 0x40000 -> 0x200000 user rw
    mach.w(pt + 0x41 * 4, 4, 0x201000 | P)                # 0x41000 -> kernel read-only
    mach.w(pd + 2 * 4, 4, 0x400000 | P | RW | PS)         # 0x800000: 4 MiB page -> 0x400000
    write_cr(cpu, 3, pd)
    write_cr(cpu, 4, c.CR4_PSE)
    write_cr0(cpu, c.CR0_PE | c.CR0_PG | c.CR0_WP | c.CR0_ET)
    return pd, pt


def fault(fn, *a):
    with pytest.raises(CpuException) as e:
        fn(*a)
    return e.value.vector, e.value.error_code


def test_32bit_walk_sets_accessed_and_dirty(mach):
    cpu = mach.cpu
    pd, pt = setup32(mach)
    mach.w(0x200010, 4, 0xdeadbeef)
    assert cpu.tlb.ld(0x40010, 4, c.MMU_KERNEL_IDX) == 0xdeadbeef
    assert mach.r(pt + 0x40 * 4, 4) & (A | D) == A and mach.r(pd, 4) & A
    cpu.tlb.st(0x40020, 4, 0x11223344, c.MMU_USER_IDX)
    assert mach.r(0x200020, 4) == 0x11223344
    assert mach.r(pt + 0x40 * 4, 4) & D
    # 4 MiB page with PSE
    cpu.tlb.st(0x923456, 2, 0xbeef, c.MMU_KERNEL_IDX)
    assert mach.r(0x523456, 2) == 0xbeef
    assert mach.r(pd + 8, 4) & (A | D) == A | D


def test_32bit_fault_error_codes_and_cr2(mach):
    cpu = mach.cpu
    setup32(mach)
    assert fault(cpu.tlb.ld, 0x42000, 4, c.MMU_KERNEL_IDX) == (14, 0)
    assert cpu.cr[2] == 0x42000
    assert fault(cpu.tlb.ld, 0x41000, 4, c.MMU_USER_IDX) == (14, 5)
    assert fault(cpu.tlb.st, 0x41004, 4, 1, c.MMU_KERNEL_IDX) == (14, 3)
    assert cpu.cr[2] == 0x41004
    # WP clear: the supervisor may write a read-only page
    write_cr0(cpu, cpu.cr[0] & ~c.CR0_WP)
    cpu.tlb.st(0x41004, 4, 7, c.MMU_KERNEL_IDX)
    assert mach.r(0x201004, 4) == 7


def test_invlpg_and_cr3_flush(mach):
    cpu = mach.cpu
    pd, pt = setup32(mach)
    assert cpu.tlb.translate(0x40000, ACCESS_READ, c.MMU_KERNEL_IDX) == 0x200000
    mach.w(pt + 0x40 * 4, 4, 0x300000 | P | RW | US)
    # stale until invalidated, as on hardware
    assert cpu.tlb.translate(0x40000, ACCESS_READ, c.MMU_KERNEL_IDX) == 0x200000
    mmu.invlpg(cpu, 0x40000)
    assert cpu.tlb.translate(0x40000, ACCESS_READ, c.MMU_KERNEL_IDX) == 0x300000
    # a global page survives a CR3 reload while CR4.PGE is set
    mach.w(pt + 0x40 * 4, 4, 0x300000 | P | RW | G)
    mmu.invlpg(cpu, 0x40000)
    write_cr(cpu, 4, c.CR4_PSE | c.CR4_PGE)
    cpu.tlb.translate(0x40000, ACCESS_READ, c.MMU_KERNEL_IDX)
    mach.w(pt + 0x40 * 4, 4, 0x380000 | P | RW | G)
    write_cr(cpu, 3, pd)
    assert cpu.tlb.translate(0x40000, ACCESS_READ, c.MMU_KERNEL_IDX) == 0x300000


def test_info_tlb_and_mem_32(mach):
    setup32(mach)
    tlb = mmu.info_tlb(mach.cpu).splitlines()
    assert tlb == [
        "0000000000040000: 0000000000200000 -------UW",
        "0000000000041000: 0000000000201000 ---------",
        "0000000000800000: 0000000000400000 --P-----W",
    ]
    assert mmu.info_mem(mach.cpu).splitlines() == [
        "0000000000040000-0000000000041000 0000000000001000 urw",
        "0000000000041000-0000000000042000 0000000000001000 -r-",
        "0000000000800000-0000000000c00000 0000000000400000 -rw",
    ]


def setup_long(mach):
    cpu = mach.cpu
    pml4, pdpt, pd, pt = 0x20000, 0x21000, 0x22000, 0x23000
    NX = 1 << 63
    mach.w(pml4, 8, pdpt | P | RW | US)
    mach.w(pml4 + 511 * 8, 8, pdpt | P | RW)              # the top 512 GiB, kernel only
    mach.w(pdpt, 8, pd | P | RW | US)
    mach.w(pd, 8, pt | P | RW | US)
    mach.w(pd + 8, 8, 0x600000 | P | RW | PS)             # 2 MiB page at 0x200000
    mach.w(pt + 8, 8, 0x700000 | P | RW | US | NX)        # 0x1000, no-execute
    write_cr(cpu, 4, c.CR4_PAE)
    wrmsr(cpu, MSR_EFER, c.EFER_LME | c.EFER_NXE)
    write_cr(cpu, 3, pml4)
    write_cr0(cpu, c.CR0_PE | c.CR0_PG | c.CR0_WP | c.CR0_ET)


def test_long_mode_walk_nx_and_canonical(mach):
    cpu = mach.cpu
    setup_long(mach)
    assert cpu.tlb.translate(0x1234, ACCESS_WRITE, c.MMU_USER_IDX) == 0x700234
    assert cpu.tlb.translate(0x212345, ACCESS_FETCH, c.MMU_KERNEL_IDX) == 0x612345
    assert fault(cpu.tlb.translate, 0x1000, ACCESS_FETCH, c.MMU_KERNEL_IDX) == (14, 0x11)
    assert fault(cpu.tlb.translate, 0x212345, ACCESS_READ, c.MMU_USER_IDX) == (14, 5)
    assert fault(cpu.tlb.translate, 0xffff800000200000, ACCESS_READ, c.MMU_KERNEL_IDX) \
        == (14, 0)
    assert cpu.cr[2] == 0xffff800000200000
    assert fault(cpu.tlb.translate, 0x0000800000000000, ACCESS_READ, c.MMU_KERNEL_IDX) \
        == (13, 0)


def test_info_tlb_long(mach):
    setup_long(mach)
    assert mmu.info_tlb(mach.cpu).splitlines() == [
        "0000000000001000: 0000000000700000 X------UW",
        "0000000000200000: 0000000000600000 --P-----W",
        "ffffff8000001000: 0000000000700000 X------UW",
        "ffffff8000200000: 0000000000600000 --P-----W",
    ]
    assert mmu.info_mem(mach.cpu).splitlines() == [
        "0000000000001000-0000000000002000 0000000000001000 urw",
        "0000000000200000-0000000000400000 0000000000200000 -rw",
        "ffffff8000001000-ffffff8000002000 0000000000001000 -rw",
        "ffffff8000200000-ffffff8000400000 0000000000200000 -rw",
    ]


def test_paging_disabled(mach):
    assert mmu.info_tlb(mach.cpu) == "PG disabled\n"
