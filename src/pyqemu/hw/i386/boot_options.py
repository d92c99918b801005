"""-kernel, -initrd and -append: shorthands for the machine's kernel/initrd/append
properties, as QEMU's qemu_opts_set(machine, ...) does."""
from __future__ import annotations

from typing import Any

from pyqemu.system.options import register_option

BOOT = "Linux/Multiboot boot specific"


def _machine_prop(key: str) -> Any:
    def handler(c: Any, v: str) -> None:
        from pyqemu.system.vl import option_groups
        g = option_groups()["machine"]
        o = g.find(None) or g.create(None)
        o.set(key, v)
    return handler


register_option("kernel", True, BOOT, "-kernel bzImage", "use 'bzImage' as kernel image",
                _machine_prop("kernel"))
register_option("append", True, BOOT, "-append cmdline", "use 'cmdline' as kernel command line",
                _machine_prop("append"))
register_option("initrd", True, BOOT, "-initrd file", "use 'file' as initial ram disk",
                _machine_prop("initrd"))
