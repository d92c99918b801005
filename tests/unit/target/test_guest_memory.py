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
