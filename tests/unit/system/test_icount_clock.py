"""exec/icount.py: the virtual clock counted in guest instructions."""
from __future__ import annotations

import pytest

from pyqemu.exec import icount as ic
from pyqemu.exec.main_loop import QEMU_CLOCK_VIRTUAL, MainLoop


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        return self.n


def make(shift, sleep=True):
    c = ic.ICount(shift, sleep=sleep)
    cnt = Counter()
    c.counter = cnt
    return c, cnt


def test_clock_advances_by_two_to_the_shift_per_instruction():
    c, cnt = make(3)
    t0 = c.now()
    cnt.n = 1000
    assert c.now() - t0 == 8000
    # the instructions that may run before a deadline, rounded up
    assert c.insns_until(c.now() + 8000) == 1000
    assert c.insns_until(c.now() + 8001) == 1001
    assert c.insns_until(c.now() - 1) == 0


def test_sleep_off_jumps_to_the_next_timer_when_idle():
    c, cnt = make(0, sleep=False)
    t0 = c.now()
    c.idle(t0 + 5000000)
    assert c.now() == t0 + 5000000
    c.idle(None)                      # no timer: time stands still
    assert c.now() == t0 + 5000000
    c.busy()
    cnt.n = 10
    assert c.now() == t0 + 5000010


def test_sleep_on_follows_real_time_while_idle_and_keeps_it():
    c, cnt = make(0, sleep=True)
    t0 = c.now()
    c.idle(t0 + 10 ** 12)
    import time
    time.sleep(0.01)
    t1 = c.now()
    assert t1 - t0 >= 10000000        # at least the 10 ms slept
    c.busy()
    assert c.now() >= t1              # the idle time stays counted
    cnt.n = 5
    assert c.now() >= t1 + 5


def test_auto_moves_the_shift_towards_real_time_without_a_jump():
    c, cnt = make(None)
    assert c.adaptive and c.shift == ic.AUTO_INITIAL_SHIFT
    cnt.n = 10 ** 9                   # guest time far ahead of real time
    before = c.now()
    c.adjust(0)
    assert c.shift == ic.AUTO_INITIAL_SHIFT - 1
    assert c.now() == before          # continuous across the change
    for _ in range(20):
        c.adjust(0)
    assert c.shift == 0
    c2, cnt2 = make(None)
    c2.adjust(10 ** 15)               # guest time far behind
    assert c2.shift == ic.AUTO_INITIAL_SHIFT + 1
    for _ in range(20):
        c2.adjust(10 ** 15 * 50)
    assert c2.shift == ic.MAX_SHIFT


@pytest.mark.parametrize("text,shift", [("0", 0), ("7", 7), ("10", 10), ("0x3", 3), ("010", 8),
                                        ("auto", None)])
def test_parse_shift(text, shift):
    assert ic.parse_shift(text) == shift


@pytest.mark.parametrize("text", ["11", "-1", "x", "", "3x"])
def test_parse_shift_rejects(text):
    with pytest.raises(ValueError):
        ic.parse_shift(text)


def test_main_loop_virtual_clock_and_pause():
    loop = MainLoop()
    try:
        c, cnt = make(2, sleep=False)
        loop.set_icount(c)
        t0 = loop.clock_get_ns(QEMU_CLOCK_VIRTUAL)
        cnt.n = 100
        assert loop.clock_get_ns(QEMU_CLOCK_VIRTUAL) == t0 + 400
        fired = []
        t = loop.timer_new(QEMU_CLOCK_VIRTUAL, lambda: fired.append(1))
        t.mod(t0 + 1000)
        assert loop.next_virtual_deadline() == t0 + 1000
        loop.iterate(0)
        assert not fired                  # the guest has not run that far
        cnt.n = 250
        loop.iterate(0)
        assert fired == [1]
        loop.pause_virtual_clock()
        stopped = loop.clock_get_ns(QEMU_CLOCK_VIRTUAL)
        loop.resume_virtual_clock()
        assert loop.clock_get_ns(QEMU_CLOCK_VIRTUAL) == stopped
    finally:
        loop.close()
