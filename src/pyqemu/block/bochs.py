"""Format driver ``bochs`` (read-only): Bochs "growing" redolog disk images.

A 512-byte header ("Bochs Virtual HD Image", type "Redolog", subtype
"Growing"), a catalog of 32-bit extent indexes (0xffffffff: not allocated),
then extents, each a sector bitmap followed by the extent's sectors.  A
sector whose bitmap bit is clear reads as zeroes.
"""
from __future__ import annotations

import struct
from typing import Any, Dict

from pyqemu.block.node import STATUS_DATA, BlockNode, BlockStatus
from pyqemu.util.error import QemuError

MAGIC = b"Bochs Virtual HD Image"
SECTOR = 512
UNALLOCATED = 0xFFFFFFFF
# version, header size, catalog entries, bitmap size, extent size
HEAD = struct.Struct("<IIIII")
MAX_EXTENT = 0x800000
MAX_CATALOG = 0x7FFFFFFF // 4


def open_format(tree: Dict[str, Any], read_only: bool, file: BlockNode) -> "BochsNode":
    return BochsNode(tree, read_only, file)


def validate_create_options(options: Dict[str, Any]) -> None:
    """qemu-img refuses before it prints ``Formatting``: QEMU has no bochs writer."""
    raise QemuError("Format driver 'bochs' does not support image creation")


def create(filename: str, size: int, options: Dict[str, Any]) -> None:
    validate_create_options(options)


def _cstr(raw: bytes) -> bytes:
    return raw.split(b"\0", 1)[0]


class BochsNode(BlockNode):
    driver = "bochs"
    has_metadata = True
    has_bdrv_info = False   # QEMU's driver has no get_info: info shows no dirty flag

    def __init__(self, options: Dict[str, Any], read_only: bool, file: BlockNode) -> None:
        super().__init__(options, read_only)
        if not read_only:
            raise QemuError("Image is read-only", errno=30)
        self.file = file
        self.filename = file.filename
        raw = file.pread(0, SECTOR)
        if _cstr(raw[:32]) != MAGIC or _cstr(raw[32:48]) != b"Redolog" or \
                _cstr(raw[48:64]) != b"Growing":
            raise QemuError("Image not in Bochs format", errno=22)
        version, header_size, catalog, bitmap, extent = HEAD.unpack_from(raw, 64)
        if version == 0x00010000:
            disk = struct.unpack_from("<Q", raw, 84)[0]
        elif version == 0x00020000:
            disk = struct.unpack_from("<Q", raw, 88)[0]
        else:
            raise QemuError("Image not in Bochs format", errno=22)
        self._size = disk // SECTOR * SECTOR
        if catalog > MAX_CATALOG:
            raise QemuError("Catalog size is too large")
        if extent < SECTOR:
            raise QemuError("Extent size must be at least 512")
        if extent & (extent - 1):
            raise QemuError("Extent size %d is not a power of two" % extent)
        if extent > MAX_EXTENT:
            raise QemuError("Extent size %d is too large" % extent)
        if catalog < (self._size // SECTOR + extent // SECTOR - 1) // (extent // SECTOR):
            raise QemuError("Catalog size is too small for this disk size")
        flen = file.length()
        if header_size + catalog * 4 > flen + SECTOR:
            raise QemuError("Could not read catalog: it lies beyond the end of the file")
        self.catalog = list(struct.unpack("<%dI" % catalog, file.pread(header_size, catalog * 4)))
        self.data_offset = header_size + catalog * 4
        self.bitmap_blocks = 1 + (bitmap - 1) // SECTOR if bitmap else 1
        self.extent_blocks = 1 + (extent - 1) // SECTOR
        self.extent = extent

    def length(self) -> int:
        return self._size

    def _sector(self, sector: int) -> bytes:
        """One guest sector (QEMU reads this format sector by sector)."""
        index, within = divmod(sector * SECTOR, self.extent)
        entry = self.catalog[index] if index < len(self.catalog) else UNALLOCATED
        if entry == UNALLOCATED:
            return bytes(SECTOR)
        sec = within // SECTOR
        base = self.data_offset + SECTOR * entry * (self.extent_blocks + self.bitmap_blocks)
        if not self.file.pread(base + sec // 8, 1)[0] >> (sec % 8) & 1:
            return bytes(SECTOR)
        return self.file.pread(base + SECTOR * (self.bitmap_blocks + sec), SECTOR)

    def pread(self, offset: int, length: int) -> bytes:
        self.check_io(offset, length)
        first = offset // SECTOR
        last = (offset + length + SECTOR - 1) // SECTOR
        data = b"".join(self._sector(s) for s in range(first, last))
        skip = offset - first * SECTOR
        return data[skip:skip + length]

    def block_status(self, offset: int, length: int) -> BlockStatus:
        return BlockStatus(STATUS_DATA, max(0, min(length, self._size - offset)))
