"""The one event loop of the system emulator (QEMU's main-loop.c + qemu-timer.c).

Everything that waits runs here: file-descriptor handlers (chardev sockets,
ptys, stdio), bottom halves (callbacks deferred to the next iteration; the
only thread-safe entry point, used by other threads to hand work to the loop)
and timers on three clocks:

* ``QEMU_CLOCK_REALTIME`` - monotonic, always runs;
* ``QEMU_CLOCK_HOST`` - wall-clock time, follows the host's date;
* ``QEMU_CLOCK_VIRTUAL`` - guest time: runs with the monotonic clock while the
  VM runs and stands still while it is paused (runstate calls
  :meth:`MainLoop.pause_virtual_clock` / :meth:`MainLoop.resume_virtual_clock`),
  or, with ``-icount`` (:meth:`MainLoop.set_icount`, exec/icount.py), counts
  the guest's instructions.

Python 3.9 syntax: exec/ is imported by the translator under PyPy.
"""
from __future__ import annotations

import heapq
import os
import selectors
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

QEMU_CLOCK_REALTIME = 0
QEMU_CLOCK_VIRTUAL = 1
QEMU_CLOCK_HOST = 2

Callback = Callable[[], None]


class Timer:
    """A one-shot timer on one clock; re-arm it with :meth:`mod`."""

    def __init__(self, loop: "MainLoop", clock: int, cb: Callback) -> None:
        self.loop = loop
        self.clock = clock
        self.cb = cb
        self.expire_ns = -1  # -1: not pending
        self._gen = 0

    def mod(self, expire_ns: int) -> None:
        """Fire once when ``clock`` reaches ``expire_ns`` (absolute, in ns)."""
        self._gen += 1
        self.expire_ns = expire_ns
        self.loop._add_timer(self)

    def mod_in_ms(self, ms: int) -> None:
        self.mod(self.loop.clock_get_ns(self.clock) + ms * 1000000)

    def delete(self) -> None:
        self._gen += 1
        self.expire_ns = -1

    def pending(self) -> bool:
        return self.expire_ns >= 0


class MainLoop:
    """A selectors-based loop with fd handlers, bottom halves and timers."""

    def __init__(self) -> None:
        # poll(2) rather than epoll: it accepts any fd (stdin may be /dev/null or a
        # regular file, which epoll refuses) and our fd sets are small.
        self._sel = selectors.PollSelector()
        self._handlers: Dict[int, Tuple[Optional[Callback], Optional[Callback]]] = {}
        self._bh: List[Callback] = []
        self._bh_lock = threading.Lock()
        # One heap of (expiry, sequence, generation, timer) per clock.
        self._timers: Dict[int, List[Tuple[int, int, int, Timer]]] = {
            QEMU_CLOCK_REALTIME: [], QEMU_CLOCK_VIRTUAL: [], QEMU_CLOCK_HOST: []}
        self._seq = 0
        self._exit = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._sel.register(self._wake_r, selectors.EVENT_READ)
        # Virtual clock: monotonic time minus the time spent paused.
        self._vm_running = True
        self._vm_offset = 0
        self._vm_stopped_at = 0
        self._thread: Optional[int] = None  # the thread that iterates the loop
        self.icount = None  # an exec.icount.ICount when -icount is given

    def set_icount(self, icount) -> None:
        """Drive QEMU_CLOCK_VIRTUAL by ``icount`` (an exec.icount.ICount)."""
        self.icount = icount
        # guest time starts where the real-time virtual clock stands
        icount.bias = time.monotonic_ns() - self._vm_offset - (icount.counter() << icount.shift)
        if icount.adaptive:
            t = self.timer_new(QEMU_CLOCK_REALTIME, lambda: self._icount_adjust(t))
            self._icount_adjust(t)

    def _icount_adjust(self, t: "Timer") -> None:
        if self._vm_running:
            self.icount.adjust(time.monotonic_ns() - self._vm_offset)
        t.mod(self.clock_get_ns(QEMU_CLOCK_REALTIME) + 100000000)

    def next_virtual_deadline(self) -> Optional[int]:
        """Expiry (ns) of the earliest pending QEMU_CLOCK_VIRTUAL timer, or None."""
        heap = self._timers[QEMU_CLOCK_VIRTUAL]
        while heap and (heap[0][2] != heap[0][3]._gen or heap[0][3].expire_ns < 0):
            heapq.heappop(heap)  # deleted or re-armed since
        return heap[0][0] if heap else None

    # -- clocks -----------------------------------------------------------
    def clock_get_ns(self, clock: int) -> int:
        if clock == QEMU_CLOCK_HOST:
            return time.time_ns()
        now = time.monotonic_ns()
        if clock == QEMU_CLOCK_VIRTUAL:
            if not self._vm_running:
                return self._vm_stopped_at
            if self.icount is not None:
                return self.icount.now()
            return now - self._vm_offset
        return now

    def pause_virtual_clock(self) -> None:
        if self._vm_running:
            if self.icount is not None:
                self.icount.busy()      # no idle warp while stopped
            self._vm_stopped_at = self.clock_get_ns(QEMU_CLOCK_VIRTUAL)
            self._vm_running = False

    def resume_virtual_clock(self) -> None:
        if not self._vm_running:
            self._vm_offset = time.monotonic_ns() - self._vm_stopped_at
            self._vm_running = True
            self.notify()

    def virtual_clock_running(self) -> bool:
        return self._vm_running

    # -- fd handlers ------------------------------------------------------
    def set_fd_handler(self, fd: int, read_cb: Optional[Callback],
                       write_cb: Optional[Callback] = None) -> None:
        """Watch ``fd``; both callbacks None removes it (qemu_set_fd_handler)."""
        mask = (selectors.EVENT_READ if read_cb else 0) | (selectors.EVENT_WRITE if write_cb else 0)
        known = fd in self._handlers
        if not mask:
            if known:
                del self._handlers[fd]
                try:
                    self._sel.unregister(fd)
                except (KeyError, ValueError):
                    pass
            return
        self._handlers[fd] = (read_cb, write_cb)
        if known:
            self._sel.modify(fd, mask)
        else:
            self._sel.register(fd, mask)
        self.notify()

    # -- bottom halves ----------------------------------------------------
    def bh_schedule(self, cb: Callback) -> None:
        """Run ``cb`` in the loop's thread on its next iteration (thread-safe)."""
        with self._bh_lock:
            self._bh.append(cb)
        self.notify()

    def notify(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # pipe full: the loop is awake anyway

    # -- timers -----------------------------------------------------------
    def timer_new(self, clock: int, cb: Callback) -> Timer:
        return Timer(self, clock, cb)

    def _add_timer(self, t: Timer) -> None:
        self._seq += 1
        heapq.heappush(self._timers[t.clock], (t.expire_ns, self._seq, t._gen, t))
        if not self.in_loop_thread():
            self.notify()

    def _run_timers(self) -> Optional[float]:
        """Fire due timers; return seconds until the next one (None: none)."""
        nxt: Optional[float] = None
        fired = False
        limit = self._seq  # a timer re-armed by a callback waits for the next pass
        for clock, heap in self._timers.items():
            if clock == QEMU_CLOCK_VIRTUAL and not self._vm_running:
                continue  # guest time stands still: its timers wait
            now = self.clock_get_ns(clock)
            while heap:
                exp, seq, gen, t = heap[0]
                if gen != t._gen or t.expire_ns < 0:
                    heapq.heappop(heap)  # deleted or re-armed since
                    continue
                if seq > limit:
                    nxt = 0.0
                    break
                if exp > now:
                    wait = (exp - now) / 1e9
                    nxt = wait if nxt is None else min(nxt, wait)
                    break
                heapq.heappop(heap)
                t.expire_ns = -1
                t.cb()
                fired = True
        return 0.0 if fired else nxt

    # -- running ----------------------------------------------------------
    def in_loop_thread(self) -> bool:
        """True in the thread that runs the loop (or before anyone ran it)."""
        return self._thread is None or self._thread == threading.get_ident()

    def request_exit(self) -> None:
        self._exit = True
        self.notify()

    def _run_bhs(self) -> bool:
        with self._bh_lock:
            bhs, self._bh = self._bh, []
        for cb in bhs:
            cb()
        return bool(bhs)

    def _next_deadline(self) -> Optional[float]:
        """Seconds until the earliest pending timer (0 when one is due), or None."""
        nxt: Optional[float] = None
        for clock, heap in self._timers.items():
            if clock == QEMU_CLOCK_VIRTUAL and not self._vm_running:
                continue
            while heap and (heap[0][2] != heap[0][3]._gen or heap[0][3].expire_ns < 0):
                heapq.heappop(heap)  # deleted or re-armed since
            if heap:
                wait = max(0.0, (heap[0][0] - self.clock_get_ns(clock)) / 1e9)
                nxt = wait if nxt is None else min(nxt, wait)
        return nxt

    def iterate(self, timeout: Optional[float] = None) -> None:
        """One iteration, in QEMU's order: wait for fds (not longer than the next
        timer, not at all with bottom halves pending), run fd handlers, expired
        timers, then bottom halves.  run_until() looks at its predicate right after,
        so a request made by a bottom half is seen before more input is read."""
        self._thread = threading.get_ident()
        if self._bh:
            timeout = 0.0
        nxt = self._next_deadline()
        if nxt is not None:
            timeout = nxt if timeout is None else min(timeout, nxt)
        events = self._sel.select(timeout)
        for key, mask in events:
            fd = key.fd
            if fd == self._wake_r:
                try:
                    while os.read(self._wake_r, 4096):
                        pass
                except (BlockingIOError, OSError):
                    pass
                continue
            h = self._handlers.get(fd)
            if h is None:
                continue
            if mask & selectors.EVENT_READ and h[0] is not None:
                h[0]()
            h = self._handlers.get(fd)
            if h is not None and mask & selectors.EVENT_WRITE and h[1] is not None:
                h[1]()
        self._run_timers()
        self._run_bhs()

    def run_until(self, predicate: Callable[[], bool], timeout: Optional[float] = None) -> bool:
        """Iterate until ``predicate()`` is true (or exit/timeout); return it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not predicate():
            if self._exit:
                return predicate()
            wait = None
            if deadline is not None:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    return predicate()
            self.iterate(wait)
        return True

    def run(self) -> None:
        """Run until :meth:`request_exit`."""
        self._exit = False
        while not self._exit:
            self.iterate()

    def close(self) -> None:
        self._sel.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


_loop: Optional[MainLoop] = None


def main_loop() -> MainLoop:
    """The process's one loop, created on first use."""
    global _loop
    if _loop is None:
        _loop = MainLoop()
    return _loop


def set_main_loop(loop: Optional[MainLoop]) -> None:
    """Replace the global loop (tests start each case with a fresh one)."""
    global _loop
    _loop = loop


def clock_get_ns(clock: int) -> int:
    return main_loop().clock_get_ns(clock)


def timer_new(clock: int, cb: Callback) -> Timer:
    return main_loop().timer_new(clock, cb)
