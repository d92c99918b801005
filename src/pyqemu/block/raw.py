"""Format driver ``raw``: the guest sees the file child's bytes, optionally a
window of them (``offset``, ``size`` options).

When the format was probed rather than named, writes to the first sector
that would make the image probe as another format are refused, as QEMU
does, so that a guest cannot turn its disk into, say, a qcow2 pointing at a
host file.
"""
from __future__ import annotations

from typing import Any, Dict

from pyqemu.block.node import STATUS_OFFSET_VALID, STATUS_RAW, BlockNode, BlockStatus
from pyqemu.util.error import QemuError
from pyqemu.util.opts import parse_size


class RawNode(BlockNode):
    driver = "raw"

    def __init__(self, options: Dict[str, Any], read_only: bool, file: BlockNode,
                 probed: bool = False) -> None:
        super().__init__(options, read_only)
        self.file = file
        self.filename = file.filename
        self.probed = probed
        off = options.get("offset", 0)
        self.offset = off if isinstance(off, int) else parse_size("offset", str(off))
        size = options.get("size")
        if size is not None:
            size = size if isinstance(size, int) else parse_size("size", str(size))
        self.fixed_size = size
        flen = _sectors(file.length())
        if size is not None:
            if self.offset > flen or size > flen - self.offset:
                # (sic: QEMU's message has the double space)
                raise QemuError("The sum of offset (%d) and size (%d) has to be smaller or equal to the "
                                " actual size of the containing file (%d)" % (self.offset, size, flen))
            if size % 512:
                raise QemuError("Specified size is not multiple of 512")
        elif self.offset > flen:
            raise QemuError("Offset (%d) cannot be greater than size of the containing file (%d)"
                            % (self.offset, flen))

    def length(self) -> int:
        if self.fixed_size is not None:
            return self.fixed_size
        return max(0, _sectors(self.file.length()) - self.offset)

    def pread(self, offset: int, length: int) -> bytes:
        return self.file.pread(self.offset + offset, length)

    def read_plan(self, offset: int, length: int) -> list:
        return self.file.read_plan(self.offset + offset, length)

    def pwrite(self, offset: int, data: bytes) -> None:
        self._check_write(offset, data)
        self.file.pwrite(self.offset + offset, data)

    def write_plan(self, offset: int, data: Any) -> list:
        self._check_write(offset, data)
        return self.file.write_plan(self.offset + offset, data)

    def _check_write(self, offset: int, data: Any) -> None:
        if self.read_only:
            raise QemuError("Permission denied", errno=13)
        if self.probed and offset < 512 and data:
            from pyqemu.block.probe import probe_format
            head = bytearray(self.file.pread(0, 512))
            n = min(len(data), 512 - offset)
            head[offset:offset + n] = data[:n]
            if probe_format(bytes(head), self.filename) != "raw":
                raise QemuError("Operation not permitted", errno=1)
        if self.fixed_size is not None and offset + len(data) > self.fixed_size:
            raise QemuError("Input/output error", errno=5)

    def pwrite_zeroes(self, offset: int, length: int, may_unmap: bool = False) -> None:
        self.file.pwrite_zeroes(self.offset + offset, length, may_unmap)

    def discard(self, offset: int, length: int) -> None:
        self.file.discard(self.offset + offset, length)

    def truncate(self, size: int, prealloc: str = "off", exact: bool = False) -> None:
        if self.offset or self.fixed_size is not None:
            raise QemuError("Cannot resize a raw image with offset or size options")
        self.file.truncate(size, prealloc, exact)

    def block_status(self, offset: int, length: int) -> BlockStatus:
        n = max(0, min(length, self.length() - offset))
        return BlockStatus(STATUS_RAW | STATUS_OFFSET_VALID, n, self.offset + offset, self.file)


def _sectors(length: int) -> int:
    """QEMU sees every file as whole 512-byte sectors (bdrv_getlength rounds up)."""
    return -(-length // 512) * 512
