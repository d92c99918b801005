"""``isa-debug-exit``: a guest write of V to the port exits QEMU with status (V << 1) | 1."""
from __future__ import annotations

import sys

from pyqemu.exec.memory import MemoryRegionOps
from pyqemu.hw.isa.isa_bus import ISADevice
from pyqemu.qom.object import PropDef, register_type


@register_type
class ISADebugExit(ISADevice):
    TYPE_NAME = "isa-debug-exit"
    ABSTRACT = False
    CATEGORY = "Misc devices"
    DEVICE_PROPS = (
        PropDef("iobase", "uint32", 0x501),
        PropDef("iosize", "uint32", 0x02),
    )

    def realize(self) -> None:
        ops = MemoryRegionOps(lambda o, s: 0, self._write, valid_max=4, impl_max=4)
        self.isa_register_ioport(self.iobase, self.iosize, "isa-debug-exit", ops)

    def _write(self, off: int, val: int, size: int) -> None:
        # As in QEMU: an immediate exit, no shutdown sequence; flush what the
        # guest already wrote to its consoles first.
        import os
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(((val << 1) | 1) & 0xFF)
