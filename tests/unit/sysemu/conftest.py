from __future__ import annotations

import pytest

from pyqemu.exec import memory as m
from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu.cpu import X86SysCPU


class Machine:
    """A CPU over 16 MiB of RAM, with helpers to write guest tables."""

    def __init__(self) -> None:
        m.memory_init()
        self.ram = m.memory_region_init_ram(None, "pc.ram", 16 << 20)
        m.get_system_memory().add_subregion(0, self.ram)
        self.as_ = m.address_space_memory()
        self.cpu = X86SysCPU(self.as_)

    def w(self, addr: int, size: int, value: int) -> None:
        self.as_.write(addr, size, value)

    def r(self, addr: int, size: int) -> int:
        return self.as_.read(addr, size)

    def desc(self, table: int, sel: int, base: int, limit: int, flags: int) -> None:
        """flags in the seg_flags layout (type/S/DPL/P at 8..15, G/D/L at 20..23)."""
        e1 = ((base & 0xffff) << 16) | (limit & 0xffff)
        e2 = (((base >> 16) & 0xff) | (base & 0xff000000) | (limit & 0xf0000) | flags)
        self.w(table + (sel & ~7), 4, e1)
        self.w(table + (sel & ~7) + 4, 4, e2)

    def gate(self, table: int, index: int, sel: int, off: int, typ: int, dpl: int,
             size: int = 8, ist: int = 0) -> None:
        ptr = table + index * size
        self.w(ptr, 4, ((sel & 0xffff) << 16) | (off & 0xffff))
        self.w(ptr + 4, 4, (off & 0xffff0000) | c.DESC_P_MASK | (dpl << 13) | (typ << 8) | ist)
        if size == 16:
            self.w(ptr + 8, 4, off >> 32)
            self.w(ptr + 12, 4, 0)


CODE32 = c.DESC_P_MASK | c.DESC_S_MASK | c.DESC_CS_MASK | c.DESC_R_MASK | c.DESC_B_MASK | \
    c.DESC_G_MASK
DATA32 = c.DESC_P_MASK | c.DESC_S_MASK | c.DESC_W_MASK | c.DESC_B_MASK | c.DESC_G_MASK
CODE64 = c.DESC_P_MASK | c.DESC_S_MASK | c.DESC_CS_MASK | c.DESC_R_MASK | c.DESC_L_MASK | \
    c.DESC_G_MASK


@pytest.fixture
def mach() -> Machine:
    return Machine()


def enter_pm(mach: Machine, gdt: int = 0x1000) -> None:
    """Flat protected mode at CPL 0: GDT with ring-0/3 code and data at 0x08..0x20."""
    cpu = mach.cpu
    mach.desc(gdt, 0x08, 0, 0xfffff, CODE32)
    mach.desc(gdt, 0x10, 0, 0xfffff, DATA32)
    mach.desc(gdt, 0x18, 0, 0xfffff, CODE32 | (3 << 13))
    mach.desc(gdt, 0x20, 0, 0xfffff, DATA32 | (3 << 13))
    cpu.gdt.base, cpu.gdt.limit = gdt, 0xff
    from pyqemu.target.i386.sysemu.control import write_cr0
    from pyqemu.target.i386.sysemu.seg import ljmp, load_seg
    write_cr0(cpu, cpu.cr[0] | c.CR0_PE)
    ljmp(cpu, 0x08, 0x100, 0)
    for seg in (c.R_SS, c.R_DS, c.R_ES):
        load_seg(cpu, seg, 0x10)
