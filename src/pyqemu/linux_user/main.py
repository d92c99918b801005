"""Run a guest program: load it, create the CPU, loop over cpu_exec results."""
from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
from typing import List, Optional

from pyqemu.exec.guest_memory import GuestMemory
from pyqemu.linux_user.loader import Layout, load_program
from pyqemu.linux_user import signal_frame
from pyqemu.linux_user.mm import AddressSpace
from pyqemu.linux_user.signal import (FPE_INTDIV, ILL_ILLOPN, SEGV_ACCERR, SEGV_MAPERR, SI_KERNEL,
                                      SI_USER, SIG_DFL, SIG_IGN, DEFAULT_CORE)
from pyqemu.linux_user.strace import Strace
from pyqemu.linux_user.threads import Futexes, ThreadManager
from pyqemu.linux_user.syscalls import GuestExit, Process, Syscalls
from pyqemu.util.error import QemuError

# Which synchronous signal a CPU exception becomes (QEMU's cpu_loop for x86).
SIGSEGV = signal.SIGSEGV
SIGNAL_NAMES = {
    signal.SIGSEGV: "Segmentation fault", signal.SIGILL: "Illegal instruction",
    signal.SIGFPE: "Floating point exception", signal.SIGTRAP: "Trace/breakpoint trap",
    signal.SIGBUS: "Bus error", signal.SIGABRT: "Aborted",
}


class CpuModelError(QemuError):
    """A -cpu option qemu refuses (exit status 1; ``bare``: printed without
    the program name)."""

    def __init__(self, msg: str, bare: bool = False) -> None:
        super().__init__(msg)
        self.bare = bare


def make_cpu(mem: GuestMemory, cpu_model: Optional[str], bits: int):
    """The guest CPU for ``-cpu MODEL[,features]``: QEMU's model table
    (target/i386/cpu_models.py) answers CPUID, with QEMU's warnings and
    errors; the default is qemu64 (qemu32 for i386)."""
    from pyqemu.target.i386 import cpu_models
    from pyqemu.target.i386.cpu import X86CPU
    from pyqemu.util.error import warn_report

    option = cpu_model or ("qemu64" if bits == 64 else "qemu32")
    try:
        cpu_def = cpu_models.resolve(option, warn_report, target="x86_64" if bits == 64 else "i386")
    except CpuModelError:
        raise
    except QemuError as e:
        raise CpuModelError(e.msg) from None
    cpu = X86CPU(mem, model="qemu64" if bits == 64 else "qemu32", mode=bits)
    cpu_models.attach(cpu, cpu_def, 0)
    if bits == 64 and not cpu.cpuid(0x80000001, 0)[3] & (1 << 29):
        raise CpuModelError("The selected x86 CPU does not support 64 bit mode", bare=True)
    return cpu


class UserEmulator:
    """One guest process (single-threaded for now) of ``bits`` = 64 or 32."""

    def __init__(self, program: str, argv: List[str], envp: List[str], bits: int = 64,
                 cpu_model: Optional[str] = None, ld_prefix: Optional[str] = None,
                 stack_size: int = 8 << 20, strace: bool = False, singlestep: bool = False,
                 uname_release: Optional[str] = None, exe: Optional[str] = None,
                 reserved_va: int = 0, guest_base: int = 0) -> None:

        self.bits = bits
        self.mem = GuestMemory()
        self.cpu = make_cpu(self.mem, cpu_model, bits)
        hwcap = 0
        if hasattr(self.cpu, "cpuid"):
            hwcap = self.cpu.cpuid(1, 0)[3]
        self.info = load_program(self.mem, program, argv, envp, bits=bits, prefix=ld_prefix,
                                 stack_size=stack_size, hwcap=hwcap, reserved_va=reserved_va,
                                 guest_base=guest_base)
        layout = Layout(bits, reserved_va)
        aspace = AddressSpace(self.mem, bits, self.info.brk, layout.mmap_base, self.info.stack_low)
        self.proc = Process(self.mem, bits, aspace, exe or program, uname_release=uname_release)
        opts: List[str] = []
        if ld_prefix:
            opts += ["-L", ld_prefix]
        if cpu_model:
            opts += ["-cpu", cpu_model]
        if stack_size != 8 << 20:
            opts += ["-s", str(stack_size)]
        if uname_release:
            opts += ["-r", uname_release]
        if reserved_va:
            opts += ["-R", str(reserved_va)]
        if strace:
            opts += ["-strace"]
        self.proc.exec_options = opts
        self.threads = ThreadManager(self)
        self.proc.threads = self.threads
        self.proc.futexes = Futexes(self.mem)
        tracer = Strace(self.mem, bits) if strace else None
        self.syscalls = Syscalls(self.proc, tracer)
        cpu = self.cpu
        cpu.regs[4] = self.info.sp
        cpu.rip = self.info.start_entry
        cpu.single_step = singlestep
        self.gdb = None

    def run(self) -> int:
        """Run to the end; returns the exit status (or dies by the guest's fatal signal)."""
        from pyqemu.gdbstub.server import GdbDisconnected, GdbKill
        from pyqemu.target.i386 import cpu as x86

        cpu = self.cpu
        dispatch = self.syscalls.dispatch
        sigstate = self.proc.signals
        sigstate.cpus.append(cpu)
        sigstate.reset_host_defaults()
        cpu.tid = os.getpid()
        try:
            while True:
                excp = cpu.exec()
                if excp == x86.EXCP_SYSCALL:
                    dispatch(cpu)
                    if sigstate.pending:
                        self.deliver_pending(cpu, self.syscalls.sig)
                    continue
                gdb = self.gdb
                if excp == x86.EXCP_INTERRUPT and (gdb is None or not gdb.interrupted):
                    self.deliver_pending(cpu, self.syscalls.sig)
                    continue
                if gdb is not None:
                    if excp == x86.EXCP_INTERRUPT:
                        gdb.interrupted = False
                        sig = signal.SIGINT
                    elif excp == x86.EXCP_DEBUG:
                        sig = signal.SIGTRAP
                    else:
                        sig = self.signal_for(excp)
                    try:
                        deliver = gdb.stopped(sig)
                    except GdbDisconnected:
                        self._detach_gdb()
                        continue
                    except GdbKill:
                        gdb.close()
                        self.gdb = None
                        os._exit(0)
                    if deliver:
                        self.synchronous_signal(cpu, self.syscalls.sig, excp if deliver == sig else -1, deliver)
                    continue
                if excp == x86.EXCP_DEBUG:
                    # Without gdb, a step stop only comes from -singlestep: run on.
                    continue
                self.synchronous_signal(cpu, self.syscalls.sig, excp, self.signal_for(excp))
        except GuestExit as e:
            if self.gdb is not None:
                self.gdb.exited(e.status)
            if self.threads.alive():
                self.threads.exit_process(e.status)
            return e.status

    def run_cpu(self, cpu, sc) -> None:
        """The loop of a secondary guest thread (ends by ThreadExit or GuestExit)."""
        from pyqemu.target.i386 import cpu as x86

        sigstate = self.proc.signals
        while True:
            excp = cpu.exec()
            if excp == x86.EXCP_SYSCALL:
                sc.dispatch(cpu)
                if sigstate.pending:
                    self.deliver_pending(cpu, sc.sig)
            elif excp == x86.EXCP_INTERRUPT:
                self.deliver_pending(cpu, sc.sig)
            elif excp != x86.EXCP_DEBUG:
                self.synchronous_signal(cpu, sc.sig, excp, self.signal_for(excp))

    def deliver_pending(self, cpu, ts) -> None:
        """Deliver the pending host-forwarded signals this thread does not block."""
        while True:
            sig = ts.take_pending()
            if sig is None:
                return
            info = signal_frame.pack_siginfo(sig, SI_USER, bits=self.bits)
            if not ts.deliver(cpu, sig, info):
                self.fatal_signal(sig)

    def synchronous_signal(self, cpu, ts, excp: int, sig: int) -> None:
        """A fault of the guest's own: enter its handler, or die as the kernel would make it."""
        from pyqemu.target.i386 import cpu as x86

        act = self.proc.signals.action(sig)
        if act.handler in (SIG_DFL, SIG_IGN) or ts.mask >> (sig - 1) & 1:
            self.fatal_signal(sig)
        code, addr = SI_KERNEL, 0
        if excp == x86.EXCP_PAGE_FAULT:
            addr = cpu.fault_addr
            code = SEGV_ACCERR if self.mem.get_prot(addr) is not None else SEGV_MAPERR
            cpu.trapno = 14
        elif excp == x86.EXCP_DIVIDE:
            code, addr = FPE_INTDIV, cpu.rip
            cpu.trapno = 0
        elif excp == x86.EXCP_INVALID_OPCODE:
            code, addr = ILL_ILLOPN, cpu.rip
            cpu.trapno = 6
        elif excp == x86.EXCP_BREAKPOINT:
            cpu.trapno = 3
        elif excp == x86.EXCP_GPF:
            cpu.trapno = 13
        info = signal_frame.pack_siginfo(sig, code, addr, bits=self.bits)
        ts.deliver(cpu, sig, info)

    def _detach_gdb(self) -> None:
        if self.gdb is not None:
            self.gdb.close()
        self.gdb = None
        self.cpu.breakpoints.clear()
        self.cpu.single_step = False

    def signal_for(self, excp: int) -> int:
        from pyqemu.target.i386 import cpu as x86

        return {
            x86.EXCP_PAGE_FAULT: signal.SIGSEGV, x86.EXCP_GPF: signal.SIGSEGV,
            x86.EXCP_DIVIDE: signal.SIGFPE, x86.EXCP_INVALID_OPCODE: signal.SIGILL,
            x86.EXCP_BREAKPOINT: signal.SIGTRAP, x86.EXCP_DEBUG: signal.SIGTRAP,
            x86.EXCP_HLT: signal.SIGSEGV, getattr(x86, "EXCP_FPE", -2): signal.SIGFPE,
            getattr(x86, "EXCP_XMM", -3): signal.SIGFPE,
        }.get(excp, signal.SIGSEGV)

    def fatal_signal(self, sig: int) -> None:
        """The guest did not handle ``sig``: die of it as QEMU does, without a core file."""
        sys.stdout.flush()
        if sig in DEFAULT_CORE:
            name = SIGNAL_NAMES.get(sig, signal.strsignal(sig) or str(sig))
            sys.stderr.write("qemu: uncaught target signal %d (%s) - core dumped\n" % (sig, name))
            sys.stderr.flush()
        if self.gdb is not None:
            self.gdb.killed_by(sig)
            self.gdb = None
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        except (OSError, ValueError):
            pass
        # libc's signal(): Python's own only works in the main thread.
        libc = ctypes.CDLL(None)
        libc.signal(sig, ctypes.c_void_p(0))
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
