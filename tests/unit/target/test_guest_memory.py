from __future__ import annotations

import pytest

from pyqemu.exec.guest_memory import PROT_EXEC, PROT_READ, PROT_WRITE, GuestFault, GuestMemory


def test_map_read_write_and_protections():
    m = GuestMemory()
    m.map(0x400000, 0x2000, PROT_READ | PROT_WRITE, b"hello", 0x10)
    assert m.read(0x400010, 5) == b"hello"
    m.write_u32(0x400ffe, 0xdeadbeef)         # crosses a page
    assert m.read_u32(0x400ffe) == 0xdeadbeef
    assert m.read_cstring(0x400010) == b"hello"
    m.protect(0x400000, 0x1000, PROT_READ)
    with pytest.raises(GuestFault) as e:
        m.write(0x400ffe, b"abcd")
    assert e.value.is_write
    assert m.read_u32(0x400ffe) == 0xdeadbeef  # the failed write changed nothing
    assert m.get_prot(0x401000) == PROT_READ | PROT_WRITE
    m.unmap(0x401000, 0x1000)
    assert not m.is_mapped(0x400000, 0x2000)
    with pytest.raises(GuestFault):
        m.read_u8(0x401000)


def test_find_free_skips_mappings():
    m = GuestMemory()
    m.map(0x100000, 0x3000, PROT_READ)
    a = m.find_free(0x2000, 0x100000)
    assert a == 0x103000
    assert m.find_free(0x1000, 0x200000) == 0x200000


def test_code_page_write_invalidates():
    m = GuestMemory()
    m.map(0x1000 * 64, 0x1000, PROT_READ | PROT_WRITE | PROT_EXEC)
    hits = []
    m.on_code_write = hits.append
    m.mark_code(64)
    assert 64 not in m.wpages          # stores take the slow path
    m.write_u8(64 * 0x1000 + 5, 1)
    assert hits == [64] and 64 in m.wpages


def test_pages_are_materialized_only_when_touched():
    m = GuestMemory()
    m.map(0x10000000, 1 << 36, PROT_READ | PROT_WRITE, noreserve=True)      # 64 GiB
    assert dict.__len__(m.pages) == 0 and not m.rpages
    m.write_u32(0x10000000 + (1 << 35), 0x1234)
    assert m.read_u32(0x10000000 + (1 << 35)) == 0x1234
    assert dict.__len__(m.pages) == 1 and len(m.rpages) == 1 and len(m.wpages) == 1
    assert m.is_mapped(0x10000000, 1 << 36) and m.get_prot(0x10000000) == PROT_READ | PROT_WRITE
    m.unmap(0x10000000, 1 << 36)
    assert not m.pages and not m.rpages and m.is_free(0x10000000, 1 << 36)


def test_protect_and_unmap_split_mappings():
    m = GuestMemory()
    base = 0x400000
    m.map(base, 0x10000, PROT_READ | PROT_WRITE)
    m.write_u8(base + 0x5000, 9)
    m.protect(base + 0x4000, 0x2000, PROT_READ)
    assert [m.get_prot(base + i * 0x1000) for i in (3, 4, 5, 6)] == [3, 1, 1, 3]
    assert 0x405 not in m.wpages and m.read_u8(base + 0x5000) == 9
    with pytest.raises(GuestFault):
        m.write_u8(base + 0x5000, 1)
    m.unmap(base + 0x8000, 0x1000)
    assert not m.is_mapped(base, 0x10000) and m.is_mapped(base, 0x8000)
    assert m.find_free(0x1000, base) == base + 0x8000
    with pytest.raises(GuestFault) as e:
        m.protect(base, 0x10000, PROT_READ)
    assert e.value.addr == base + 0x8000
    assert m.mappings() == [(base, base + 0x4000, 3), (base + 0x4000, base + 0x6000, 1),
                            (base + 0x6000, base + 0x8000, 3), (base + 0x9000, base + 0x10000, 3)]


def test_remap_moves_the_same_pages():
    m = GuestMemory()
    m.map(0x600000, 0x3000, PROT_READ | PROT_WRITE)
    m.write(0x601ff0, b"crosses a page!!")
    m.protect(0x602000, 0x1000, PROT_READ)
    m.remap(0x600000, 0x3000, 0x900000)
    assert not m.is_mapped(0x600000, 1)
    assert m.read(0x901ff0, 16) == b"crosses a page!!"
    assert m.get_prot(0x902000) == PROT_READ and m.get_prot(0x901000) == PROT_READ | PROT_WRITE


def test_prot_none_reservation_is_not_committed():
    m = GuestMemory()
    base = 0x100000000000
    m.map(base, 1 << 42, 0)       # 4 TiB, like a runtime's address space reservation
    assert m.get_prot(base + (1 << 41)) == 0
    with pytest.raises(GuestFault):
        m.read_u8(base)
    m.protect(base, 0x1000, PROT_READ | PROT_WRITE)
    m.write_u8(base, 5)
    assert m.read_u8(base) == 5
