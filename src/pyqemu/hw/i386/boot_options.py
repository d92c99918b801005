"""-kernel, -initrd and -append: shorthands for the machine's kernel/initrd/append
properties, as QEMU's qemu_opts_set(machine, ...) does."""
from __future__ import annotations

from typing import Any

from pyqemu.system.options import register_option
from pyqemu.util.error import QemuError, warn_report
from pyqemu.util.opts import OptDesc, OptsList, find_opts, register_opts

BOOT = "Boot Image or Kernel specific"
DBG = "Debug/Expert options"


def fw_cfg_group() -> OptsList:
    """The -fw_cfg option group (QemuOpts "fw_cfg"; -set and -readconfig see it)."""
    try:
        return find_opts("fw_cfg")
    except QemuError:
        return register_opts(OptsList("fw_cfg", implied_key="name", desc=[
            OptDesc("name", help="Sets the fw_cfg name of the blob to be inserted"),
            OptDesc("file", help="Sets the name of the file from which the fw_cfg blob will be loaded"),
            OptDesc("string", help="Sets content of the blob to be inserted from a string"),
            OptDesc("gen_id", help="Sets id of the object generating the fw_cfg blob to be inserted"),
        ]))


def _fw_cfg(c: Any, v: str) -> None:
    o = fw_cfg_group().parse(v, loc=c.loc)
    o.loc = c.loc  # type: ignore[attr-defined]
    name = o.get("name")
    given = [k for k in ("file", "string", "gen_id") if o.get(k) is not None]
    if name is None or len(given) != 1:
        raise QemuError("name, plus exactly one of file, string and gen_id, are needed", loc=c.loc)
    if not name.startswith("opt/"):
        warn_report('externally provided fw_cfg item names should be prefixed with "opt/"',
                    loc=c.loc)


def _machine_prop(key: str) -> Any:
    def handler(c: Any, v: str) -> None:
        from pyqemu.system.vl import option_groups
        g = option_groups()["machine"]
        o = g.find(None) or g.create(None)
        o.set(key, v)
    return handler


register_option("bios", True, BOOT, "-bios file", "set the filename for the BIOS",
                _machine_prop("firmware"))
register_option("kernel", True, BOOT, "-kernel bzImage", "use 'bzImage' as kernel image",
                _machine_prop("kernel"))
register_option("append", True, BOOT, "-append cmdline", "use 'cmdline' as kernel command line",
                _machine_prop("append"))
register_option("initrd", True, BOOT, "-initrd file", "use 'file' as initial ram disk",
                _machine_prop("initrd"))
register_option("fw_cfg", True, DBG, "-fw_cfg [name=]<name>,file=<file>",
                "add named fw_cfg entry with contents from file", _fw_cfg)
