"""MOV to/from CRn and DRn, CLTS, LMSW, SMSW with their mode checks and the
TLB flush rules (SDM vol. 3 4.10.4)."""
from __future__ import annotations

from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu.excp import EXCP_GP, EXCP_UD, CpuException

_CR4_SUPPORTED = (c.CR4_VME | c.CR4_PVI | c.CR4_TSD | c.CR4_DE | c.CR4_PSE | c.CR4_PAE |
                  c.CR4_MCE | c.CR4_PGE | c.CR4_PCE | c.CR4_OSFXSR | c.CR4_OSXMMEXCPT)
_CR4_FLUSH = c.CR4_PGE | c.CR4_PAE | c.CR4_PSE | c.CR4_SMEP | c.CR4_SMAP


def _priv(cpu) -> None:
    if cpu.cpl != 0:
        raise CpuException(EXCP_GP, 0)


def read_cr(cpu, n: int) -> int:
    _priv(cpu)
    if n == 8:
        return cpu.cr[8]
    if n not in (0, 2, 3, 4):
        raise CpuException(EXCP_UD)
    return cpu.cr[n]


def write_cr(cpu, n: int, value: int) -> None:
    """mov crN, reg.  The translator ends the block afterwards (mode may change)."""
    _priv(cpu)
    if n == 0:
        write_cr0(cpu, value)
    elif n == 2:
        cpu.cr[2] = value
    elif n == 3:
        write_cr3(cpu, value)
    elif n == 4:
        write_cr4(cpu, value)
    elif n == 8:
        if value & ~0xf:
            raise CpuException(EXCP_GP, 0)
        cpu.cr[8] = value
        if cpu.tpr_hook is not None:
            cpu.tpr_hook(value)
    else:
        raise CpuException(EXCP_UD)


def write_cr0(cpu, value: int) -> None:
    if value >> 32:
        raise CpuException(EXCP_GP, 0)
    if value & c.CR0_PG and not value & c.CR0_PE:
        raise CpuException(EXCP_GP, 0)
    # NW without CD is accepted, as QEMU 7.2 does (hardware would #GP)
    old = cpu.cr[0]
    if value & c.CR0_PG and not old & c.CR0_PG and cpu.efer & c.EFER_LME:
        # entering IA-32e mode needs PAE; without it QEMU 7.2 ignores the whole
        # write (checked against it in tests/peer/sysemu)
        if not cpu.cr[4] & c.CR4_PAE:
            return
        cpu.efer |= c.EFER_LMA
    elif not value & c.CR0_PG and old & c.CR0_PG and cpu.efer & c.EFER_LMA:
        if cpu.code64:
            raise CpuException(EXCP_GP, 0)
        cpu.efer &= ~c.EFER_LMA
        cpu.rip &= 0xffffffff
    if (value ^ old) & (c.CR0_PG | c.CR0_WP | c.CR0_PE):
        cpu.tlb.flush()
    cpu.cr[0] = value | c.CR0_ET
    cpu.update_mode()


def write_cr3(cpu, value: int) -> None:
    if cpu.lma and value >> 52:
        raise CpuException(EXCP_GP, 0)
    cpu.cr[3] = value if cpu.lma else value & 0xffffffff
    # global pages survive a CR3 load while CR4.PGE is set
    cpu.tlb.flush(keep_global=bool(cpu.cr[4] & c.CR4_PGE))


def write_cr4(cpu, value: int) -> None:
    if value & ~_CR4_SUPPORTED:
        raise CpuException(EXCP_GP, 0)
    if cpu.lma and not value & c.CR4_PAE:
        raise CpuException(EXCP_GP, 0)
    old = cpu.cr[4]
    cpu.cr[4] = value
    if (old ^ value) & _CR4_FLUSH:
        cpu.tlb.flush()


def clts(cpu) -> None:
    _priv(cpu)
    cpu.cr[0] &= ~c.CR0_TS


def lmsw(cpu, value: int) -> None:
    """Loads PE, MP, EM, TS only; PE cannot be cleared this way."""
    _priv(cpu)
    new = (cpu.cr[0] & ~0xe) | (value & 0xf)
    write_cr0(cpu, new | (cpu.cr[0] & c.CR0_PE))


def smsw(cpu) -> int:
    """SMSW is allowed at any CPL (unless UMIP, not modelled); the low 16 bits of
    CR0 go to a memory operand, the whole register to a register operand."""
    return cpu.cr[0]


def read_dr(cpu, n: int) -> int:
    _priv(cpu)
    if n in (4, 5):
        if cpu.cr[4] & c.CR4_DE:
            raise CpuException(EXCP_UD)
        n += 2
    return cpu.dr[n]


def write_dr(cpu, n: int, value: int) -> None:
    _priv(cpu)
    if n in (4, 5):
        if cpu.cr[4] & c.CR4_DE:
            raise CpuException(EXCP_UD)
        n += 2
    if n == 6:
        if value >> 32:
            raise CpuException(EXCP_GP, 0)
        value |= c.DR6_FIXED_1
    elif n == 7:
        if value >> 32:
            raise CpuException(EXCP_GP, 0)
        value = (value | c.DR7_FIXED_1) & ~(1 << 11 | 1 << 12 | 1 << 14 | 1 << 15)
    elif n < 4 and not cpu.lma:
        value &= 0xffffffff
    cpu.dr[n] = value
