"""Format driver ``parallels``: Parallels (Virtuozzo) expanding disk images.

A 64-byte little-endian header, a block allocation table of 32-bit entries
(in sectors for the old "WithoutFreeSpace" magic, in clusters for
"WithouFreSpacExt"), then data clusters.  While open read-write the header's
``inuse`` field holds a magic; an image left with it cannot be opened
read-write until ``check -r all`` (as QEMU).
"""
from __future__ import annotations

import struct
import sys
from typing import Any, Dict, List

from pyqemu.block.file import FileNode, create_file
from pyqemu.block.node import STATUS_DATA, STATUS_OFFSET_VALID, BlockNode, BlockStatus
from pyqemu.util.error import QemuError
from pyqemu.util.opts import parse_size

MAGIC_OLD = b"WithoutFreeSpace"
MAGIC_EXT = b"WithouFreSpacExt"
HEADER = struct.Struct("<16sIIIIIQIIIQ")
INUSE_MAGIC = 0x746F6E59
INUSE_AT = 44
SECTOR = 512
DEFAULT_CLUSTER = 1 << 20
MAX_BAT = 0x7FFFFFFF // 4

PRINT_ORDER = [("size", None), ("cluster_size", "1048576")]
CREATE_HELP = [("cluster_size", "<size>", "Parallels image cluster size"),
               ("size", "<size>", "Virtual disk size")]


def create(filename: str, size: int, options: Dict[str, Any]) -> None:
    """``qemu-img create -f parallels``: header and zeroed BAT, data from the next cluster."""
    for k in options:
        if k not in ("cluster_size",):
            raise QemuError("Invalid parameter '%s'" % k)
    cs = parse_size("cluster_size", str(options.get("cluster_size", DEFAULT_CLUSTER)))
    if cs >= 1 << 31:
        raise QemuError("Cluster size is too large")
    cs = max(SECTOR, (cs + SECTOR - 1) // SECTOR * SECTOR)   # QEMU rounds up to whole sectors
    sectors = (size + SECTOR - 1) // SECTOR
    tracks = cs // SECTOR
    bat_entries = (sectors + tracks - 1) // tracks
    if bat_entries > MAX_BAT:
        raise QemuError("Image size is too large for this cluster size")
    data_off = (HEADER.size + bat_entries * 4 + cs - 1) // cs * cs
    head = HEADER.pack(MAGIC_EXT, 2, 16, sectors // (16 * 32), tracks, bat_entries, sectors, 0,
                       data_off // SECTOR, 0, 0)
    create_file(filename, 0)
    f = FileNode({"filename": filename}, False)
    try:
        f.truncate(data_off)
        f.pwrite(0, head)
    finally:
        f.close()


def open_format(tree: Dict[str, Any], read_only: bool, file: BlockNode) -> "ParallelsNode":
    return ParallelsNode(tree, read_only, file)


class ParallelsNode(BlockNode):
    driver = "parallels"
    has_metadata = True
    # QEMU's driver can have a backing file; without one unallocated clusters read as zero
    supports_backing = True
    # QEMU's driver has no get_info: info shows neither cluster size nor dirty flag
    has_bdrv_info = False

    def __init__(self, options: Dict[str, Any], read_only: bool, file: BlockNode) -> None:
        super().__init__(options, read_only)
        self.file = file
        self.filename = file.filename
        (magic, version, _heads, _cyls, tracks, bat_entries, sectors, inuse, data_off, _flags,
         _ext) = HEADER.unpack(file.pread(0, HEADER.size))
        if magic not in (MAGIC_OLD, MAGIC_EXT) or version != 2:
            raise QemuError("Image not in Parallels format")
        if tracks == 0:
            raise QemuError("Invalid cluster size")
        if tracks > 0x7FFFFFFF // SECTOR:
            raise QemuError("Cluster size is too large")
        self.cs = tracks * SECTOR
        self.mult = tracks if magic == MAGIC_EXT else 1
        if magic == MAGIC_OLD:
            sectors &= 0xFFFFFFFF
        if bat_entries > MAX_BAT:
            raise QemuError("Catalog too large")
        flen = file.length()
        if HEADER.size + bat_entries * 4 > flen + (1 << 20):
            raise QemuError("Invalid argument", errno=22)
        if sectors * SECTOR > (1 << 63) - 1:
            raise QemuError("Could not refresh total sector count: File too large", errno=27)
        self._size = sectors * SECTOR
        self.bat: List[int] = list(struct.unpack("<%dI" % bat_entries,
                                                 file.pread(HEADER.size, bat_entries * 4)))
        self.data_off = data_off * SECTOR if data_off else \
            (HEADER.size + bat_entries * 4 + SECTOR - 1) // SECTOR * SECTOR
        # as QEMU: only a read-write open cares; pyqemu-img check -r cannot yet open such an
        # image read-write (QEMU's BDRV_O_CHECK), so it is refused like any other writer
        self.unclean = inuse == INUSE_MAGIC
        if self.unclean and not read_only:
            raise QemuError("parallels: Image was not closed correctly; cannot be opened read/write")
        ends = [e * self.mult * SECTOR + self.cs for e in self.bat if e]
        self.data_end = max([self.data_off] + ends)
        if not read_only:
            self._set_inuse(INUSE_MAGIC)

    def _set_inuse(self, value: int) -> None:
        self.file.pwrite(INUSE_AT, struct.pack("<I", value))
        self.file.flush()

    def length(self) -> int:
        return self._size

    def _host(self, offset: int) -> int:
        idx = offset // self.cs
        e = self.bat[idx] if idx < len(self.bat) else 0
        return e * self.mult * SECTOR + offset % self.cs if e else 0

    def pread(self, offset: int, length: int) -> bytes:
        self.check_io(offset, length)
        out = []
        while length > 0:
            n = min(length, self.cs - offset % self.cs)
            host = self._host(offset)
            out.append(self.file.pread(host, n) if host else bytes(n))
            offset += n
            length -= n
        return b"".join(out)

    def pwrite(self, offset: int, data: bytes) -> None:
        if self.read_only:
            raise QemuError("Permission denied", errno=13)
        self.check_io(offset, len(data))
        view = memoryview(data)
        pos = 0
        while pos < len(data):
            cur = offset + pos
            n = min(len(data) - pos, self.cs - cur % self.cs)
            host = self._host(cur)
            if not host:
                idx = cur // self.cs
                if idx >= len(self.bat):
                    # the header claims more sectors than the table maps (as QEMU: EINVAL)
                    raise QemuError("Invalid argument", errno=22)
                start = self.data_end
                # a new cluster reads as zeroes: extend the file over it before writing
                if self.file.length() < start + self.cs:
                    self.file.truncate(start + self.cs)
                self.data_end = start + self.cs
                self.bat[idx] = start // SECTOR // self.mult
                self.file.pwrite(HEADER.size + idx * 4, struct.pack("<I", self.bat[idx]))
                host = start + cur % self.cs
            self.file.pwrite(host, view[pos:pos + n].tobytes())
            pos += n

    def block_status(self, offset: int, length: int) -> BlockStatus:
        length = max(0, min(length, self._size - offset))
        n = min(length, self.cs - offset % self.cs)
        host = self._host(offset)
        if not host:
            return BlockStatus(0, n)
        return BlockStatus(STATUS_DATA | STATUS_OFFSET_VALID, n, host, self.file)

    def _close(self) -> None:
        if not self.read_only:
            self._set_inuse(0)
            # as QEMU: the file ends where the data ends
            self.file.truncate(self.data_end)


class CheckResult:
    def __init__(self) -> None:
        self.corruptions = self.leaks = self.check_errors = 0
        self.corruptions_fixed = self.leaks_fixed = 0
        self.image_end_offset = self.total_clusters = self.allocated_clusters = 0
        self.fragmented_clusters = self.compressed_clusters = 0


def check_image(node: ParallelsNode, fix_leaks: bool = False, fix_errors: bool = False,
                quiet: bool = False) -> CheckResult:
    """QEMU's parallels check: unclean flag, clusters outside the file, space leaked at the end."""
    res = CheckResult()
    size = (node.file.length() + SECTOR - 1) // SECTOR * SECTOR   # QEMU counts whole sectors
    if node.unclean:
        sys.stderr.write("%s image was not closed correctly\n" % ("Repairing" if fix_errors else "ERROR"))
        res.corruptions += 1
        if fix_errors:
            res.corruptions_fixed += 1
            node.unclean = False
            node.file.pwrite(INUSE_AT, struct.pack("<I", 0))
    res.total_clusters = len(node.bat)
    prev = high = 0
    for i, e in enumerate(node.bat):
        off = e * node.mult * SECTOR
        if off == 0:
            prev = 0
            continue
        if off > size:
            sys.stderr.write("%s cluster %d is outside image\n" % ("Repairing" if fix_errors else "ERROR", i))
            res.corruptions += 1
            if fix_errors:
                prev = 0
                node.bat[i] = 0
                node.file.pwrite(HEADER.size + i * 4, struct.pack("<I", 0))
                res.corruptions_fixed += 1
                continue
        res.allocated_clusters += 1
        high = max(high, off)
        if prev and prev + node.cs != off:
            res.fragmented_clusters += 1
        prev = off
    res.image_end_offset = high + node.cs if high else node.data_off
    if size > res.image_end_offset:
        count = (size - res.image_end_offset + node.cs - 1) // node.cs
        sys.stderr.write("%s space leaked at the end of the image %d\n"
                         % ("Repairing" if fix_leaks else "ERROR", size - res.image_end_offset))
        res.leaks += count
        if fix_leaks:
            node.file.truncate(res.image_end_offset)
            res.leaks_fixed += count
    sys.stderr.flush()
    return res
