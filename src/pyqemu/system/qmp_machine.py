"""QMP commands of the machine core: run state, machine facts, QOM and guest memory.

:func:`install` registers them (and the HMP side in
:mod:`pyqemu.system.hmp_machine`) with the monitor's registry once the VM
is built; each reads the live VM through :data:`current`.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from pyqemu.qom import object as qom
from pyqemu.system.runstate import runstate
from pyqemu.util.error import QemuError

current: Any = None     # the VM being run (pyqemu.system.vl.VM)


def _qmp_error(cls: str, desc: str) -> QemuError:
    from pyqemu.monitor.qmp_commands import QMPError
    return QMPError(cls, desc)


# -- run state --------------------------------------------------------------

def qmp_query_status() -> Dict[str, Any]:
    return runstate().status()


def qmp_query_replay() -> Dict[str, Any]:
    """Record/replay is not supported ("none"); the instruction count is
    that of -icount (0 without it), as QEMU reports it."""
    from pyqemu.exec.main_loop import main_loop
    ic = main_loop().icount
    return {"icount": ic.counter() if ic is not None else 0, "mode": "none"}


def qmp_stop() -> None:
    rs = runstate()
    if rs.state == "inmigrate":
        current.config.autostart = False
        return
    rs.vm_stop("paused")


def qmp_cont() -> None:
    runstate().cont()


def qmp_system_reset() -> None:
    runstate().request_reset("host-qmp-system-reset")


def qmp_system_powerdown() -> None:
    runstate().request_powerdown()


def qmp_quit() -> None:
    runstate().quit()


# -- machine facts ------------------------------------------------------------

def qmp_query_name() -> Dict[str, Any]:
    name = current.machine.name_opt if current is not None else None
    return {"name": name} if name is not None else {}


def qmp_query_uuid() -> Dict[str, Any]:
    return {"UUID": (current.config.uuid if current is not None else None)
            or "00000000-0000-0000-0000-000000000000"}


def qmp_query_machines(compat_props: bool = False) -> List[Dict[str, Any]]:
    from pyqemu.hw.core.machine import query_machines
    return query_machines()


def qmp_query_target() -> Dict[str, Any]:
    return {"arch": current.config.target if current is not None else "x86_64"}


def qmp_query_kvm() -> Dict[str, Any]:
    # pyqemu has no KVM accelerator yet: not "present" in this binary.
    return {"enabled": False, "present": False}


def qmp_query_cpus_fast() -> List[Dict[str, Any]]:
    out = []
    machine = current.machine if current is not None else None
    for i, cpu in enumerate(machine.cpus if machine is not None else []):
        # QEMU's member order; the topology IDs of an x86 CPU from -smp
        info = {"thread-id": _thread_id(), "props": _cpu_props(machine, i),
                "qom-path": cpu.path() if isinstance(cpu, qom.Object) else "",
                "cpu-index": i, "target": current.config.target}
        extra = getattr(cpu, "query_info", None)
        if extra is not None:
            info.update(extra())
        out.append(info)
    return out


def _cpu_props(machine: Any, index: int) -> Dict[str, int]:
    smp = getattr(machine, "smp", {}) or {}
    threads = smp.get("threads", 1) or 1
    cores = smp.get("cores", 1) or 1
    dies = smp.get("dies", 1) or 1
    props = {"core-id": (index // threads) % cores, "thread-id": index % threads}
    if dies > 1:
        props["die-id"] = (index // (threads * cores)) % dies
    props["socket-id"] = index // (threads * cores * dies)
    return props


def _x86_models():
    from pyqemu.target.i386 import cpu_models
    return cpu_models


def qmp_query_cpu_definitions() -> List[Dict[str, Any]]:
    target = current.config.target if current is not None else "x86_64"
    return _x86_models().cpu_definitions(target)


def qmp_query_cpu_model_expansion(type: str, model: Dict[str, Any]) -> Dict[str, Any]:
    name = model.get("name")
    if not isinstance(name, str):
        raise QemuError("Parameter 'model.name' is missing" if name is None
                        else "Invalid parameter type for 'model.name', expected: string")
    props = model.get("props")
    if props is not None and not isinstance(props, dict):
        raise QemuError("Invalid parameter type for 'model.props', expected: object")
    target = current.config.target if current is not None else "x86_64"
    return _x86_models().model_expansion(name, props, type, target)


def _thread_id() -> int:
    import threading
    return threading.get_native_id()


def qmp_query_memdev() -> List[Dict[str, Any]]:
    from pyqemu.system.hostmem import query_memdev
    return query_memdev()


def qmp_query_iothreads() -> List[Dict[str, Any]]:
    # No iothread objects exist in pyqemu yet; the list is truthfully empty.
    return []


# -- QOM ------------------------------------------------------------------------

def _resolve(path: str) -> qom.Object:
    obj = qom.resolve_path(path)
    if obj is None:
        if not path.startswith("/"):
            raise _qmp_error("DeviceNotFound", "Device '%s' not found" % path)
        raise _qmp_error("DeviceNotFound", "Device '%s' not found" % path)
    return obj


def qmp_qom_list(path: str) -> List[Dict[str, Any]]:
    obj = _resolve(path)
    return [{"name": p.name, "type": p.type} for p in obj.properties.values()]


def qmp_qom_get(path: str, property: str) -> Any:
    return _resolve(path).get_property(property)


def qmp_qom_set(path: str, property: str, value: Any) -> None:
    _resolve(path).set_property(property, value, "json")


def qmp_qom_list_types(implements: Optional[str] = None, abstract: bool = False) -> List[Dict[str, Any]]:
    from pyqemu.system.help import load_object_types
    load_object_types()
    out = []
    for cls in qom.types_of(implements, abstract):
        e: Dict[str, Any] = {"name": qom.type_name(cls)}
        if qom.is_abstract(cls):
            e["abstract"] = True
        parent = qom.type_parent(cls)
        if parent is not None:
            e["parent"] = parent
        out.append(e)
    return out


def qmp_device_list_properties(typename: str) -> List[Dict[str, Any]]:
    from pyqemu.hw.core.qdev import DeviceState
    from pyqemu.system.help import load_object_types
    load_object_types()
    cls = qom.type_lookup(typename)
    if cls is None:
        raise _qmp_error("DeviceNotFound", "Device '%s' not found" % typename)
    if not issubclass(cls, DeviceState) or qom.is_abstract(cls):
        raise QemuError("Parameter 'typename' expects a non-abstract device type")
    out = []
    for pd in cls.qdev_props():
        e: Dict[str, Any] = {"name": pd.name, "type": pd.type}
        if pd.desc:
            e["description"] = pd.desc
        if pd.default is not None:
            e["default-value"] = pd.default
        out.append(e)
    return out


def qmp_object_add(**args: Any) -> None:
    # HMP object_add passes text values (keyval); QMP clients typed JSON ones.
    style = args.pop("_style", "json")
    qom_type = args.pop("qom_type", None)
    id = args.pop("id", None)
    if qom_type is None:
        raise QemuError("Parameter 'qom-type' is missing")
    if id is None:
        raise QemuError("Parameter 'id' is missing")
    props = {k.replace("_", "-"): v for k, v in args.items()}
    from pyqemu.system.help import load_object_types
    load_object_types()
    cls = qom.type_lookup(qom_type)
    if cls is None or not qom.type_implements(cls, "user-creatable"):
        raise QemuError("Parameter 'qom-type' does not accept value '%s'" % qom_type)
    for req in getattr(cls, "REQUIRED", ()):
        if req not in props:
            raise QemuError("Parameter '%s' is missing" % req)
    qom.user_creatable_add(qom_type, id, props, style=style)


def qmp_object_del(id: str) -> None:
    qom.user_creatable_del(id)


# -- guest memory ------------------------------------------------------------------

def _save(path: str, data: bytes) -> None:
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise QemuError("Could not open '%s': %s" % (path, e.strerror))


def qmp_pmemsave(val: int, size: int, filename: str) -> None:
    from pyqemu.exec.memory import address_space_memory
    if size < 0 or val < 0:
        raise QemuError("Parameter 'size' expects uint64")
    _save(filename, address_space_memory().read_bytes(val, size))


def get_cpu(index: int) -> Any:
    cpus = current.machine.cpus if current is not None else []
    if index < 0 or index >= len(cpus):
        raise QemuError("Parameter 'cpu-index' expects a CPU number")
    return cpus[index]


def qmp_memsave(val: int, size: int, filename: str, cpu_index: int = 0) -> None:
    cpu = get_cpu(cpu_index)
    reader = getattr(cpu, "memory_rw_debug", None)
    if reader is None:
        raise QemuError("Parameter 'cpu-index' expects a CPU number")
    data = reader(val, size)
    if data is None:
        raise QemuError("Invalid addr 0x%016x/size %d specified" % (val, size))
    _save(filename, data)


def _register_open(name: str, func: Any) -> None:
    """A command whose members depend on another member (object-add's qom-type).

    The registry checks a fixed member list; this command takes the fixed
    part plus any properties, so it brings its own check.
    """
    from pyqemu.monitor import qmp_commands as qc

    class _OpenCommand(qc.Command):
        def check_args(self, arguments: Dict[str, Any]) -> Dict[str, Any]:
            for key in ("qom-type", "id"):
                if key not in arguments:
                    raise QemuError("Parameter '%s' is missing" % key)
                if not isinstance(arguments[key], str):
                    raise QemuError("Invalid parameter type for '%s', expected: string" % key)
            return {k.replace("-", "_"): v for k, v in arguments.items()}

    qc.register(name, func, allow_preconfig=True)
    qc._commands[name] = _OpenCommand(name, func, None, True, False)


def install(vm: Any) -> None:
    global current
    current = vm
    try:
        from pyqemu.monitor.qmp_commands import register
    except ImportError:
        return
    register("query-status", qmp_query_status, allow_preconfig=True, args={})
    register("query-replay", qmp_query_replay, args={})
    register("stop", qmp_stop, args={})
    register("cont", qmp_cont, args={})
    register("system_reset", qmp_system_reset, args={})
    register("system_powerdown", qmp_system_powerdown, args={})
    register("quit", qmp_quit, allow_preconfig=True, args={})
    register("query-name", qmp_query_name, allow_preconfig=True, args={})
    register("query-uuid", qmp_query_uuid, allow_preconfig=True, args={})
    register("query-machines", qmp_query_machines, allow_preconfig=True,
             args={"*compat-props": "bool"})
    register("query-target", qmp_query_target, allow_preconfig=True, args={})
    register("query-kvm", qmp_query_kvm, allow_preconfig=True, args={})
    register("query-cpus-fast", qmp_query_cpus_fast, allow_preconfig=True, args={})
    register("query-memdev", qmp_query_memdev, allow_preconfig=True, args={})
    register("query-cpu-definitions", qmp_query_cpu_definitions, allow_preconfig=True, args={})
    register("query-cpu-model-expansion", qmp_query_cpu_model_expansion, allow_preconfig=True,
             args={"type": "enum:static|full", "model": "dict"})
    register("query-iothreads", qmp_query_iothreads, allow_preconfig=True, args={})
    register("qom-list", qmp_qom_list, allow_preconfig=True, args={"path": "str"})
    register("qom-get", qmp_qom_get, allow_preconfig=True, args={"path": "str", "property": "str"})
    register("qom-set", qmp_qom_set, allow_preconfig=True,
             args={"path": "str", "property": "str", "value": "any"})
    register("qom-list-types", qmp_qom_list_types, allow_preconfig=True,
             args={"*implements": "str", "*abstract": "bool"})
    register("device-list-properties", qmp_device_list_properties, allow_preconfig=True,
             args={"typename": "str"})
    _register_open("object-add", qmp_object_add)
    register("object-del", qmp_object_del, allow_preconfig=True, args={"id": "str"})
    register("pmemsave", qmp_pmemsave, args={"val": "int", "size": "int", "filename": "str"})
    register("memsave", qmp_memsave,
             args={"val": "int", "size": "int", "filename": "str", "*cpu-index": "int"})
    from pyqemu.system import hmp_machine
    hmp_machine.install()


def to_json_pretty(value: Any) -> str:
    return json.dumps(value, indent=4)
