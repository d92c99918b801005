"""PCI bus and device: 256-byte configuration space with per-byte write masks."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from pyqemu.hw.core.qdev import BusState, DeviceState
from pyqemu.qom.object import PropDef, register_type
from pyqemu.util.error import QemuError

PCI_VENDOR_ID, PCI_DEVICE_ID, PCI_COMMAND, PCI_STATUS = 0x00, 0x02, 0x04, 0x06
PCI_REVISION_ID, PCI_CLASS_PROG, PCI_CLASS_DEVICE, PCI_HEADER_TYPE = 0x08, 0x09, 0x0A, 0x0E
PCI_SUBSYSTEM_VENDOR_ID, PCI_SUBSYSTEM_ID = 0x2C, 0x2E
PCI_INTERRUPT_LINE, PCI_INTERRUPT_PIN = 0x3C, 0x3D
# QEMU's default subsystem identity for its PCI devices.
SUBSYS_VENDOR, SUBSYS_ID = 0x1AF4, 0x1100

CLASS_NAMES = {0x0600: "Host bridge", 0x0601: "ISA bridge", 0x0101: "IDE controller",
               0x0680: "Bridge", 0x0300: "VGA controller", 0x0200: "Ethernet controller"}


@register_type
class PCIBus(BusState):
    TYPE_NAME = "PCI"
    ABSTRACT = False

    def __init__(self, name: str = "pci.0", parent_dev: Optional[DeviceState] = None) -> None:
        super().__init__(name, parent_dev)
        self.slots: List[Optional["PCIDevice"]] = [None] * 256

    def detach(self, dev: DeviceState) -> None:
        if isinstance(dev, PCIDevice) and self.slots[dev.devfn] is dev:
            self.slots[dev.devfn] = None
        super().detach(dev)

    def print_dev(self, dev: DeviceState, indent: int) -> List[str]:
        if not isinstance(dev, PCIDevice):
            return []
        c = dev.config
        cls = c[0x0A] | c[0x0B] << 8
        return [" " * indent + "class %s, addr 00:%02x.%x, pci id %04x:%04x (sub %04x:%04x)" % (
            CLASS_NAMES.get(cls, "Class %04x" % cls), dev.devfn >> 3, dev.devfn & 7,
            dev.get_word(0), dev.get_word(2), dev.get_word(0x2C), dev.get_word(0x2E))]

    def config_read(self, devfn: int, addr: int, size: int) -> int:
        dev = self.slots[devfn]
        if dev is None:
            return (1 << (8 * size)) - 1
        return dev.config_read(addr, size)

    def config_write(self, devfn: int, addr: int, value: int, size: int) -> None:
        dev = self.slots[devfn]
        if dev is not None:
            dev.config_write(addr, value, size)


class PCIDevice(DeviceState):
    """A function on a PCI bus; subclasses fill the identity in ``init_config``."""

    TYPE_NAME = "pci-device"
    ABSTRACT = True
    BUS_TYPE = "PCI"
    VENDOR = 0
    DEVICE = 0
    CLASS = 0
    REVISION = 0
    HEADER_TYPE = 0
    DEVICE_PROPS = (
        PropDef("addr", "int32", -1),
        PropDef("multifunction", "bool", False),
    )

    def __init__(self) -> None:
        super().__init__()
        self.config = bytearray(256)
        self.wmask = bytearray(256)
        self.devfn = 0

    def realize(self) -> None:
        bus = self.parent_bus
        assert isinstance(bus, PCIBus)
        if self.addr >= 0:
            devfn = self.addr
            if bus.slots[devfn] is not None:
                raise QemuError("PCI: slot %d function %d not available for %s, in use by %s"
                                % (devfn >> 3, devfn & 7, self.type_name,
                                   bus.slots[devfn].type_name))
        else:
            free = [i for i in range(0, 256, 8) if bus.slots[i] is None]
            if not free:
                raise QemuError("PCI: no slot/function available for %s, all in use"
                                % self.type_name)
            devfn = free[0]
        self.devfn = devfn
        bus.slots[devfn] = self

    def unrealize(self) -> None:
        bus = self.parent_bus
        if isinstance(bus, PCIBus) and bus.slots[self.devfn] is self:
            bus.slots[self.devfn] = None

    def reset(self) -> None:
        c = self.config
        c[:] = bytes(256)
        self.set_word(PCI_VENDOR_ID, self.VENDOR)
        self.set_word(PCI_DEVICE_ID, self.DEVICE)
        c[PCI_REVISION_ID] = self.REVISION
        self.set_word(PCI_CLASS_DEVICE, self.CLASS)
        c[PCI_HEADER_TYPE] = self.HEADER_TYPE | (0x80 if self.multifunction else 0)
        self.set_word(PCI_SUBSYSTEM_VENDOR_ID, SUBSYS_VENDOR)
        self.set_word(PCI_SUBSYSTEM_ID, SUBSYS_ID)
        # The command register's I/O, memory, bus master and interrupt-disable bits.
        self.wmask[PCI_COMMAND] = 0x07
        self.wmask[PCI_COMMAND + 1] = 0x04
        self.wmask[PCI_INTERRUPT_LINE] = 0xFF
        self.init_config()

    def init_config(self) -> None:
        """Hook: device-specific reset values and write masks."""

    def get_word(self, off: int) -> int:
        return self.config[off] | self.config[off + 1] << 8

    def set_word(self, off: int, v: int) -> None:
        self.config[off] = v & 0xFF
        self.config[off + 1] = (v >> 8) & 0xFF

    def config_read(self, addr: int, size: int) -> int:
        return int.from_bytes(self.config[addr:addr + size], "little")

    def config_write(self, addr: int, value: int, size: int) -> None:
        for i in range(size):
            a = addr + i
            if a >= 256:
                break
            m = self.wmask[a]
            self.config[a] = (self.config[a] & ~m) | ((value >> (8 * i)) & m)
        self.config_written(addr, size)

    def config_written(self, addr: int, size: int) -> None:
        """Hook: react to a config write (PAM, SMRAM ...)."""


register_type(PCIDevice)


_pci_buses: List[PCIBus] = []


def query_pci() -> List[Dict[str, Any]]:
    """QMP ``query-pci``: the functions of each bus with identity, class and IRQ pin."""
    out: List[Dict[str, Any]] = []
    for bus in _pci_buses:
        devs: List[Dict[str, Any]] = []
        for dev in bus.slots:
            if dev is None or not dev.realized:
                continue
            c = dev.config
            cls = c[0x0A] | c[0x0B] << 8
            info: Dict[str, Any] = {"bus": 0, "slot": dev.devfn >> 3, "function": dev.devfn & 7,
                                    "class_info": {"class": cls}, "irq_pin": c[PCI_INTERRUPT_PIN],
                                    "id": {"vendor": dev.get_word(0), "device": dev.get_word(2),
                                           "subsystem-vendor": dev.get_word(0x2C),
                                           "subsystem": dev.get_word(0x2E)},
                                    "qdev_id": dev.id or "", "regions": []}
            if cls in CLASS_NAMES:
                info["class_info"]["desc"] = CLASS_NAMES[cls]
            if c[PCI_INTERRUPT_PIN]:
                info["irq"] = c[PCI_INTERRUPT_LINE]
            devs.append(info)
        out.append({"bus": 0, "devices": devs})
    return out


def format_info_pci() -> str:
    """HMP ``info pci``, formatted from query-pci as QEMU does."""
    lines: List[str] = []
    for bus in query_pci():
        for d in bus["devices"]:
            lines.append("  Bus %2d, device %3d, function %d:" % (d["bus"], d["slot"], d["function"]))
            ci = d["class_info"]
            name = ci.get("desc") or "Class %04x" % ci["class"]
            lines.append("    %s: PCI device %04x:%04x" % (name, d["id"]["vendor"], d["id"]["device"]))
            lines.append("      PCI subsystem %04x:%04x" % (d["id"]["subsystem-vendor"],
                                                           d["id"]["subsystem"]))
            if d["irq_pin"]:
                lines.append("      IRQ %d, pin %s" % (d["irq"], chr(ord("A") + d["irq_pin"] - 1)))
            lines.append('      id "%s"' % d["qdev_id"])
    return "".join(line + "\n" for line in lines)


def install_info_pci(bus: PCIBus) -> None:
    """Make ``bus`` visible to ``info pci`` (registered by boards that have PCI)."""
    from pyqemu.monitor.hmp_table import register_info
    del _pci_buses[:]
    _pci_buses.append(bus)
    register_info("pci", "", "", "show PCI info",
                  lambda mon, args: mon.printf(format_info_pci()))
    from pyqemu.monitor.qmp_commands import register
    register("query-pci", query_pci, args={})
