"""The I/O APIC (``ioapic``, version 0x20) at 0xfec00000: its register model and pin logic.

IOREGSEL (0x00) selects a register, IOWIN (0x10) reads or writes it, 0x40 is
the EOI register of version 0x20.  Registers: 0 ID, 1 version (0x170020: 24
pins), 2 arbitration, 0x10 + 2n / 0x11 + 2n the low/high halves of pin n's
redirection entry (vector, delivery mode, destination mode, polarity, remote
IRR, trigger mode, mask, destination).  An unmasked pin delivers on a rising
edge, or while asserted for level-triggered entries until the local APIC's
EOI for the vector clears remote IRR.  Deliveries go to the ``deliver``
callbacks (the local APICs of the CPU to come); with none attached nothing
else happens.
"""
from __future__ import annotations

from typing import Callable, Dict, List

from pyqemu.exec.memory import MemoryRegionOps, memory_region_init_io
from pyqemu.hw.core.qdev import SysBusDevice
from pyqemu.qom.object import PropDef, register_type

NUM_PINS = 24
IOAPIC_BASE = 0xFEC00000
LVT_MASKED = 1 << 16
LVT_TRIGGER_LEVEL = 1 << 15
LVT_REMOTE_IRR = 1 << 14
LVT_DELIV_STATUS = 1 << 12
# Bits a guest may write in the low half (remote IRR and delivery status are read-only).
LVT_RW_MASK = 0xFFFFFFFF & ~(LVT_REMOTE_IRR | LVT_DELIV_STATUS)


@register_type
class IOAPIC(SysBusDevice):
    TYPE_NAME = "ioapic"
    ABSTRACT = False
    USER_CREATABLE = False
    DEVICE_PROPS = (PropDef("version", "uint8", 0x20),)

    def __init__(self) -> None:
        super().__init__()
        self.init_gpio_in(self._set_irq, NUM_PINS)
        self.deliver: List[Callable[[Dict[str, int]], None]] = []
        self._regs_reset()

    def _regs_reset(self) -> None:
        self.ioregsel = 0
        self.id = 0
        self.irr = 0
        self.levels = 0  # the pins' current input levels, to see edges
        self.redir = [LVT_MASKED] * NUM_PINS

    def realize(self) -> None:
        self.mr = memory_region_init_io(self, MemoryRegionOps(
            self._read, self._write, valid_max=4, impl_min=4, impl_max=4), "ioapic", 0x1000)
        self.init_mmio(self.mr)
        self.mmio_map(0, IOAPIC_BASE)

    def reset(self) -> None:
        self._regs_reset()

    # -- registers ------------------------------------------------------------------
    def _read(self, off: int, size: int) -> int:
        if off == 0x00:
            return self.ioregsel
        if off != 0x10:
            return 0
        sel = self.ioregsel
        if sel in (0, 2):
            return (self.id & 0xF) << 24
        if sel == 1:
            return ((NUM_PINS - 1) << 16) | self.version
        n = (sel - 0x10) >> 1
        if 0 <= n < NUM_PINS:
            e = self.redir[n]
            return (e >> 32) & 0xFFFFFFFF if sel & 1 else e & 0xFFFFFFFF
        return 0

    def _write(self, off: int, val: int, size: int) -> None:
        if off == 0x00:
            self.ioregsel = val & 0xFF
            return
        if off == 0x40 and self.version >= 0x20:
            self.eoi(val & 0xFF)
            return
        if off != 0x10:
            return
        sel = self.ioregsel
        if sel == 0:
            self.id = (val >> 24) & 0xF
            return
        n = (sel - 0x10) >> 1
        if not 0 <= n < NUM_PINS:
            return
        e = self.redir[n]
        if sel & 1:
            e = (e & 0xFFFFFFFF) | (val << 32)
        else:
            keep = e & (LVT_REMOTE_IRR | LVT_DELIV_STATUS)
            e = (e & ~0xFFFFFFFF) | (val & LVT_RW_MASK) | keep
            if not e & LVT_TRIGGER_LEVEL:
                e &= ~LVT_REMOTE_IRR
        self.redir[n] = e
        self._service()

    # -- pins -------------------------------------------------------------------------
    def _set_irq(self, n: int, level: int) -> None:
        bit = 1 << n
        rising = level and not self.levels & bit
        self.levels = self.levels | bit if level else self.levels & ~bit
        e = self.redir[n]
        if e & LVT_TRIGGER_LEVEL:
            if level:
                self.irr |= bit
            else:
                self.irr &= ~bit
        elif rising and not e & LVT_MASKED:
            # The 82093AA ignores edges on masked pins.
            self.irr |= bit
        self._service()

    def _service(self) -> None:
        for n in range(NUM_PINS):
            bit = 1 << n
            if not self.irr & bit:
                continue
            e = self.redir[n]
            if e & LVT_MASKED:
                continue
            level = bool(e & LVT_TRIGGER_LEVEL)
            if level:
                if e & LVT_REMOTE_IRR:
                    continue
                self.redir[n] = e | LVT_REMOTE_IRR
            else:
                self.irr &= ~bit
            msg = {"pin": n, "vector": e & 0xFF, "delivery_mode": (e >> 8) & 7,
                   "dest_mode": (e >> 11) & 1, "trigger_level": int(level),
                   "dest": (e >> 56) & 0xFF}
            for cb in list(self.deliver):
                cb(msg)

    def eoi(self, vector: int) -> None:
        """The local APIC's EOI broadcast (or the EOI register): clear remote IRR."""
        for n in range(NUM_PINS):
            e = self.redir[n]
            if e & LVT_REMOTE_IRR and e & 0xFF == vector:
                self.redir[n] = e & ~LVT_REMOTE_IRR
        self._service()
