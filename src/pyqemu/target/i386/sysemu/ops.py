"""Runtime helpers for the system instructions the translator emits calls to.

Thin wrappers over seg/control/msr/interrupt/syscall that add what belongs to
the instruction rather than to the mechanism: the IOPL and virtual-8086
checks of CLI/STI/PUSHF/POPF/INT n/IN/OUT, the interrupt shadow of MOV SS and
STI, real-mode far returns, I/O through the machine's port space, and the
soft-MMU bookkeeping after an A20 or memory-map change.

Every helper takes the CPU first and raises CpuException for a guest fault
before changing any state.  Python 3.9 syntax (PyPy runs the translator).
"""
from __future__ import annotations

from typing import Tuple

from pyqemu.target.i386.sysemu import control, interrupt, msr, seg, syscall
from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu.excp import EXCP_GP, EXCP_UD, CpuException

M32 = 0xffffffff
M64 = (1 << 64) - 1
_ZF = 0x40


def _iopl(cpu) -> int:
    return (cpu.eflags >> 12) & 3


def _gp0() -> CpuException:
    return CpuException(EXCP_GP, 0)


# -- segments -------------------------------------------------------------------

def load_seg(cpu, sreg: int, selector: int) -> None:
    """MOV/POP Sreg: a loaded SS also blocks interrupts for one instruction."""
    seg.load_seg(cpu, sreg, selector)
    if sreg == c.R_SS:
        cpu.inhibit_irq = True


def load_far(cpu, sreg: int, selector: int) -> None:
    """LDS/LES/LFS/LGS/LSS: the segment part (the register is written after)."""
    seg.load_seg(cpu, sreg, selector)


def ljmp(cpu, selector: int, eip: int, next_eip: int) -> None:
    seg.ljmp(cpu, selector, eip, next_eip)


def lcall(cpu, selector: int, eip: int, opsize: int, next_eip: int) -> None:
    seg.lcall(cpu, selector, eip, opsize, next_eip)


def lret(cpu, opsize: int, addend: int) -> None:
    """RETF [imm16]: plain pops in real and virtual-8086 mode."""
    if cpu.cr[0] & c.CR0_PE and not cpu.eflags & c.VM_MASK:
        seg.lret_iret(cpu, opsize, False, addend)
        return
    mask = seg.sp_mask(cpu.seg_flags[c.R_SS])
    base, sp = cpu.seg_base[c.R_SS], cpu.regs[4]
    eip = cpu.ld_idx(base + (sp & mask), opsize, cpu.mmu_index())
    cs = cpu.ld_idx(base + ((sp + opsize) & mask), opsize, cpu.mmu_index()) & 0xffff
    seg.set_esp(cpu, sp + 2 * opsize + addend, mask)
    seg.load_seg(cpu, c.R_CS, cs)
    cpu.rip = eip


def iret(cpu, opsize: int, next_eip: int) -> None:
    seg.iret(cpu, opsize, next_eip)


# -- interrupts -------------------------------------------------------------------

def int_n(cpu, vector: int, next_eip: int) -> None:
    """INT n: #GP(0) in virtual-8086 mode below IOPL 3 (no VME)."""
    if cpu.eflags & c.VM_MASK and _iopl(cpu) != 3:
        raise _gp0()
    interrupt.raise_interrupt(cpu, vector, next_eip)


def into(cpu, next_eip: int) -> None:
    if cpu.get_eflags() & 0x800:
        interrupt.raise_interrupt(cpu, 4, next_eip)
    else:
        cpu.rip = next_eip


def hlt(cpu) -> None:
    syscall.hlt(cpu)


def pause(cpu) -> None:
    """PAUSE with several CPUs: give the other CPUs their turn, as QEMU's
    round-robin TCG does (EXCP_YIELD).  A spin-wait must let the lock holder
    run: SeaBIOS's BSP frees its SMP lock and takes it back a few
    instructions later, so without the yield its AP never gets the lock."""
    for other in cpu.smp_siblings:
        if other is not cpu and not other.wait_sipi and \
                (not other.halted or (other.intr_level and other.interrupt_request)):
            cpu.exit_request = True
            return


def cli(cpu) -> None:
    if cpu.cr[0] & c.CR0_PE and cpu.cpl > _iopl(cpu) or cpu.eflags & c.VM_MASK and _iopl(cpu) != 3:
        raise _gp0()
    cpu.eflags &= ~c.IF_MASK


def sti(cpu) -> None:
    if cpu.cr[0] & c.CR0_PE and cpu.cpl > _iopl(cpu) or cpu.eflags & c.VM_MASK and _iopl(cpu) != 3:
        raise _gp0()
    syscall.sti(cpu)


def pushf(cpu) -> int:
    """The FLAGS image PUSHF pushes (VM and RF read as 0)."""
    if cpu.eflags & c.VM_MASK and _iopl(cpu) != 3:
        raise _gp0()
    return cpu.get_eflags() & ~(c.VM_MASK | c.RF_MASK) & M32


def popf(cpu, value: int, opsize: int) -> None:
    """POPF: which bits may change depends on CPL, IOPL and the mode."""
    mask = c.TF_MASK | c.AC_MASK | c.ID_MASK | c.NT_MASK | c.DF_MASK | 0x8d5
    if cpu.eflags & c.VM_MASK:
        if _iopl(cpu) != 3:
            raise _gp0()
        mask |= c.IF_MASK
    else:
        if cpu.cpl == 0 or not cpu.cr[0] & c.CR0_PE:
            mask |= c.IOPL_MASK | c.IF_MASK
        elif cpu.cpl <= _iopl(cpu):
            mask |= c.IF_MASK
    if opsize == 2:
        mask &= 0xffff
    cur = cpu.get_eflags()
    cpu.set_eflags((cur & ~mask) | (value & mask))


# -- port I/O ---------------------------------------------------------------------

def _io_check(cpu, port: int, size: int) -> None:
    if not seg.io_allowed_by_iopl(cpu):
        seg.check_io(cpu, port, size)


def io_in(cpu, port: int, size: int) -> int:
    port &= 0xffff
    _io_check(cpu, port, size)
    return cpu.io_as.read(port, size)


def io_out(cpu, port: int, size: int, value: int) -> None:
    port &= 0xffff
    _io_check(cpu, port, size)
    cpu.io_as.write(port, size, value & ((1 << (8 * size)) - 1))
    # a device may have remapped memory (PAM via PCI config) or changed A20
    cpu.tlb.check_topology()
    cpu.exit_request = cpu.interrupt_request = True


def io_string(cpu, out: int, size: int, rep: int, amask: int, seg_base: int, es_base: int) -> None:
    """INS (``out`` 0: port DX -> ES:DI) and OUTS (DS/override:SI -> port DX)."""
    regs = cpu.regs
    port = regs[2] & 0xffff
    _io_check(cpu, port, size)
    mem = cpu.mem
    wrap = M64 if cpu.code64 else M32
    step = -size if cpu.eflags & c.DF_MASK else size
    while True:
        if rep and not regs[1] & amask:
            break
        if out:
            si = regs[6] & amask
            cpu.io_as.write(port, size, mem.load((seg_base + si) & wrap, size))
            regs[6] = _set_masked(regs[6], si + step, amask)
        else:
            di = regs[7] & amask
            lin = (es_base + di) & wrap
            # probe the destination first so a fault does not lose the port's value
            cpu.tlb.lookup(lin, 1, cpu.mmu_index())
            mem.store(lin, cpu.io_as.read(port, size), size)
            regs[7] = _set_masked(regs[7], di + step, amask)
        if not rep:
            break
        regs[1] = _set_masked(regs[1], (regs[1] & amask) - 1, amask)
    if out:
        cpu.tlb.check_topology()
        cpu.exit_request = cpu.interrupt_request = True


def _set_masked(reg: int, value: int, amask: int) -> int:
    if amask == M64:
        return value & M64
    if amask == M32:
        return value & M32
    return (reg & ~0xffff) | (value & 0xffff)


# -- descriptor tables, control registers, MSRs ----------------------------------

def lgdt(cpu, limit: int, base: int, opsize: int) -> None:
    seg.lgdt(cpu, limit, base, opsize)


def lidt(cpu, limit: int, base: int, opsize: int) -> None:
    seg.lidt(cpu, limit, base, opsize)


def sgdt(cpu) -> Tuple[int, int]:
    return seg.sgdt(cpu)


def sidt(cpu) -> Tuple[int, int]:
    return seg.sidt(cpu)


def lldt(cpu, selector: int) -> None:
    seg.lldt(cpu, selector)


def ltr(cpu, selector: int) -> None:
    seg.ltr(cpu, selector)


def sldt(cpu) -> int:
    _need_pe(cpu)
    return seg.sldt(cpu)


def str_(cpu) -> int:
    _need_pe(cpu)
    return seg.str_(cpu)


def _need_pe(cpu) -> None:
    if not cpu.cr[0] & c.CR0_PE or cpu.eflags & c.VM_MASK:
        raise CpuException(EXCP_UD)


def lar_lsl(cpu, selector: int, is_lsl: int, old: int) -> int:
    """LAR/LSL: the register's new value; ZF goes to the lazy flags."""
    _need_pe(cpu)
    ok, value = (seg.lsl if is_lsl else seg.lar)(cpu, selector & 0xffff)
    _set_zf(cpu, ok)
    return value if ok else old


def verr_verw(cpu, selector: int, is_verw: int) -> None:
    _need_pe(cpu)
    _set_zf(cpu, (seg.verw if is_verw else seg.verr)(cpu, selector & 0xffff))


def _set_zf(cpu, ok: bool) -> None:
    f = cpu.get_eflags()
    cpu.set_eflags((f | _ZF) if ok else (f & ~_ZF))


def read_cr(cpu, n: int) -> int:
    return control.read_cr(cpu, n)


def write_cr(cpu, n: int, value: int) -> None:
    control.write_cr(cpu, n, value)


def read_dr(cpu, n: int) -> int:
    return control.read_dr(cpu, n)


def write_dr(cpu, n: int, value: int) -> None:
    control.write_dr(cpu, n, value)


def clts(cpu) -> None:
    control.clts(cpu)


def lmsw(cpu, value: int) -> None:
    control.lmsw(cpu, value)


def smsw(cpu) -> int:
    return control.smsw(cpu)


def invlpg(cpu, addr: int) -> None:
    if cpu.cpl != 0:
        raise _gp0()
    from pyqemu.target.i386.sysemu import mmu
    mmu.invlpg(cpu, addr)


def priv_nop(cpu) -> None:
    """INVD / WBINVD: ring 0 only; caches are not modelled."""
    if cpu.cpl != 0:
        raise _gp0()


def rdmsr(cpu) -> Tuple[int, int]:
    v = msr.rdmsr(cpu, cpu.regs[1] & M32)
    return v & M32, v >> 32


def wrmsr(cpu) -> None:
    r = cpu.regs
    msr.wrmsr(cpu, r[1] & M32, ((r[2] & M32) << 32) | (r[0] & M32))


def rdtsc(cpu) -> Tuple[int, int]:
    v = msr.rdtsc(cpu)
    return v & M32, v >> 32


def rdtscp(cpu) -> Tuple[int, int, int]:
    v = msr.rdtsc(cpu)
    return v & M32, v >> 32, cpu.msrs[msr.MSR_TSC_AUX] & M32


def sys_call(cpu, next_eip: int) -> None:
    syscall.syscall(cpu, next_eip)


def sys_ret(cpu, opsize: int) -> None:
    syscall.sysret(cpu, opsize)


def sys_enter(cpu) -> None:
    syscall.sysenter(cpu)


def sys_exit(cpu, opsize: int) -> None:
    syscall.sysexit(cpu, opsize)


def swapgs(cpu) -> None:
    syscall.swapgs(cpu)
