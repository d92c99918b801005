"""``-icount``: guest time counted in executed instructions.

With ``-icount shift=N`` the virtual clock (QEMU_CLOCK_VIRTUAL: the guest's
timers, the PIT, the APIC timer, the TSC) advances by 2**N ns per guest
instruction while the CPUs run, whatever the speed of the host.  A run is then
repeatable, and a slow emulator no longer spends most of its time in the
guest's timer interrupts (at HZ=250 and a few guest MIPS, a Linux tick handler
would otherwise take a large share of every second).

When every CPU is halted the clock still has to move, or nothing would wake
them: with ``sleep=on`` (the default) it runs with real time until the next
timer; with ``sleep=off`` it jumps straight to that timer's deadline.
``shift=auto`` starts at 2**3 ns per instruction and adjusts the shift ten
times a second so that guest time keeps near real time.

Python 3.9 syntax: exec/ is imported by the translator under PyPy.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

MAX_SHIFT = 10
AUTO_INITIAL_SHIFT = 3
# how far apart guest and real time may drift before shift=auto reacts (ns)
_WOBBLE = 100000000


class ICount:
    def __init__(self, shift: Optional[int], sleep: bool = True, align: bool = False) -> None:
        self.adaptive = shift is None
        self.shift = AUTO_INITIAL_SHIFT if shift is None else shift
        self.sleep = sleep
        self.align = align
        self.bias = 0                       # ns added to counter() << shift
        self.counter: Callable[[], int] = lambda: 0
        self._idle_since: Optional[int] = None   # monotonic ns: all CPUs halted (sleep=on)
        self._last_delta = 0

    # -- the clock ------------------------------------------------------------
    def now(self) -> int:
        ns = self.bias + (self.counter() << self.shift)
        if self._idle_since is not None:
            ns += time.monotonic_ns() - self._idle_since
        return ns

    def insns_until(self, deadline_ns: int) -> int:
        """Instructions the CPUs may run before the clock reaches deadline_ns."""
        ns = deadline_ns - self.now()
        if ns <= 0:
            return 0
        return (ns + (1 << self.shift) - 1) >> self.shift

    # -- idle CPUs ------------------------------------------------------------
    def idle(self, deadline_ns: Optional[int]) -> None:
        """Every CPU is halted; ``deadline_ns``: the next virtual timer (None: none)."""
        if self.sleep:
            if self._idle_since is None:
                self._idle_since = time.monotonic_ns()
        elif deadline_ns is not None:
            now = self.now()
            if deadline_ns > now:
                self.bias += deadline_ns - now

    def busy(self) -> None:
        """A CPU runs again (or the VM stops): keep the time that passed idle."""
        if self._idle_since is not None:
            self.bias += time.monotonic_ns() - self._idle_since
            self._idle_since = None

    # -- shift=auto -----------------------------------------------------------
    def adjust(self, real_ns: int) -> None:
        """Called periodically with the real time the VM has run: move the
        shift one step towards guest time == real time, keeping the clock
        continuous."""
        if not self.adaptive:
            return
        cur = self.now()
        delta = cur - real_ns
        if delta > 0 and self._last_delta + _WOBBLE < delta * 2 and self.shift > 0:
            self.shift -= 1          # guest time ahead: fewer ns per instruction
        elif delta < 0 and self._last_delta - _WOBBLE > delta * 2 and self.shift < MAX_SHIFT:
            self.shift += 1
        self._last_delta = delta
        idle = 0 if self._idle_since is None else time.monotonic_ns() - self._idle_since
        self.bias = cur - idle - (self.counter() << self.shift)


def parse_shift(value: Optional[str]) -> Optional[int]:
    """The shift of ``-icount shift=VALUE``: None for auto; ValueError if bad."""
    if value == "auto":
        return None
    if value is None:
        raise ValueError(value)
    v = value.strip()
    if len(v) > 1 and v[0] == "0" and v[1] not in "xX":
        n = int(v, 8)               # strtol's base 0: a leading 0 means octal
    else:
        n = int(v, 0)
    if not 0 <= n <= MAX_SHIFT:
        raise ValueError(value)
    return n
