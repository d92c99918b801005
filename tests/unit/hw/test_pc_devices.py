"""PC devices through their I/O ports and lines, as a guest (and the CPU's
interrupt acknowledge) would use them."""
import struct

import pytest

from pyqemu.exec.memory import address_space_io, address_space_memory
from pyqemu.util.error import QemuError


def outb(port, val):
    address_space_io().write(port, 1, val)


def inb(port):
    return address_space_io().read(port, 1)


def init_pics():
    """The BIOS's programming: vectors 0x08 and 0x70, cascade on line 2, all unmasked."""
    for base, vec, icw3 in ((0x20, 0x08, 0x04), (0xA0, 0x70, 0x02)):
        outb(base, 0x11)
        outb(base + 1, vec)
        outb(base + 1, icw3)
        outb(base + 1, 0x01)
        outb(base + 1, 0x00)


def test_pic_delivery_priority_and_eoi(make_pc):
    pc = make_pc()
    init_pics()
    irqs = pc.devices["piix3"].isa_bus.irqs
    assert pc.intr == 0
    irqs[3].set(1)
    irqs[1].set(1)
    assert pc.intr == 1
    outb(0x20, 0x0A)
    assert inb(0x20) == 0x0A  # IRR: lines 1 and 3
    assert pc.pic.read_irq() == 0x09  # line 1 wins
    outb(0x20, 0x0B)
    assert inb(0x20) == 0x02  # ISR
    # Line 3 waits until the EOI of line 1: lower priority.
    assert pc.intr == 0
    outb(0x20, 0x20)
    assert pc.intr == 1 and pc.pic.read_irq() == 0x0B
    outb(0x20, 0x20)
    # Edge-triggered: the line must fall and rise again to request once more.
    assert pc.intr == 0
    irqs[3].set(0)
    irqs[3].set(1)
    assert pc.intr == 1
    # Masking hides it; unmasking brings it back.
    outb(0x21, 0x08)
    assert pc.intr == 0 and inb(0x21) == 0x08
    outb(0x21, 0x00)
    assert pc.intr == 1


def test_pic_cascade_and_spurious(make_pc):
    pc = make_pc()
    init_pics()
    irqs = pc.devices["piix3"].isa_bus.irqs
    irqs[8].set(1)
    assert pc.intr == 1
    assert pc.pic.read_irq() == 0x70
    assert pc.pic.read_irq() == 0x0F  # nothing pending: spurious line 7 of the master
    outb(0xA0, 0x0B)
    assert inb(0xA0) == 0x01
    outb(0xA0, 0x20)
    outb(0x20, 0x20)
    outb(0xA0, 0x0B)
    assert inb(0xA0) == 0x00


def test_pic_level_triggered_through_elcr(make_pc):
    pc = make_pc()
    init_pics()
    irqs = pc.devices["piix3"].isa_bus.irqs
    outb(0x4D1, 0xFF)
    assert inb(0x4D1) == 0xDE  # lines 8 and 13 cannot be level-triggered
    irqs[9].set(1)
    assert pc.pic.read_irq() == 0x71
    outb(0xA0, 0x20)
    outb(0x20, 0x20)
    assert pc.intr == 1  # still asserted: level requests again
    irqs[9].set(0)
    # The request went away before the acknowledge: the slave answers with
    # its spurious vector (line 7), as the datasheet (and QEMU) have it.
    assert pc.pic.read_irq() == 0x77
    outb(0x20, 0x20)
    assert pc.intr == 0


def test_rtc_bcd_binary_set_and_reg_c(make_pc):
    make_pc("-rtc", "base=2006-06-17T16:01:21")
    def cmos(i):
        outb(0x70, i)
        return inb(0x71)
    assert (cmos(9), cmos(8), cmos(7), cmos(4)) == (0x06, 0x06, 0x17, 0x16)
    assert cmos(0x32) == 0x20 and cmos(0x0A) == 0x26 and cmos(0x0D) == 0x80
    outb(0x70, 0x0B)
    outb(0x71, 0x02 | 0x04)  # binary mode
    assert cmos(4) == 16 and cmos(9) == 6
    # SET freezes the clock while the guest writes a new time.
    outb(0x70, 0x0B)
    outb(0x71, 0x80 | 0x02 | 0x04)
    for reg, val in ((9, 30), (8, 12), (7, 31), (4, 23), (2, 59), (0, 0)):
        outb(0x70, reg)
        outb(0x71, val)
    outb(0x70, 0x0B)
    outb(0x71, 0x02 | 0x04)
    assert (cmos(9), cmos(8), cmos(7), cmos(4), cmos(2)) == (30, 12, 31, 23, 59)
    outb(0x70, 0x0B)
    outb(0x71, 0x00)  # BCD, 12-hour: 23h is 11 PM
    assert cmos(4) == 0x80 | 0x11
    assert cmos(0x0C) == 0 and cmos(0x0D) == 0x80
    outb(0x70, 0x0D)
    outb(0x71, 0x00)  # read-only
    assert cmos(0x0D) == 0x80


def test_cmos_memory_fields(make_pc):
    pc = make_pc("-m", "5G", "-smp", "4")
    def cmos(i):
        outb(0x70, i)
        return inb(0x71)
    assert pc.below_4g == 3 << 30 and pc.above_4g == 2 << 30
    assert (cmos(0x34) | cmos(0x35) << 8) == ((3 << 30) - (16 << 20)) >> 16
    assert (cmos(0x5B) | cmos(0x5C) << 8 | cmos(0x5D) << 16) == (2 << 30) >> 16
    assert cmos(0x5F) == 3
    assert address_space_memory().read(0x100000000, 4) == 0  # RAM above 4G is mapped


def test_serial_loopback_fifo_and_irq(make_pc):
    pc = make_pc("-serial", "null")
    init_pics()
    com1 = 0x3F8
    outb(com1 + 4, 0x10 | 0x08)  # loopback, OUT2
    outb(com1 + 2, 0x01 | 0x80)  # FIFO on, trigger level 8
    outb(com1 + 1, 0x01)  # received-data interrupt
    for b in range(5):
        outb(com1, 0x30 + b)
    assert inb(com1 + 5) & 0x01
    assert inb(com1 + 2) == 0xCC  # fewer than 8 bytes: character timeout
    assert pc.intr == 1 and pc.pic.read_irq() == 0x0C
    for b in range(5, 8):
        outb(com1, 0x30 + b)
    assert inb(com1 + 2) == 0xC4  # trigger level reached
    assert bytes(inb(com1) for _ in range(8)) == b"01234567"
    assert inb(com1 + 2) == 0xC1 and not inb(com1 + 5) & 0x01
    for b in range(17):
        outb(com1, b)
    assert inb(com1 + 5) & 0x02  # overrun, cleared by reading LSR
    assert not inb(com1 + 5) & 0x02
    outb(com1 + 2, 0x03)  # clear the receive FIFO
    assert not inb(com1 + 5) & 0x01
    outb(com1 + 1, 0x02)  # THRE interrupt comes at once when enabled
    assert inb(com1 + 2) == 0xC2
    assert inb(com1 + 2) == 0xC1  # ... and is cleared by reading IIR


def test_serial_output_reaches_chardev(make_pc, tmp_path):
    out = tmp_path / "com2.txt"
    make_pc("-serial", "null", "-serial", "file:%s" % out)
    for c in b"to COM2":
        outb(0x2F8, c)
    assert out.read_bytes() == b"to COM2"


def test_fw_cfg_dma_reads_the_file_directory(make_pc):
    make_pc("-m", "256")
    mem = address_space_memory()
    # FWCfgDmaAccess at 0x1000: select the directory and read 68 bytes to 0x2000.
    mem.write_bytes(0x1000, struct.pack(">IIQ", (0x19 << 16) | 0x08 | 0x02, 68, 0x2000))
    address_space_io().write(0x514, 4, 0)
    address_space_io().write(0x518, 4, int.from_bytes((0x1000).to_bytes(4, "big"), "little"))
    assert mem.read_bytes(0x1000, 4) == b"\0\0\0\0"  # control cleared: done
    d = mem.read_bytes(0x2000, 68)
    assert struct.unpack(">I", d[:4])[0] == 1 and d[12:20] == b"etc/e820"
    size, key = struct.unpack(">IH", d[4:10])
    mem.write_bytes(0x1000, struct.pack(">IIQ", (key << 16) | 0x08 | 0x02, size + 4, 0x3000))
    address_space_io().write(0x518, 4, int.from_bytes((0x1000).to_bytes(4, "big"), "little"))
    e820 = mem.read_bytes(0x3000, size + 4)
    assert struct.unpack_from("<QQI", e820, 20) == (0, 256 << 20, 1)
    assert e820[size:] == b"\0" * 4  # past the end: zero-filled
    # A write request fails: no item is writable.
    mem.write_bytes(0x1000, struct.pack(">IIQ", 0x10, 4, 0x3000))
    address_space_io().write(0x518, 4, int.from_bytes((0x1000).to_bytes(4, "big"), "little"))
    assert mem.read_bytes(0x1000, 4) == b"\0\0\0\1"


def test_a20_from_i8042_and_port92(make_pc):
    pc = make_pc()
    assert pc.a20 == 1
    outb(0x64, 0xD1)
    outb(0x60, 0xCD)  # output port with A20 clear, reset line high
    assert pc.a20 == 0
    outb(0x64, 0xDF)
    assert pc.a20 == 1
    outb(0x92, 0x00)
    assert pc.a20 == 0 and inb(0x92) == 0x00
    outb(0x92, 0x02)
    assert pc.a20 == 1 and inb(0x92) == 0x02


def test_pam_read_only_and_read_write(make_pc):
    make_pc()
    mem = address_space_memory()
    bios_byte = mem.read(0xFFFF0, 1)
    assert bios_byte == 0xEA  # SeaBIOS's reset vector: a far jump

    def pam0(mode):
        address_space_io().write(0xCF8, 4, 0x80000058)
        address_space_io().write(0xCFD, 1, mode << 4)
    pam0(3)
    mem.write(0xF0000, 4, 0x12345678)
    assert mem.read(0xF0000, 4) == 0x12345678
    pam0(1)  # read-only RAM: writes are dropped
    mem.write(0xF0000, 4, 0)
    assert mem.read(0xF0000, 4) == 0x12345678
    pam0(0)
    assert mem.read(0xFFFF0, 1) == 0xEA


@pytest.mark.parametrize("args,msg", [
    (["-cpu", "nosuchcpu"], "unable to find CPU model 'nosuchcpu'"),
    (["-M", "pc,kernel=/no/such/k"], "could not open kernel file '/no/such/k': No such file or directory"),
    (["-append", "x"], "-append only allowed with -kernel option"),
    (["-M", "pc,firmware=x.bin"], "could not load PC BIOS 'x.bin'"),
    (["-device", "isa-serial,index=4"], "Max. supported number of ISA serial ports is 4."),
])
def test_bad_configurations(make_pc, args, msg):
    with pytest.raises(QemuError) as e:
        make_pc(*args)
    assert msg in str(e.value)


def test_pit_channel0_ticks_irq0_on_the_virtual_clock(make_pc):
    import time

    from pyqemu.exec.main_loop import main_loop
    pc = make_pc()
    init_pics()
    outb(0x43, 0x34)
    outb(0x40, 1193 & 0xFF)  # about 1 ms per period
    outb(0x40, 1193 >> 8)
    assert pc.intr == 0  # the virtual clock stands still while stopped
    main_loop().resume_virtual_clock()
    end = time.monotonic() + 5
    while pc.intr == 0 and time.monotonic() < end:
        main_loop().iterate(0.01)
    main_loop().pause_virtual_clock()
    assert pc.intr == 1 and pc.pic.read_irq() == 0x08


def test_ioapic_registers_and_delivery(make_pc):
    pc = make_pc()
    mem = address_space_memory()
    got = []
    pc.ioapic.deliver.append(got.append)

    def reg(i, val=None):
        mem.write(0xFEC00000, 4, i)
        if val is not None:
            mem.write(0xFEC00010, 4, val)
        return mem.read(0xFEC00010, 4)
    assert reg(1) == 0x00170020
    assert reg(0x10) == 0x10000  # masked after reset
    assert reg(0, 0x05000000) == 0x05000000 and reg(2) == 0x05000000
    irqs = pc.devices["piix3"].isa_bus.irqs
    # ISA IRQ 0 arrives on pin 2: edge-triggered, vector 0x30, destination 1.
    reg(0x15, 0x01000000)
    reg(0x14, 0x30)
    irqs[0].set(1)
    assert got == [{"pin": 2, "vector": 0x30, "delivery_mode": 0, "dest_mode": 0,
                    "trigger_level": 0, "dest": 1}]
    irqs[0].set(1)
    assert len(got) == 1  # no new edge
    # Level-triggered pin 9: remote IRR holds it until the EOI for its vector.
    reg(0x22, 0x41 | (1 << 15))
    irqs[9].set(1)
    assert len(got) == 2 and reg(0x22) & (1 << 14)
    mem.write(0xFEC00040, 4, 0x41)  # EOI register: still asserted, so delivered again
    assert len(got) == 3
    irqs[9].set(0)
    pc.ioapic.eoi(0x41)
    assert not reg(0x22) & (1 << 14) and len(got) == 3
    # The same lines still reach the PIC.
    init_pics()
    irqs[4].set(1)
    assert pc.intr == 1


def test_hpet_counter_and_legacy_timer0(make_pc):
    import time

    from pyqemu.exec.main_loop import main_loop
    pc = make_pc()
    init_pics()
    mem = address_space_memory()
    loop = main_loop()
    loop.pause_virtual_clock()
    assert mem.read(0xFED00000, 4) == 0x8086A201 and mem.read(0xFED00004, 4) == 10000000
    # PIT channel 0 programmed, but legacy replacement hands IRQ 0 to the HPET.
    outb(0x43, 0x34)
    outb(0x40, 0x01)
    outb(0x40, 0x00)
    mem.write(0xFED00108, 8, 100000)  # timer 0 fires at 1 ms
    mem.write(0xFED00100, 4, 0x04)  # interrupt enable, edge, one-shot
    mem.write(0xFED00010, 4, 0x03)  # ENABLE | LEG_RT
    assert mem.read(0xFED000F0, 8) == 0  # the counter stands still with the clock
    loop.resume_virtual_clock()
    end = time.monotonic() + 5
    while pc.intr == 0 and time.monotonic() < end:
        loop.iterate(0.01)
    loop.pause_virtual_clock()
    assert pc.intr == 1 and pc.pic.read_irq() == 0x08
    outb(0x20, 0x20)
    assert mem.read(0xFED000F0, 8) >= 100000
    # Halted: the counter is writable and keeps its value.
    mem.write(0xFED00010, 4, 0x00)
    mem.write(0xFED000F0, 8, 0x1234)
    assert mem.read(0xFED000F0, 8) == 0x1234
    assert pc.devices["pit"].irq_enabled
