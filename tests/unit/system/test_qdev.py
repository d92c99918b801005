"""qdev: realize/unrealize, reset through buses, GPIO lines, -global defaults, info qtree."""
from __future__ import annotations

import pytest

from pyqemu.exec import memory as M
from pyqemu.hw.core import qdev
from pyqemu.hw.core.qdev import BusState, DeviceState, SysBusDevice
from pyqemu.qom import object as qom
from pyqemu.qom.object import PropDef, register_type
from pyqemu.util.error import QemuError


@register_type
class LedBus(BusState):
    TYPE_NAME = "test-led-bus"
    ABSTRACT = False


@register_type
class Controller(SysBusDevice):
    TYPE_NAME = "test-controller"
    ABSTRACT = False
    DEVICE_PROPS = (PropDef("lines", "uint8", 2),)

    def __init__(self):
        super().__init__()
        self.bus = LedBus("led.0", self)
        self.levels = []
        self.resets = 0
        self.init_gpio_in(self.on_line, 2)
        self.init_irq()
        self.init_mmio(M.memory_region_init_io(self, M.MemoryRegionOps(), "ctrl-regs", 0x100))

    def on_line(self, n, level):
        self.levels.append((n, level))
        self.set_irq(0, level)

    def reset(self):
        self.resets += 1


@register_type
class Led(DeviceState):
    TYPE_NAME = "test-led"
    ABSTRACT = False
    BUS_TYPE = "test-led-bus"
    DEVICE_PROPS = (PropDef("colour", "string", "red"), PropDef("brightness", "uint32", 10))

    def __init__(self):
        super().__init__()
        self.on = False
        self.init_gpio_out(1)
        self.realize_calls = 0

    def realize(self):
        if self.colour == "ultraviolet":
            raise QemuError("invisible colour")
        self.realize_calls += 1

    def reset(self):
        self.on = False


@pytest.fixture(autouse=True)
def fresh():
    qom.reset_root()
    qdev.reset_main_bus()
    qdev.clear_globals()
    qom.container_get("/machine/peripheral")
    M.memory_init()
    yield
    qdev.clear_globals()
    qdev.reset_main_bus()
    qom.reset_root()


def make_controller():
    c = qom.object_new("test-controller")
    qom.container_get("/machine/unattached").add_child("ctrl", c)
    qdev.main_system_bus().attach(c)
    c.set_property("realized", True)
    return c


def test_realize_reset_and_child_bus():
    c = make_controller()
    led = qom.object_new("test-led")
    led.id = "l1"
    qom.container_get("/machine/peripheral").add_child("l1", led)
    c.bus.attach(led)
    led.set_property("realized", True)
    assert led.realize_calls == 1 and led.get_property("realized") is True
    with pytest.raises(QemuError, match="after it was realized"):
        led.set_property("colour", "blue")
    led.on = True
    qdev.main_system_bus().reset()               # reaches the LED through the controller's bus
    assert led.on is False and c.resets == 2     # once at realize, once now
    assert led.get_property("parent_bus") == "/machine/unattached/ctrl/led.0"
    led.set_property("realized", False)
    assert led.get_property("realized") is False


def test_failed_realize_leaves_device_unrealized():
    led = qom.object_new("test-led")
    led.set_property("colour", "ultraviolet")
    with pytest.raises(QemuError, match="invisible colour"):
        led.set_property("realized", True)
    assert led.realized is False


def test_gpio_lines_connect_devices():
    c = make_controller()
    led = qom.object_new("test-led")
    led.connect_gpio_out(0, c.get_gpio_in(1))
    seen = []
    c.connect_irq(0, qdev.IRQ(lambda n, level: seen.append(level)))
    led.set_gpio_out(0, 1)
    led.set_gpio_out(0, 0)
    assert c.levels == [(1, 1), (1, 0)] and seen == [1, 0]
    assert c.get_property("type") == "test-controller"
    assert qom.resolve_path("/machine/unattached/ctrl/unnamed-gpio-in[1]") is c.get_gpio_in(1)


def test_globals_set_defaults_of_a_type_and_its_subtypes():
    qdev.add_global("test-led", "brightness", "0x20")
    qdev.add_global("device", "colour", "green")      # a base type reaches every device
    led = qom.object_new("test-led")
    assert (led.brightness, led.colour) == (0x20, "green")
    assert qdev.unused_globals() == []
    qdev.add_global("test-led", "brightness", "lots")
    with pytest.raises(QemuError, match="Parameter 'brightness' expects integer"):
        qom.object_new("test-led")


def test_info_qtree_lists_buses_devices_and_props():
    c = make_controller()
    c.mmio_map(0, 0xFED00000)
    led = qom.object_new("test-led")
    led.id = "l1"
    c.bus.attach(led)
    led.set_property("realized", True)
    assert qdev.format_qtree() == (
        "bus: main-system-bus\n"
        "  type System\n"
        '  dev: test-controller, id ""\n'
        '    gpio-out "sysbus-irq" 1\n'
        '    gpio-in "" 2\n'
        "    lines = 2 (0x2)\n"
        "    mmio 00000000fed00000/0000000000000100\n"
        "    bus: led.0\n"
        "      type test-led-bus\n"
        '      dev: test-led, id "l1"\n'
        '        gpio-out "" 1\n'
        '        colour = "red"\n'
        "        brightness = 10 (0xa)\n")
    assert "fed00000" in M.format_mtree()
