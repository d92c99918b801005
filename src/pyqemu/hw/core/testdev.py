"""``pyqemu-testdev``: a small test device (a pyqemu extension, not in QEMU).

It proves the device, memory and run-state plumbing with -M none: it maps a
16-byte MMIO window at ``addr`` (and, when ``iobase`` is non-zero, the same
registers as I/O ports) and drives one IRQ line.

Registers (32 bits wide, 1/2/4-byte accesses):
  0x0  scratch: reads back what was written; ``reset-value`` after reset
  0x4  control, write-only: 1 = guest shutdown request, 2 = guest reset
       request, 3 = guest panic, 4 = raise the IRQ line, 5 = lower it
  0x8  count of writes since reset (read-only)
  0xc  identification, reads 0x51454d55 ("QEMU" in ASCII, little-endian)
"""
from __future__ import annotations

from pyqemu.exec.memory import (MemoryRegionOps, address_space_io, get_system_io, get_system_memory,
                                memory_region_init_io)
from pyqemu.hw.core.qdev import DeviceState
from pyqemu.qom.object import PropDef, register_type
from pyqemu.system.runstate import runstate

IDENT = 0x51454D55


@register_type
class TestDevice(DeviceState):
    TYPE_NAME = "pyqemu-testdev"
    ABSTRACT = False
    CATEGORY = "Misc devices"
    DESCRIPTION = "pyqemu test device"
    DEVICE_PROPS = (
        PropDef("addr", "uint64", 0xFEED0000),
        PropDef("iobase", "uint16", 0),
        # Settable at run time so that qom-set has a visible effect at the next reset.
        PropDef("reset-value", "uint32", 0, settable_after_realize=True),
    )

    def __init__(self) -> None:
        super().__init__()
        self.scratch = 0
        self.writes = 0
        self.irq_level = 0
        self.mmio = None
        self.pio = None
        self.init_gpio_out(1)

    def _read(self, off: int, size: int) -> int:
        if off == 0:
            return self.scratch
        if off == 8:
            return self.writes
        if off == 0xC:
            return IDENT
        return 0

    def _write(self, off: int, value: int, size: int) -> None:
        self.writes += 1
        if off == 0:
            self.scratch = value
        elif off == 4:
            rs = runstate()
            if value == 1:
                rs.request_shutdown("guest-shutdown")
            elif value == 2:
                rs.request_reset("guest-reset")
            elif value == 3:
                rs.guest_panicked()
            elif value in (4, 5):
                self.irq_level = 1 if value == 4 else 0
                self.set_gpio_out(0, self.irq_level)

    def realize(self) -> None:
        ops = MemoryRegionOps(self._read, self._write, valid_min=1, valid_max=4,
                              impl_min=4, impl_max=4)
        self.mmio = memory_region_init_io(self, ops, "pyqemu-testdev", 0x10)
        get_system_memory().add_subregion(self.addr, self.mmio)
        if self.iobase:
            self.pio = memory_region_init_io(self, ops, "pyqemu-testdev-io", 0x10)
            get_system_io().add_subregion(self.iobase, self.pio)
        address_space_io()  # both spaces exist from memory_init

    def unrealize(self) -> None:
        if self.mmio is not None:
            get_system_memory().del_subregion(self.mmio)
        if self.pio is not None:
            get_system_io().del_subregion(self.pio)

    def reset(self) -> None:
        self.scratch = self.reset_value
        self.writes = 0
