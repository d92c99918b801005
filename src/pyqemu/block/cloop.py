"""Format driver ``cloop`` (read-only): compressed loop images (cloop V2.0).

A 128-byte shell-script preamble, the block size and block count (big
endian), then ``n + 1`` 64-bit offsets delimiting the zlib-compressed
blocks.  The most recently used block is kept decompressed, as a reader
streams through an image.
"""
from __future__ import annotations

import struct
import zlib
from typing import Any, Dict, List

from pyqemu.block.node import STATUS_DATA, BlockNode, BlockStatus
from pyqemu.util.error import QemuError

MAX_BLOCK = 64 << 20
MAX_OFFSETS = 512 << 20


def open_format(tree: Dict[str, Any], read_only: bool, file: BlockNode) -> "CloopNode":
    return CloopNode(tree, read_only, file)


def validate_create_options(options: Dict[str, Any]) -> None:
    """qemu-img refuses before it prints ``Formatting``: QEMU has no cloop writer."""
    raise QemuError("Format driver 'cloop' does not support image creation")


def create(filename: str, size: int, options: Dict[str, Any]) -> None:
    validate_create_options(options)


class CloopNode(BlockNode):
    driver = "cloop"
    has_metadata = True
    has_bdrv_info = False   # QEMU's driver has no get_info: info shows no dirty flag

    def __init__(self, options: Dict[str, Any], read_only: bool, file: BlockNode) -> None:
        super().__init__(options, read_only)
        if not read_only:
            raise QemuError("Image is read-only", errno=30)
        self.file = file
        self.filename = file.filename
        bs, n = struct.unpack(">II", file.pread(128, 8))
        if bs % 512:
            raise QemuError("block_size %d must be a multiple of 512" % bs)
        if bs == 0:
            raise QemuError("block_size cannot be zero")
        if bs > MAX_BLOCK:
            raise QemuError("block_size %d must be %d MB or less" % (bs, MAX_BLOCK >> 20))
        if n > 0xFFFFFFFF // 8 - 1:
            raise QemuError("n_blocks %d must be %d or less" % (n, 0xFFFFFFFF // 8))
        size = (n + 1) * 8
        if size > MAX_OFFSETS:
            raise QemuError("image requires too many offsets, try increasing block size")
        if 136 + size > file.length():
            raise QemuError("Could not read offsets: the table lies beyond the end of the file")
        self.offsets: List[int] = list(struct.unpack(">%dQ" % (n + 1), file.pread(136, size)))
        for i in range(n):
            if self.offsets[i + 1] < self.offsets[i]:
                raise QemuError("offsets not monotonically increasing at index %d, image file is "
                                "corrupt" % (i + 1))
            if self.offsets[i + 1] - self.offsets[i] > 2 * MAX_BLOCK:
                raise QemuError("invalid compressed block size at index %d, image file is corrupt"
                                % (i + 1))
        self.block_size = bs
        self.n_blocks = n
        self._cached = -1
        self._block = b""

    def length(self) -> int:
        return self.n_blocks * self.block_size

    def _load(self, i: int) -> bytes:
        if i != self._cached:
            raw = self.file.pread(self.offsets[i], self.offsets[i + 1] - self.offsets[i])
            d = zlib.decompressobj()
            try:
                out = d.decompress(raw, self.block_size)
            except zlib.error:
                raise QemuError("Input/output error", errno=5) from None
            if len(out) != self.block_size:
                raise QemuError("Input/output error", errno=5)
            self._cached, self._block = i, out
        return self._block

    def pread(self, offset: int, length: int) -> bytes:
        self.check_io(offset, length)
        out = []
        while length > 0:
            i, within = divmod(offset, self.block_size)
            n = min(length, self.block_size - within)
            out.append(self._load(i)[within:within + n])
            offset += n
            length -= n
        return b"".join(out)

    def block_status(self, offset: int, length: int) -> BlockStatus:
        return BlockStatus(STATUS_DATA, max(0, min(length, self.length() - offset)))
