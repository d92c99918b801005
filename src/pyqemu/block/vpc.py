"""Format driver ``vpc``: Virtual PC / Hyper-V VHD images, fixed and dynamic.

A VHD ends with a 512-byte footer (a copy of it opens a dynamic image).  A
fixed image is the guest's bytes followed by the footer; a dynamic one has a
sparse header pointing to the block allocation table (BAT), whose entries
give the sector of each data block (a sector bitmap, then the block).

The virtual size follows QEMU 7.2: images written by Virtual PC or QEMU's
default mode use the CHS geometry in the footer, those of Hyper-V, Disk2vhd,
XenServer and QEMU's ``force_size`` use the footer's ``current_size``.
"""
from __future__ import annotations

import os
import struct
import time
from typing import Any, Dict, List, Optional, Tuple

from pyqemu.block.file import FileNode, create_file
from pyqemu.block.node import (STATUS_DATA, STATUS_OFFSET_VALID, STATUS_RECURSE, STATUS_ZERO,
                               BlockNode, BlockStatus)
from pyqemu.util.error import QemuError
from pyqemu.util.opts import parse_bool

FOOTER = struct.Struct(">8sIIQI4sI4sQQHBBII16sB")
DYN = struct.Struct(">8sQQIIII16sI")
SECTOR = 512
TYPE_FIXED, TYPE_DYNAMIC, TYPE_DIFF = 2, 3, 4
UNALLOCATED = 0xFFFFFFFF
CHS_MAX = (65535, 16, 255)
MAX_GEOMETRY = 65535 * 16 * 255
MAX_SECTORS = 0xFF000000  # 2040 GiB
# seconds between 1970-01-01 and 2000-01-01, the VHD epoch
EPOCH_2000 = 946684800
DEFAULT_BLOCK = 2 << 20
# creator applications whose images carry their size in current_size, not CHS
_SIZE_CREATORS = (b"win ", b"qem2", b"d2v ", b"CTXS", b"tap\0")

PRINT_ORDER = [("size", None), ("subformat", None), ("force_size", None)]
CREATE_HELP = [
    ("force_size", "<bool (on/off)>", "Force disk size calculation to use the actual size "
     "specified, rather than using the nearest CHS-based calculation"),
    ("size", "<size>", "Virtual disk size"),
    ("subformat", "<str>", "Type of virtual hard disk format. Supported formats are "
     "{dynamic (default) | fixed} "),
]


def checksum(buf: bytes) -> int:
    """VHD checksum: the ones' complement of the byte sum (checksum field zeroed)."""
    return ~sum(buf) & 0xFFFFFFFF


def chs_geometry(sectors: int) -> Tuple[int, int, int]:
    """Cylinders, heads, sectors per track for ``sectors`` (the VHD specification's rules)."""
    if sectors > MAX_GEOMETRY:
        raise QemuError("File too large", errno=27)
    if sectors >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = sectors // spt
    else:
        spt = 17
        cth = sectors // spt
        heads = max(4, (cth + 1023) // 1024)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = sectors // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = sectors // spt
    return cth // heads, heads, spt


def _footer(size: int, geometry: Tuple[int, int, int], disk_type: int, creator: bytes,
            data_offset: int) -> bytes:
    stamp = (int(time.time()) - EPOCH_2000) & 0xFFFFFFFF
    cyls, heads, spt = geometry
    fields = [b"conectix", 2, 0x00010000, data_offset, stamp, creator, 0x00050003, b"Wi2k",
              size, size, cyls, heads, spt, disk_type, 0, os.urandom(16), 0]
    raw = FOOTER.pack(*fields).ljust(SECTOR, b"\0")
    fields[14] = checksum(raw)
    return FOOTER.pack(*fields).ljust(SECTOR, b"\0")


def validate_create_options(opts: Dict[str, Any]) -> None:
    """What qemu-img checks before it prints the ``Formatting`` line."""
    for k in opts:
        if k not in ("subformat", "force_size"):
            raise QemuError("Invalid parameter '%s'" % k)
    parse_bool("force_size", str(opts.get("force_size", "off")))


def create(filename: str, size: int, options: Dict[str, Any]) -> None:
    """``qemu-img create -f vpc``: the layout QEMU 7.2 writes."""
    opts = dict(options)
    validate_create_options(opts)
    sub = str(opts.get("subformat", "dynamic"))
    if sub not in ("dynamic", "fixed"):
        raise QemuError("Parameter 'subformat' does not accept value '%s'" % sub)
    force = parse_bool("force_size", str(opts.get("force_size", "off")))
    if size > MAX_SECTORS * SECTOR:
        raise QemuError("The image size is too large for file format 'vpc'")
    if force:
        sectors = size // SECTOR
        geometry = CHS_MAX
        creator = b"qem2"
    else:
        # grow the request until the geometry covers it, so that convert never truncates
        sectors = min(MAX_GEOMETRY, size // SECTOR)
        geometry = (0, 0, 0)
        extra = 0
        while sectors > geometry[0] * geometry[1] * geometry[2]:
            geometry = chs_geometry(sectors + extra)
            extra += 1
        if geometry[0] * geometry[1] * geometry[2] == MAX_GEOMETRY:
            sectors = size // SECTOR
            if sectors > MAX_SECTORS:
                raise QemuError("Disk size is too large, max size is 2040 GiB")
        else:
            sectors = geometry[0] * geometry[1] * geometry[2]
        creator = b"qemu"
    total = sectors * SECTOR
    if sub == "fixed" and total + SECTOR > (1 << 63) - 1:
        raise QemuError("File too large", errno=27)
    create_file(filename, 0)
    f = FileNode({"filename": filename}, False)
    try:
        if sub == "fixed":
            f.truncate(total)
            f.pwrite(total, _footer(total, geometry, TYPE_FIXED, creator, (1 << 64) - 1))
            return
        entries = (total + DEFAULT_BLOCK - 1) // DEFAULT_BLOCK
        bat_offset = 3 * SECTOR
        bat_bytes = (entries * 4 + SECTOR - 1) // SECTOR * SECTOR
        footer = _footer(total, geometry, TYPE_DYNAMIC, creator, SECTOR)
        dyn = [b"cxsparse", (1 << 64) - 1, bat_offset, 0x00010000, entries, DEFAULT_BLOCK, 0,
               bytes(16), 0]
        raw = DYN.pack(*dyn).ljust(1024, b"\0")
        dyn[6] = checksum(raw)
        f.pwrite(0, footer + DYN.pack(*dyn).ljust(1024, b"\0"))
        f.pwrite(bat_offset, b"\xff" * bat_bytes)
        f.pwrite(bat_offset + bat_bytes, footer)
    finally:
        f.close()


def open_format(tree: Dict[str, Any], read_only: bool, file: BlockNode) -> "VpcNode":
    return VpcNode(tree, read_only, file)


class VpcNode(BlockNode):
    driver = "vpc"
    has_metadata = True

    def __init__(self, options: Dict[str, Any], read_only: bool, file: BlockNode) -> None:
        super().__init__(options, read_only)
        self.file = file
        self.filename = file.filename
        flen = file.length()
        # like QEMU, bytes past the end of the file read as zeroes
        raw = file.pread(0, SECTOR)
        self.footer_offset = 0
        if raw[:8] != b"conectix":
            if flen < SECTOR:
                raise QemuError("File too small for a VHD header")
            raw = file.pread(flen - SECTOR, SECTOR)
            if raw[:8] != b"conectix":
                raise QemuError("invalid VPC image")
        f = list(FOOTER.unpack_from(raw))
        stored = f[14]
        f[14] = 0
        if checksum(FOOTER.pack(*f) + raw[FOOTER.size:]) != stored:
            raise QemuError("Incorrect header checksum")
        self.footer = bytearray(raw)
        self.disk_type = f[13]
        creator = f[5]
        cyls, heads, spt = f[10], f[11], f[12]
        sectors = cyls * heads * spt
        calc = str(options.get("force_size_calc", "none"))
        if calc not in ("none", "chs", "current_size"):
            raise QemuError("Invalid size calculation mode: '%s'" % calc)
        use_chs = creator not in _SIZE_CREATORS or calc == "chs"
        if not use_chs or sectors == MAX_GEOMETRY or calc == "current_size":
            sectors = f[9] // SECTOR
        if sectors > MAX_SECTORS:
            raise QemuError("File too large", errno=27)
        self._size = sectors * SECTOR
        self.block_size = 0
        self.bat: List[int] = []
        if self.disk_type == TYPE_FIXED:
            if self._size > flen:
                # QEMU reads beyond the end as zeroes; keep the image openable the same way
                pass
            return
        if self.disk_type not in (TYPE_DYNAMIC, TYPE_DIFF):
            raise QemuError("Unsupported VHD disk type %d" % self.disk_type, errno=95)
        dyn_off = f[3]
        dh = DYN.unpack_from(file.pread(dyn_off, 1024) if dyn_off < flen else bytes(1024))
        if dh[0] != b"cxsparse":
            raise QemuError("Invalid header magic")
        bs = dh[5]
        if bs < SECTOR or bs & (bs - 1):
            raise QemuError("Invalid block size %d" % bs)
        self.block_size = bs
        self.bitmap_size = ((bs // (8 * SECTOR)) + SECTOR - 1) // SECTOR * SECTOR
        entries = dh[4]
        if entries > 0x7FFFFFFF // 4:
            raise QemuError("Max Table Entries too large (%d)" % entries)
        if entries * bs < self._size:
            raise QemuError("Page table too small")
        self.bat_offset = dh[2]
        # the table must lie in the file: bounds the allocation by the file's size
        if self.bat_offset + entries * 4 > flen:
            raise QemuError("block-vpc: free_data_block_offset points after the end of file. "
                            "The image has been truncated.")
        self.bat = list(struct.unpack(">%dI" % entries, file.pread(self.bat_offset, entries * 4)))
        free = (self.bat_offset + entries * 4 + SECTOR - 1) // SECTOR * SECTOR
        for e in self.bat:
            if e != UNALLOCATED:
                free = max(free, e * SECTOR + self.bitmap_size + bs)
        if free > flen:
            raise QemuError("block-vpc: free_data_block_offset points after the end of file. "
                            "The image has been truncated.")
        self.free_offset = free

    # --- information ------------------------------------------------------------
    def length(self) -> int:
        return self._size

    def cluster_size(self) -> int:
        return self.block_size if self.disk_type != TYPE_FIXED else 0

    # --- mapping ----------------------------------------------------------------
    def _host(self, offset: int) -> Optional[int]:
        """Host offset of guest byte ``offset`` (None: unallocated block)."""
        if self.disk_type == TYPE_FIXED:
            return offset
        idx, within = divmod(offset, self.block_size)
        e = self.bat[idx] if idx < len(self.bat) else UNALLOCATED
        if e == UNALLOCATED:
            return None
        return e * SECTOR + self.bitmap_size + within

    def _run(self, offset: int, length: int) -> Tuple[int, Optional[int]]:
        """Length of the run at ``offset`` (within one block) and its host offset."""
        if self.disk_type == TYPE_FIXED:
            return length, offset
        n = min(length, self.block_size - offset % self.block_size)
        return n, self._host(offset)

    def pread(self, offset: int, length: int) -> bytes:
        self.check_io(offset, length)
        if self.disk_type == TYPE_FIXED:
            return self.file.pread(offset, length)
        parts = []
        while length > 0:
            n, host = self._run(offset, length)
            parts.append(bytes(n) if host is None else self.file.pread(host, n))
            offset += n
            length -= n
        return b"".join(parts)

    def pwrite(self, offset: int, data: bytes) -> None:
        if self.read_only:
            raise QemuError("Permission denied", errno=13)
        self.check_io(offset, len(data))
        if self.disk_type == TYPE_FIXED:
            self.file.pwrite(offset, data)
            return
        view = memoryview(data)
        pos = 0
        while pos < len(data):
            n, host = self._run(offset + pos, len(data) - pos)
            if host is None:
                host = self._alloc((offset + pos) // self.block_size) + (offset + pos) % self.block_size
            self.file.pwrite(host, view[pos:pos + n].tobytes())
            pos += n

    def _alloc(self, idx: int) -> int:
        """Give block ``idx`` space at the end of the file; returns its data offset.

        As QEMU: the sector bitmap (all set), then the footer moved past the
        new block, then the BAT entry, so that a crash leaves at worst a
        leaked block rather than a BAT entry pointing past the footer.
        """
        start = self.free_offset
        if start // SECTOR > 0xFFFFFFFE:
            raise QemuError("No space left on device", errno=28)
        self.file.pwrite(start, b"\xff" * self.bitmap_size)
        self.free_offset = start + self.bitmap_size + self.block_size
        self.file.pwrite(self.free_offset, bytes(self.footer))
        self.bat[idx] = start // SECTOR
        self.file.pwrite(self.bat_offset + 4 * idx, struct.pack(">I", start // SECTOR))
        return start + self.bitmap_size

    def block_status(self, offset: int, length: int) -> BlockStatus:
        length = max(0, min(length, self._size - offset))
        if self.disk_type == TYPE_FIXED:
            # as QEMU: data, and where the file has a hole also zeroes
            return BlockStatus(STATUS_DATA | STATUS_OFFSET_VALID | STATUS_RECURSE, length, offset, self.file)
        n, host = self._run(offset, length)
        if host is not None:
            # one block at most: the next block's bitmap lies in between on the host
            return BlockStatus(STATUS_DATA | STATUS_OFFSET_VALID, n, host, self.file)
        while n < length:
            m, h2 = self._run(offset + n, length - n)
            if h2 is not None:
                break
            n += m
        # QEMU's vpc reports unallocated blocks of a dynamic image as zeroes
        return BlockStatus(STATUS_ZERO, n)
