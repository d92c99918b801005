"""The local APIC's register model and timer, without the CPU side.

``LocalAPIC.read(offset)``/``write(offset, value)`` are the 32-bit registers of
the 4 KiB xAPIC page (0xfee00000 by default): ID, version (0x50014), TPR, PPR,
EOI, LDR, DFR, SVR, ISR/TMR/IRR (8 x 32 bits each), ESR, ICR, the LVT entries
(CMCI, timer, thermal, perf, LINT0, LINT1, error), and the timer's initial
count, current count and divide configuration.  The timer runs on the virtual
clock in one-shot and periodic modes (TSC-deadline needs the CPU's TSC and is
left to it).  ``set_irq(vector, level)`` accepts an interrupt (from the
IOAPIC, an IPI or the timer); ``pending()`` is the vector the CPU should take
(highest IRR above the processor priority), ``ack()`` moves it to ISR and
``eoi`` retires the highest in service.  Sending IPIs (ICR writes) is reported
to ``ipi_handlers`` for the machine to route between CPUs.
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional

APIC_VERSION = 0x14
NUM_LVT = 7  # CMCI, timer, thermal, perf, LINT0, LINT1, error
# QEMU 7.2 has no CMCI entry: six LVTs, version 0x50014, 0x2F0 is no register
LVT_CMCI_OFFSET = 0x2F0
MAX_LVT_ENTRY = 5
LVT_OFFSETS = (0x2F0, 0x320, 0x330, 0x340, 0x350, 0x360, 0x370)
LVT_TIMER = 1
LVT_MASKED = 1 << 16
TIMER_PERIODIC = 1 << 17
TIMER_TSC_DEADLINE = 2 << 17
# The APIC timer counts at the bus clock QEMU uses (1 GHz: one tick per ns before division).
APIC_BUS_FREQ = 1000000000


def _now() -> int:
    from pyqemu.exec.main_loop import QEMU_CLOCK_VIRTUAL, clock_get_ns
    return clock_get_ns(QEMU_CLOCK_VIRTUAL)


class LocalAPIC:
    def __init__(self, apic_id: int = 0) -> None:
        self.initial_id = apic_id
        self.ipi_handlers: List[Callable[[int, int], None]] = []
        # called after the timer raised an interrupt (the CPU's INTR line follows IRR)
        self.on_irq: Optional[Callable[[], None]] = None
        self.timer: Any = None
        self.reset()

    def reset(self) -> None:
        self.id = self.initial_id
        self.tpr = 0
        self.ldr = 0
        self.dfr = 0xFFFFFFFF
        self.svr = 0xFF
        self.irr = 0
        self.isr = 0
        self.tmr = 0
        self.esr = 0
        self.icr = 0
        self.lvt = [LVT_MASKED] * NUM_LVT
        self.divide_conf = 0
        self.initial_count = 0
        self.load_time = 0
        if self.timer is not None:
            self.timer.delete()

    # -- interrupt state -----------------------------------------------------------
    @staticmethod
    def _highest(bits: int) -> int:
        return bits.bit_length() - 1

    def ppr(self) -> int:
        isrv = self._highest(self.isr)
        isr_class = (isrv & 0xF0) if isrv >= 0 else 0
        return self.tpr & 0xFF if (self.tpr & 0xF0) >= isr_class else isr_class

    def set_irq(self, vector: int, level_triggered: bool = False) -> None:
        bit = 1 << (vector & 0xFF)
        self.irr |= bit
        self.tmr = self.tmr | bit if level_triggered else self.tmr & ~bit

    def pending(self) -> int:
        """The vector to deliver now, or -1 (software-disabled APIC or nothing above PPR)."""
        if not self.svr & 0x100:
            return -1
        v = self._highest(self.irr)
        if v < 0 or (v & 0xF0) <= (self.ppr() & 0xF0):
            return -1
        return v

    def ack(self) -> int:
        v = self.pending()
        if v >= 0:
            self.irr &= ~(1 << v)
            self.isr |= 1 << v
        return v

    def eoi(self) -> int:
        """Retire the highest in-service vector; returns it (for the IOAPIC's EOI), or -1."""
        v = self._highest(self.isr)
        if v >= 0:
            self.isr &= ~(1 << v)
        return v

    # -- timer ------------------------------------------------------------------------
    def _divisor(self) -> int:
        d = self.divide_conf
        v = ((d & 8) >> 1) | (d & 3)
        return 1 if v == 7 else 2 << v

    def current_count(self) -> int:
        if not self.initial_count:
            return 0
        ticks = (_now() - self.load_time) * APIC_BUS_FREQ // 1000000000 // self._divisor()
        if self.lvt[LVT_TIMER] & TIMER_PERIODIC:
            return self.initial_count - ticks % self.initial_count
        return max(self.initial_count - ticks, 0)

    def _arm_timer(self) -> None:
        if self.timer is None:
            from pyqemu.exec.main_loop import QEMU_CLOCK_VIRTUAL, timer_new
            self.timer = timer_new(QEMU_CLOCK_VIRTUAL, self._timer_fired)
        if not self.initial_count:
            self.timer.delete()
            return
        period = self.initial_count * self._divisor() * 1000000000 // APIC_BUS_FREQ
        elapsed = _now() - self.load_time
        if self.lvt[LVT_TIMER] & TIMER_PERIODIC:
            nxt = (elapsed // period + 1) * period
        elif elapsed < period:
            nxt = period
        else:
            self.timer.delete()
            return
        self.timer.mod(self.load_time + nxt)

    def _timer_fired(self) -> None:
        lvt = self.lvt[LVT_TIMER]
        if lvt & TIMER_PERIODIC:
            self._arm_timer()
        if not lvt & LVT_MASKED:
            self.set_irq(lvt & 0xFF)
            if self.on_irq is not None:
                self.on_irq()

    # -- registers --------------------------------------------------------------------
    def read(self, off: int) -> int:
        idx = off >> 4
        if idx == 0x02:
            return self.id << 24
        if idx == 0x03:
            return APIC_VERSION | (MAX_LVT_ENTRY << 16)
        if idx == 0x08:
            return self.tpr
        if idx == 0x0A:
            return self.ppr()
        if idx == 0x0D:
            return self.ldr
        if idx == 0x0E:
            return self.dfr
        if idx == 0x0F:
            return self.svr
        if 0x10 <= idx < 0x18:
            return (self.isr >> (32 * (idx - 0x10))) & 0xFFFFFFFF
        if 0x18 <= idx < 0x20:
            return (self.tmr >> (32 * (idx - 0x18))) & 0xFFFFFFFF
        if 0x20 <= idx < 0x28:
            return (self.irr >> (32 * (idx - 0x20))) & 0xFFFFFFFF
        if idx == 0x28:
            return self.esr
        if idx == 0x30:
            return self.icr & 0xFFFFFFFF
        if idx == 0x31:
            return self.icr >> 32
        if off in LVT_OFFSETS and off != LVT_CMCI_OFFSET:
            return self.lvt[LVT_OFFSETS.index(off)]
        if idx == 0x38:
            return self.initial_count
        if idx == 0x39:
            return self.current_count()
        if idx == 0x3E:
            return self.divide_conf
        return 0

    def write(self, off: int, val: int) -> None:
        idx = off >> 4
        val &= 0xFFFFFFFF
        if idx == 0x02:
            self.id = val >> 24
        elif idx == 0x08:
            self.tpr = val & 0xFF
        elif idx == 0x0B:
            self.eoi()
        elif idx == 0x0D:
            self.ldr = val & 0xFF000000
        elif idx == 0x0E:
            self.dfr = val | 0x0FFFFFFF
        elif idx == 0x0F:
            self.svr = val & 0x13FF
            if not val & 0x100:
                # Software disable masks every LVT entry.
                self.lvt = [e | LVT_MASKED for e in self.lvt]
        elif idx == 0x28:
            self.esr = 0
        elif idx == 0x30:
            self.icr = (self.icr & ~0xFFFFFFFF) | (val & ~(1 << 12))
            for cb in list(self.ipi_handlers):
                cb(self.icr & 0xFFFFFFFF, self.icr >> 56)
        elif idx == 0x31:
            self.icr = (self.icr & 0xFFFFFFFF) | (val << 32)
        elif off in LVT_OFFSETS and off != LVT_CMCI_OFFSET:
            n = LVT_OFFSETS.index(off)
            if not self.svr & 0x100:
                val |= LVT_MASKED
            # Writable bits: vector, mask, and the timer mode or delivery mode/polarity/trigger.
            keep = (0x300FF | LVT_MASKED) if n == LVT_TIMER else (0xA7FF | LVT_MASKED)
            self.lvt[n] = val & keep
            if n == LVT_TIMER:
                self._arm_timer()
        elif idx == 0x38:
            self.initial_count = val
            self.load_time = _now()
            self._arm_timer()
        elif idx == 0x3E:
            self.divide_conf = val & 0xB
            self._arm_timer()

    def lvt_line(self, n: int) -> Optional[int]:
        """The vector LINT0/LINT1 (n = 4/5) would deliver, or None when masked."""
        e = self.lvt[n]
        return None if e & LVT_MASKED else e & 0xFF
