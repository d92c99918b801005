"""The CPU execution loop: find or translate a block, run it, follow its exits.

``cpu_exec(cpu)`` runs until the guest needs the outside world and returns an
exception number (``pyqemu.target.i386.cpu.EXCP_*``).  Generated code returns
0/1 for a chainable exit, 2 for an indirect jump and ``EXIT_EXCP + n`` to
leave with exception ``n``; guest exceptions raised inside a block arrive here
as :class:`GuestException` or :class:`GuestFault` with the CPU state already
restored to the faulting instruction.
"""
from __future__ import annotations

import os

from pyqemu.exec.guest_memory import GuestFault
from pyqemu.util import log

EXIT_EXCP = 3
ONE_INSN_FLAG = 2     # TB flags bit: blocks of a single instruction

# On PyPy the loops below call each block function as a residual call: the JIT
# compiles every hot block function (and the loops inside region functions) on
# its own, and the loop's trace stays one short path instead of inlining
# whichever block it met first and growing a chain of guards and bridges, one
# per block that follows (docs/tcg.md, "Dispatch on PyPy").  Block functions
# are called from the interpreter, so their compilation is driven by the
# function-entry counters: without decay (which lowers every counter each time
# something is compiled) and with a threshold of 600 calls, the few hundred
# hot blocks of branchy code get compiled instead of staying interpreted.
# PYQEMU_PYPY_DISPATCH=inline restores PyPy's default behaviour (for comparison).
_residual = None
try:
    import pypyjit as _pypyjit
except ImportError:
    _pypyjit = None


def _dispatch_setup():
    """The function that calls a block on PyPy (None: call it directly)."""
    global _residual, _pypyjit
    if _pypyjit is not None:
        if os.environ.get("PYQEMU_PYPY_DISPATCH", "") != "inline":
            _pypyjit.set_param("function_threshold=600,decay=0")
            _residual = _pypyjit.residual_call
        _pypyjit = None
    return _residual


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
    call = _dispatch_setup()
    try:
        tb = lookup(cpu.rip) or find(cpu.rip, flags)
        while True:
            if call is None:
                r = tb.fn(cpu)
            else:
                r = call(tb.fn, cpu)
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


# -- system mode ----------------------------------------------------------------------

def cpu_exec_sys(cpu, budget: int) -> int:
    """Run a system-mode x86 CPU for about ``budget`` guest instructions.

    Returns ``EXCP_HLT`` when the CPU is halted (or stopped by a triple fault)
    and nothing can wake it, else ``EXCP_INTERRUPT`` (budget used, or the
    machine asked the loop to look at something: ``cpu.exit_request``).
    Guest exceptions are delivered here, hardware interrupts between blocks
    when IF is set and no STI/MOV SS shadow is active.
    """
    from pyqemu.target.i386 import cpu as x86
    from pyqemu.target.i386.sysemu import interrupt
    from pyqemu.target.i386.sysemu.cpu import IF_MASK
    from pyqemu.target.i386.sysemu.excp import TripleFault
    from pyqemu.target.i386.sysemu.translator import get_sys_translator, sys_flags

    tr = get_sys_translator(cpu)
    cache = tr.cache
    find = tr.find_tb
    nochain = log.enabled("nochain")
    trace = log.enabled("exec") or log.enabled("cpu") or getattr(cpu, "one_insn_per_tb", False)
    start = cpu.insn_count
    end = start + budget
    cpu.exit_request = False
    call = _dispatch_setup()
    while True:
        if cpu.interrupt_request:
            cpu.interrupt_request = False
            if cpu.intr_level and cpu.eflags & IF_MASK and not cpu.inhibit_irq:
                vector = cpu.get_irq()
                if vector >= 0:
                    try:
                        _deliver(cpu, interrupt, vector, 0, True)
                    except TripleFault:
                        return _triple_fault(cpu)
            elif cpu.intr_level:
                # not deliverable now: look again when IF or the shadow changes
                cpu.irq_blocked = True
        if cpu.halted:
            return x86.EXCP_HLT
        if cpu.exit_request or cpu.insn_count >= end:
            return x86.EXCP_INTERRUPT
        flags = sys_flags(cpu)
        cpu.mem = cpu.views[1 if cpu.cpl == 3 else 0]
        one = cpu.inhibit_irq or trace
        if one:
            flags |= ONE_INSN_FLAG
        lookup = cache.pc_map(cpu.seg_base[1], flags).get
        try:
            tb = lookup(cpu.rip) or find(cpu.rip, flags)
            if one:
                if trace:
                    _trace_sys(cpu, tb, flags)
                r = tb.fn(cpu)
                cpu.insn_count += tb.ninsns
                if r > 2 and r - EXIT_EXCP < 32:
                    _deliver(cpu, interrupt, r - EXIT_EXCP, 0, False)
            else:
                while True:
                    if call is None:
                        r = tb.fn(cpu)
                    else:
                        r = call(tb.fn, cpu)
                    # counted per block: devices and -icount read the count mid-slice
                    cpu.insn_count += tb.ninsns
                    if r < 2:
                        nxt = tb.jmp[r]
                        if nxt is None:
                            nxt = lookup(cpu.rip) or find(cpu.rip, flags)
                            if not nochain and tb.valid and \
                                    (tb.cs_base + tb.pc) >> 12 == (nxt.cs_base + nxt.pc) >> 12:
                                cache.chain(tb, r, nxt)
                    elif r == 2:
                        nxt = lookup(cpu.rip) or find(cpu.rip, flags)
                    else:
                        if r - EXIT_EXCP < 32:
                            # a fault the decoder raised (#UD, #GP of the user-mode table ...)
                            _deliver(cpu, interrupt, r - EXIT_EXCP, 0, False)
                        break
                    # devices raise interrupt_request (io_out too, with exit_request);
                    # insn_count also holds the iterations of in-function loops
                    if cpu.interrupt_request or cpu.insn_count >= end:
                        break
                    tb = nxt
        except GuestException as e:
            try:
                _deliver(cpu, interrupt, e.excp, getattr(e, "error_code", 0), False)
            except TripleFault:
                return _triple_fault(cpu)
        except TripleFault:
            return _triple_fault(cpu)
        if one and cpu.inhibit_irq:
            cpu.inhibit_irq = False
        if cpu.irq_blocked:
            # IF or the shadow may have changed at this block's end
            cpu.irq_blocked = False
            cpu.interrupt_request = True


def _deliver(cpu, interrupt, vector: int, error_code: int, is_hw: bool) -> None:
    if log.enabled("int"):
        log.log("%6d: v=%02x e=%04x i=0 cpl=%d IP=%04x:%08x pc=%08x SP=%04x:%08x\n"
                % (cpu.interrupt_count, vector, error_code, cpu.cpl, cpu.segs[1], cpu.rip,
                   (cpu.seg_base[1] + cpu.rip) & 0xffffffffffffffff, cpu.segs[2],
                   cpu.regs[4]))
    cpu.interrupt_count += 1
    interrupt.deliver(cpu, vector, error_code, is_hw=is_hw)


def _triple_fault(cpu) -> int:
    from pyqemu.target.i386 import cpu as x86
    cpu.halted = True
    cpu.shutdown_request = True
    if cpu.on_triple_fault is not None:
        cpu.on_triple_fault()
    return x86.EXCP_HLT


def _trace_sys(cpu, tb, flags: int) -> None:
    if log.enabled("cpu"):
        log.log(cpu.dump_state())
    if log.enabled("exec"):
        log.log("Trace 0: 0x0 [%08x/%016x/%08x/%08x] \n"
                % (tb.cs_base, tb.pc, flags, 0))
