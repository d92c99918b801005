"""The guest's mounted block-device filesystems, from /proc/self/mountinfo."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List


@dataclass
class Mount:
    dirname: str
    devtype: str
    major: int
    minor: int
    source: str


def _unescape(s: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out = []
    i = 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) + 0 and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def block_mounts(path: str = "/proc/self/mountinfo") -> List[Mount]:
    """Mounts backed by a device (major != 0), in mount order."""
    out: List[Mount] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        rfields = right.split()
        if len(fields) < 5 or len(rfields) < 2:
            continue
        try:
            major, minor = (int(x) for x in fields[2].split(":"))
        except ValueError:
            continue
        if major == 0 or rfields[0] in ("rootfs", "nfs", "nfs4", "cifs", "smb3"):
            continue
        out.append(Mount(_unescape(fields[4]), rfields[0], major, minor, _unescape(rfields[1])))
    return out


def sysfs_dev(major: int, minor: int) -> str:
    return os.path.realpath("/sys/dev/block/%d:%d" % (major, minor))
