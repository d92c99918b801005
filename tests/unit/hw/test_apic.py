"""The local APIC register model and timer (no CPU: pending/ack/EOI stand in for it)."""
import time

import pytest

from pyqemu.exec.main_loop import MainLoop, main_loop, set_main_loop
from pyqemu.hw.intc.apic import LocalAPIC


@pytest.fixture
def apic():
    loop = MainLoop()
    set_main_loop(loop)
    a = LocalAPIC(3)
    yield a
    if a.timer is not None:
        a.timer.delete()
    loop.close()
    set_main_loop(None)


def test_identity_and_reset_values(apic):
    assert apic.read(0x20) == 3 << 24
    assert apic.read(0x30) == 0x00050014  # six LVT entries, as QEMU 7.2
    assert apic.read(0xF0) == 0xFF  # software-disabled at reset
    assert apic.read(0xE0) == 0xFFFFFFFF
    assert all(apic.read(o) == 0x10000 for o in (0x320, 0x350, 0x360, 0x370))


def test_priorities_tpr_and_eoi(apic):
    apic.set_irq(0x31)
    assert apic.pending() == -1  # software-disabled
    apic.write(0xF0, 0x1FF)
    apic.set_irq(0x61)
    assert apic.pending() == 0x61 and apic.ack() == 0x61
    assert apic.read(0x100 + 0x30) == 1 << 1  # ISR bit 0x61 (word 3, bit 1)
    assert apic.read(0xA0) == 0x60  # PPR follows the in-service class
    assert apic.pending() == -1  # 0x31 is below the in-service class
    apic.write(0xB0, 0)
    assert apic.pending() == 0x31
    apic.write(0x80, 0x40)  # TPR above 0x31's class
    assert apic.pending() == -1
    apic.write(0x80, 0x00)
    assert apic.ack() == 0x31 and apic.eoi() == 0x31


def test_lvt_writes_masked_while_disabled(apic):
    apic.write(0x350, 0x700)  # ExtINT on LINT0
    assert apic.read(0x350) == 0x10700
    apic.write(0xF0, 0x100)
    apic.write(0x350, 0x700)
    assert apic.read(0x350) == 0x700 and apic.lvt_line(4) == 0


def test_timer_one_shot_and_periodic(apic):
    main_loop().pause_virtual_clock()
    apic.write(0xF0, 0x1FF)
    apic.write(0x3E0, 0x0B)  # divide by 1
    apic.write(0x320, 0x40)  # one-shot, vector 0x40
    apic.write(0x380, 1000000)  # 1 ms at 1 GHz
    assert apic.read(0x380) == 1000000
    assert apic.read(0x390) == 1000000  # guest time stands still while stopped
    main_loop().resume_virtual_clock()
    end = time.monotonic() + 5
    while apic.pending() != 0x40 and time.monotonic() < end:
        main_loop().iterate(0.01)
    assert apic.ack() == 0x40
    assert apic.read(0x390) == 0  # one-shot: stays at zero
    apic.eoi()
    apic.write(0x320, 0x41 | (1 << 17))  # periodic
    apic.write(0x380, 1000000)
    fired = 0
    end = time.monotonic() + 5
    while fired < 3 and time.monotonic() < end:
        main_loop().iterate(0.01)
        if apic.ack() == 0x41:
            fired += 1
            apic.eoi()
    main_loop().pause_virtual_clock()
    assert fired == 3
    assert 0 < apic.read(0x390) <= 1000000


def test_icr_reports_ipis(apic):
    sent = []
    apic.ipi_handlers.append(lambda low, dest: sent.append((low, dest)))
    apic.write(0x310, 2 << 24)
    apic.write(0x300, 0x4500)  # INIT, assert
    assert sent == [(0x4500, 2)] and apic.read(0x310) == 2 << 24
