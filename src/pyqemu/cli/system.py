"""``pyqemu-system-x86_64`` / ``pyqemu-system-i386``: the system emulator."""
from __future__ import annotations

import sys
from typing import Optional, Sequence

from pyqemu.util.error import run_main


def _main_for(target: str, argv: Optional[Sequence[str]]) -> int:
    from pyqemu.system.vl import qemu_main
    return run_main(lambda a: qemu_main(list(a), target), "pyqemu-system-%s" % target, argv)


def main_x86_64(argv: Optional[Sequence[str]] = None) -> int:
    return _main_for("x86_64", argv)


def main_i386(argv: Optional[Sequence[str]] = None) -> int:
    return _main_for("i386", argv)


if __name__ == "__main__":
    sys.exit(main_x86_64())
