"""Guest threads (clone with CLONE_VM) and futexes.

Each guest thread is a host thread running its own X86CPU over the shared
GuestMemory, with its own Syscalls (thread-local signal mask, tid address).
The guest thread id is the host thread's own id, so it is unique on the
machine as a real tid would be.  Futexes are an in-process wait table keyed by
guest address; the compare in FUTEX_WAIT and the wake are serialised by one
lock, which is what makes "check then sleep" atomic against a waker.
"""
from __future__ import annotations

import errno
import os
import sys
import threading
import time
from typing import Dict, List, Optional

from pyqemu.exec.guest_memory import GuestFault

CLONE_SETTLS = 0x80000
CLONE_PARENT_SETTID = 0x100000
CLONE_CHILD_CLEARTID = 0x200000
CLONE_CHILD_SETTID = 0x1000000
CLONE_THREAD = 0x10000

FUTEX_WAIT = 0
FUTEX_WAKE = 1
FUTEX_REQUEUE = 3
FUTEX_CMP_REQUEUE = 4
FUTEX_WAKE_OP = 5
FUTEX_WAIT_BITSET = 9
FUTEX_WAKE_BITSET = 10
FUTEX_CLOCK_REALTIME = 256
FUTEX_PRIVATE_FLAG = 128
_SYS_FUTEX_HOST = 202           # the host is x86-64

# CPU state a new thread inherits from the one calling clone.
_CPU_STATE = ("rip", "eflags", "cc_op", "cc_dst", "cc_src", "cc_src2", "fs_base", "gs_base",
              "mxcsr", "fpstt", "fpus", "fpuc")
_CPU_LISTS = ("regs", "segs", "xmm", "fpregs", "fptags")


class _Waiter:
    __slots__ = ("event", "bitset")

    def __init__(self, bitset: int) -> None:
        self.event = threading.Event()
        self.bitset = bitset


class Futexes:
    def __init__(self, mem) -> None:
        self.mem = mem
        self.lock = threading.Lock()
        self.waiters: Dict[int, List[_Waiter]] = {}

    def wait(self, addr: int, val: int, timeout: Optional[float], bitset: int = 0xFFFFFFFF,
             interrupted=None) -> int:
        with self.lock:
            try:
                cur = self.mem.read_u32(addr)
            except GuestFault:
                return -errno.EFAULT
            if cur != val & 0xFFFFFFFF:
                return -errno.EAGAIN
            w = _Waiter(bitset)
            self.waiters.setdefault(addr, []).append(w)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            # Short slices so that a signal for this thread can interrupt the wait.
            left = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if left <= 0:
                if self._remove(addr, w):
                    return -errno.ETIMEDOUT
                return 0
            if w.event.wait(left):
                return 0
            if interrupted is not None and interrupted():
                if self._remove(addr, w):
                    return -errno.EINTR
                return 0

    def _remove(self, addr: int, w: _Waiter) -> bool:
        with self.lock:
            lst = self.waiters.get(addr, [])
            if w in lst:
                lst.remove(w)
                if not lst:
                    self.waiters.pop(addr, None)
                return True
            return False

    def wake(self, addr: int, n: int, bitset: int = 0xFFFFFFFF) -> int:
        woken = 0
        with self.lock:
            lst = self.waiters.get(addr, [])
            keep = []
            for w in lst:
                if woken < n and w.bitset & bitset:
                    w.event.set()
                    woken += 1
                else:
                    keep.append(w)
            if keep:
                self.waiters[addr] = keep
            else:
                self.waiters.pop(addr, None)
        return woken

    def requeue(self, addr: int, n_wake: int, n_move: int, addr2: int, cmp: Optional[int]) -> int:
        with self.lock:
            if cmp is not None and self.mem.read_u32(addr) != cmp & 0xFFFFFFFF:
                return -errno.EAGAIN
            lst = self.waiters.pop(addr, [])
            woken = 0
            moved = 0
            rest = []
            for w in lst:
                if woken < n_wake:
                    w.event.set()
                    woken += 1
                elif moved < n_move:
                    self.waiters.setdefault(addr2, []).append(w)
                    moved += 1
                else:
                    rest.append(w)
            if rest:
                self.waiters[addr] = rest
        return woken + moved


class HostFutex:
    """Futexes on guest MAP_SHARED pages: the host kernel's futex on the host
    address of the shared page, so processes sharing the memory (a forked
    child, an unrelated process mapping the same file) wake each other."""

    def __init__(self) -> None:
        import ctypes
        self.ct = ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.syscall.restype = ctypes.c_long

    def _call(self, *args) -> int:
        ct = self.ct
        r = self.libc.syscall(ct.c_long(_SYS_FUTEX_HOST), *[
            a if isinstance(a, ct.c_void_p) or a is None else ct.c_long(a) for a in args])
        return -ct.get_errno() if r < 0 else r

    def wait(self, haddr: int, val: int, timeout: Optional[float], bitset: int,
             interrupted=None) -> int:
        """FUTEX_WAIT_BITSET in slices, so that a guest signal can interrupt it."""
        ct = self.ct

        class _Ts(ct.Structure):
            _fields_ = [("sec", ct.c_long), ("nsec", ct.c_long)]
        deadline = None if timeout is None else time.monotonic() + timeout
        first = True
        while True:
            now = time.monotonic()
            end = now + 0.05 if deadline is None else min(now + 0.05, deadline)
            ts = _Ts(int(end), int((end - int(end)) * 1e9))
            r = self._call(haddr, FUTEX_WAIT_BITSET, val, ct.c_void_p(ct.addressof(ts)), None,
                           bitset)
            if r == -errno.EAGAIN:
                return -errno.EAGAIN if first else 0
            first = False
            if r == 0:
                return 0
            if deadline is not None and time.monotonic() >= deadline:
                return -errno.ETIMEDOUT
            if interrupted is not None and interrupted():
                return -errno.EINTR

    def op(self, haddr: int, op: int, val: int, val2: int, haddr2: int, val3: int) -> int:
        """A non-blocking futex operation (wake, requeue, wake-op) passed through."""
        return self._call(haddr, op & ~FUTEX_PRIVATE_FLAG, val, val2,
                          self.ct.c_void_p(haddr2) if haddr2 else None, val3)


_host_futex: Optional[HostFutex] = None


def host_futex() -> HostFutex:
    global _host_futex
    if _host_futex is None:
        _host_futex = HostFutex()
    return _host_futex


class ThreadManager:
    """Creates and tracks guest threads of one process."""

    def __init__(self, emu) -> None:
        self.emu = emu
        self.lock = threading.Lock()
        self.tids: Dict[int, object] = {}
        self.exit_status = 0

    def is_guest_tid(self, tid: int) -> bool:
        return tid in self.tids

    def kill(self, tid: int, sig: int) -> int:
        # Thread-directed signals go to the process's pending set; the target is
        # interrupted and whichever thread does not block it takes it.
        if sig == 0:
            return 0
        self.emu.proc.signals.raise_pending(sig)
        return 0

    def alive(self) -> int:
        with self.lock:
            return len(self.tids)

    def clone(self, cpu, parent_sc, flags: int, newsp: int, ptid: int, ctid: int, tls: int) -> int:
        from pyqemu.linux_user.syscalls import Syscalls
        from pyqemu.target.i386.cpu import X86CPU

        emu = self.emu
        child = X86CPU(emu.mem, model="qemu64" if emu.bits == 64 else "qemu32", mode=emu.bits)
        if getattr(cpu, "cpu_def", None) is not None:
            from pyqemu.target.i386 import cpu_models
            cpu_models.attach(child, cpu.cpu_def, 0)
        for name in _CPU_STATE:
            if hasattr(cpu, name):
                setattr(child, name, getattr(cpu, name))
        for name in _CPU_LISTS:
            if hasattr(cpu, name):
                setattr(child, name, list(getattr(cpu, name)))
        child.regs[0] = 0
        if newsp:
            child.regs[4] = newsp
        sc = Syscalls(emu.proc, parent_sc.strace)
        sc.sig.mask = parent_sc.sig.mask
        if flags & CLONE_SETTLS:
            if emu.bits == 64:
                child.fs_base = tls
            else:
                sc.sys_set_thread_area(child, tls)
        ready = threading.Event()
        go = threading.Event()
        box: Dict[str, int] = {}

        def body() -> None:
            tid = threading.get_native_id()
            child.tid = tid
            box["tid"] = tid
            with self.lock:
                self.tids[tid] = child
            ready.set()
            go.wait()
            self._run_thread(child, sc, tid)

        t = threading.Thread(target=body, name="guest-thread", daemon=True)
        t.start()
        ready.wait()
        tid = box["tid"]
        if flags & CLONE_PARENT_SETTID and ptid:
            emu.mem.write_u32(ptid, tid)
        if flags & CLONE_CHILD_SETTID and ctid:
            emu.mem.write_u32(ctid, tid)
        if flags & CLONE_CHILD_CLEARTID:
            sc.tid_address = ctid
        emu.proc.signals.cpus.append(child)
        go.set()
        return tid

    def _run_thread(self, cpu, sc, tid: int) -> None:
        from pyqemu.linux_user.syscalls import GuestExit, ThreadExit

        try:
            self.emu.run_cpu(cpu, sc)
        except ThreadExit:
            pass
        except GuestExit as e:
            self.exit_process(e.status)
        except BaseException as e:  # noqa: BLE001 - a thread must never die silently
            sys.stderr.write("pyqemu: internal error in guest thread: %s: %s\n" % (type(e).__name__, e))
            sys.stderr.flush()
            os._exit(1)
        finally:
            self.thread_gone(cpu, sc, tid)

    def thread_gone(self, cpu, sc, tid: int) -> None:
        if sc.tid_address:
            try:
                self.emu.mem.write_u32(sc.tid_address, 0)
            except GuestFault:
                pass
            self.emu.proc.futexes.wake(sc.tid_address, 1)
        with self.lock:
            self.tids.pop(tid, None)
        try:
            self.emu.proc.signals.cpus.remove(cpu)
        except ValueError:
            pass

    def exit_process(self, status: int) -> None:
        """exit_group from any thread: the whole process ends now."""
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os._exit(status & 0xFF)
