"""All guest agent commands, registered in QEMU's order (``-b help`` lists it)."""
from __future__ import annotations

from typing import Any, Dict, Tuple

from pyqemu.qga.dispatch import Registry

ORDER = (
    "guest-sync-delimited", "guest-sync", "guest-ping", "guest-get-time", "guest-set-time",
    "guest-info", "guest-shutdown", "guest-file-open", "guest-file-close", "guest-file-read",
    "guest-file-write", "guest-file-seek", "guest-file-flush", "guest-fsfreeze-status",
    "guest-fsfreeze-freeze", "guest-fsfreeze-freeze-list", "guest-fsfreeze-thaw",
    "guest-fstrim", "guest-suspend-disk", "guest-suspend-ram", "guest-suspend-hybrid",
    "guest-network-get-interfaces", "guest-get-vcpus", "guest-set-vcpus", "guest-get-disks",
    "guest-get-fsinfo", "guest-set-user-password", "guest-get-memory-blocks",
    "guest-set-memory-blocks", "guest-get-memory-block-info", "guest-exec-status",
    "guest-exec", "guest-get-host-name", "guest-get-users", "guest-get-timezone",
    "guest-get-osinfo", "guest-get-devices", "guest-ssh-get-authorized-keys",
    "guest-ssh-add-authorized-keys", "guest-ssh-remove-authorized-keys",
    "guest-get-diskstats", "guest-get-cpustats",
)


def _all_specs() -> Dict[str, Tuple[Any, ...]]:
    from pyqemu.qga.commands import basic, execute, files, fs, hw, net, power, ssh
    specs: Dict[str, Tuple[Any, ...]] = {}
    for mod in (basic, files, fs, power, hw, net, execute, ssh):
        specs.update(mod.SPECS)
    return specs


def build_registry() -> Registry:
    reg = Registry()
    specs = _all_specs()
    for name in ORDER:
        func, schema, success, supported = specs[name]
        reg.register(name, schema, success, supported)(func)
    return reg
