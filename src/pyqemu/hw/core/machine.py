"""Machines: the base type every board derives from, and the registry that
``-machine``, ``-machine help`` and ``query-machines`` read.

A board is a subclass of :class:`MachineState` registered with
:func:`register_machine`; its QOM type name is ``<name>-machine`` as in QEMU.
The PC machine plugs in the same way from hw/i386/.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from pyqemu.qom.object import Object, PropDef, register_type
from pyqemu.util.error import QemuError


@register_type
class MachineState(Object):
    TYPE_NAME = "machine"
    ABSTRACT = True
    # Class-level description a board overrides (QEMU's MachineClass fields).
    NAME = ""
    DESC = ""
    ALIAS: Optional[str] = None
    IS_DEFAULT = False
    DEPRECATED = False
    MAX_CPUS = 1
    DEFAULT_CPUS = 1
    DEFAULT_CPU_TYPE: Optional[str] = None
    DEFAULT_RAM_SIZE = 0
    DEFAULT_RAM_ID = "ram"
    HOTPLUGGABLE_CPUS = False
    NUMA_MEM_SUPPORTED = False
    # Topology levels this board understands beyond sockets/cores/threads.
    SMP_DIES = False
    SMP_CLUSTERS = False

    PROPERTIES = (
        PropDef("kernel", "string", None, desc="Linux kernel image file"),
        PropDef("initrd", "string", None, desc="Linux initial ramdisk file"),
        PropDef("append", "string", None, desc="Linux kernel command line"),
        PropDef("dtb", "string", None, desc="Linux kernel device tree file"),
        PropDef("dumpdtb", "string", None, desc="Dump current dtb to a file and quit"),
        PropDef("firmware", "string", None, desc="Firmware image"),
        PropDef("dump-guest-core", "bool", True, desc="Include guest memory in a core dump"),
        PropDef("mem-merge", "bool", True, desc="Enable/disable memory merge support"),
        PropDef("graphics", "bool", True, desc="Set on/off to enable/disable graphics emulation"),
        PropDef("usb", "bool", False, desc="Set on/off to enable/disable usb"),
        PropDef("suppress-vmdesc", "bool", False, desc="Set on to disable self-describing migration"),
        PropDef("memory-backend", "link<memory-backend>", None,
                getter=lambda m: m._backend_link(), setter=lambda m, v: setattr(m, "memory_backend", v),
                desc="Set RAM backendValid value is ID of hostmem based backend"),
        PropDef("memory-encryption", "string", None,
                desc="Set memory encryption object to use"),
        PropDef("confidential-guest-support", "link<confidential-guest-support>", None,
                getter=lambda m: "", readonly=True,
                desc="Set confidential guest scheme to support"),
        PropDef("dt-compatible", "string", None,
                desc='Overrides the "compatible" property of the dt root node'),
        PropDef("phandle-start", "int", 0, desc="The first phandle ID we may generate dynamically"),
        # Structured values, read through qom-get as QEMU's QAPI structs.
        PropDef("boot", "BootConfiguration", None, readonly=True,
                getter=lambda m: {"order": "cad", "strict": False}, desc="Boot configuration"),
        PropDef("memory", "MemorySizeConfiguration", None, readonly=True,
                getter=lambda m: m._memory_config(), desc="Memory size configuration"),
        PropDef("smp", "SMPConfiguration", None, readonly=True,
                getter=lambda m: dict(m.smp), desc="CPU topology"),
    )

    def __init__(self) -> None:
        super().__init__()
        self.memory_backend: Optional[str] = None
        self.ram_size = self.DEFAULT_RAM_SIZE
        self.maxram_size = self.ram_size
        self.ram_slots = 0
        self.ram: Any = None            # the MemoryRegion of main RAM, once made
        self.smp: Dict[str, int] = {"cpus": 1, "maxcpus": 1, "sockets": 1, "dies": 1,
                                    "clusters": 1, "cores": 1, "threads": 1}
        self.cpu_type: Optional[str] = self.DEFAULT_CPU_TYPE
        self.cpus: List[Any] = []
        self.name_opt: Optional[str] = None

    def _backend_link(self) -> Any:
        from pyqemu.qom.object import objects_root
        obj = objects_root().child(self.memory_backend) if self.memory_backend else None
        return obj if obj is not None else ""

    def _memory_config(self) -> Dict[str, Any]:
        cfg: Dict[str, Any] = {"size": self.ram_size}
        if self.maxram_size != self.ram_size or self.ram_slots:
            cfg["max-size"] = self.maxram_size
            cfg["slots"] = self.ram_slots
        return cfg

    def init(self) -> None:
        """Hook: build the board (RAM, CPUs, devices)."""

    def reset(self) -> None:
        """Reset every device on the main bus, as qemu_devices_reset does."""
        from pyqemu.hw.core.qdev import DeviceState, main_system_bus
        main_system_bus().reset()
        # Devices without a bus are reset here, as QEMU's registered reset handlers do.
        for name in ("peripheral", "peripheral-anon"):
            box = self.child(name)
            for dev in box.children() if box is not None else ():
                if isinstance(dev, DeviceState) and dev.parent_bus is None and dev.realized:
                    dev.reset_all()
        for cpu in self.cpus:
            reset = getattr(cpu, "reset", None)
            if reset is not None:
                reset()


_machines: Dict[str, type] = {}


def register_machine(cls: type) -> type:
    """Class decorator for boards: a QOM type and an entry of ``-machine help``."""
    if "TYPE_NAME" not in cls.__dict__:
        cls.TYPE_NAME = "%s-machine" % cls.NAME
    register_type(cls)
    _machines[cls.NAME] = cls
    return cls


def machine_classes() -> List[type]:
    return list(_machines.values())


def find_machine(name: str) -> Optional[type]:
    cls = _machines.get(name)
    if cls is not None:
        return cls
    for c in _machines.values():
        if c.ALIAS == name:
            return c
    return None


def default_machine() -> Optional[type]:
    for c in _machines.values():
        if c.IS_DEFAULT:
            return c
    return None


def machine_help() -> str:
    """The text of ``-machine help``."""
    lines = ["Supported machines are:"]
    for c in sorted(_machines.values(), key=lambda c: c.NAME, reverse=True):
        if c.ALIAS:
            lines.append("%-20s %s (alias of %s)" % (c.ALIAS, c.DESC, c.NAME))
        lines.append("%-20s %s%s%s" % (c.NAME, c.DESC, " (default)" if c.IS_DEFAULT else "",
                                       " (deprecated)" if c.DEPRECATED else ""))
    return "\n".join(lines) + "\n"


def query_machines() -> List[Dict[str, Any]]:
    out = []
    for c in _machines.values():
        info: Dict[str, Any] = {"name": c.NAME, "hotpluggable-cpus": c.HOTPLUGGABLE_CPUS,
                                "numa-mem-supported": c.NUMA_MEM_SUPPORTED,
                                "cpu-max": c.MAX_CPUS, "deprecated": c.DEPRECATED,
                                "default-ram-id": c.DEFAULT_RAM_ID}
        if c.IS_DEFAULT:
            info["is-default"] = True
        if c.ALIAS:
            info["alias"] = c.ALIAS
        if c.DEFAULT_CPU_TYPE:
            info["default-cpu-type"] = c.DEFAULT_CPU_TYPE
        out.append(info)
    return out


def check_cpu_type(machine: MachineState, cpu_type: str) -> None:
    """Boards limited to some CPU types override this (raise QemuError)."""
    if machine.MAX_CPUS == 0:
        raise QemuError("machine '%s' has no CPU" % machine.NAME)
