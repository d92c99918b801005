"""Format driver ``vdi``: VirtualBox disk images, dynamic and static.

A 512-byte little-endian header, a block map (one 32-bit entry per 1 MiB
block: the block's index in the data area, or unallocated/discarded), then
the data blocks in allocation order.  New blocks are appended and written
whole (zero-filled around the data), then the header and the changed
sectors of the block map are written, as QEMU 7.2 does.
"""
from __future__ import annotations

import struct
import sys
import uuid
from typing import Any, Dict, Optional, Tuple

from pyqemu.block.file import FileNode, create_file
from pyqemu.block.node import (STATUS_DATA, STATUS_OFFSET_VALID, STATUS_RECURSE, STATUS_ZERO, BlockNode,
                               BlockStatus)
from pyqemu.util.error import QemuError
from pyqemu.util.opts import parse_bool

SIGNATURE = 0xBEDA107F
VERSION_1_1 = 0x00010001
TYPE_DYNAMIC, TYPE_STATIC = 1, 2
SECTOR = 512
BLOCK_SIZE = 1 << 20
UNALLOCATED = 0xFFFFFFFF
DISCARDED = 0xFFFFFFFE
BLOCKS_MAX = 0x1FFFFF80  # QEMU 7.2's limit (a block map below 2 GiB)
DISK_SIZE_MAX = BLOCKS_MAX * BLOCK_SIZE
TEXT = b"<<< QEMU VM Virtual Disk Image >>>\n"
# header and changed block-map sectors are written together up to this size
_ONE_WRITE = 1 << 20
# a block map this much past the end of the file is refused rather than allocated
_BMAP_SLACK = 1 << 20

# signature, version, header_size, image_type, image_flags (after the 64-byte text)
HEAD = struct.Struct("<IIIII")
# offset_bmap, offset_data, cylinders, heads, sectors, sector_size, unused,
# disk_size, block_size, block_extra, blocks_in_image, blocks_allocated, 4 uuids
GEOM = struct.Struct("<IIIIIIIQIIII16s16s16s16s")
GEOM_AT = 0x154

PRINT_ORDER = [("size", None), ("static", "off")]
CREATE_HELP = [("size", "<size>", "Virtual disk size"),
               ("static", "<bool (on/off)>", "VDI static (pre-allocated) image")]


class Header:
    """The fields of the header pyqemu uses; ``pack`` rewrites them into the raw sector."""

    def __init__(self, raw: bytes) -> None:
        self.raw = bytearray(raw.ljust(SECTOR, b"\0")[:SECTOR])
        (self.signature, self.version, self.header_size, self.image_type,
         self.image_flags) = HEAD.unpack_from(self.raw, 0x40)
        g = GEOM.unpack_from(self.raw, GEOM_AT)
        (self.offset_bmap, self.offset_data, _, _, _, self.sector_size, _, self.disk_size,
         self.block_size, self.block_extra, self.blocks_in_image, self.blocks_allocated) = g[:12]
        self.uuid_link, self.uuid_parent = g[14], g[15]

    def pack(self) -> bytes:
        struct.pack_into("<I", self.raw, GEOM_AT + 48, self.blocks_allocated)
        return bytes(self.raw)


def _new_header(size: int, static: bool) -> Tuple[bytes, int, int]:
    """Header sector, block count and block-map size of a fresh image of ``size`` bytes."""
    blocks = (size + BLOCK_SIZE - 1) // BLOCK_SIZE
    bmap_size = (blocks * 4 + SECTOR - 1) // SECTOR * SECTOR
    raw = bytearray(SECTOR)
    raw[:len(TEXT)] = TEXT
    HEAD.pack_into(raw, 0x40, SIGNATURE, VERSION_1_1, 0x180,
                   TYPE_STATIC if static else TYPE_DYNAMIC, 0)
    GEOM.pack_into(raw, GEOM_AT, SECTOR, SECTOR + bmap_size, 0, 0, 0, SECTOR, 0, size,
                   BLOCK_SIZE, 0, blocks, blocks if static else 0,
                   uuid.uuid4().bytes, uuid.uuid4().bytes, bytes(16), bytes(16))
    return bytes(raw), blocks, bmap_size


def validate_create_options(options: Dict[str, Any]) -> None:
    """What qemu-img checks before it prints the ``Formatting`` line."""
    for k in options:
        if k not in ("static",):
            raise QemuError("Invalid parameter '%s'" % k)
    parse_bool("static", str(options.get("static", "off")))


def create(filename: str, size: int, options: Dict[str, Any]) -> None:
    """``qemu-img create -f vdi``: header, block map, and for static images the data area."""
    validate_create_options(options)
    static = parse_bool("static", str(options.get("static", "off")))
    size = (size + SECTOR - 1) // SECTOR * SECTOR
    if size > DISK_SIZE_MAX:
        raise QemuError("Unsupported VDI image size (size is 0x%x, max supported is 0x%x)"
                        % (size, DISK_SIZE_MAX))
    head, blocks, bmap_size = _new_header(size, static)
    create_file(filename, 0)
    f = FileNode({"filename": filename}, False)
    try:
        f.pwrite(0, head)
        if static:
            bmap = struct.pack("<%dI" % blocks, *range(blocks))
        else:
            bmap = b"\xff\xff\xff\xff" * blocks
        f.pwrite(SECTOR, bmap.ljust(bmap_size, b"\0"))
        if static:
            f.truncate(SECTOR + bmap_size + blocks * BLOCK_SIZE)
    finally:
        f.close()


def open_format(tree: Dict[str, Any], read_only: bool, file: BlockNode) -> "VdiNode":
    return VdiNode(tree, read_only, file)


def _validate(h: Header) -> None:
    """QEMU's checks, in its order and wording."""
    if h.disk_size > DISK_SIZE_MAX:
        raise QemuError("Unsupported VDI image size (size is 0x%x, max supported is 0x%x)"
                        % (h.disk_size, DISK_SIZE_MAX))
    if h.signature != SIGNATURE:
        raise QemuError("Image not in VDI format (bad signature %08x)" % h.signature)
    if h.version != VERSION_1_1:
        raise QemuError("unsupported VDI image (version %d.%d)" % (h.version >> 16, h.version & 0xFFFF))
    if h.offset_bmap % SECTOR:
        raise QemuError("unsupported VDI image (unaligned block map offset 0x%x)" % h.offset_bmap)
    if h.offset_data % SECTOR:
        raise QemuError("unsupported VDI image (unaligned data offset 0x%x)" % h.offset_data)
    if h.sector_size != SECTOR:
        raise QemuError("unsupported VDI image (sector size %d is not %d)" % (h.sector_size, SECTOR))
    if h.block_size != BLOCK_SIZE:
        raise QemuError("unsupported VDI image (block size %d is not %d)" % (h.block_size, BLOCK_SIZE))
    if h.disk_size > h.blocks_in_image * h.block_size:
        raise QemuError("unsupported VDI image (disk size %d, image bitmap has room for %d)"
                        % (h.disk_size, h.blocks_in_image * h.block_size))
    if any(h.uuid_link):
        raise QemuError("unsupported VDI image (non-NULL link UUID)")
    if any(h.uuid_parent):
        raise QemuError("unsupported VDI image (non-NULL parent UUID)")
    if h.blocks_in_image > BLOCKS_MAX:
        raise QemuError("unsupported VDI image (too many blocks %d, max is %d)"
                        % (h.blocks_in_image, BLOCKS_MAX))


class VdiNode(BlockNode):
    driver = "vdi"
    has_metadata = True

    def __init__(self, options: Dict[str, Any], read_only: bool, file: BlockNode) -> None:
        super().__init__(options, read_only)
        self.file = file
        self.filename = file.filename
        h = Header(file.pread(0, SECTOR))
        if h.disk_size % SECTOR:
            # VBoxManage convertfromraw can write odd sizes; QEMU rounds them up
            h.disk_size = (h.disk_size + SECTOR - 1) // SECTOR * SECTOR
        _validate(h)
        self.header = h
        bmap_bytes = (h.blocks_in_image * 4 + SECTOR - 1) // SECTOR * SECTOR
        flen = file.length()
        if h.offset_bmap + bmap_bytes > flen + _BMAP_SLACK:
            raise QemuError("unsupported VDI image (block map of %d bytes extends beyond the end "
                            "of the file)" % bmap_bytes)
        # past the end of the file the map reads as zeroes, as in QEMU
        self.bmap = bytearray(file.pread(h.offset_bmap, bmap_bytes))

    # --- information ------------------------------------------------------------
    def length(self) -> int:
        return self.header.disk_size

    def cluster_size(self) -> int:
        return BLOCK_SIZE

    def entry(self, block: int) -> int:
        return struct.unpack_from("<I", self.bmap, block * 4)[0]

    def _host(self, offset: int) -> Optional[int]:
        e = self.entry(offset // BLOCK_SIZE)
        if e >= DISCARDED:
            return None
        return self.header.offset_data + e * BLOCK_SIZE + offset % BLOCK_SIZE

    # --- I/O ------------------------------------------------------------------
    def pread(self, offset: int, length: int) -> bytes:
        self.check_io(offset, length)
        parts = []
        while length > 0:
            n = min(length, BLOCK_SIZE - offset % BLOCK_SIZE)
            host = self._host(offset)
            parts.append(bytes(n) if host is None else self.file.pread(host, n))
            offset += n
            length -= n
        return b"".join(parts)

    def pwrite(self, offset: int, data: bytes) -> None:
        if self.read_only:
            raise QemuError("Permission denied", errno=13)
        self.check_io(offset, len(data))
        view = memoryview(data)
        pos = 0
        first = last = -1
        try:
            while pos < len(data):
                cur = offset + pos
                within = cur % BLOCK_SIZE
                n = min(len(data) - pos, BLOCK_SIZE - within)
                host = self._host(cur)
                if host is not None:
                    self.file.pwrite(host, view[pos:pos + n].tobytes())
                else:
                    idx = cur // BLOCK_SIZE
                    self._allocate(idx, within, view[pos:pos + n].tobytes())
                    first = idx if first < 0 else first
                    last = idx
                pos += n
        finally:
            if first >= 0:
                self._write_metadata(first, last)

    def _allocate(self, idx: int, within: int, data: bytes) -> None:
        h = self.header
        if h.blocks_allocated >= DISCARDED:
            raise QemuError("No space left on device", errno=28)
        new = h.blocks_allocated
        block = bytearray(BLOCK_SIZE)
        block[within:within + len(data)] = data
        # data before metadata: a crash leaves an unreferenced block, not a bad map entry
        self.file.pwrite(h.offset_data + new * BLOCK_SIZE, bytes(block))
        struct.pack_into("<I", self.bmap, idx * 4, new)
        h.blocks_allocated += 1

    def _write_metadata(self, first: int, last: int) -> None:
        start = first * 4 // SECTOR * SECTOR
        end = (last * 4 // SECTOR + 1) * SECTOR
        head = self.header.pack()
        if self.header.offset_bmap == SECTOR and end <= _ONE_WRITE:
            # header and map in one write: a process killed between two writes would leave
            # the allocation count and the map disagreeing
            self.file.pwrite(0, head + bytes(self.bmap[:end]))
            return
        self.file.pwrite(0, head)
        self.file.pwrite(self.header.offset_bmap + start, bytes(self.bmap[start:end]))

    def block_status(self, offset: int, length: int) -> BlockStatus:
        n = max(0, min(length, BLOCK_SIZE - offset % BLOCK_SIZE, self.length() - offset))
        host = self._host(offset)
        if host is None:
            # as in QEMU, an image without a backing file reads unallocated blocks as zeroes
            return BlockStatus(STATUS_ZERO, n)
        # as QEMU: in a static image, a block over a hole of the file reads as zeroes
        recurse = STATUS_RECURSE if self.header.image_type == TYPE_STATIC else 0
        return BlockStatus(STATUS_DATA | STATUS_OFFSET_VALID | recurse, n, host, self.file)


class CheckResult:
    """What ``qemu-img check`` prints for a VDI image (attributes as the CLI expects)."""

    def __init__(self) -> None:
        self.corruptions = self.leaks = self.check_errors = 0
        self.corruptions_fixed = self.leaks_fixed = 0
        self.image_end_offset = self.total_clusters = self.allocated_clusters = 0
        self.fragmented_clusters = self.compressed_clusters = 0


def check_image(node: VdiNode, fix_leaks: bool = False, fix_errors: bool = False,
                quiet: bool = False) -> CheckResult:
    """Every allocated block is referenced once and the allocation count agrees.

    Messages go to stderr as QEMU prints them.
    """
    h = node.header
    res = CheckResult()
    seen = bytearray(b"\xff" * (h.blocks_in_image * 4))
    allocated = 0
    for block in range(h.blocks_in_image):
        e = node.entry(block)
        if e >= DISCARDED:
            continue
        if e < h.blocks_in_image:
            allocated += 1
            prev = struct.unpack_from("<I", seen, e * 4)[0]
            if prev >= DISCARDED:
                struct.pack_into("<I", seen, e * 4, e)
            else:
                sys.stderr.write("ERROR: block index %d also used by %d\n" % (prev, e))
                res.corruptions += 1
        else:
            sys.stderr.write("ERROR: block index %d too large, is %d\n" % (block, e))
            res.corruptions += 1
    if allocated != h.blocks_allocated:
        sys.stderr.write("ERROR: allocated blocks mismatch, is %d, should be %d\n"
                         % (allocated, h.blocks_allocated))
        res.corruptions += 1
    sys.stderr.flush()
    return res


# QEMU 7.2 cannot repair VDI images: ``check -r`` answers "does not support checks"
check_image.repairs = False  # type: ignore[attr-defined]
