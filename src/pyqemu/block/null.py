"""Protocol driver ``null-co``: a disk of a given size that reads zeroes
(or garbage-free zeroes when ``read-zeroes=on``) and ignores writes.  For tests."""
from __future__ import annotations

from typing import Any, Dict

from pyqemu.block.node import STATUS_OFFSET_VALID, STATUS_ZERO, BlockNode, BlockStatus
from pyqemu.util.opts import parse_size


class NullNode(BlockNode):
    driver = "null-co"

    def __init__(self, options: Dict[str, Any], read_only: bool) -> None:
        super().__init__(options, read_only)
        size = options.get("size", 1 << 30)
        self._size = size if isinstance(size, int) else parse_size("size", str(size))
        self.filename = "null-co://"

    def length(self) -> int:
        return self._size

    def pread(self, offset: int, length: int) -> bytes:
        self.check_io(offset, length)
        return bytes(length)

    def pwrite(self, offset: int, data: bytes) -> None:
        self.check_io(offset, len(data))

    def pwrite_zeroes(self, offset: int, length: int, may_unmap: bool = False) -> None:
        self.check_io(offset, length)

    def truncate(self, size: int, prealloc: str = "off", exact: bool = False) -> None:
        self._size = size

    def block_status(self, offset: int, length: int) -> BlockStatus:
        n = max(0, min(length, self._size - offset))
        return BlockStatus(STATUS_ZERO | STATUS_OFFSET_VALID, n, offset, self)

    def get_allocated_file_size(self) -> int:
        return 0
