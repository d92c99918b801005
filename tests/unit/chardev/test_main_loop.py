import os
import threading
import time

from pyqemu.exec.main_loop import QEMU_CLOCK_HOST, QEMU_CLOCK_REALTIME, QEMU_CLOCK_VIRTUAL


def test_timers_fire_in_expiry_order(loop):
    fired = []
    now = loop.clock_get_ns(QEMU_CLOCK_REALTIME)
    for delay, name in ((30, "c"), (10, "a"), (20, "b")):
        t = loop.timer_new(QEMU_CLOCK_REALTIME, lambda n=name: fired.append(n))
        t.mod(now + delay * 1000000)
    assert loop.run_until(lambda: len(fired) == 3, timeout=5)
    assert fired == ["a", "b", "c"]


def test_deleted_and_rearmed_timers(loop):
    fired = []
    t1 = loop.timer_new(QEMU_CLOCK_REALTIME, lambda: fired.append(1))
    t2 = loop.timer_new(QEMU_CLOCK_REALTIME, lambda: fired.append(2))
    now = loop.clock_get_ns(QEMU_CLOCK_REALTIME)
    t1.mod(now + 5000000)
    t1.delete()
    t2.mod(now + 1000000000)
    t2.mod(now + 10000000)  # re-arming replaces the first expiry
    assert not t1.pending() and t2.pending()
    loop.run_until(lambda: False, timeout=0.3)
    assert fired == [2]


def test_virtual_clock_stops_while_paused(loop):
    fired = []
    loop.pause_virtual_clock()
    v0 = loop.clock_get_ns(QEMU_CLOCK_VIRTUAL)
    t = loop.timer_new(QEMU_CLOCK_VIRTUAL, lambda: fired.append(1))
    t.mod(v0 + 20000000)
    loop.run_until(lambda: False, timeout=0.15)
    assert fired == []
    assert loop.clock_get_ns(QEMU_CLOCK_VIRTUAL) == v0
    loop.resume_virtual_clock()
    assert loop.run_until(lambda: fired == [1], timeout=5)
    # The virtual clock resumed where it stopped: it lags real time by the pause.
    lag = loop.clock_get_ns(QEMU_CLOCK_REALTIME) - loop.clock_get_ns(QEMU_CLOCK_VIRTUAL)
    assert lag >= 100000000


def test_host_clock_is_wall_clock(loop):
    assert abs(loop.clock_get_ns(QEMU_CLOCK_HOST) - time.time_ns()) < 1000000000


def test_bottom_half_from_another_thread_wakes_the_loop(loop):
    got = []

    def other():
        time.sleep(0.1)
        loop.bh_schedule(lambda: got.append(threading.get_ident()))
    th = threading.Thread(target=other)
    th.start()
    start = time.monotonic()
    assert loop.run_until(lambda: got, timeout=5)
    th.join()
    assert got == [threading.get_ident()]  # ran in the loop's thread
    assert time.monotonic() - start < 2


def test_fd_handlers_read_and_removal(loop):
    r, w = os.pipe()
    seen = []

    def readable():
        seen.append(os.read(r, 100))
        loop.set_fd_handler(r, None)
    loop.set_fd_handler(r, readable)
    os.write(w, b"ping")
    assert loop.run_until(lambda: seen, timeout=5)
    assert seen == [b"ping"]
    os.write(w, b"again")  # no handler any more: nothing is read
    loop.run_until(lambda: False, timeout=0.1)
    assert seen == [b"ping"]
    os.close(r)
    os.close(w)


def test_write_handler(loop):
    r, w = os.pipe()
    calls = []

    def writable():
        calls.append(1)
        loop.set_fd_handler(w, None, None)
    loop.set_fd_handler(w, None, writable)
    assert loop.run_until(lambda: calls, timeout=5)
    os.close(r)
    os.close(w)


def test_run_returns_after_request_exit(loop):
    th = threading.Thread(target=lambda: (time.sleep(0.1), loop.request_exit()))
    th.start()
    loop.run()
    th.join()


def test_periodic_timer_rearmed_from_its_callback(loop):
    count = []
    t = loop.timer_new(QEMU_CLOCK_REALTIME, None)

    def tick():
        count.append(1)
        if len(count) < 5:
            # Re-arming at "now" must not starve the loop: it fires on a later pass.
            t.mod(loop.clock_get_ns(QEMU_CLOCK_REALTIME))
    t.cb = tick
    t.mod(0)
    seen = []
    loop.bh_schedule(lambda: seen.append(len(count)))
    assert loop.run_until(lambda: len(count) == 5, timeout=5)
    assert seen and seen[0] < 5
