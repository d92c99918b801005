"""The i8254 programmable interval timer (ports 0x40-0x43) and the PC speaker port 0x61.

Counters run at 1.193182 MHz on the virtual clock, so they stand still while
the VM is stopped.  Each channel keeps the moment its count was loaded; reads
compute the current count from the elapsed time for modes 0-5 (BCD counting
is recorded but not applied), with counter latch, read-back (count and
status) and the lobyte/hibyte/word access modes.  Channel 0's output drives
ISA IRQ 0 from timers on the virtual clock (an edge per period in modes 2
and 3, a rising output at terminal count in modes 0 and 4); channel 2's gate
is bit 0 of port 0x61, whose bit 5 reads its output.
"""
from __future__ import annotations

from typing import Any, List, Optional

from pyqemu.exec.memory import MemoryRegionOps
from pyqemu.hw.isa.isa_bus import ISADevice
from pyqemu.qom.object import PropDef, register_type

PIT_FREQ = 1193182
NS = 1000000000
RW_LSB, RW_MSB, RW_WORD0, RW_WORD1 = 1, 2, 3, 4


def _now() -> int:
    from pyqemu.exec.main_loop import QEMU_CLOCK_VIRTUAL, clock_get_ns
    return clock_get_ns(QEMU_CLOCK_VIRTUAL)


class PITChannel:
    def __init__(self, index: int) -> None:
        self.index = index
        self.reset()

    def reset(self) -> None:
        self.mode = 3
        self.gate = 1 if self.index != 2 else 0
        self.bcd = 0
        self.rw_mode = 0
        self.read_state = 0
        self.write_state = 0
        self.write_latch = 0
        self.count_latched = 0
        self.latched_count = 0
        self.status_latched = False
        self.status = 0
        self.count = 0x10000
        self.load_time = _now()

    def elapsed(self, now: int) -> int:
        return (now - self.load_time) * PIT_FREQ // NS

    def get_count(self, now: int) -> int:
        d = self.elapsed(now)
        if self.mode in (0, 1, 4, 5):
            return (self.count - d) & 0xFFFF
        if self.mode == 3:
            return self.count - ((2 * d) % self.count)
        return self.count - (d % self.count)

    def get_out(self, now: int) -> int:
        d = self.elapsed(now)
        c = self.count
        if self.mode == 1:
            return int(d < c)
        if self.mode in (2, 6):
            return int(d % c == 0 and d != 0)
        if self.mode in (3, 7):
            return int(d % c < (c + 1) >> 1)
        if self.mode in (4, 5):
            return int(d == c)
        return int(d >= c)

    def latch(self, now: int) -> None:
        if not self.count_latched:
            self.latched_count = self.get_count(now)
            self.count_latched = self.rw_mode


@register_type
class PIT(ISADevice):
    TYPE_NAME = "isa-pit"
    ABSTRACT = False
    USER_CREATABLE = False
    DEVICE_PROPS = (PropDef("iobase", "uint32", 0x40),)

    def __init__(self) -> None:
        super().__init__()
        self.channels: List[PITChannel] = []
        self.timer: Any = None
        self.irq_line: Any = None
        self.speaker_data = 0
        self.refresh = 0
        # Cleared while the HPET's legacy replacement owns IRQ 0.
        self.irq_enabled = True

    def realize(self) -> None:
        self.channels = [PITChannel(i) for i in range(3)]
        self.isa_register_ioport(self.iobase, 4, "pit", MemoryRegionOps(
            self._read, self._write, valid_max=1, impl_max=1))
        self.isa_register_ioport(0x61, 1, "pcspk", MemoryRegionOps(
            self._spk_read, self._spk_write, valid_max=1, impl_max=1))
        self.irq_line = self.isa_get_irq(0)
        from pyqemu.exec.main_loop import QEMU_CLOCK_VIRTUAL, timer_new
        self.timer = timer_new(QEMU_CLOCK_VIRTUAL, self._tick)

    def unrealize(self) -> None:
        if self.timer is not None:
            self.timer.delete()
        super().unrealize()

    def reset(self) -> None:
        for ch in self.channels:
            ch.reset()
        self.speaker_data = 0
        self._arm()

    # -- channel 0 -> IRQ 0 -------------------------------------------------------
    def _ticks_to_ns(self, ch: PITChannel, ticks: int) -> int:
        return ch.load_time + (ticks * NS + PIT_FREQ - 1) // PIT_FREQ

    def _arm(self, after: Optional[int] = None) -> None:
        """Schedule the next rising edge of channel 0's output."""
        if self.timer is None or not self.irq_enabled:
            return
        ch = self.channels[0]
        now = _now() if after is None else after
        d = ch.elapsed(now)
        c = ch.count
        if ch.mode in (2, 3, 6, 7):
            nxt = (d // c + 1) * c
        elif ch.mode in (0, 4) and d < c:
            nxt = c
        else:
            self.timer.delete()
            return
        self.timer.mod(self._ticks_to_ns(ch, nxt))

    def set_irq_enabled(self, enabled: bool) -> None:
        self.irq_enabled = enabled
        if enabled:
            self._arm()
        elif self.timer is not None:
            self.timer.delete()
            self.irq_line.set(0)

    def _tick(self) -> None:
        ch = self.channels[0]
        if not self.irq_enabled:
            return
        if ch.mode in (0, 4):
            # Mode 0 holds the output high after terminal count; mode 4 strobes it.
            self.irq_line.set(1)
            if ch.mode == 4:
                self.irq_line.set(0)
            self.timer.delete()
            return
        self.irq_line.set(1)
        self.irq_line.set(0)
        self._arm(self.timer.expire_ns if self.timer.expire_ns >= 0 else None)

    def _load(self, ch: PITChannel, val: int) -> None:
        ch.count = val or 0x10000
        ch.load_time = _now()
        if ch.index == 0:
            self.irq_line.set(0)
            self._arm()

    # -- ports ----------------------------------------------------------------
    def _write(self, off: int, val: int, size: int) -> None:
        now = _now()
        if off == 3:
            sel = val >> 6
            if sel == 3:  # read-back
                for i, ch in enumerate(self.channels):
                    if not val & (2 << i):
                        continue
                    if not val & 0x20:
                        ch.latch(now)
                    if not val & 0x10 and not ch.status_latched:
                        ch.status = (ch.get_out(now) << 7) | (ch.rw_mode << 4) | (ch.mode << 1) | ch.bcd
                        ch.status_latched = True
                return
            ch = self.channels[sel]
            access = (val >> 4) & 3
            if access == 0:
                ch.latch(now)
            else:
                ch.rw_mode = ch.read_state = ch.write_state = access
                ch.mode = (val >> 1) & 7
                ch.bcd = val & 1
            return
        ch = self.channels[off]
        if ch.write_state == RW_MSB:
            self._load(ch, val << 8)
        elif ch.write_state == RW_WORD0:
            ch.write_latch = val
            ch.write_state = RW_WORD1
        elif ch.write_state == RW_WORD1:
            self._load(ch, ch.write_latch | (val << 8))
            ch.write_state = RW_WORD0
        else:
            self._load(ch, val)

    def _read(self, off: int, size: int) -> int:
        if off == 3:
            return 0  # the control word register is write-only; QEMU reads 0
        ch = self.channels[off]
        if ch.status_latched:
            ch.status_latched = False
            return ch.status
        if ch.count_latched:
            v = ch.latched_count
            if ch.count_latched == RW_MSB:
                ch.count_latched = 0
                return (v >> 8) & 0xFF
            ch.count_latched = RW_MSB if ch.count_latched == RW_WORD0 else 0
            return v & 0xFF
        count = ch.get_count(_now())
        if ch.read_state == RW_MSB:
            return (count >> 8) & 0xFF
        if ch.read_state == RW_WORD0:
            ch.read_state = RW_WORD1
            return count & 0xFF
        if ch.read_state == RW_WORD1:
            ch.read_state = RW_WORD0
            return (count >> 8) & 0xFF
        return count & 0xFF

    def _spk_read(self, off: int, size: int) -> int:
        ch = self.channels[2]
        self.refresh ^= 0x10  # the DRAM refresh toggle some guests poll
        return ch.gate | (self.speaker_data << 1) | self.refresh | (ch.get_out(_now()) << 5)

    def _spk_write(self, off: int, val: int, size: int) -> None:
        self.speaker_data = (val >> 1) & 1
        ch = self.channels[2]
        gate = val & 1
        if gate and not ch.gate and ch.mode in (1, 2, 3, 5, 6, 7):
            ch.load_time = _now()  # a rising gate restarts the count
        ch.gate = gate
