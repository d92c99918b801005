"""The HPET (``hpet``) at 0xfed00000: 3 comparators on a 100 MHz main counter.

Registers as QEMU's model exposes them (32- or 64-bit accesses): capabilities
0x009896808086a201 (10 ns period, 3 timers, legacy replacement capable),
configuration (ENABLE, LEG_RT), interrupt status (write 1 to clear), the
main counter (running on the virtual clock while enabled), and per timer its
configuration/capabilities (level, enable, periodic, 32-bit mode, route),
comparator and FSB registers.  A comparator match raises its interrupt: in
legacy replacement mode timer 0 drives ISA IRQ 0 and timer 1 IRQ 8 (and the
PIT's own IRQ 0 is cut off), otherwise the IOAPIC pin of its route.  Not
modelled: FSB (MSI) delivery.
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional

from pyqemu.exec.memory import MemoryRegionOps, memory_region_init_io
from pyqemu.hw.core.qdev import SysBusDevice
from pyqemu.qom.object import PropDef, register_type

HPET_BASE = 0xFED00000
PERIOD_NS = 10
CFG_ENABLE, CFG_LEGACY = 1, 2
TN_LEVEL, TN_ENABLE, TN_PERIODIC, TN_PERIODIC_CAP = 1 << 1, 1 << 2, 1 << 3, 1 << 4
TN_SIZE_CAP, TN_SETVAL, TN_32BIT = 1 << 5, 1 << 6, 1 << 8
TN_CFG_WRITE_MASK = 0x7F4E  # level, enable, periodic, setval, 32-bit, route, FSB bits
MASK64 = (1 << 64) - 1


def _now() -> int:
    from pyqemu.exec.main_loop import QEMU_CLOCK_VIRTUAL, clock_get_ns
    return clock_get_ns(QEMU_CLOCK_VIRTUAL)


class HPETTimer:
    def __init__(self, hpet: "HPET", n: int) -> None:
        self.hpet = hpet
        self.n = n
        self.config = 0
        self.cmp = MASK64
        self.period = 0
        self.fsb = 0
        self.qtimer: Any = None

    def reset(self, intcap: int) -> None:
        self.config = TN_PERIODIC_CAP | TN_SIZE_CAP | (intcap << 32)
        self.cmp = MASK64
        self.period = 0
        self.fsb = 0
        if self.qtimer is not None:
            self.qtimer.delete()


@register_type
class HPET(SysBusDevice):
    TYPE_NAME = "hpet"
    ABSTRACT = False
    USER_CREATABLE = False
    DEVICE_PROPS = (
        PropDef("timers", "uint8", 3),
        PropDef("msi", "bool", False),
        PropDef("hpet-intcap", "uint32", 4),
        PropDef("hpet-offset-saved", "bool", True),
    )

    def __init__(self) -> None:
        super().__init__()
        self.config = 0
        self.isr = 0
        self.counter_base = 0  # counter value at hpet_offset time
        self.offset_ns = 0
        self.timer_list: List[HPETTimer] = []
        # route(line, level): ("isa", irq) or ("gsi", pin) targets, set by the board.
        self.set_isa_irq: Optional[Callable[[int, int], None]] = None
        self.set_gsi: Optional[Callable[[int, int], None]] = None
        self.legacy_notify: List[Callable[[bool], None]] = []

    def realize(self) -> None:
        self.timer_list = [HPETTimer(self, i) for i in range(self.timers)]
        mr = memory_region_init_io(self, MemoryRegionOps(
            self._read, self._write, valid_max=8, impl_min=4, impl_max=8), "hpet", 0x400)
        self.init_mmio(mr)
        self.mmio_map(0, HPET_BASE)

    def reset(self) -> None:
        self.config = 0
        self.isr = 0
        self.counter_base = 0
        for t in self.timer_list:
            t.reset(self.hpet_intcap)

    @property
    def capability(self) -> int:
        return 0x8086A001 | ((self.timers - 1) << 8) | ((PERIOD_NS * 1000000) << 32)

    def counter(self) -> int:
        if self.config & CFG_ENABLE:
            return (self.counter_base + (_now() - self.offset_ns) // PERIOD_NS) & MASK64
        return self.counter_base

    # -- interrupts ---------------------------------------------------------------------
    def _line(self, t: HPETTimer, level: int) -> None:
        if self.config & CFG_LEGACY and t.n < 2:
            if self.set_isa_irq is not None:
                self.set_isa_irq(0 if t.n == 0 else 8, level)
        elif self.set_gsi is not None:
            self.set_gsi((t.config >> 9) & 0x1F, level)

    def _arm(self, t: HPETTimer) -> None:
        from pyqemu.exec.main_loop import QEMU_CLOCK_VIRTUAL, timer_new
        if t.qtimer is None:
            t.qtimer = timer_new(QEMU_CLOCK_VIRTUAL, lambda: self._fire(t))
        if not self.config & CFG_ENABLE or not t.config & TN_ENABLE:
            t.qtimer.delete()
            return
        now_count = self.counter()
        mask = 0xFFFFFFFF if t.config & TN_32BIT else MASK64
        delta = (t.cmp - now_count) & mask
        if delta == 0:
            delta = mask + 1
        t.qtimer.mod(_now() + delta * PERIOD_NS)

    def _fire(self, t: HPETTimer) -> None:
        if t.config & TN_PERIODIC and t.period:
            t.cmp = (t.cmp + t.period) & MASK64
        if t.config & TN_LEVEL:
            self.isr |= 1 << t.n
            self._line(t, 1)
        else:
            self._line(t, 1)
            self._line(t, 0)
        self._arm(t)

    # -- registers -------------------------------------------------------------------------
    def _reg64(self, addr: int) -> int:
        if addr == 0x000:
            return self.capability
        if addr == 0x010:
            return self.config
        if addr == 0x020:
            return self.isr
        if addr == 0x0F0:
            return self.counter()
        n, r = (addr - 0x100) >> 5, (addr - 0x100) & 0x1F
        if addr >= 0x100 and n < len(self.timer_list):
            t = self.timer_list[n]
            return (t.config, t.cmp, t.fsb, 0)[r >> 3]
        return 0

    def _read(self, off: int, size: int) -> int:
        v = self._reg64(off & ~7)
        return (v >> (8 * (off & 7))) & ((1 << (8 * size)) - 1)

    def _write(self, off: int, val: int, size: int) -> None:
        base = off & ~7
        shift = 8 * (off & 7)
        wmask = ((1 << (8 * size)) - 1) << shift
        old = self._reg64(base)
        new = (old & ~wmask) | ((val << shift) & wmask)
        if base == 0x010:
            was = self.config
            cnt = self.counter()
            self.config = new & (CFG_ENABLE | CFG_LEGACY)
            if (was ^ self.config) & CFG_ENABLE:
                self.counter_base = cnt
                self.offset_ns = _now()
            if (was ^ self.config) & CFG_LEGACY:
                for cb in list(self.legacy_notify):
                    cb(bool(self.config & CFG_LEGACY))
            for t in self.timer_list:
                self._arm(t)
        elif base == 0x020:
            cleared = (val << shift) & wmask & self.isr
            for t in self.timer_list:
                if cleared & (1 << t.n) and t.config & TN_LEVEL:
                    self._line(t, 0)
            self.isr &= ~cleared
        elif base == 0x0F0:
            if not self.config & CFG_ENABLE:  # writable only while halted
                self.counter_base = new & MASK64
        elif base >= 0x100:
            n, r = (base - 0x100) >> 5, (base - 0x100) & 0x1F
            if n >= len(self.timer_list):
                return
            t = self.timer_list[n]
            if r == 0:
                t.config = (t.config & ~TN_CFG_WRITE_MASK) | (new & TN_CFG_WRITE_MASK)
                if not t.config & TN_PERIODIC_CAP:
                    t.config &= ~TN_PERIODIC
                t.config &= ~TN_SETVAL
            elif r == 8:
                if t.config & TN_32BIT:
                    new &= 0xFFFFFFFF
                t.cmp = new
                # In periodic mode the written value is also the period (QEMU's simplification).
                if t.config & TN_PERIODIC:
                    t.period = new
            elif r == 0x10:
                t.fsb = new
            self._arm(t)
