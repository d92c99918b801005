"""The 16550A UART as an ISA device (``isa-serial``), COM1-COM4 on the PC.

Transmission is immediate: a byte written to THR goes to the chardev at once
and THR/TSR read empty again, which is what a guest polling LSR or waiting for
the THRE interrupt needs.  Received bytes fill a 16-byte FIFO (or a one-byte
holding register with the FIFO off) and the chardev is told to hold back the
rest.  The interrupt identification follows the 16550A's priorities: line
status, received data (with the FIFO trigger level), THR empty, modem status.
Loopback (MCR bit 4) routes transmitted bytes back to the receiver.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Deque

from pyqemu.exec.memory import MemoryRegionOps
from pyqemu.hw.isa.isa_bus import ISADevice
from pyqemu.qom.object import PropDef, register_type
from pyqemu.util.error import QemuError

ISA_SERIAL_IO = (0x3F8, 0x2F8, 0x3E8, 0x2E8)
ISA_SERIAL_IRQ = (4, 3, 4, 3)

LSR_DR, LSR_OE, LSR_THRE, LSR_TEMT = 0x01, 0x02, 0x20, 0x40
IIR_NO_INT, IIR_MSI, IIR_THRI, IIR_RDI, IIR_RLSI, IIR_CTI = 0x01, 0x00, 0x02, 0x04, 0x06, 0x0C
IER_RDI, IER_THRI, IER_RLSI, IER_MSI = 1, 2, 4, 8
FIFO_LEN = 16
_TRIGGER = (1, 4, 8, 14)

@register_type
class ISASerial(ISADevice):
    TYPE_NAME = "isa-serial"
    ABSTRACT = False
    CATEGORY = "Input devices"
    DESCRIPTION = "ISA serial port (16550A UART)"
    DEVICE_PROPS = (
        PropDef("index", "uint32", 0xFFFFFFFF),
        PropDef("iobase", "uint32", 0xFFFFFFFF),
        PropDef("irq", "uint32", 0xFFFFFFFF),
        PropDef("chardev", "string", None),
        PropDef("wakeup", "uint8", 0),
    )

    def __init__(self) -> None:
        super().__init__()
        self.chr: Any = None
        self.rx: Deque[int] = deque()
        self._regs_reset()

    def _regs_reset(self) -> None:
        self.divider = 0x0C
        self.ier = 0
        self.lcr = 0
        self.mcr = 0x08  # OUT2, as QEMU's reset leaves it
        self.lsr = LSR_TEMT | LSR_THRE
        self.msr = 0xB0  # DCD, DSR, CTS: a connected line
        self.scr = 0
        self.fcr = 0
        self.thr_ipending = True
        self.rx.clear()

    def realize(self) -> None:
        if self.index == 0xFFFFFFFF:
            # The next free COM port of this bus, as QEMU's per-machine counter.
            used = [d.index for d in getattr(self.parent_bus, "devices", ())
                    if isinstance(d, ISASerial) and d.realized]
            self.index = max(used) + 1 if used else 0
        if self.index >= len(ISA_SERIAL_IO):
            raise QemuError("Max. supported number of ISA serial ports is %d." % len(ISA_SERIAL_IO))
        if self.iobase == 0xFFFFFFFF:
            self.iobase = ISA_SERIAL_IO[self.index]
        if self.irq == 0xFFFFFFFF:
            self.irq = ISA_SERIAL_IRQ[self.index]
        ops = MemoryRegionOps(self._read, self._write, valid_max=1, impl_max=1)
        self.isa_register_ioport(self.iobase, 8, "serial", ops)
        self.irq_line = self.isa_get_irq(self.irq)
        if self.chardev:
            from pyqemu.chardev.char import chardev_get
            self.chr = chardev_get(self.chardev)
            self.chr.set_handlers(self._can_receive, self._receive, None, owner=self)

    def unrealize(self) -> None:
        if self.chr is not None:
            self.chr.set_handlers(None, None, None)
            self.chr = None
        super().unrealize()

    def reset(self) -> None:
        self._regs_reset()
        self._update_irq()

    # -- receive side -----------------------------------------------------------
    def _fifo_on(self) -> bool:
        return bool(self.fcr & 1)

    def _can_receive(self) -> int:
        if self.mcr & 0x10:
            return 0  # in loopback the line is disconnected from the outside
        room = (FIFO_LEN if self._fifo_on() else 1) - len(self.rx)
        return max(room, 0)

    def _receive(self, data: bytes) -> None:
        for b in data:
            self._push_rx(b)
        self._update_irq()

    def _push_rx(self, b: int) -> None:
        limit = FIFO_LEN if self._fifo_on() else 1
        if len(self.rx) >= limit:
            self.lsr |= LSR_OE
            return
        self.rx.append(b)
        self.lsr |= LSR_DR

    # -- interrupts --------------------------------------------------------------
    def _iir(self) -> int:
        if self.ier & IER_RLSI and self.lsr & LSR_OE:
            iid = IIR_RLSI
        elif self.ier & IER_RDI and self.rx and (
                not self._fifo_on() or len(self.rx) >= _TRIGGER[self.fcr >> 6]):
            iid = IIR_RDI
        elif self.ier & IER_RDI and self.rx and self._fifo_on():
            # Fewer bytes than the trigger level: the character timeout fires.
            iid = IIR_CTI
        elif self.ier & IER_THRI and self.thr_ipending:
            iid = IIR_THRI
        elif self.ier & IER_MSI and self.msr & 0x0F:
            iid = IIR_MSI
        else:
            iid = IIR_NO_INT
        return iid | (0xC0 if self._fifo_on() else 0)

    def _update_irq(self) -> None:
        # OUT2 gates the PC's UART interrupt onto the ISA line.
        level = 0 if self._iir() & IIR_NO_INT else 1
        self.irq_line.set(level if self.mcr & 0x08 else 0)

    # -- registers ------------------------------------------------------------------
    def _write(self, off: int, val: int, size: int) -> None:
        dlab = self.lcr & 0x80
        if off == 0:
            if dlab:
                self.divider = (self.divider & 0xFF00) | val
                return
            if self.mcr & 0x10:
                self._push_rx(val)
            elif self.chr is not None:
                self.chr.write(bytes((val,)))
            self.lsr |= LSR_THRE | LSR_TEMT
            self.thr_ipending = True
        elif off == 1:
            if dlab:
                self.divider = (self.divider & 0xFF) | (val << 8)
                return
            was_thri = self.ier & IER_THRI
            self.ier = val & 0x0F
            # Enabling the THRE interrupt with an empty THR raises it at once.
            if self.ier & IER_THRI and not was_thri and self.lsr & LSR_THRE:
                self.thr_ipending = True
        elif off == 2:
            if val & 0x02:
                self.rx.clear()
                self.lsr &= ~(LSR_DR | LSR_OE)
            self.fcr = val & 0xC9
        elif off == 3:
            self.lcr = val
        elif off == 4:
            was_loop = self.mcr & 0x10
            self.mcr = val & 0x1F
            if was_loop and not self.mcr & 0x10 and self.chr is not None:
                self.chr.accept_input()
        elif off == 7:
            self.scr = val
        self._update_irq()

    def _read(self, off: int, size: int) -> int:
        dlab = self.lcr & 0x80
        if off == 0:
            if dlab:
                return self.divider & 0xFF
            v = self.rx.popleft() if self.rx else 0
            if not self.rx:
                self.lsr &= ~LSR_DR
            self._update_irq()
            if self.chr is not None and not self.mcr & 0x10:
                self.chr.accept_input()
            return v
        if off == 1:
            return (self.divider >> 8) if dlab else self.ier
        if off == 2:
            v = self._iir()
            # Reading IIR while it reports THRE clears that condition.
            if v & 0x0F == IIR_THRI:
                self.thr_ipending = False
                self._update_irq()
            return v
        if off == 3:
            return self.lcr
        if off == 4:
            return self.mcr
        if off == 5:
            v = self.lsr
            self.lsr &= ~LSR_OE
            self._update_irq()
            return v
        if off == 6:
            if self.mcr & 0x10:
                # Loopback wires RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
                m = self.mcr
                return ((m & 0x02) << 3) | ((m & 0x01) << 5) | ((m & 0x04) << 4) | ((m & 0x08) << 4)
            return self.msr
        return self.scr
