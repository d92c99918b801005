"""The memory API: flat views, priorities, aliases, MMIO access sizes, RAM blocks."""
from __future__ import annotations

import mmap
import os

import pytest

from pyqemu.exec import memory as M
from pyqemu.exec.ramblock import ram_list
from pyqemu.qom import object as qom


@pytest.fixture(autouse=True)
def fresh():
    qom.reset_root()
    M.memory_init()
    yield
    M.memory_init()
    qom.reset_root()


def test_ram_read_write_and_unassigned():
    sysmem = M.get_system_memory()
    ram = M.memory_region_init_ram(None, "ram", 0x10000)
    sysmem.add_subregion(0x1000, ram)
    asp = M.address_space_memory()
    asp.write(0x1004, 4, 0x11223344)
    assert asp.read(0x1004, 4) == 0x11223344
    assert asp.read(0x1005, 1) == 0x33
    assert bytes(ram.ram[4:8]) == bytes.fromhex("44332211")
    assert asp.read(0x0, 4) == 0                      # unassigned memory reads 0
    assert M.address_space_io().read(0x80, 1) == 0xFF   # unassigned port reads all ones
    assert asp.is_accessible(0x1000, 0x10000) and not asp.is_accessible(0xFFF, 2)
    asp.write_bytes(0xFFFE, b"abcd")                  # crosses into ram and beyond nothing
    assert asp.read_bytes(0x1000, 2) == b"\0\0" and asp.read_bytes(0x10FFE, 2) == b"\0\0"


def test_priority_overlap_and_alias():
    sysmem = M.get_system_memory()
    low = M.memory_region_init_ram(None, "low", 0x4000)
    high = M.memory_region_init_ram(None, "high", 0x1000)
    sysmem.add_subregion(0, low)
    sysmem.add_subregion_overlap(0x1000, high, 1)
    asp = M.address_space_memory()
    asp.write(0x1000, 1, 0xAA)
    assert high.ram[0] == 0xAA and low.ram[0x1000] == 0
    alias = M.memory_region_init_alias(None, "win", low, 0x2000, 0x1000)
    sysmem.add_subregion(0x10000, alias)
    asp.write(0x10010, 2, 0xBEEF)
    assert low.ram[0x2010:0x2012] == b"\xef\xbe"
    alias.set_enabled(False)
    assert asp.read(0x10010, 2) == 0
    ranges = [(r.start, r.end, r.mr.name) for r in asp.flat_view()]
    assert ranges == [(0, 0x1000, "low"), (0x1000, 0x2000, "high"), (0x2000, 0x4000, "low")]


def test_mmio_access_size_rules():
    log = []

    def rd(off, size):
        log.append(("r", off, size))
        return 0x04030201

    def wr(off, val, size):
        log.append(("w", off, val, size))

    ops = M.MemoryRegionOps(rd, wr, valid_min=1, valid_max=4, impl_min=4, impl_max=4)
    mr = M.memory_region_init_io(None, ops, "dev", 0x10)
    M.get_system_memory().add_subregion(0x5000, mr)
    asp = M.address_space_memory()
    assert asp.read(0x5001, 1) == 0x02                 # widened to an aligned 4-byte read
    assert log[-1] == ("r", 0, 4)
    assert asp.read(0x5000, 8) == 0                    # over valid_max: rejected
    ops2 = M.MemoryRegionOps(rd, wr, valid_max=8, impl_max=2)
    mr2 = M.memory_region_init_io(None, ops2, "dev2", 0x10)
    M.get_system_io().add_subregion(0x70, mr2)
    log.clear()
    M.address_space_io().write(0x70, 4, 0xAABBCCDD)     # split into two 2-byte writes
    assert log == [("w", 0, 0xCCDD, 2), ("w", 2, 0xAABB, 2)]


def test_info_mtree_and_ramblock_text():
    ram = M.memory_region_init_ram(None, "ram", 64 << 20)
    M.get_system_memory().add_subregion(0, ram)
    alias = M.memory_region_init_alias(None, "ram-alias", ram, 0x1000, 0x1000)
    M.get_system_memory().add_subregion(0x100000000, alias)
    text = M.format_mtree()
    assert text.startswith(
        "address-space: memory\n"
        "  0000000000000000-ffffffffffffffff (prio 0, i/o): system\n"
        "    0000000000000000-0000000003ffffff (prio 0, ram): ram\n"
        "    0000000100000000-0000000100000fff (prio 0, ram): alias ram-alias @ram "
        "0000000000001000-0000000000001fff\n\n"
        "address-space: I/O\n"
        "  0000000000000000-000000000000ffff (prio 0, i/o): io\n\n")
    assert ram_list.format_info() == (
        "              Block Name    PSize              Offset               Used              Total\n"
        "                     ram    4 KiB  0x0000000000000000 0x0000000004000000 0x0000000004000000\n")


def test_file_backed_shared_ram_is_the_file(tmp_path):
    path = str(tmp_path / "mem")
    with open(path, "wb") as f:
        f.write(b"\x5a" * 8192)
    mr = M.memory_region_init_ram(None, "filemem", 8192, path=path, share=True)
    M.get_system_memory().add_subregion(0x2000, mr)
    asp = M.address_space_memory()
    assert asp.read(0x2000, 4) == 0x5A5A5A5A
    asp.write_bytes(0x2010, b"hello")
    mr.ram.flush()
    with open(path, "rb") as f:
        data = f.read()
    assert data[0x10:0x15] == b"hello"
    # A change made through the file is seen by the guest (MAP_SHARED).
    fd = os.open(path, os.O_RDWR)
    try:
        m = mmap.mmap(fd, 8192)
        m[0x100:0x103] = b"xyz"
        m.close()
    finally:
        os.close(fd)
    assert asp.read_bytes(0x2100, 3) == b"xyz"


def test_impossible_ram_size_is_a_clean_error():
    from pyqemu.util.error import QemuError
    with pytest.raises(QemuError, match="cannot set up guest memory 'huge': Cannot allocate memory"):
        M.memory_region_init_ram(None, "huge", 1 << 62)


def test_flat_view_joins_a_region_seen_through_consecutive_aliases():
    # as the PC's PAM windows show pc.rom: 4 aliases of 16 KiB in a row, one range
    sysmem = M.get_system_memory()
    rom = M.memory_region_init_ram(None, "rom", 0x10000)
    for i in range(4):
        alias = M.memory_region_init_alias(None, "pam%d" % i, rom, i * 0x4000, 0x4000)
        sysmem.add_subregion_overlap(0xc0000 + i * 0x4000, alias, 1)
    # a fifth alias that skips ahead in the target is not joined
    skip = M.memory_region_init_alias(None, "pam4", rom, 0xc000, 0x4000)
    sysmem.add_subregion_overlap(0xd0000, skip, 1)
    ranges = [(r.start, r.end, r.mr.name, r.offset) for r in M.address_space_memory().flat_view()]
    assert ranges == [(0xc0000, 0xd0000, "rom", 0), (0xd0000, 0xd4000, "rom", 0xc000)]
    flat = M.format_mtree(flatview=True)
    assert "  00000000000c0000-00000000000cffff (prio 0, ram): rom\n" in flat
    assert "  00000000000d0000-00000000000d3fff (prio 0, ram): rom @000000000000c000\n" in flat
