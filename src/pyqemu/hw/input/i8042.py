"""The i8042 keyboard controller (ports 0x60/0x64) with a PS/2 keyboard behind it.

Controller commands handled: read/write the command byte (0x20/0x60), self
test (0xAA -> 0x55), keyboard interface test (0xAB -> 0x00), disable/enable
the keyboard (0xAD/0xAE), read/write the output port (0xD0/0xD1: bit 0 is the
CPU reset line, bit 1 the A20 gate), A20 off/on (0xDD/0xDF) and the pulse
commands 0xF0-0xFF, of which those pulsing bit 0 (e.g. 0xFE) reset the
machine.  The keyboard answers reset (0xFF: 0xFA 0xAA), identify (0xF2),
echo (0xEE) and acknowledges the rest.  IRQ 1 rises when a byte waits and
the command byte enables it.  The mouse (aux port, IRQ 12) is not modelled.
"""
from __future__ import annotations

from collections import deque
from typing import Deque, Optional

from pyqemu.exec.memory import MemoryRegionOps
from pyqemu.hw.isa.isa_bus import ISADevice
from pyqemu.qom.object import PropDef, register_type
from pyqemu.system.runstate import runstate

STAT_OBF, STAT_SELFTEST, STAT_CMD = 0x01, 0x04, 0x08
MODE_KBD_INT, MODE_MOUSE_INT, MODE_SYS, MODE_DISABLE_KBD, MODE_KCC = 0x01, 0x02, 0x04, 0x10, 0x40
OUT_RESET, OUT_A20, OUT_ONES = 0x01, 0x02, 0xCC


@register_type
class I8042(ISADevice):
    TYPE_NAME = "i8042"
    ABSTRACT = False
    USER_CREATABLE = False
    DEVICE_PROPS = (
        PropDef("extended-state", "bool", True),
        PropDef("kbd-throttle", "bool", False),
        PropDef("kbd-irq", "uint8", 1),
        PropDef("mouse-irq", "uint8", 12),
    )

    def __init__(self) -> None:
        super().__init__()
        self.init_gpio_out(1, "a20")
        self.queue: Deque[int] = deque()
        self.pending_cmd: Optional[int] = None
        self.kbd_pending: Optional[int] = None
        self._state_reset()

    def _state_reset(self) -> None:
        self.mode = MODE_KBD_INT | MODE_MOUSE_INT
        self.status = STAT_CMD | 0x10  # keyboard not inhibited
        self.outport = OUT_RESET | OUT_A20 | OUT_ONES
        self.queue.clear()
        self.pending_cmd = None
        self.kbd_pending = None

    def realize(self) -> None:
        self.isa_register_ioport(0x60, 1, "i8042-data",
                                 MemoryRegionOps(self._read_data, self._write_data,
                                                 valid_max=1, impl_max=1))
        self.isa_register_ioport(0x64, 1, "i8042-cmd",
                                 MemoryRegionOps(lambda o, s: self._status(), self._write_cmd,
                                                 valid_max=1, impl_max=1))
        self.kbd_irq_line = self.isa_get_irq(self.kbd_irq)
        self.isa_get_irq(self.mouse_irq)

    def reset(self) -> None:
        self._state_reset()
        self._update()
        self.set_gpio_out(0, 1, "a20")

    def _status(self) -> int:
        return self.status | (STAT_OBF if self.queue else 0)

    def _update(self) -> None:
        self.kbd_irq_line.set(1 if self.queue and self.mode & MODE_KBD_INT else 0)

    def _push(self, b: int) -> None:
        self.queue.append(b & 0xFF)
        self._update()

    def _set_outport(self, v: int) -> None:
        self.outport = v
        self.set_gpio_out(0, 1 if v & OUT_A20 else 0, "a20")
        if not v & OUT_RESET:
            runstate().request_reset("guest-reset")

    def _read_data(self, off: int, size: int) -> int:
        v = self.queue.popleft() if self.queue else 0
        self._update()
        return v

    def _write_cmd(self, off: int, val: int, size: int) -> None:
        self.status |= STAT_CMD
        if val == 0x20:
            self._push(self.mode)
        elif val in (0x60, 0xD1, 0xD2):
            self.pending_cmd = val
        elif val == 0xAA:
            self.status |= STAT_SELFTEST
            self._push(0x55)
        elif val == 0xAB:
            self._push(0x00)
        elif val == 0xAD:
            self.mode |= MODE_DISABLE_KBD
        elif val == 0xAE:
            self.mode &= ~MODE_DISABLE_KBD
        elif val == 0xD0:
            self._push(self.outport)
        elif val == 0xDD:
            self._set_outport(self.outport & ~OUT_A20)
        elif val == 0xDF:
            self._set_outport(self.outport | OUT_A20)
        elif val >= 0xF0:
            # Pulse the output port bits whose command bit is 0: bit 0 is reset.
            if not val & 1:
                runstate().request_reset("guest-reset")

    def _write_data(self, off: int, val: int, size: int) -> None:
        cmd = self.pending_cmd
        self.pending_cmd = None
        self.status &= ~STAT_CMD
        if cmd == 0x60:
            self.mode = val
            self.status = (self.status & ~STAT_SELFTEST) | (val & MODE_SYS)
            self._update()
        elif cmd == 0xD1:
            self._set_outport(val | OUT_RESET if val & OUT_RESET else val)
        elif cmd == 0xD2:
            self._push(val)
        else:
            self._keyboard(val)

    def _keyboard(self, val: int) -> None:
        if self.kbd_pending is not None:
            # Second byte of a two-byte command (LEDs, typematic rate, scan set).
            self.kbd_pending = None
            self._push(0xFA)
            return
        if val == 0xFF:
            self._push(0xFA)
            self._push(0xAA)
        elif val == 0xF2:
            self._push(0xFA)
            self._push(0xAB)
            self._push(0x83)
        elif val == 0xEE:
            self._push(0xEE)
        elif val in (0xED, 0xF3, 0xF0):
            self.kbd_pending = val
            self._push(0xFA)
        else:
            self._push(0xFA)
