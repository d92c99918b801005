"""Guest signals: dispositions, masks, pending signals, delivery and host forwarding.

Host signals the guest handles are caught by a Python handler that marks
them pending and sets ``cpu.interrupt_request``; the run loop then delivers
them between translated blocks (or after the interrupted syscall).  Guest
SIG_IGN/SIG_DFL map to the host's own dispositions, except for the signals
whose default action dumps core: those are caught too so that the emulator
can report them as QEMU does before dying of them.
"""
from __future__ import annotations

import signal as host_signal
import struct
import threading
from typing import Dict, List, Optional, Set, Tuple

from pyqemu.linux_user import signal_frame

SIG_DFL = 0
SIG_IGN = 1
SA_SIGINFO = 0x4
SA_ONSTACK = 0x08000000
SA_RESTART = 0x10000000
SA_NODEFER = 0x40000000
SA_RESETHAND = 0x80000000
SS_ONSTACK = 1
SS_DISABLE = 2
SIGKILL = 9
SIGSTOP = 19
# Default action: ignore.
DEFAULT_IGNORE = {17, 23, 28, 18}      # SIGCHLD, SIGURG, SIGWINCH, SIGCONT
# Default action: terminate with a core dump (QEMU reports these).
DEFAULT_CORE = {3, 4, 5, 6, 7, 8, 11, 24, 25, 31}
SI_USER = 0
SI_KERNEL = 0x80
SEGV_MAPERR = 1
SEGV_ACCERR = 2
FPE_INTDIV = 1
ILL_ILLOPN = 2
TRAP_BRKPT = 1


class SigAction:
    __slots__ = ("handler", "flags", "restorer", "mask")

    def __init__(self, handler: int = SIG_DFL, flags: int = 0, restorer: int = 0, mask: int = 0) -> None:
        self.handler = handler
        self.flags = flags
        self.restorer = restorer
        self.mask = mask


class SignalState:
    """Process-wide signal dispositions and the host side of forwarding."""

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.actions: Dict[int, SigAction] = {}
        self.pending: Set[int] = set()
        self.lock = threading.Lock()
        self.cpus: List = []  # CPUs to interrupt when a host signal arrives

    def action(self, sig: int) -> SigAction:
        return self.actions.get(sig) or SigAction()

    def reset_host_defaults(self) -> None:
        """Python ignores SIGPIPE and SIGXFSZ and catches SIGINT; a guest expects the defaults."""
        for sig in (host_signal.SIGPIPE, host_signal.SIGXFSZ, host_signal.SIGINT):
            try:
                host_signal.signal(sig, host_signal.SIG_DFL)
            except (OSError, ValueError):
                pass
        for sig in DEFAULT_CORE:
            self._sync_host(sig)

    def set_action(self, sig: int, act: SigAction) -> None:
        self.actions[sig] = act
        self._sync_host(sig)

    def _sync_host(self, sig: int) -> None:
        if sig in (SIGKILL, SIGSTOP) or not 1 <= sig < 65:
            return
        act = self.action(sig)
        if act.handler == SIG_IGN:
            disp = host_signal.SIG_IGN
        elif act.handler == SIG_DFL and sig not in DEFAULT_CORE:
            disp = host_signal.SIG_DFL
        else:
            disp = self._on_host_signal
        try:
            host_signal.signal(sig, disp)
        except (OSError, ValueError, RuntimeError):
            pass  # not settable here (another thread, or a reserved signal)

    def _on_host_signal(self, signum: int, _frame) -> None:
        with self.lock:
            self.pending.add(signum)
        for cpu in self.cpus:
            cpu.interrupt_request = True

    def raise_pending(self, sig: int) -> None:
        self._on_host_signal(sig, None)


class ThreadSignals:
    """One guest thread's mask and alternate stack, and delivery for its CPU."""

    def __init__(self, state: SignalState, mem, bits: int) -> None:
        self.state = state
        self.mem = mem
        self.bits = bits
        self.mask = 0
        self.altstack: Tuple[int, int, int] = (0, SS_DISABLE, 0)
        self.restore_mask: Optional[int] = None  # set by sigsuspend: the mask sigreturn restores

    def take_pending(self) -> Optional[int]:
        st = self.state
        with st.lock:
            for sig in sorted(st.pending):
                if not self.mask >> (sig - 1) & 1 or sig in (SIGKILL, SIGSTOP):
                    st.pending.discard(sig)
                    return sig
        return None

    def has_deliverable(self) -> bool:
        st = self.state
        with st.lock:
            return any(not self.mask >> (s - 1) & 1 for s in st.pending)

    def pending_restart(self) -> bool:
        """Whether the signal about to be delivered asks interrupted syscalls to restart."""
        st = self.state
        with st.lock:
            sigs = [s for s in st.pending if not self.mask >> (s - 1) & 1]
        return bool(sigs) and all(st.action(s).flags & SA_RESTART for s in sigs)

    def deliver(self, cpu, sig: int, info: bytes) -> bool:
        """Enter the guest's handler for ``sig``; False when the default action applies."""
        act = self.state.action(sig)
        if act.handler == SIG_IGN:
            return True
        if act.handler == SIG_DFL:
            return sig in DEFAULT_IGNORE
        sp = cpu.regs[4] & ((1 << self.bits) - 1)
        ss_sp, ss_flags, ss_size = self.altstack
        on_alt = ss_size and ss_sp <= sp < ss_sp + ss_size
        if act.flags & SA_ONSTACK and not ss_flags & SS_DISABLE and not on_alt:
            sp = ss_sp + ss_size
        cur = self.mask
        old = cur if self.restore_mask is None else self.restore_mask
        self.restore_mask = None
        if self.bits == 64:
            signal_frame.setup_rt_frame64(cpu, self.mem, sig, act.handler, act.restorer, old, info, sp,
                                          self.altstack)
        elif act.flags & SA_SIGINFO:
            signal_frame.setup_rt_frame32(cpu, self.mem, sig, act.handler, act.restorer, old, info, sp,
                                          self.altstack)
        else:
            signal_frame.setup_frame32(cpu, self.mem, sig, act.handler, act.restorer, old, sp)
        self.mask = cur | act.mask
        if not act.flags & SA_NODEFER:
            self.mask |= 1 << (sig - 1)
        if act.flags & SA_RESETHAND:
            self.state.set_action(sig, SigAction())
        return True

    def sigreturn(self, cpu, rt: bool) -> None:
        if self.bits == 64:
            mask = signal_frame.restore_rt_frame64(cpu, self.mem)
        elif rt:
            mask = signal_frame.restore_rt_frame32(cpu, self.mem)
        else:
            mask = signal_frame.restore_frame32(cpu, self.mem)
        self.mask = mask & ~((1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1)))
        if self.has_deliverable():
            cpu.interrupt_request = True


def pack_sigaction(act: SigAction, bits: int) -> bytes:
    if bits == 64:
        return struct.pack("<QQQQ", act.handler, act.flags, act.restorer, act.mask)
    return struct.pack("<IIIQ", act.handler, act.flags & 0xFFFFFFFF, act.restorer, act.mask)


def unpack_sigaction(data: bytes, bits: int) -> SigAction:
    if bits == 64:
        h, f, r, m = struct.unpack("<QQQQ", data)
    else:
        h, f, r, m = struct.unpack("<IIIQ", data)
    return SigAction(h, f, r, m)
