"""qdev: devices and buses on top of QOM.

A device has qdev properties (``DEVICE_PROPS``, shown by ``-device X,help``
and settable until realize), sits on a bus of the type it names in
``BUS_TYPE`` (or on none), is realized once configured, and can be reset.
GPIO/IRQ lines connect devices; ``-global driver.prop=value`` supplies
defaults applied when a device of that type (or a subtype) is created.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from pyqemu.qom.object import Object, ObjectProperty, PropDef, register_type, type_implements
from pyqemu.util.error import QemuError


# ---------------------------------------------------------------------------
# IRQ / GPIO lines
# ---------------------------------------------------------------------------

@register_type
class IRQ(Object):
    """One interrupt/GPIO line: calls ``handler(n, level)`` when set."""

    TYPE_NAME = "irq"
    ABSTRACT = False

    def __init__(self, handler: Optional[Callable[[int, int], None]] = None, n: int = 0) -> None:
        super().__init__()
        self.handler = handler
        self.n = n

    def set(self, level: int) -> None:
        if self.handler is not None:
            self.handler(self.n, level)

    def raise_(self) -> None:
        self.set(1)

    def lower(self) -> None:
        self.set(0)

    def pulse(self) -> None:
        self.set(1)
        self.set(0)


# ---------------------------------------------------------------------------
# -global
# ---------------------------------------------------------------------------

_globals: List[Dict[str, Any]] = []


def add_global(driver: str, prop: str, value: str) -> None:
    _globals.append({"driver": driver, "property": prop, "value": value, "used": False})


def clear_globals() -> None:
    del _globals[:]


def unused_globals() -> List[Dict[str, Any]]:
    return [g for g in _globals if not g["used"]]


# ---------------------------------------------------------------------------
# Buses
# ---------------------------------------------------------------------------

@register_type
class BusState(Object):
    TYPE_NAME = "bus"
    ABSTRACT = True

    def __init__(self, name: str = "", parent_dev: Optional["DeviceState"] = None) -> None:
        super().__init__()
        self.name = name
        self.parent_dev = parent_dev
        self.devices: List[DeviceState] = []
        self.realized = False
        if parent_dev is not None:
            parent_dev.child_buses.append(self)
            parent_dev.add_child(name, self)

    def attach(self, dev: "DeviceState") -> None:
        self.devices.append(dev)
        dev.parent_bus = self

    def detach(self, dev: "DeviceState") -> None:
        if dev in self.devices:
            self.devices.remove(dev)
        dev.parent_bus = None

    def reset(self) -> None:
        for d in list(self.devices):
            d.reset_all()

    def print_dev(self, dev: "DeviceState", indent: int) -> List[str]:
        """Bus-specific lines of ``info qtree`` for a device (addresses...)."""
        return []


@register_type
class SystemBus(BusState):
    TYPE_NAME = "System"
    ABSTRACT = False

    def print_dev(self, dev: "DeviceState", indent: int) -> List[str]:
        out = []
        for mr in getattr(dev, "mmio", ()):
            addr = mr.addr if mr.container is not None else (1 << 64) - 1
            out.append(" " * indent + "mmio %016x/%016x" % (addr, mr.size))
        return out


# ---------------------------------------------------------------------------
# Devices
# ---------------------------------------------------------------------------

@register_type
class DeviceState(Object):
    TYPE_NAME = "device"
    ABSTRACT = True
    BUS_TYPE: Optional[str] = None
    USER_CREATABLE = True
    CATEGORY = "Misc devices"
    DEVICE_PROPS: Tuple[PropDef, ...] = ()

    def __init__(self) -> None:
        self.realized = False
        self.id: Optional[str] = None
        self.parent_bus: Optional[BusState] = None
        self.child_buses: List[BusState] = []
        self.gpio_in: Dict[str, List[IRQ]] = {}
        self.gpio_out: Dict[str, List[Optional[IRQ]]] = {}
        self.gpio_names: List[str] = []     # first-use order, for info qtree
        super().__init__()
        for cls in reversed(type(self).__mro__):
            for pd in cls.__dict__.get("DEVICE_PROPS", ()):
                self._instantiate(pd)
        self.add_property("realized", "bool", lambda: self.realized, self._set_realized)
        self.add_property("hotpluggable", "bool", lambda: False, None)
        self.add_property("parent_bus", "link<bus>", lambda: self.parent_bus, None)
        self._apply_globals()

    @classmethod
    def qdev_props(cls) -> List[PropDef]:
        out: List[PropDef] = []
        for c in reversed(cls.__mro__):
            out.extend(c.__dict__.get("DEVICE_PROPS", ()))
        return out

    def _apply_globals(self) -> None:
        for g in _globals:
            if type_implements(type(self), g["driver"]) and g["property"] in self.properties:
                g["used"] = True
                self.set_property(g["property"], g["value"])

    def check_settable(self, prop: ObjectProperty) -> None:
        if self.realized and prop.defn is not None and not prop.defn.settable_after_realize:
            raise QemuError("Attempt to set property '%s' on device '%s' (type '%s') after it was realized"
                            % (prop.name, self.id or "<anonymous>", self.type_name))

    # -- life cycle -----------------------------------------------------------
    def _set_realized(self, value: bool) -> None:
        if value and not self.realized:
            self.realize()
            self.realized = True
            for b in self.child_buses:
                b.realized = True
            self.reset_all()
        elif not value and self.realized:
            for b in self.child_buses:
                for d in list(b.devices):
                    d._set_realized(False)
            self.unrealize()
            self.realized = False

    def realize(self) -> None:
        """Hook: check properties, create regions and lines; raise QemuError on failure."""

    def unrealize(self) -> None:
        """Hook: undo realize."""

    def reset(self) -> None:
        """Hook: put the device in its power-on state."""

    def reset_all(self) -> None:
        self.reset()
        for b in self.child_buses:
            b.reset()

    def finalize(self) -> None:
        if self.realized:
            self._set_realized(False)
        if self.parent_bus is not None:
            self.parent_bus.detach(self)
        super().finalize()

    # -- GPIO ----------------------------------------------------------------
    def _gpio_name(self, name: str) -> None:
        if name not in self.gpio_names:
            self.gpio_names.append(name)

    def init_gpio_in(self, handler: Callable[[int, int], None], n: int, name: str = "") -> None:
        self._gpio_name(name)
        lines = self.gpio_in.setdefault(name, [])
        base = len(lines)
        for i in range(n):
            irq = IRQ(handler, base + i)
            lines.append(irq)
            self.add_child("%s[%d]" % (name or "unnamed-gpio-in", base + i), irq)

    def init_gpio_out(self, n: int, name: str = "") -> None:
        self._gpio_name(name)
        self.gpio_out.setdefault(name, []).extend([None] * n)

    def get_gpio_in(self, n: int, name: str = "") -> IRQ:
        return self.gpio_in[name][n]

    def connect_gpio_out(self, n: int, irq: Optional[IRQ], name: str = "") -> None:
        self.gpio_out[name][n] = irq

    def set_gpio_out(self, n: int, level: int, name: str = "") -> None:
        irq = self.gpio_out[name][n]
        if irq is not None:
            irq.set(level)


class SysBusDevice(DeviceState):
    """A device on the main system bus with MMIO regions and IRQ outputs."""

    TYPE_NAME = "sys-bus-device"
    ABSTRACT = True
    BUS_TYPE = "System"

    IRQ_NAME = "sysbus-irq"

    def __init__(self) -> None:
        super().__init__()
        self.mmio: List[Any] = []

    def init_mmio(self, mr: Any) -> int:
        self.mmio.append(mr)
        return len(self.mmio) - 1

    def mmio_map(self, n: int, addr: int, priority: int = 0) -> None:
        """Map MMIO region ``n`` into system memory (sysbus_mmio_map)."""
        from pyqemu.exec.memory import get_system_memory
        mr = self.mmio[n]
        if mr.container is not None:
            mr.set_address(addr)
        else:
            get_system_memory().add_subregion(addr, mr, priority, overlap=priority != 0)

    def init_irq(self) -> int:
        self.init_gpio_out(1, self.IRQ_NAME)
        return len(self.gpio_out[self.IRQ_NAME]) - 1

    def connect_irq(self, n: int, irq: Optional[IRQ]) -> None:
        self.connect_gpio_out(n, irq, self.IRQ_NAME)

    def set_irq(self, n: int, level: int) -> None:
        self.set_gpio_out(n, level, self.IRQ_NAME)


register_type(SysBusDevice)


# ---------------------------------------------------------------------------
# The main system bus and qdev tree queries
# ---------------------------------------------------------------------------

_main_bus: Optional[SystemBus] = None


def main_system_bus() -> SystemBus:
    global _main_bus
    if _main_bus is None:
        from pyqemu.qom.object import container_get
        _main_bus = SystemBus("main-system-bus")
        container_get("/machine/unattached").add_child("sysbus", _main_bus)
        _main_bus.realized = True
    return _main_bus


def reset_main_bus() -> None:
    global _main_bus
    _main_bus = None


def _fmt_prop(pd: PropDef, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if pd.type == "size":
            from pyqemu.util.units import size_to_str
            return "%d (%s)" % (value, size_to_str(value))
        if pd.type.startswith(("uint", "int")):
            return "%d (0x%x)" % (value, value & ((1 << 64) - 1))
        return "%d" % value
    if value is None:
        return '""' if pd.type in ("string", "str") else "<null>"
    return '"%s"' % value


def format_qtree() -> str:
    """The text of HMP ``info qtree``."""
    lines: List[str] = []

    def bus(b: BusState, indent: int) -> None:
        lines.append(" " * indent + "bus: %s" % b.name)
        lines.append(" " * indent + "  type %s" % b.type_name)
        # Newest device first, as QEMU keeps a bus's children.
        for d in reversed(b.devices):
            dev(d, indent + 2)

    def dev(d: DeviceState, indent: int) -> None:
        pad = " " * (indent + 2)
        lines.append(" " * indent + 'dev: %s, id "%s"' % (d.type_name, d.id or ""))
        for name in reversed(d.gpio_names):
            if d.gpio_in.get(name):
                lines.append(pad + 'gpio-in "%s" %d' % (name, len(d.gpio_in[name])))
            if d.gpio_out.get(name):
                lines.append(pad + 'gpio-out "%s" %d' % (name, len(d.gpio_out[name])))
        # A type's own properties first, then its parents', as qdev_print does.
        for cls in type(d).__mro__:
            for pd in cls.__dict__.get("DEVICE_PROPS", ()):
                lines.append(pad + "%s = %s" % (pd.name, _fmt_prop(pd, getattr(d, pd.attr, None))))
        if d.parent_bus is not None:
            lines.extend(d.parent_bus.print_dev(d, indent + 2))
        for b in d.child_buses:
            bus(b, indent + 2)

    bus(main_system_bus(), 0)
    return "\n".join(lines) + "\n"
