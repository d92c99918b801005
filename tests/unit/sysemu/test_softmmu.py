from __future__ import annotations

import struct

from pyqemu.exec import memory as m
from pyqemu.exec.softmmu import ACCESS_READ, ACCESS_WRITE, SoftMMU
from pyqemu.target.i386.sysemu import cpu as c


def identity(vaddr, access, idx):
    return vaddr & ~0xfff, 7, 4096, False


def test_ram_fast_path_is_the_mmap(mach):
    tlb = SoftMMU(mach.as_, identity)
    mem, off = tlb.host_addr(0x12345, ACCESS_WRITE, 0)
    struct.pack_into("<I", mem, off, 0xabcdef01)
    assert mach.r(0x12345, 4) == 0xabcdef01
    assert tlb.ld(0x12345, 4, 0) == 0xabcdef01


def test_mmio_and_cross_page_go_through_dispatch(mach):
    seen = []
    ops = m.MemoryRegionOps(lambda off, size: 0x1000 + off,
                            lambda off, val, size: seen.append((off, val, size)))
    io = m.memory_region_init_io(None, ops, "dev", 0x1000)
    m.get_system_memory().add_subregion(0xfe000000, io)
    tlb = SoftMMU(mach.as_, identity)
    assert tlb.host_addr(0xfe000010, ACCESS_READ, 0) is None
    assert tlb.ld(0xfe000010, 4, 0) == 0x1010
    tlb.st(0xfe000020, 2, 0x55, 0)
    assert seen == [(0x20, 0x55, 2)]
    tlb.st(0xffe, 4, 0x11223344, 0)
    assert mach.r(0xffe, 4) == 0x11223344 and tlb.ld(0xffe, 4, 0) == 0x11223344


def test_code_page_writes_reach_the_hook(mach):
    tlb = SoftMMU(mach.as_, identity)
    hits = []
    tlb.code_write_hook = lambda paddr, size: hits.append((paddr, size))
    tlb.st(0x5000, 4, 1, 0)                    # fills the TLB with a fast entry
    tlb.mark_code_page(0x5000)
    assert tlb.host_addr(0x5004, ACCESS_WRITE, 0) is None
    assert tlb.host_addr(0x5004, ACCESS_READ, 0) is not None
    tlb.st(0x5008, 4, 0x90909090, 0)
    assert hits == [(0x5008, 4)] and mach.r(0x5008, 4) == 0x90909090
    tlb.unmark_code_page(0x5000)
    tlb.st(0x500c, 4, 0, 0)
    assert hits == [(0x5008, 4)]


def test_flush_page_and_large_pages(mach):
    calls = []

    def fill(vaddr, access, idx):
        calls.append(vaddr & ~0xfff)
        return (vaddr & 0x1fffff) | 0x200000, 7, 2 << 20, False

    tlb = SoftMMU(mach.as_, fill)
    tlb.ld(0x400000, 1, 0)
    tlb.ld(0x401000, 1, 0)
    tlb.ld(0x401000, 1, 0)
    assert calls == [0x400000, 0x401000]
    tlb.flush_page(0x5ff000)                   # inside the 2 MiB page: whole index goes
    tlb.ld(0x401000, 1, 0)
    assert calls[-1] == 0x401000 and len(calls) == 3


def test_topology_change_refreshes_buffers(mach):
    tlb = SoftMMU(mach.as_, identity)
    tlb.ld(0x100000, 4, 0)
    rom = m.memory_region_init_rom(None, "rom", 0x1000)
    rom.ram[0:4] = b"\x78\x56\x34\x12"
    m.get_system_memory().add_subregion_overlap(0x100000, rom, 1)
    tlb.ld(0x200000, 4, 0)                     # a miss notices the new flat view
    assert tlb.ld(0x100000, 4, 0) == 0x12345678
    tlb.st(0x100000, 4, 0, 0)                  # ROM ignores writes
    assert tlb.ld(0x100000, 4, 0) == 0x12345678


def test_cpu_user_index_is_separate(mach):
    cpu = mach.cpu
    assert cpu.mmu_index() == c.MMU_KERNEL_IDX
    cpu.tlb.ld(0x3000, 4, c.MMU_KERNEL_IDX)
    assert 0x3000 in cpu.tlb.tables[c.MMU_KERNEL_IDX]
    assert 0x3000 not in cpu.tlb.tables[c.MMU_USER_IDX]
