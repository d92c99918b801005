"""The ISA bus: devices with I/O ports in the system I/O space and ISA IRQs 0-15."""
from __future__ import annotations

from typing import Any, List, Optional

from pyqemu.exec.memory import MemoryRegionOps, get_system_io, memory_region_init_io
from pyqemu.hw.core.qdev import IRQ, BusState, DeviceState
from pyqemu.qom.object import register_type


@register_type
class ISABus(BusState):
    TYPE_NAME = "ISA"
    ABSTRACT = False

    def __init__(self, name: str = "isa.0", parent_dev: Optional[DeviceState] = None) -> None:
        super().__init__(name, parent_dev)
        # The 16 input lines of the interrupt controllers, set by the board.
        self.irqs: List[Optional[IRQ]] = [None] * 16

    def print_dev(self, dev: DeviceState, indent: int) -> List[str]:
        used = getattr(dev, "isa_irqs", [])
        if not used:
            return []
        text = "isa irq%s %s" % ("s" if len(used) > 1 else "", ",".join("%d" % i for i in used))
        return [" " * indent + text]


class ISADevice(DeviceState):
    """Base of ISA devices: port regions and IRQ lookup on the parent bus."""

    TYPE_NAME = "isa-device"
    ABSTRACT = True
    BUS_TYPE = "ISA"

    def __init__(self) -> None:
        super().__init__()
        self.isa_irqs: List[int] = []
        self.ports: List[Any] = []

    def isa_get_irq(self, n: int) -> IRQ:
        if n not in self.isa_irqs:
            self.isa_irqs.append(n)
        bus = self.parent_bus
        line = bus.irqs[n] if isinstance(bus, ISABus) else None
        return line if line is not None else IRQ()

    def isa_register_ioport(self, base: int, size: int, name: str, ops: MemoryRegionOps,
                            priority: int = 0) -> Any:
        mr = memory_region_init_io(self, ops, name, size)
        get_system_io().add_subregion(base, mr, priority)
        self.ports.append(mr)
        return mr

    def unrealize(self) -> None:
        for mr in self.ports:
            get_system_io().del_subregion(mr)
        self.ports = []


register_type(ISADevice)
