"""System control port A (0x92): fast A20 gate (bit 1) and fast reset (bit 0)."""
from __future__ import annotations

from pyqemu.exec.memory import MemoryRegionOps
from pyqemu.hw.isa.isa_bus import ISADevice
from pyqemu.qom.object import register_type
from pyqemu.system.runstate import runstate


@register_type
class Port92(ISADevice):
    TYPE_NAME = "port92"
    ABSTRACT = False
    USER_CREATABLE = False

    def __init__(self) -> None:
        super().__init__()
        self.outport = 0
        self.init_gpio_out(1, "a20")

    def realize(self) -> None:
        ops = MemoryRegionOps(lambda o, s: self.outport, self._write, valid_max=1, impl_max=1)
        self.isa_register_ioport(0x92, 1, "port92", ops)

    def reset(self) -> None:
        self.outport &= ~1

    def _write(self, off: int, val: int, size: int) -> None:
        old = self.outport
        self.outport = val & ~1
        self.set_gpio_out(0, (val >> 1) & 1, "a20")
        # Only a 0->1 transition of bit 0 resets the machine.
        if val & 1 and not old & 1:
            runstate().request_reset("guest-reset")
