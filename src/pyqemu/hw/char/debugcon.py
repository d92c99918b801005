"""``isa-debugcon``: Bochs/QEMU debug console, bytes written to the port go to a chardev.

Reading the port returns ``readback`` (0xe9 by default) so a guest can probe
for it; ``-debugcon dev`` creates one at 0xe9.
"""
from __future__ import annotations

from typing import Any

from pyqemu.exec.memory import MemoryRegionOps
from pyqemu.hw.isa.isa_bus import ISADevice
from pyqemu.qom.object import PropDef, register_type


@register_type
class ISADebugcon(ISADevice):
    TYPE_NAME = "isa-debugcon"
    ABSTRACT = False
    CATEGORY = "Misc devices"
    DEVICE_PROPS = (
        PropDef("iobase", "uint32", 0xE9),
        PropDef("chardev", "string", None),
        PropDef("readback", "uint32", 0xE9),
    )

    def __init__(self) -> None:
        super().__init__()
        self.chr: Any = None

    def realize(self) -> None:
        if self.chardev:
            from pyqemu.chardev.char import chardev_get
            self.chr = chardev_get(self.chardev)
        ops = MemoryRegionOps(lambda o, s: self.readback & 0xFF, self._write,
                              valid_max=1, impl_max=1)
        self.isa_register_ioport(self.iobase, 1, "isa-debugcon", ops)

    def _write(self, off: int, val: int, size: int) -> None:
        if self.chr is not None:
            self.chr.write(bytes((val & 0xFF,)))
