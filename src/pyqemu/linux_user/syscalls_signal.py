"""Signal system calls (a mixin of Syscalls): sigaction, masks, altstack, sigreturn, kill, waits."""
from __future__ import annotations

import errno
import os
import struct
import time

from pyqemu.linux_user import structs
from pyqemu.linux_user.host import buffer, host_syscall
from pyqemu.linux_user.signal import (SIGKILL, SIGSTOP, SS_DISABLE, SS_ONSTACK, pack_sigaction,
                                      unpack_sigaction)

# Returned by sigreturn: the dispatcher must not overwrite the restored RAX.
NO_RESULT = object()
_UNBLOCKABLE = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1))
MINSIGSTKSZ = 2048


class SignalCalls:
    """Expects Syscalls' mem, bits, proc and ``sig`` (ThreadSignals)."""

    def sys_rt_sigaction(self, cpu, sig, act, oact, size, *_):
        if size != 8 or not 1 <= sig <= 64 or (sig in (SIGKILL, SIGSTOP) and act):
            return -errno.EINVAL
        state = self.proc.signals
        n = 32 if self.bits == 64 else 20
        old = state.action(sig)
        if act:
            state.set_action(sig, unpack_sigaction(self.mem.read(act, n), self.bits))
        if oact:
            self.mem.write(oact, pack_sigaction(old, self.bits))
        return 0

    def sys_rt_sigprocmask(self, cpu, how, set_addr, old_addr, size, *_):
        if size != 8:
            return -errno.EINVAL
        ts = self.sig
        old = ts.mask
        if set_addr:
            new = self.mem.read_u64(set_addr)
            if how == 0:
                ts.mask |= new
            elif how == 1:
                ts.mask &= ~new
            elif how == 2:
                ts.mask = new
            else:
                return -errno.EINVAL
            ts.mask &= ~_UNBLOCKABLE
        if old_addr:
            self.mem.write_u64(old_addr, old)
        if ts.has_deliverable():
            cpu.interrupt_request = True
        return 0

    def sys_sigaltstack(self, cpu, ss, old, *_):
        st = structs.STACK_T[self.bits]
        ts = self.sig
        sp = cpu.regs[4] & self.mask
        cur_sp, cur_flags, cur_size = ts.altstack
        on = cur_size and cur_sp <= sp < cur_sp + cur_size
        if old:
            self.mem.write(old, st.pack(cur_sp, SS_ONSTACK if on else cur_flags, cur_size))
        if ss:
            if on:
                return -errno.EPERM
            nsp, nflags, nsize = st.unpack(self.mem.read(ss, st.size))
            if nflags & ~(SS_DISABLE | (1 << 31)):
                return -errno.EINVAL
            if nflags & SS_DISABLE:
                ts.altstack = (0, SS_DISABLE, 0)
            else:
                if nsize < MINSIGSTKSZ:
                    return -errno.ENOMEM
                ts.altstack = (nsp, 0, nsize)
        return 0

    def sys_rt_sigreturn(self, cpu, *_):
        self.sig.sigreturn(cpu, rt=True)
        return NO_RESULT

    def sys_sigreturn(self, cpu, *_):
        self.sig.sigreturn(cpu, rt=False)
        return NO_RESULT

    def sys_rt_sigpending(self, cpu, addr, size, *_):
        state = self.proc.signals
        with state.lock:
            bits = 0
            for s in state.pending:
                bits |= 1 << (s - 1)
        self.mem.write_u64(addr, bits & self.sig.mask)
        return 0

    def _wait_for_signal(self) -> None:
        # Python runs host handlers between these short sleeps.
        while not self.sig.has_deliverable():
            time.sleep(0.005)

    def sys_rt_sigsuspend(self, cpu, addr, size, *_):
        if size != 8:
            return -errno.EINVAL
        ts = self.sig
        saved = ts.mask
        ts.mask = self.mem.read_u64(addr) & ~_UNBLOCKABLE
        self._wait_for_signal()
        # The handler runs with the temporary mask; sigreturn restores the caller's.
        ts.restore_mask = saved
        cpu.interrupt_request = True
        return -errno.EINTR

    def sys_pause(self, cpu, *_):
        self._wait_for_signal()
        cpu.interrupt_request = True
        return -errno.EINTR

    def sys_kill(self, cpu, pid, sig, *_):
        return host_syscall("kill", self.i32(pid), self.i32(sig))

    def sys_tgkill(self, cpu, tgid, tid, sig, *_):
        return self._thread_kill(self.i32(tgid), self.i32(tid), self.i32(sig))

    def sys_tkill(self, cpu, tid, sig, *_):
        return self._thread_kill(os.getpid(), self.i32(tid), self.i32(sig))

    def _thread_kill(self, tgid: int, tid: int, sig: int) -> int:
        threads = getattr(self.proc, "threads", None)
        if tgid == os.getpid() and threads is not None and threads.is_guest_tid(tid):
            return threads.kill(tid, sig)
        if tgid == os.getpid() and tid == os.getpid():
            return host_syscall("kill", tgid, sig)
        return host_syscall("tgkill", tgid, tid, sig)

    def sys_alarm(self, cpu, seconds, *_):
        import signal as host_signal
        return host_signal.alarm(seconds & 0xFFFFFFFF)

    def sys_setitimer(self, cpu, which, new, old, *_):
        st = structs.TIMEVAL[self.bits]
        conv = b""
        if new:
            a, b, c, d = struct.unpack("<4q" if self.bits == 64 else "<4i", self.mem.read(new, 4 * st.size // 2))
            conv = struct.pack("<4q", a, b, c, d)
        obuf = buffer(32)
        r = host_syscall("setitimer", which, conv or None, obuf)
        if r == 0 and old:
            vals = struct.unpack("<4q", obuf.raw)
            self.mem.write(old, struct.pack("<4q" if self.bits == 64 else "<4i", *vals))
        return r

    def sys_getitimer(self, cpu, which, addr, *_):
        obuf = buffer(32)
        r = host_syscall("getitimer", which, obuf)
        if r == 0:
            vals = struct.unpack("<4q", obuf.raw)
            self.mem.write(addr, struct.pack("<4q" if self.bits == 64 else "<4i", *vals))
        return r
