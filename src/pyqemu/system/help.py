"""Answers to the help requests of the command line, in QEMU's layouts:
``-machine help``, ``-machine TYPE,help``, ``-cpu help``, ``-device help``,
``-device DRIVER,help``, ``-object help`` and ``-object TYPE,help``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from pyqemu.qom import object as qom
from pyqemu.util.error import QemuError
from pyqemu.util.opts import OptsList, is_help

# Device categories in the order ``-device help`` lists them.
CATEGORIES = ("Controller/Bridge/Hub", "USB", "Storage", "Network", "Input", "Display", "Sound",
              "Misc", "CPU", "Watchdog", "Uncategorized")


def load_object_types() -> None:
    """Import the modules whose types the help texts and -object may name."""
    import importlib
    for mod in ("pyqemu.system.hostmem", "pyqemu.system.secret", "pyqemu.hw.core.testdev",
                "pyqemu.hw.core.null_machine", "pyqemu.hw.i386"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise


def _prop_line(name: str, ptype: str, desc: str) -> str:
    head = "  %s=<%s>" % (name, ptype)
    if not desc:
        return head
    return "%-24s - %s" % (head, desc)


def _default_text(pd: Any) -> str:
    v = pd.default
    if v is None:
        return ""
    if isinstance(v, bool):
        return " (default: %s)" % ("true" if v else "false")
    if isinstance(v, str):
        return ' (default: "%s")' % v
    return " (default: %s)" % v


def device_list() -> str:
    from pyqemu.hw.core.qdev import DeviceState
    by_cat: Dict[str, List[Any]] = {}
    for cls in qom.all_types():
        if not isinstance(cls, type) or not issubclass(cls, DeviceState) or qom.is_abstract(cls):
            continue
        if not cls.USER_CREATABLE:
            continue
        cat = cls.CATEGORY.replace(" devices", "")
        by_cat.setdefault(cat if cat in CATEGORIES else "Uncategorized", []).append(cls)
    out: List[str] = []
    for cat in CATEGORIES:
        items = by_cat.get(cat)
        if not items:
            continue
        if out:
            out.append("")
        out.append("%s devices:" % cat)
        for cls in sorted(items, key=lambda c: qom.type_name(c).lower()):
            line = 'name "%s"' % qom.type_name(cls)
            if cls.BUS_TYPE:
                line += ", bus %s" % cls.BUS_TYPE
            if getattr(cls, "ALIAS", None):
                line += ', alias "%s"' % cls.ALIAS
            if cls.DESCRIPTION:
                line += ', desc "%s"' % cls.DESCRIPTION
            out.append(line)
    return "\n".join(out) + "\n" if out else ""


def device_props(cls: type) -> List[Dict[str, Any]]:
    """qdev properties of a device type, as device-list-properties and help list them."""
    out = []
    for pd in cls.qdev_props():
        out.append({"name": pd.name, "type": pd.type, "description": pd.desc,
                    "default": pd.default, "defn": pd})
    return out


def device_help(driver: str) -> str:
    from pyqemu.hw.core.qdev import DeviceState
    cls = qom.type_lookup(driver)
    if cls is None or not issubclass(cls, DeviceState):
        raise QemuError("Device '%s' not found" % driver)
    lines = ["%s options:" % driver]
    for p in sorted(device_props(cls), key=lambda p: p["name"]):
        desc = (p["description"] or "") + _default_text(p["defn"])
        if desc and not p["description"]:
            lines.append("%-24s - %s" % ("  %s=<%s>" % (p["name"], p["type"]), desc))
        else:
            lines.append(_prop_line(p["name"], p["type"], desc))
    return "\n".join(lines) + "\n"


def object_help(qom_type: Optional[str]) -> str:
    load_object_types()
    if qom_type is None:
        names = sorted(qom.type_name(c) for c in qom.types_of("user-creatable"))
        return "List of user creatable objects:\n" + "".join("  %s\n" % n for n in names)
    cls = qom.type_lookup(qom_type)
    if cls is None or not qom.type_implements(cls, "user-creatable"):
        raise QemuError("invalid object type: %s" % qom_type)
    return "%s options:\n" % qom_type + class_props_text(cls)


def class_props_text(cls: type) -> str:
    props: Dict[str, Any] = {}
    for c in reversed(cls.__mro__):
        for pd in c.__dict__.get("PROPERTIES", ()):
            props[pd.name] = pd
    lines = []
    # QEMU sorts the formatted "name=<type>" texts ('-' sorts before '=').
    for pd in sorted(props.values(), key=lambda pd: "%s=<%s>" % (pd.name, pd.qom_type)):
        lines.append(_prop_line(pd.name, pd.qom_type, pd.desc))
    return "\n".join(lines) + ("\n" if lines else "")


def answer(config: Any, groups: Dict[str, OptsList]) -> None:
    from pyqemu.system.vl import HelpExit
    from pyqemu.hw.core import machine as mach
    load_object_types()
    for kind, o in config.help_requests:
        if kind == "machine":
            mtype = o.get("type")
            if is_help(mtype):
                raise HelpExit(mach.machine_help())
            cls = mach.find_machine(mtype or "") if mtype else mach.default_machine()
            if cls is None:
                raise QemuError("unsupported machine type",
                                hint="Use -machine help to list supported machines")
            raise HelpExit("%s options:\n" % qom.type_name(cls) + class_props_text(cls))
        driver = o.get("driver")
        if is_help(driver):
            raise HelpExit(device_list())
        try:
            text = device_help(driver or "")
        except QemuError as e:
            # QEMU reports an unknown driver here but still exits with status 0.
            from pyqemu.util.error import error_report
            error_report(e.msg, loc=getattr(o, "loc", None))
            text = ""
        raise HelpExit(text)
    if config.cpu_model is not None and is_help(config.cpu_model):
        from pyqemu.system.cpus import cpu_help
        raise HelpExit(cpu_help())
