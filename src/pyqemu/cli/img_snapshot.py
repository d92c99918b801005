"""pyqemu-img snapshot [-l | -a snapshot | -c snapshot | -d snapshot] filename."""
from __future__ import annotations

import time
from typing import List

from pyqemu.cli.img import img_open, out, parse_args
from pyqemu.util.error import QemuError, UsageError
from pyqemu.util.units import size_to_str
from pyqemu.qom.cmdline import add_object_from_cmdline


def snapshot_table_text(snaps) -> str:
    lines = ["%-10s%-17s%8s%20s%13s%11s" % ("ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT")]
    for s in snaps:
        date = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.date_sec))
        secs = s.vm_clock_nsec // 1000000000
        clock = "%02d:%02d:%02d.%03d" % (secs // 3600, secs // 60 % 60, secs % 60,
                                         s.vm_clock_nsec // 1000000 % 1000)
        icount = "%d" % s.icount if s.icount != -1 else ""
        lines.append("%-9s %-16s %8s%20s%13s%11s" % (s.id, s.name, size_to_str(s.vm_state_size), date,
                                                      clock, icount))
    return "\n".join(lines) + "\n"


def main(argv: List[str]) -> int:
    opts, args = parse_args(argv, "la:c:d:f:qU", ["image-opts", "force-share", "object="])
    fmt = None
    action = None
    name = ""
    quiet = force = image_opts = False
    for k, v in opts:
        if k in ("-l", "-a", "-c", "-d"):
            if action is not None and action != k:
                raise UsageError("Cannot mix '-l', '-a', '-c', '-d'",
                                 hint="Try 'pyqemu-img --help' for more information")
            action, name = k, v
        elif k == "-f":
            fmt = v
        elif k == "-q":
            quiet = True
        elif k in ("-U", "--force-share"):
            force = True
        elif k == "--image-opts":
            image_opts = True
        elif k == "--object":
            add_object_from_cmdline(v)
    if len(args) != 1:
        raise UsageError("Expecting one image file name",
                         hint="Try 'pyqemu-img --help' for more information")
    if action is None:
        action = "-l"
    readonly = action == "-l"
    if force and not readonly:
        raise QemuError("--force-share/-U can only be used with -l")
    node = img_open(args[0], fmt, image_opts, readonly=readonly, force_share=force, no_backing=True)
    try:
        if node.driver != "qcow2":
            # qemu-img 7.2's answers for drivers without internal snapshots: an empty list,
            # and each operation failing in its own wording
            if action == "-l":
                return 0
            raise QemuError({"-c": "Could not create snapshot '%s': -95 (Operation not supported)",
                             "-a": "Could not apply snapshot '%s': Block driver does not support snapshots",
                             "-d": "Could not delete snapshot '%s': snapshot not found"}[action] % name)
        from pyqemu.block.qcow2 import snapshot as sn
        if action == "-l":
            out("Snapshot list:\n" + snapshot_table_text(sn.read_snapshots(node)), quiet)
        elif action == "-c":
            try:
                sn.create_snapshot(node, name)
            except QemuError as exc:
                raise exc.prefixed("Could not create snapshot '%s'" % name) from None
        elif action == "-a":
            try:
                sn.apply_snapshot(node, name)
            except QemuError as exc:
                raise exc.prefixed("Could not apply snapshot '%s'" % name) from None
        elif action == "-d":
            try:
                sn.delete_snapshot(node, name)
            except QemuError as exc:
                raise exc.prefixed("Could not delete snapshot '%s'" % name) from None
    finally:
        node.close()
    return 0
