"""pyqemu-x86_64 and pyqemu-i386: the Linux user-mode emulators' command line."""
from __future__ import annotations

import os
import sys
from typing import Sequence

from pyqemu import __version__
from pyqemu.linux_user.elf import LoadError
from pyqemu.linux_user.options import PlainError, parse_args, usage_text
from pyqemu.util import log
from pyqemu.util.error import QemuError, UsageError, run_main

QEMU_VERSION = "7.2.0"


def _cpu_help(bits: int) -> str:
    from pyqemu.target.i386.cpu_models import cpu_help_text

    return cpu_help_text(system=False)


def _main(argv: Sequence[str], prog: str, arch: str, bits: int) -> int:
    try:
        o = parse_args(argv)
        if bits == 32 and o.reserved_va is not None and o.reserved_va > 0xfffff000:
            raise PlainError("Reserved virtual address too big")
        if o.guest_base and o.guest_base & 0xfff:
            raise PlainError("Requested guest base 0x%x does not satisfy host minimum "
                             "alignment (0x1000)" % o.guest_base)
    except PlainError as e:
        sys.stderr.write("%s\n" % e)
        return 1
    return _run(o, prog, arch, bits)


def _run(o, prog: str, arch: str, bits: int) -> int:
    if o.help:
        sys.stdout.write(usage_text(prog, arch, "/etc/qemu-binfmt/%s" % arch,
                                    o.stack_size if not o.help_status else 0))
        return o.help_status
    if o.version:
        sys.stdout.write("%s version %s (pyqemu %s)\n"
                         "Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n"
                         % (prog, QEMU_VERSION, __version__))
        return 0
    if o.cpu_model == "help":
        sys.stdout.write(_cpu_help(bits))
        return 1            # qemu lists the models and exits with failure
    if o.log_items is not None:
        if o.log_items == "help":
            sys.stdout.write(log.usage())
            return 0
        mask, traces = log.parse_items(o.log_items)
        if not mask and not traces:
            sys.stdout.write(log.usage())
            return 1
        log.set_mask(mask, traces)
        if log.enabled("strace"):
            o.strace = True
    if o.dfilter:
        log.set_dfilter(o.dfilter)
    if o.log_file:
        log.set_file(o.log_file)
    if o.program is None:
        raise UsageError("no user program specified")
    from pyqemu.linux_user.main import UserEmulator

    argv0 = o.argv0 if o.argv0 is not None else o.program
    try:
        emu = UserEmulator(o.program, [argv0] + o.args, o.target_environ(os.environ), bits=bits,
                           cpu_model=o.cpu_model, ld_prefix=o.ld_prefix, stack_size=o.stack_size,
                           strace=o.strace, singlestep=o.singlestep, uname_release=o.uname_release,
                           reserved_va=o.reserved_va or 0, guest_base=o.guest_base or 0)
    except LoadError as e:
        # QEMU prints this one on stdout, without the program-name prefix.
        sys.stdout.write(e.msg + "\n")
        sys.stdout.flush()
        return 1
    except QemuError as e:
        e.errno = e.errno or 0
        from pyqemu.linux_user.loader import AddressSpaceError
        from pyqemu.linux_user.main import CpuModelError
        from pyqemu.util.error import report_exception
        if isinstance(e, CpuModelError) and e.bare:
            sys.stderr.write(e.msg + "\n")
            return 1
        report_exception(e)
        return 1 if isinstance(e, (AddressSpaceError, CpuModelError)) else 255
    if o.gdb_port is not None:
        from pyqemu.linux_user.gdb import attach_gdb
        attach_gdb(emu, o.gdb_port)
    return emu.run()


def main_x86_64(argv: Sequence[str] = None) -> None:
    sys.exit(run_main(lambda a: _main(a, "pyqemu-x86_64", "x86_64", 64), "pyqemu-x86_64", argv))


def main_i386(argv: Sequence[str] = None) -> None:
    sys.exit(run_main(lambda a: _main(a, "pyqemu-i386", "i386", 32), "pyqemu-i386", argv))


if __name__ == "__main__":
    main_x86_64()
