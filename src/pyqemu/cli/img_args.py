"""Number arguments of pyqemu-img sub-commands (qemu-img's cvtnum wording)."""
from __future__ import annotations

from pyqemu.util.error import QemuError, get_progname
from pyqemu.util.opts import strtosz


def parse_offset(text: str, name: str) -> int:
    try:
        v = strtosz(text, "B")
    except (ValueError, OverflowError, QemuError):
        v = -1
    if v < 0 or v > (1 << 63) - 1:
        raise QemuError("Invalid %s specified. You may use k, M, G, T, P or E suffixes for\n"
                        "%s: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes."
                        % (name, get_progname()))
    return v
