"""The MC146818 real-time clock and its 128 bytes of CMOS memory (ISA ports 0x70/0x71).

Port 0x70 selects a CMOS index (bit 7 is the NMI mask), port 0x71 reads or
writes it.  The time registers 0x00-0x09 are computed from the chosen clock
at each read (BCD or binary, 12 or 24 hour as register B says), so they tick
as the guest watches; setting register B's SET bit freezes them while the
guest writes a new time, which becomes an offset from the clock.  Register C
clears on read.  Not modelled yet: the periodic, alarm and update-ended
interrupts and register A's update-in-progress bit.
"""
from __future__ import annotations

import calendar
import time
from typing import Callable, List, Optional

from pyqemu.exec.memory import MemoryRegionOps
from pyqemu.hw.isa.isa_bus import ISADevice
from pyqemu.qom.object import PropDef, register_type

REG_A, REG_B, REG_C, REG_D = 0x0A, 0x0B, 0x0C, 0x0D
B_SET, B_DM_BINARY, B_24H = 0x80, 0x04, 0x02
CENTURY = 0x32
IBM_PS2_CENTURY = 0x37
_TIME_REGS = (0, 2, 4, 6, 7, 8, 9)


def _to_bcd(v: int) -> int:
    return ((v // 10) << 4) | (v % 10)


def _from_bcd(v: int) -> int:
    return (v >> 4) * 10 + (v & 0x0F)


@register_type
class RTC(ISADevice):
    TYPE_NAME = "mc146818rtc"
    ABSTRACT = False
    USER_CREATABLE = False
    DESCRIPTION = "MC146818 real-time clock"
    DEVICE_PROPS = (
        PropDef("base_year", "int32", 0),
        PropDef("iobase", "uint16", 0x70),
        PropDef("irq", "uint8", 8),
        PropDef("lost_tick_policy", "string", "discard"),
    )

    def __init__(self) -> None:
        super().__init__()
        self.cmos: List[int] = [0] * 128
        self.index = 0
        # Seconds since the epoch at clock value 0, as "-rtc base=" gives it.
        self.base_offset = 0.0
        self.clock: Callable[[], float] = time.time

    def set_base(self, epoch_seconds: float, clock: Optional[Callable[[], float]] = None) -> None:
        """Start the RTC at ``epoch_seconds`` (UTC) now; ``clock`` ticks it (host time by default)."""
        if clock is not None:
            self.clock = clock
        self.base_offset = epoch_seconds - self.clock()

    def realize(self) -> None:
        ops = MemoryRegionOps(self._read, self._write, valid_max=1, impl_max=1)
        self.isa_register_ioport(self.iobase, 2, "rtc-index", ops)
        self.irq_line = self.isa_get_irq(self.irq)

    def reset(self) -> None:
        self.cmos[REG_A] = 0x26
        self.cmos[REG_B] = B_24H
        self.cmos[REG_C] = 0
        self.cmos[REG_D] = 0x80
        self._store_time(self._now())

    def _now(self) -> int:
        return int(self.clock() + self.base_offset)

    def _enc(self, v: int) -> int:
        return v if self.cmos[REG_B] & B_DM_BINARY else _to_bcd(v)

    def _dec(self, v: int) -> int:
        return v if self.cmos[REG_B] & B_DM_BINARY else _from_bcd(v)

    def _store_time(self, t: int) -> None:
        tm = time.gmtime(t)
        c = self.cmos
        c[0] = self._enc(tm.tm_sec)
        c[2] = self._enc(tm.tm_min)
        if self.cmos[REG_B] & B_24H:
            c[4] = self._enc(tm.tm_hour)
        else:
            h = tm.tm_hour % 12 or 12
            c[4] = self._enc(h) | (0x80 if tm.tm_hour >= 12 else 0)
        c[6] = self._enc((tm.tm_wday + 1) % 7 + 1)  # 1 = Sunday
        c[7] = self._enc(tm.tm_mday)
        c[8] = self._enc(tm.tm_mon)
        year = tm.tm_year - self.base_year
        c[9] = self._enc(year % 100)
        c[CENTURY] = self._enc((year // 100) % 100) if self.base_year == 0 else c[CENTURY]
        c[IBM_PS2_CENTURY] = c[CENTURY]

    def _load_time(self) -> int:
        c = self.cmos
        hour = self._dec(c[4] & 0x7F)
        if not c[REG_B] & B_24H:
            hour = hour % 12 + (12 if c[4] & 0x80 else 0)
        year = self._dec(c[CENTURY]) * 100 + self._dec(c[9]) + self.base_year
        try:
            return calendar.timegm((year, self._dec(c[8]), self._dec(c[7]), hour,
                                    self._dec(c[2]), self._dec(c[0]), 0, 0, 0))
        except (ValueError, OverflowError):
            return self._now()

    # -- ports --------------------------------------------------------------
    def _read(self, off: int, size: int) -> int:
        if off == 0:
            return 0xFF
        i = self.index
        if i in _TIME_REGS and not self.cmos[REG_B] & B_SET:
            self._store_time(self._now())
        v = self.cmos[i]
        if i == REG_C:
            self.cmos[REG_C] = 0
            self.irq_line.lower()
        return v

    def _write(self, off: int, val: int, size: int) -> None:
        if off == 0:
            self.index = val & 0x7F
            return
        i = self.index
        if i in (REG_C, REG_D):
            return  # read-only
        if i == REG_A:
            val = (val & ~0x80) | (self.cmos[REG_A] & 0x80)  # UIP is read-only
        if i == REG_B:
            was_set = self.cmos[REG_B] & B_SET
            if val & B_SET and not was_set:
                self._store_time(self._now())  # freeze the current time
            self.cmos[REG_B] = val
            if was_set and not val & B_SET:
                self.base_offset = self._load_time() - self.clock()
            return
        self.cmos[i] = val
        if i in _TIME_REGS and not self.cmos[REG_B] & B_SET:
            # A write while the clock runs moves it to the written time.
            self.base_offset = self._load_time() - self.clock()

    # -- board interface (QEMU's rtc_set_memory) -------------------------------
    def set_cmos(self, index: int, value: int) -> None:
        self.cmos[index & 0x7F] = value & 0xFF
