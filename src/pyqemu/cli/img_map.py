"""pyqemu-img map (human and json)."""
from __future__ import annotations

import sys
from typing import List, Optional

from pyqemu.block import STATUS_ALLOCATED, STATUS_DATA, STATUS_OFFSET_VALID, STATUS_ZERO, get_block_status
from pyqemu.cli.img_args import parse_offset
from pyqemu.cli.img import img_open, parse_args, parse_output
from pyqemu.util.error import QemuError, UsageError
from pyqemu.qom.cmdline import add_object_from_cmdline


class MapEntry:
    __slots__ = ("start", "length", "depth", "present", "zero", "data", "offset", "filename")

    def __init__(self, start, length, depth, present, zero, data, offset, filename):
        self.start, self.length, self.depth = start, length, depth
        self.present, self.zero, self.data = present, zero, data
        self.offset, self.filename = offset, filename

    def mergeable(self, nxt: "MapEntry") -> bool:
        if (self.depth, self.present, self.zero, self.data, self.filename) != \
                (nxt.depth, nxt.present, nxt.zero, nxt.data, nxt.filename):
            return False
        if (self.offset is None) != (nxt.offset is None):
            return False
        return self.offset is None or self.offset + self.length == nxt.offset

    def json(self) -> str:
        b = lambda v: "true" if v else "false"
        s = '{ "start": %d, "length": %d, "depth": %d, "present": %s, "zero": %s, "data": %s' % (
            self.start, self.length, self.depth, b(self.present), b(self.zero), b(self.data))
        if self.offset is not None:
            s += ', "offset": %d' % self.offset
        return s + "}"


def _hex(v: int) -> str:
    """C's ``%#x``: no prefix for zero."""
    return "%#x" % v if v else "0"


def map_entries(node, start: int, end: int):
    pos = start
    cur: Optional[MapEntry] = None
    while pos < end:
        st, depth = get_block_status(node, pos, min(end - pos, 1 << 30))
        n = st.length
        if n <= 0:
            break
        has_off = bool(st.flags & STATUS_OFFSET_VALID)
        e = MapEntry(pos, n, depth, bool(st.flags & STATUS_ALLOCATED), bool(st.flags & STATUS_ZERO),
                     bool(st.flags & STATUS_DATA), st.offset if has_off else None,
                     st.file.filename if has_off and st.file is not None else None)
        if cur is not None and cur.mergeable(e):
            cur.length += n
        else:
            if cur is not None:
                yield cur
            cur = e
        pos += n
    if cur is not None:
        yield cur


def main(argv: List[str]) -> int:
    opts, args = parse_args(argv, "f:U", ["output=", "image-opts", "force-share", "object=", "format=",
                                          "start-offset=", "max-length="])
    fmt = None
    output = "human"
    image_opts = False
    force = False
    start = 0
    max_len: Optional[int] = None
    for k, v in opts:
        if k in ("-f", "--format"):
            fmt = v
        elif k == "--output":
            output = parse_output(v)
        elif k == "--image-opts":
            image_opts = True
        elif k in ("-U", "--force-share"):
            force = True
        elif k == "--start-offset":
            start = parse_offset(v, "start offset")
        elif k == "--max-length":
            max_len = parse_offset(v, "max length")
        elif k == "--object":
            add_object_from_cmdline(v)
    if len(args) != 1:
        raise UsageError("Expecting one image file name")
    node = img_open(args[0], fmt, image_opts, readonly=True, force_share=force)
    try:
        size = node.length()
        end = size if max_len is None else min(size, start + max_len)
        w = sys.stdout.write
        if output == "json":
            parts = [e.json() for e in map_entries(node, start, end)]
            w("[" + ",\n".join(parts) + "]\n")
        else:
            w("%-16s%-16s%-16s%s\n" % ("Offset", "Length", "Mapped to", "File"))
            for e in map_entries(node, start, end):
                if e.data and e.offset is None:
                    sys.stdout.flush()
                    raise QemuError("File contains external, encrypted or compressed clusters.")
                if e.data and e.offset is not None and not e.zero:   # qemu-img leaves zeroed data out
                    w("%-16s%-16s%-16s%s\n" % (_hex(e.start), _hex(e.length), _hex(e.offset), e.filename))
    finally:
        node.close()
    return 0
