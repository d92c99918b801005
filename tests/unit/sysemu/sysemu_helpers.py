"""Shared set-up for the sysemu unit tests: a CPU over RAM and guest tables."""
from __future__ import annotations

from pyqemu.exec import memory as m
from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu.cpu import X86SysCPU
from pyqemu.target.i386.sysemu.control import write_cr, write_cr0
from pyqemu.target.i386.sysemu.msr import MSR_EFER, wrmsr
from pyqemu.target.i386.sysemu import seg


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


def enter_pm(mach: Machine, gdt: int = 0x1000) -> None:
    """Flat protected mode at CPL 0: GDT with ring-0/3 code and data at 0x08..0x20."""
    cpu = mach.cpu
    mach.desc(gdt, 0x08, 0, 0xfffff, CODE32)
    mach.desc(gdt, 0x10, 0, 0xfffff, DATA32)
    mach.desc(gdt, 0x18, 0, 0xfffff, CODE32 | (3 << 13))
    mach.desc(gdt, 0x20, 0, 0xfffff, DATA32 | (3 << 13))
    cpu.gdt.base, cpu.gdt.limit = gdt, 0xff
    write_cr0(cpu, cpu.cr[0] | c.CR0_PE)
    seg.ljmp(cpu, 0x08, 0x100, 0)
    for s in (c.R_SS, c.R_DS, c.R_ES):
        seg.load_seg(cpu, s, 0x10)


def ring3_with_tss(mach):
    """Ring 3 flat code and stack, a TSS with ring-0 stack 0x9000."""
    cpu = mach.cpu
    enter_pm(mach)
    mach.desc(0x1000, 0x38, 0x5000, 0x67, c.DESC_P_MASK | (9 << 8))
    mach.w(0x5000 + 4, 4, 0x9000)        # ESP0
    mach.w(0x5000 + 8, 4, 0x10)          # SS0
    seg.ltr(cpu, 0x38)
    cpu.load_seg_cache(c.R_CS, 0x1b, 0, 0xffffffff, CODE32 | (3 << 13))
    cpu.load_seg_cache(c.R_SS, 0x23, 0, 0xffffffff, DATA32 | (3 << 13))
    cpu.regs[4] = 0x8000
    assert cpu.cpl == 3


def setup_long_idt(mach):
    cpu = mach.cpu
    enter_pm(mach)
    mach.desc(0x1000, 0x08, 0, 0xfffff, CODE64)
    mach.desc(0x1000, 0x10, 0, 0xfffff, DATA32)
    mach.desc(0x1000, 0x18, 0, 0xfffff, CODE64 | (3 << 13))
    pml4, pdpt, pd = 0x20000, 0x21000, 0x22000
    mach.w(pml4, 8, pdpt | 7)
    mach.w(pdpt, 8, pd | 7)
    for i in range(8):
        mach.w(pd + 8 * i, 8, (i << 21) | 0x87)
    write_cr(cpu, 4, c.CR4_PAE)
    wrmsr(cpu, MSR_EFER, c.EFER_LME)
    write_cr(cpu, 3, pml4)
    write_cr0(cpu, cpu.cr[0] | c.CR0_PG)
    seg.ljmp(cpu, 0x08, 0x400000, 0)
    assert cpu.code64 and cpu.mode == 64
    cpu.idt.base, cpu.idt.limit = 0x3000, 0xfff
    # 64-bit TSS: RSP0 = 0xa000, IST1 = 0xc000
    mach.w(0x5000 + 4, 8, 0xa000)
    mach.w(0x5000 + 0x24, 8, 0xc000)
    cpu.tr.base, cpu.tr.limit, cpu.tr.flags = 0x5000, 0x67, c.DESC_P_MASK | (11 << 8)
