"""The QMP commands the monitor side owns: version, commands, HMP passthrough, chardevs, ringbufs."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from pyqemu.chardev import BACKENDS, chardev_find, chardev_list, chardev_new, chardev_unregister
from pyqemu.chardev.simple import RingbufChardev, decode_data, encode_data
from pyqemu.monitor import qmp_commands
from pyqemu.monitor.qmp import version_info
from pyqemu.monitor.qmp_commands import register
from pyqemu.util.error import QemuError


def qmp_query_version() -> Dict[str, Any]:
    return version_info()


def qmp_query_commands() -> List[Dict[str, str]]:
    return [{"name": n} for n in qmp_commands.command_names()]


def qmp_human_monitor_command(command_line: str, cpu_index: Optional[int] = None) -> str:
    from pyqemu.monitor.hmp import run_hmp_command
    if cpu_index is None:
        return run_hmp_command(command_line)
    from pyqemu.system.hmp_machine import machine_cpus
    if not 0 <= cpu_index < len(machine_cpus()):
        raise QemuError("Parameter 'cpu-index' expects a CPU number")
    return run_hmp_command(command_line, cpu_index)


def qmp_query_chardev() -> List[Dict[str, Any]]:
    return [c.info() for c in chardev_list()]


def qmp_query_chardev_backends() -> List[Dict[str, str]]:
    return [{"name": n} for n in BACKENDS]


# Members each backend's "data" must have (QAPI's required members).
_REQUIRED = {"file": ("out",), "pipe": ("device",), "serial": ("device",),
             "socket": ("addr",), "udp": ("remote",), "mux": ("chardev",)}


def qmp_chardev_add(id: str, backend: Dict[str, Any]) -> Dict[str, Any]:
    kind, data = _check_backend(backend)
    if chardev_find(id) is not None:
        raise QemuError("Chardev with id '%s' already exists" % id)
    try:
        _, ret = chardev_new(id, kind, data)
    except QemuError as e:
        raise QemuError("Failed to add chardev '%s': %s" % (id, e.msg)) from None
    return ret


def _check_backend(backend: Dict[str, Any]) -> tuple:
    if not isinstance(backend, dict):
        raise QemuError("Invalid parameter type for 'backend', expected: object")
    kind = backend.get("type")
    if kind is None:
        raise QemuError("Parameter 'backend.type' is missing")
    if kind not in BACKENDS:
        raise QemuError("Parameter 'type' does not accept value '%s'" % kind)
    if "data" not in backend:
        raise QemuError("Parameter 'backend.data' is missing")
    data = backend["data"]
    if not isinstance(data, dict):
        raise QemuError("Invalid parameter type for 'backend.data', expected: object")
    for member in _REQUIRED.get(kind, ()):
        if member not in data:
            raise QemuError("Parameter 'backend.data.%s' is missing" % member)
    return kind, data


def qmp_chardev_change(id: str, backend: Dict[str, Any]) -> Dict[str, Any]:
    """Swap the backend under a chardev's frontend (only frontends that allow it)."""
    from pyqemu.chardev.char import chardev_replace
    kind, data = _check_backend(backend)
    old = chardev_find(id)
    if old is None:
        raise QemuError("Chardev '%s' does not exist" % id)
    if old.typename == "mux":
        raise QemuError("Mux device hotswap not supported yet")
    if old.has_frontend() and not getattr(old.fe_owner, "supports_hotswap", False):
        raise QemuError("Chardev user does not support chardev hotswap")
    new = BACKENDS[kind](id, dict(data), old.loop)
    try:
        ret = new.open()
    except QemuError as e:
        # QEMU 7.2 loses the chardev here; pyqemu keeps the old backend working.
        raise QemuError("Failed to add chardev '%s': %s" % (id, e.msg)) from None
    chardev_replace(old, new)
    return ret


def qmp_chardev_remove(id: str) -> None:
    chr = chardev_find(id)
    if chr is None:
        raise QemuError("Chardev '%s' not found" % id)
    if chr.has_frontend():
        raise QemuError("Chardev '%s' is busy" % id)
    chardev_unregister(id)


def qmp_chardev_send_break(id: str) -> None:
    from pyqemu.chardev import CHR_EVENT_BREAK
    chr = chardev_find(id)
    if chr is None:
        raise QemuError("Chardev '%s' not found" % id)
    chr.be_event(CHR_EVENT_BREAK)


def _ringbuf(device: str) -> RingbufChardev:
    chr = chardev_find(device)
    if chr is None:
        raise QemuError("Device '%s' not found" % device)
    if not isinstance(chr, RingbufChardev):
        raise QemuError("%s is not a ringbuf device" % device)
    return chr


def qmp_ringbuf_write(device: str, data: str, format: str = "utf8") -> None:
    chr = _ringbuf(device)
    chr.ringbuf_write(decode_data(data, format))


def qmp_ringbuf_read(device: str, size: int, format: str = "utf8") -> str:
    if size < 0:
        raise QemuError("size must be greater than zero")
    chr = _ringbuf(device)
    return encode_data(chr.ringbuf_read(size), format)


def _qmp_capabilities(enable: Optional[list] = None) -> None:
    # Handled by each QMP monitor (negotiation state is per connection); listed here
    # so that query-commands shows it.
    raise qmp_commands.QMPError("CommandNotFound",
                                "Capabilities negotiation is already complete, command ignored")


def register_all() -> None:
    register("qmp_capabilities", _qmp_capabilities, args={"*enable": "list"}, allow_preconfig=True)
    register("query-version", qmp_query_version, args={}, allow_preconfig=True)
    register("query-commands", qmp_query_commands, args={}, allow_preconfig=True)
    register("human-monitor-command", qmp_human_monitor_command,
             args={"command-line": "str", "*cpu-index": "int"})
    register("query-chardev", qmp_query_chardev, args={}, allow_preconfig=True)
    register("query-chardev-backends", qmp_query_chardev_backends, args={})
    register("chardev-add", qmp_chardev_add, args={"id": "str", "backend": "dict"})
    register("chardev-remove", qmp_chardev_remove, args={"id": "str"})
    register("chardev-change", qmp_chardev_change, args={"id": "str", "backend": "dict"})
    register("chardev-send-break", qmp_chardev_send_break, args={"id": "str"})
    register("ringbuf-write", qmp_ringbuf_write,
             args={"device": "str", "data": "str", "*format": "enum:utf8|base64"})
    register("ringbuf-read", qmp_ringbuf_read,
             args={"device": "str", "size": "int", "*format": "enum:utf8|base64"})
