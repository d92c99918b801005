"""The PC's local APICs wired to its CPUs: the INTR line, IPIs (fixed,
INIT/SIPI), IOAPIC messages with the level-triggered EOI round trip, PIC
interrupts through LINT0 and the xAPIC MMIO window."""
import pytest


@pytest.fixture
def pc2(make_pc):
    m = make_pc("-smp", "2")
    m.reset()
    for cpu in m.cpus:
        cpu.apic.write(0xF0, 0x1FF)   # software-enable
    return m


def test_each_cpu_has_its_apic_and_the_window_is_mapped(pc2):
    from pyqemu.exec.memory import get_system_memory
    assert [c.apic.read(0x20) >> 24 for c in pc2.cpus] == [0, 1]
    win = [r for r in get_system_memory().subregions if r.name == "apic-msi"]
    assert len(win) == 1 and win[0].addr == 0xFEE00000 and win[0].size == 0x100000
    pc2.apic_bus.current_cpu = lambda: pc2.cpus[1]
    assert pc2.apic_bus._read(0x20, 4) == 1 << 24
    assert pc2.apic_bus._read(0x30, 4) == 0x50014


def test_fixed_ipi_reaches_only_its_destination(pc2):
    a0 = pc2.cpus[0].apic
    a0.write(0x310, 1 << 24)
    a0.write(0x300, 0x4041)          # fixed, vector 0x41, physical destination 1
    assert pc2.cpus[1].intr_level and not pc2.cpus[0].intr_level
    assert pc2.cpus[1].get_irq() == 0x41
    assert not pc2.cpus[1].intr_level   # acknowledged: in service now
    assert pc2.cpus[1].apic.read(0x100 + 0x20) == 1 << 1


def test_ipi_shorthands(pc2):
    a0 = pc2.cpus[0].apic
    a0.write(0x300, 0xC0000 | 0x4052)   # all excluding self
    assert pc2.cpus[1].get_irq() == 0x52 and pc2.cpus[0].get_irq() == -1
    a0.write(0x300, 0x40000 | 0x4053)   # self
    assert pc2.cpus[0].get_irq() == 0x53


def test_init_sipi_starts_an_application_processor(pc2):
    ap = pc2.cpus[1]
    assert ap.halted and ap.wait_sipi
    a0 = pc2.cpus[0].apic
    a0.write(0x310, 1 << 24)
    a0.write(0x300, 0x4500)          # INIT, level assert
    a0.write(0x300, 0x4608)          # start-up at vector 8: 0800:0000
    assert not ap.halted and not ap.wait_sipi
    assert (ap.segs[1], ap.seg_base[1], ap.rip) == (0x800, 0x8000, 0)
    a0.write(0x300, 0x4609)          # a second SIPI is ignored once running
    assert ap.segs[1] == 0x800


def test_ioapic_level_interrupt_and_eoi(pc2):
    io = pc2.ioapic
    io._write(0x00, 0x10 + 2 * 5, 4)
    io._write(0x10, 0x55 | 1 << 15, 4)   # vector 0x55, level-triggered
    io._write(0x00, 0x11 + 2 * 5, 4)
    io._write(0x10, 1 << 24, 4)          # physical destination APIC 1
    pin = io.get_gpio_in(5)
    pin.set(1)
    cpu = pc2.cpus[1]
    assert cpu.get_irq() == 0x55
    pc2.apic_bus.current_cpu = lambda: cpu
    pc2.apic_bus._write(0xB0, 0, 4)      # EOI while the line is still up: delivered again
    assert cpu.get_irq() == 0x55
    pin.set(0)
    pc2.apic_bus._write(0xB0, 0, 4)
    assert cpu.get_irq() == -1 and not cpu.intr_level
    assert not io.redir[5] & (1 << 14)   # remote IRR cleared by the EOI


def test_pic_reaches_the_bsp_through_lint0(pc2):
    bus = pc2.apic_bus
    assert pc2.cpus[0].apic.read(0x350) == 0x700   # ExtINT, unmasked on the BSP
    bus.set_pic_intr(0, 1)
    assert pc2.cpus[0].intr_level and not pc2.cpus[1].intr_level
    pc2.cpus[0].apic.write(0x350, 0x10700)          # masked: the PIC no longer gets through
    bus.set_pic_intr(0, 1)
    assert not pc2.cpus[0].intr_level


def test_apic_timer_raises_the_intr_line(pc2):
    from pyqemu.exec.main_loop import main_loop
    cpu = pc2.cpus[0]
    a = cpu.apic
    a.write(0x3E0, 0xB)
    a.write(0x320, 0x44)
    a.write(0x380, 1000)               # 1 us of virtual time
    assert not cpu.intr_level
    a._timer_fired()                   # what the virtual clock's timer calls
    assert cpu.intr_level and cpu.get_irq() == 0x44
    assert main_loop() is not None
