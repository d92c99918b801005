"""The i8259A programmable interrupt controller, as the PC's master/slave pair.

The register model follows the datasheet: ICW1-ICW4 initialisation, OCW1 (mask),
OCW2 (non-specific/specific EOI, rotation), OCW3 (read IRR/ISR, poll, special
mask), edge or level triggering per line from the ELCR (ports 0x4d0/0x4d1),
and the slave cascaded on the master's line 2.  ``PICPair.read_irq()`` is the
interrupt acknowledge cycle a CPU performs; it returns the vector.
"""
from __future__ import annotations

from typing import Optional

from pyqemu.exec.memory import MemoryRegionOps
from pyqemu.hw.core.qdev import IRQ
from pyqemu.hw.isa.isa_bus import ISADevice
from pyqemu.qom.object import PropDef, register_type


def _priority(pic: "PIC", mask: int) -> int:
    """Number of steps from the highest-priority line to the first set bit, or 8."""
    if not mask:
        return 8
    p = 0
    while not mask & (1 << ((p + pic.priority_add) & 7)):
        p += 1
    return p


@register_type
class PIC(ISADevice):
    TYPE_NAME = "isa-i8259"
    ABSTRACT = False
    USER_CREATABLE = False
    DESCRIPTION = "ISA PIC"
    DEVICE_PROPS = (
        PropDef("iobase", "uint32", 0xFFFFFFFF),
        PropDef("elcr_addr", "uint32", 0xFFFFFFFF),
        PropDef("elcr_mask", "uint8", 0),
        PropDef("master", "bool", False),
    )

    def __init__(self) -> None:
        super().__init__()
        self.init_gpio_in(self._set_irq, 8)
        self.init_gpio_out(1)
        self.elcr = 0
        self.cascade: Optional["PIC"] = None  # the slave, for the master
        self._state_reset()

    def _state_reset(self) -> None:
        self.last_irr = 0
        self.irr = 0
        self.imr = 0
        self.isr = 0
        self.priority_add = 0
        self.irq_base = 0
        self.read_reg_select = 0
        self.poll = False
        self.special_mask = False
        self.init_state = 0
        self.auto_eoi = False
        self.rotate_on_auto_eoi = False
        self.special_fully_nested = False
        self.init4 = False
        self.single_mode = False
        self.ltim = False

    def reset(self) -> None:
        self._state_reset()
        self.elcr = 0
        self.update()

    def realize(self) -> None:
        ops = MemoryRegionOps(self._ioport_read, self._ioport_write, valid_max=1, impl_max=1)
        self.isa_register_ioport(self.iobase, 2, "pic", ops)
        if self.elcr_addr != 0xFFFFFFFF:
            eops = MemoryRegionOps(lambda o, s: self.elcr,
                                   lambda o, v, s: self._set_elcr(v), valid_max=1, impl_max=1)
            self.isa_register_ioport(self.elcr_addr, 1, "elcr", eops)

    def _set_elcr(self, v: int) -> None:
        self.elcr = v & self.elcr_mask

    # -- priority logic -------------------------------------------------------
    def _pending(self) -> int:
        """The highest-priority requested, unmasked line that beats every in-service one."""
        mask = self.irr & ~self.imr & 0xFF
        p = _priority(self, mask)
        if p == 8:
            return -1
        in_service = self.isr
        if self.special_mask:
            in_service &= ~self.imr
        # In special fully nested mode the slave's line may nest over itself.
        if self.special_fully_nested and self.master:
            in_service &= ~(1 << 2)
        cur = _priority(self, in_service)
        if p < cur:
            return (p + self.priority_add) & 7
        return -1

    def update(self) -> None:
        self.set_gpio_out(0, 1 if self._pending() >= 0 else 0)

    def _set_irq(self, n: int, level: int) -> None:
        bit = 1 << n
        if self.elcr & bit:
            if level:
                self.irr |= bit
                self.last_irr |= bit
            else:
                self.irr &= ~bit
                self.last_irr &= ~bit
        else:
            if level:
                if not self.last_irr & bit:
                    self.irr |= bit
                self.last_irr |= bit
            else:
                self.last_irr &= ~bit
        self.update()

    def _ack(self, irq: int) -> None:
        if self.auto_eoi:
            if self.rotate_on_auto_eoi:
                self.priority_add = (irq + 1) & 7
        else:
            self.isr |= 1 << irq
        # An edge-triggered request is consumed by the acknowledge.
        if not self.elcr & (1 << irq):
            self.irr &= ~(1 << irq)
        self.update()

    # -- registers --------------------------------------------------------------
    def _ioport_write(self, off: int, val: int, size: int) -> None:
        if off == 0:
            if val & 0x10:  # ICW1
                self._state_reset()
                self.init_state = 1
                self.init4 = bool(val & 1)
                self.single_mode = bool(val & 2)
                self.ltim = bool(val & 8)
                self.update()
            elif val & 0x08:  # OCW3
                if val & 0x04:
                    self.poll = True
                if val & 0x02:
                    self.read_reg_select = val & 1
                if val & 0x40:
                    self.special_mask = bool((val >> 5) & 1)
            else:  # OCW2
                cmd = val >> 5
                if cmd in (0, 4):
                    self.rotate_on_auto_eoi = cmd >> 2 == 1
                elif cmd in (1, 5):  # non-specific EOI (with rotation for 5)
                    p = _priority(self, self.isr)
                    if p != 8:
                        irq = (p + self.priority_add) & 7
                        self.isr &= ~(1 << irq)
                        if cmd == 5:
                            self.priority_add = (irq + 1) & 7
                        self.update()
                elif cmd == 3:  # specific EOI
                    self.isr &= ~(1 << (val & 7))
                    self.update()
                elif cmd == 6:  # set priority
                    self.priority_add = (val + 1) & 7
                    self.update()
                elif cmd == 7:  # rotate on specific EOI
                    irq = val & 7
                    self.isr &= ~(1 << irq)
                    self.priority_add = (irq + 1) & 7
                    self.update()
            return
        if self.init_state == 0:  # OCW1
            self.imr = val
            self.update()
        elif self.init_state == 1:  # ICW2
            self.irq_base = val & 0xF8
            self.init_state = 3 if self.single_mode else 2
            if self.init_state == 3 and not self.init4:
                self.init_state = 0
        elif self.init_state == 2:  # ICW3
            self.init_state = 3 if self.init4 else 0
        elif self.init_state == 3:  # ICW4
            self.special_fully_nested = bool((val >> 4) & 1)
            self.auto_eoi = bool((val >> 1) & 1)
            self.init_state = 0

    def _poll_read(self) -> int:
        irq = self._pending()
        if irq < 0:
            return 0x07
        if self.master and irq == 2 and self.cascade is not None:
            # Polling through the master acknowledges the slave too.
            self.cascade._poll_read()
        self.irr &= ~(1 << irq)
        self.isr &= ~(1 << irq)
        self.update()
        return irq | 0x80

    def _ioport_read(self, off: int, size: int) -> int:
        if self.poll:
            self.poll = False
            return self._poll_read()
        if off == 0:
            return self.isr if self.read_reg_select else self.irr
        return self.imr


class PICPair:
    """The PC's two 8259s: ISA IRQs 0-15 in, the INTR line out."""

    def __init__(self, master: PIC, slave: PIC) -> None:
        self.master = master
        self.slave = slave
        master.cascade = slave
        slave.connect_gpio_out(0, master.get_gpio_in(2))

    def irq_lines(self) -> list:
        return [self.master.get_gpio_in(i) for i in range(8)] + \
               [self.slave.get_gpio_in(i) for i in range(8)]

    def read_irq(self) -> int:
        """The CPU's interrupt acknowledge: the vector of the winning line."""
        m = self.master
        irq = m._pending()
        if irq < 0:
            # A spurious interrupt reads as line 7 of the master.
            return m.irq_base + 7
        if irq == 2:
            s = self.slave
            irq2 = s._pending()
            if irq2 >= 0:
                s._ack(irq2)
                vec = s.irq_base + irq2
            else:
                vec = s.irq_base + 7
            m._ack(2)
            return vec
        m._ack(irq)
        return m.irq_base + irq

    def set_intr_handler(self, line: IRQ) -> None:
        self.master.connect_gpio_out(0, line)
