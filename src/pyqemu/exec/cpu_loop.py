"""The CPU execution loop: find or translate a block, run it, follow its exits.

``cpu_exec(cpu)`` runs until the guest needs the outside world and returns an
exception number (``pyqemu.target.i386.cpu.EXCP_*``).  Generated code returns
0/1 for a chainable exit, 2 for an indirect jump and ``EXIT_EXCP + n`` to
leave with exception ``n``; guest exceptions raised inside a block arrive here
as :class:`GuestException` or :class:`GuestFault` with the CPU state already
restored to the faulting instruction.
"""
from __future__ import annotations

from pyqemu.exec.guest_memory import GuestFault
from pyqemu.util import log

EXIT_EXCP = 3
ONE_INSN_FLAG = 2     # TB flags bit: blocks of a single instruction


class GuestException(Exception):
    """Raised by helpers: guest exception ``excp``; ``next_pc`` for trap-like ones."""

    def __init__(self, excp: int, next_pc=None) -> None:
        super().__init__(excp)
        self.excp = excp
        self.next_pc = next_pc


def cpu_exec(cpu) -> int:
    from pyqemu.target.i386 import cpu as x86
    from pyqemu.target.i386.translate import get_translator

    tr = get_translator(cpu)
    cache = tr.cache
    find = tr.find_tb
    nochain = log.enabled("nochain")
    trace = log.enabled("exec") or log.enabled("cpu")
    if cpu.single_step or cpu.breakpoints or trace or getattr(cpu, "one_insn_per_tb", False):
        return _exec_slow(cpu, tr)
    flags = tr.flags_for(cpu)
    lookup = cache.pc_map(0, flags).get
    icount = 0
    tb = None
    try:
        tb = lookup(cpu.rip) or find(cpu.rip, flags)
        while True:
            r = tb.fn(cpu)
            icount += tb.ninsns
            if r < 2:
                nxt = tb.jmp[r]
                if nxt is None:
                    nxt = lookup(cpu.rip) or find(cpu.rip, flags)
                    if not nochain and tb.valid:
                        cache.chain(tb, r, nxt)
                tb = nxt
            elif r == 2:
                tb = lookup(cpu.rip) or find(cpu.rip, flags)
            else:
                return _exit_code(cpu, r)
            if cpu.interrupt_request:
                cpu.interrupt_request = False
                return x86.EXCP_INTERRUPT
    except GuestFault as e:
        cpu.fault_addr = e.addr
        cpu.fault_is_write = e.is_write
        return x86.EXCP_PAGE_FAULT
    except GuestException as e:
        if e.next_pc is not None:
            cpu.rip = e.next_pc
        return e.excp
    finally:
        cpu.insn_count += icount


def _exit_code(cpu, r: int) -> int:
    from pyqemu.target.i386 import cpu as x86
    excp = r - EXIT_EXCP
    if excp == x86.EXCP_SYSCALL:
        cpu.syscall_kind = x86.SYSCALL_KIND_SYSCALL
    elif excp == x86.EXCP_SYSCALL + 1:
        cpu.syscall_kind = x86.SYSCALL_KIND_INT80
        excp = x86.EXCP_SYSCALL
    cpu.exception_index = excp
    return excp


def _exec_slow(cpu, tr) -> int:
    """One instruction per block, no chaining: single-step, breakpoints, traces."""
    from pyqemu.target.i386 import cpu as x86
    step = cpu.single_step
    first = True
    while True:
        # A breakpoint stops before its instruction; a single step starting on
        # one executes it (gdb removes its breakpoints to step over them anyway).
        if cpu.rip in cpu.breakpoints and not (first and step):
            return x86.EXCP_DEBUG
        first = False
        one = step or bool(cpu.breakpoints) or getattr(cpu, "one_insn_per_tb", False)
        # One-instruction blocks are cached under their own flag bit.
        flags = tr.flags_for(cpu) | (ONE_INSN_FLAG if one else 0)
        tb = tr.find_tb(cpu.rip, flags)
        if log.enabled("cpu"):
            log.log(cpu.dump_state())
        if log.enabled("exec"):
            log.log("Trace 0: 0x0 [%08x/%016x/%08x/%08x] \n" % (0, tb.pc, flags, 0))
        try:
            r = tb.fn(cpu)
        except GuestFault as e:
            cpu.fault_addr = e.addr
            cpu.fault_is_write = e.is_write
            return x86.EXCP_PAGE_FAULT
        except GuestException as e:
            if e.next_pc is not None:
                cpu.rip = e.next_pc
            return e.excp
        cpu.insn_count += tb.ninsns
        if r >= EXIT_EXCP:
            return _exit_code(cpu, r)
        if step:
            return x86.EXCP_DEBUG
        if cpu.interrupt_request:
            cpu.interrupt_request = False
            return x86.EXCP_INTERRUPT
