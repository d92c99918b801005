"""Format driver ``vmdk``: VMware disks (sparse, flat, stream-optimized, split).

A VMDK is a text descriptor listing extents, either in a file of its own
(``monolithicFlat``, ``twoGbMaxExtent*``) or embedded in a sparse extent
(``monolithicSparse``, ``streamOptimized``).  A sparse extent ("KDMV") maps
grains (clusters) through a grain directory of grain tables; a
stream-optimized one stores each grain deflated behind a small marker.

Created files follow QEMU 7.2's layout: header, embedded descriptor of 20
sectors, redundant grain directory and tables, then the primary ones, the
first grain aligned to the grain size.
"""
from __future__ import annotations

import os
import random
import re
import struct
import sys
import zlib
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

from pyqemu.block.file import FileNode, create_file
from pyqemu.block.node import (STATUS_DATA, STATUS_OFFSET_VALID, STATUS_RECURSE, STATUS_ZERO,
                               BlockNode, BlockStatus)
from pyqemu.util.error import QemuError
from pyqemu.util.opts import parse_bool

SECTOR = 512
MAGIC = b"KDMV"
# magic, version, flags, capacity, granularity, desc_offset, desc_size, num_gtes_per_gt,
# rgd_offset, gd_offset, grain_offset, filler, check bytes, compress algorithm
HEADER = struct.Struct("<4sIIQQQQIQQQB4sH")
FLAG_NL_DETECT = 1
FLAG_RGD = 2
FLAG_ZERO_GRAIN = 4
FLAG_COMPRESS = 0x10000
FLAG_MARKER = 0x20000
GD_AT_END = 0xFFFFFFFFFFFFFFFF
MARKER_EOS, MARKER_GT, MARKER_GD, MARKER_FOOTER = 0, 1, 2, 3
DESC_SECTORS = 20
GRAIN_SECTORS = 128
GTES = 512
SPLIT_SECTORS = (2 << 30) // SECTOR
SUBFORMATS = ("monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat",
              "streamOptimized")
# bounds that keep a hostile header from asking for huge tables
MAX_GRAIN_SECTORS = 0x200000

PRINT_ORDER = [("size", None), ("backing_file", None), ("backing_fmt", None),
               ("adapter_type", None), ("compat6", "off"), ("hwversion", "undefined"),
               ("toolsversion", None), ("subformat", None), ("zeroed_grain", None)]
CREATE_HELP = [
    ("adapter_type", "<str>", "Virtual adapter type, can be one of ide (default), lsilogic, "
     "buslogic or legacyESX"),
    ("backing_file", "<str>", "File name of a base image"),
    ("backing_fmt", "<str>", "Must be 'vmdk' if present"),
    ("compat6", "<bool (on/off)>", "VMDK version 6 image"),
    ("hwversion", "<str>", "VMDK hardware version"),
    ("size", "<size>", "Virtual disk size"),
    ("subformat", "<str>", "VMDK flat extent format, can be one of {monolithicSparse (default) | "
     "monolithicFlat | twoGbMaxExtentSparse | twoGbMaxExtentFlat | streamOptimized} "),
    ("toolsversion", "<str>", "VMware guest tools version"),
    ("zeroed_grain", "<bool (on/off)>", "Enable efficient zero writes using the zeroed-grain GTE "
     "feature"),
]


# --- the descriptor ------------------------------------------------------------
class Descriptor:
    """The text descriptor: ``key=value`` lines and extent lines, kept as text for rewriting."""

    _EXTENT = re.compile(r'^(RW|RDONLY|NOACCESS)\s+(-?\d+)\s+(\w+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?')

    def __init__(self, text: str) -> None:
        self.text = text
        self.values: Dict[str, str] = {}
        self.extents: List[Tuple[str, int, str, str, int, int]] = []
        self.lines: Dict[Tuple[str, int, str, str], str] = {}
        # QEMU 7.2 scans each line with a pattern that first skips white space, newlines
        # included, so every blank line before an extent line reads that extent once more
        blanks = 0
        for line in text.split("\n"):
            line = line.strip()
            if not line:
                blanks += 1
                continue
            m = self._EXTENT.match(line)
            if m:
                fields = 2 + (m.group(4) is not None) + (m.group(5) is not None) + 1
                key = (m.group(1), int(m.group(2)), m.group(3), m.group(4) or "")
                self.extents.extend([key + (int(m.group(5) or 0), fields)] * (blanks + 1))
                self.lines[key] = line
            elif "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                self.values[k.strip()] = v.strip().strip('"')
            blanks = 0

    def hex_value(self, key: str, default: int) -> int:
        try:
            return int(self.values[key], 16) & 0xFFFFFFFF
        except (KeyError, ValueError):
            return default


def descriptor_text(cid: int, parent_cid: int, create_type: str, parent_hint: str,
                    extent_lines: List[str], hwversion: str, cylinders: int, heads: int,
                    adapter: str, tools: str) -> str:
    parent = 'parentFileNameHint="%s"' % parent_hint if parent_hint else ""
    return ("# Disk DescriptorFile\nversion=1\nCID=%x\nparentCID=%x\ncreateType=\"%s\"\n%s\n"
            "# Extent description\n%s\n\n# The Disk Data Base\n#DDB\n\n"
            "ddb.virtualHWVersion = \"%s\"\nddb.geometry.cylinders = \"%d\"\n"
            "ddb.geometry.heads = \"%d\"\nddb.geometry.sectors = \"63\"\n"
            "ddb.adapterType = \"%s\"\nddb.toolsVersion = \"%s\"\n"
            % (cid, parent_cid, create_type, parent, "\n".join(extent_lines), hwversion,
               cylinders, heads, adapter, tools))


# --- creating ----------------------------------------------------------------------
def _sparse_layout(sectors: int) -> Tuple[int, int, int, int, int]:
    """(gd_sectors, gt_count, rgd_offset, gd_offset, grain_offset) for a new sparse extent."""
    grains = (sectors + GRAIN_SECTORS - 1) // GRAIN_SECTORS
    gt_sectors = GTES * 4 // SECTOR
    gt_count = (grains + GTES - 1) // GTES
    gd_sectors = (gt_count * 4 + SECTOR - 1) // SECTOR
    rgd = 1 + DESC_SECTORS
    gd = rgd + gd_sectors + gt_sectors * gt_count
    grain = (gd + gd_sectors + gt_sectors * gt_count + GRAIN_SECTORS - 1) // GRAIN_SECTORS * GRAIN_SECTORS
    return gd_sectors, gt_count, rgd, gd, grain


def create_sparse_extent(path: str, sectors: int, stream: bool, zeroed: bool,
                         descriptor: str = "") -> None:
    gd_sectors, gt_count, rgd, gd, grain = _sparse_layout(sectors)
    version = 3 if stream else (2 if zeroed else 1)
    flags = FLAG_NL_DETECT | FLAG_RGD
    if zeroed:
        flags |= FLAG_ZERO_GRAIN
    if stream:
        flags |= FLAG_COMPRESS | FLAG_MARKER
    head = HEADER.pack(MAGIC, version, flags, sectors, GRAIN_SECTORS, 1, DESC_SECTORS, GTES,
                       rgd, gd, grain, 0, b"\n \r\n", 1 if stream else 0)
    gt_sectors = GTES * 4 // SECTOR

    def directory(base: int) -> bytes:
        first = base + gd_sectors
        return struct.pack("<%dI" % gt_count, *(first + i * gt_sectors for i in range(gt_count)))

    create_file(path, 0)
    f = FileNode({"filename": path}, False)
    try:
        f.truncate(grain * SECTOR)
        f.pwrite(0, head.ljust(SECTOR, b"\0"))
        if descriptor:
            f.pwrite(SECTOR, descriptor.encode())
        f.pwrite(rgd * SECTOR, directory(rgd))
        f.pwrite(gd * SECTOR, directory(gd))
    finally:
        f.close()


def create(filename: str, size: int, options: Dict[str, Any]) -> None:
    """``qemu-img create -f vmdk`` with QEMU 7.2's options, descriptor and layout."""
    opts = dict(options)
    known = ("adapter_type", "backing_file", "backing_fmt", "compat6", "hwversion", "subformat",
             "toolsversion", "zeroed_grain")
    for k in opts:
        if k not in known:
            raise QemuError("Invalid parameter '%s'" % k)
    adapter = str(opts.get("adapter_type", "ide"))
    if adapter not in ("ide", "buslogic", "lsilogic", "legacyESX"):
        raise QemuError("invalid parameter value: %s" % adapter)
    sub = str(opts.get("subformat", "monolithicSparse"))
    if sub not in SUBFORMATS:
        raise QemuError("invalid parameter value: %s" % sub)
    compat6 = parse_bool("compat6", str(opts.get("compat6", "off")))
    hw = str(opts.get("hwversion", "undefined"))
    if compat6 and hw != "undefined":
        raise QemuError("compat6 cannot be enabled with hwversion set")
    hwversion = "6" if compat6 else ("4" if hw == "undefined" else hw)
    zeroed = parse_bool("zeroed_grain", str(opts.get("zeroed_grain", "off")))
    tools = str(opts.get("toolsversion", "2147483647"))
    sectors = (size + SECTOR - 1) // SECTOR
    backing = opts.get("backing_file")
    parent_cid = 0xFFFFFFFF
    if backing:
        bfmt = opts.get("backing_fmt")
        if bfmt and bfmt != "vmdk":
            raise QemuError("Invalid backing file format: %s. Only vmdk is supported." % bfmt)
        from pyqemu.block.open import open_image, resolve_backing_path
        with open_image(resolve_backing_path(filename, str(backing)), readonly=True,
                        force_share=True) as b:
            if b.driver != "vmdk":
                raise QemuError("Invalid backing file format: %s. Only vmdk is supported." % b.driver)
            parent_cid = b.cid
    heads = 16 if adapter == "ide" else 255
    cylinders = size // (63 * heads * SECTOR)
    cid = random.getrandbits(32)
    base, _ = os.path.splitext(filename)
    name = os.path.basename(base)
    directory = os.path.dirname(filename)
    split = sub.startswith("twoGb")
    flat = sub.endswith("Flat")
    lines = []
    files = []
    if sub in ("monolithicSparse", "streamOptimized"):
        lines.append('RW %d SPARSE "%s"' % (sectors, os.path.basename(filename)))
    else:
        remaining = sectors
        n = 0
        while True:
            n += 1
            chunk = min(remaining, SPLIT_SECTORS) if split else remaining
            if split:
                ext = "%s-%s%03d.vmdk" % (name, "f" if flat else "s", n)
            else:
                ext = "%s-flat.vmdk" % name
            lines.append('RW %d %s "%s"%s' % (chunk, "FLAT" if flat else "SPARSE", ext,
                                               " 0" if flat else ""))
            files.append((os.path.join(directory, ext), chunk))
            remaining -= chunk
            if remaining <= 0:
                break
    text = descriptor_text(cid, parent_cid, sub, str(backing or ""), lines, hwversion, cylinders,
                           heads, adapter, tools)
    if sub in ("monolithicSparse", "streamOptimized"):
        create_sparse_extent(filename, sectors, sub == "streamOptimized", zeroed, text)
        return
    for path, chunk in files:
        if flat:
            create_file(path, chunk * SECTOR)
        else:
            create_sparse_extent(path, chunk, False, zeroed)
    with open(filename, "w") as f:
        f.write(text)


# --- extents -------------------------------------------------------------------------
class FlatExtent:
    sparse = False
    compressed = False

    def __init__(self, file: BlockNode, sectors: int, offset: int, kind: str) -> None:
        self.file = file
        self.length = sectors * SECTOR
        self.base = offset * SECTOR
        self.kind = kind
        self.cluster_bytes = 0

    def pread(self, offset: int, length: int, backing: Any) -> bytes:
        return self.file.pread(self.base + offset, length)

    def pwrite(self, offset: int, data: bytes, backing: Any) -> None:
        self.file.pwrite(self.base + offset, data)

    def status(self, offset: int, length: int) -> BlockStatus:
        # as QEMU: a flat extent's holes read as zeroes ("zero": true, "data": true in map)
        return BlockStatus(STATUS_DATA | STATUS_OFFSET_VALID | STATUS_RECURSE, length, self.base + offset,
                           self.file)

    def flush(self) -> None:
        pass


def read_sparse_header(file: BlockNode) -> Tuple[Any, ...]:
    """The header of a sparse extent; the footer's copy for stream images with GD at the end."""
    flen = file.length()
    h = HEADER.unpack_from(file.pread(0, SECTOR))
    if h[0] != MAGIC:
        raise QemuError("Invalid argument", errno=22)
    if h[9] == GD_AT_END:
        if flen < 3 * SECTOR:
            raise QemuError("Invalid footer")
        tail = file.pread(flen - 3 * SECTOR, 3 * SECTOR)
        _, _, mtype = struct.unpack_from("<QII", tail, 0)
        _, _, etype = struct.unpack_from("<QII", tail, 2 * SECTOR)
        foot = HEADER.unpack_from(tail, SECTOR)
        if foot[0] != MAGIC or mtype != MARKER_FOOTER or etype != MARKER_EOS:
            raise QemuError("Invalid footer")
        h = foot
    return h


class SparseExtent:
    """A KDMV extent: grain directory -> grain tables -> grains."""

    sparse = True

    def __init__(self, file: BlockNode, h: Tuple[Any, ...], kind: str, read_only: bool) -> None:
        (_, version, flags, capacity, gran, _, _, gtes, rgd, gd, grain_off, _, _, algo) = h
        if version > 3:
            raise QemuError("Unsupported VMDK version %d" % version, errno=95)
        if gran == 0 or gran > MAX_GRAIN_SECTORS:
            raise QemuError("Invalid granularity, image may be corrupt")
        if gtes == 0 or gtes > 512:
            raise QemuError("L2 table size too big")
        self.file = file
        self.kind = kind
        self.flags = flags
        self.compressed = bool(flags & FLAG_COMPRESS) and algo == 1
        self.markers = bool(flags & FLAG_MARKER)
        self.zeroed = bool(flags & FLAG_ZERO_GRAIN)
        self.length = capacity * SECTOR
        self.cluster_bytes = gran * SECTOR
        self.gtes = gtes
        per_gt = gtes * gran
        gd_entries = (capacity + per_gt - 1) // per_gt
        flen = file.length()
        if grain_off * SECTOR > flen:
            raise QemuError("File truncated, expecting at least %d bytes" % (grain_off * SECTOR))
        # entries past the end of the file read as zero (no grain table), as in QEMU; reading
        # only what the file holds keeps a hostile capacity from allocating a huge table
        self.gd = self._directory(gd, gd_entries, flen)
        self.rgd: Optional[List[int]] = None
        if flags & FLAG_RGD and rgd:
            self.rgd = self._directory(rgd, gd_entries, flen)
        self.gt_cache: "OrderedDict[int, List[int]]" = OrderedDict()
        self.next_sector = (flen // SECTOR + gran - 1) // gran * gran
        if self.compressed:
            self.next_sector = max(flen // SECTOR, grain_off)
        self.read_only = read_only
        # stream-optimized writes are gathered grain by grain, then deflated in order
        self.pending: Optional[Tuple[int, bytearray]] = None
        self.stream_dirty = False

    def _directory(self, sector: int, entries: int, flen: int) -> List[int]:
        n = max(0, min(entries, (flen - sector * SECTOR) // 4))
        if n == 0:
            return []
        return list(struct.unpack("<%dI" % n, self.file.pread(sector * SECTOR, n * 4)))

    # mapping ------------------------------------------------------------------
    def _gt(self, gd_index: int) -> Optional[List[int]]:
        if gd_index >= len(self.gd) or self.gd[gd_index] == 0:
            return None
        sector = self.gd[gd_index]
        t = self.gt_cache.get(sector)
        if t is None:
            t = list(struct.unpack("<%dI" % self.gtes, self.file.pread(sector * SECTOR, self.gtes * 4)))
            self.gt_cache[sector] = t
            if len(self.gt_cache) > 64:
                self.gt_cache.popitem(last=False)
        return t

    def entry(self, cluster: int) -> int:
        t = self._gt(cluster // self.gtes)
        return 0 if t is None else t[cluster % self.gtes]

    def _grain(self, cluster: int, entry: int) -> bytes:
        """A whole grain's bytes (decompressed for stream-optimized extents)."""
        cb = self.cluster_bytes
        if not self.compressed:
            return self.file.pread(entry * SECTOR, cb)
        if self.markers:
            lba, size = struct.unpack("<QI", self.file.pread(entry * SECTOR, 12))
            if size == 0 or size > 2 * cb + 1024:
                raise QemuError("Input/output error", errno=5)
            raw = self.file.pread(entry * SECTOR + 12, size)
        else:
            raw = self.file.pread(entry * SECTOR, 2 * cb)
        d = zlib.decompressobj()
        try:
            out = d.decompress(raw, cb)
        except zlib.error:
            raise QemuError("Input/output error", errno=5) from None
        if len(out) < cb and not d.eof:
            raise QemuError("Input/output error", errno=5)
        return out.ljust(cb, b"\0")

    def pread(self, offset: int, length: int, backing: Any) -> bytes:
        cb = self.cluster_bytes
        parts = []
        while length > 0:
            cluster, within = divmod(offset, cb)
            n = min(length, cb - within)
            if self.pending is not None and self.pending[0] == cluster:
                parts.append(bytes(self.pending[1][within:within + n]))
            else:
                e = self.entry(cluster)
                if e == 0:
                    parts.append(backing(offset, n))
                elif e == 1 and self.zeroed:
                    parts.append(bytes(n))
                elif self.compressed:
                    parts.append(self._grain(cluster, e)[within:within + n])
                else:
                    parts.append(self.file.pread(e * SECTOR + within, n))
            offset += n
            length -= n
        return b"".join(parts)

    def _set_entry(self, cluster: int, value: int) -> None:
        gi, ti = divmod(cluster, self.gtes)
        t = self._gt(gi)
        assert t is not None
        t[ti] = value
        packed = struct.pack("<I", value)
        self.file.pwrite(self.gd[gi] * SECTOR + ti * 4, packed)
        if self.rgd is not None and gi < len(self.rgd) and self.rgd[gi]:
            self.file.pwrite(self.rgd[gi] * SECTOR + ti * 4, packed)

    def pwrite(self, offset: int, data: bytes, backing: Any) -> None:
        cb = self.cluster_bytes
        view = memoryview(data)
        pos = 0
        while pos < len(data):
            cluster, within = divmod(offset + pos, cb)
            n = min(len(data) - pos, cb - within)
            if self._gt(cluster // self.gtes) is None:
                raise QemuError("Could not write to a grain without a grain table", errno=95)
            e = self.entry(cluster)
            chunk = view[pos:pos + n]
            if self.compressed:
                self._stream_write(cluster, within, chunk, e, backing)
            elif e > 1 or (e == 1 and not self.zeroed):
                self.file.pwrite(e * SECTOR + within, chunk.tobytes())
            else:
                # a new grain: the parts not written come from the backing file (or are zero)
                if n == cb:
                    grain = chunk.tobytes()
                else:
                    base = bytearray(bytes(cb) if e == 1 else backing(cluster * cb, cb))
                    base[within:within + n] = chunk
                    grain = bytes(base)
                sector = self.next_sector
                self.file.pwrite(sector * SECTOR, grain)
                self.next_sector += cb // SECTOR
                self._set_entry(cluster, sector)
            pos += n

    def _stream_write(self, cluster: int, within: int, chunk: memoryview, entry: int,
                      backing: Any) -> None:
        if entry > 1 or (self.pending is not None and cluster < self.pending[0]):
            raise QemuError("Could not write to allocated cluster for streamOptimized", errno=5)
        if self.pending is None or self.pending[0] != cluster:
            self._flush_pending()
            self.pending = (cluster, bytearray(backing(cluster * self.cluster_bytes,
                                                       self.cluster_bytes)))
        self.pending[1][within:within + len(chunk)] = chunk

    def _flush_pending(self) -> None:
        if self.pending is None:
            return
        cluster, grain = self.pending
        self.pending = None
        data = zlib.compress(bytes(grain))
        rec = struct.pack("<QI", cluster * self.cluster_bytes // SECTOR, len(data)) + data
        rec += bytes(-len(rec) % SECTOR)
        sector = self.next_sector
        self.file.pwrite(sector * SECTOR, rec)
        self.next_sector += len(rec) // SECTOR
        self._set_entry(cluster, sector)
        self.stream_dirty = True

    def flush(self) -> None:
        self._flush_pending()
        if self.stream_dirty:
            # the end-of-stream marker after the last grain, as QEMU leaves it
            self.file.pwrite(self.next_sector * SECTOR, bytes(SECTOR))
            self.stream_dirty = False

    def status(self, offset: int, length: int) -> BlockStatus:
        cb = self.cluster_bytes
        cluster, within = divmod(offset, cb)
        n = min(length, cb - within)
        if cluster // self.gtes >= len(self.gd):
            return BlockStatus(0, length)   # past the directory's end: nothing allocated
        t = self._gt(cluster // self.gtes)
        if t is None:
            # no grain table: the whole span it would cover is unallocated
            span = (cluster // self.gtes + 1) * self.gtes * cb - offset
            return BlockStatus(0, min(length, span))
        e = t[cluster % self.gtes]
        if e == 0:
            while n < length and (cluster + 1) % self.gtes and t[(cluster + 1) % self.gtes] == 0:
                cluster += 1
                n = min(length, n + cb)
            return BlockStatus(0, n)
        if e == 1 and self.zeroed:
            return BlockStatus(STATUS_ZERO, n)
        if self.compressed:
            return BlockStatus(STATUS_DATA, n)
        return BlockStatus(STATUS_DATA | STATUS_OFFSET_VALID, n, e * SECTOR + within, self.file)


# --- VMFS sparse (COWD) extents ----------------------------------------------------------
COWD_MAGIC = b"COWD"
# magic, version, flags, disk sectors, sectors per grain, grain directory sector,
# grain directory entries, next free sector; the geometry words that follow are unused here
COWD_HEADER = struct.Struct("<4s7I")
COWD_GTES = 4096
MAX_COWD_GD_ENTRIES = 32 * 1024 * 1024


class CowdExtent(SparseExtent):
    """An old ESX sparse extent ("COWD"): a grain directory of 4096-entry grain tables.

    QEMU 7.2 trusts the header's directory size rather than the disk size, so a
    grain beyond the directory is an error for block status (reads give zeroes);
    the extent's size is the header's, whatever the descriptor line says.
    """

    def __init__(self, file: BlockNode, kind: str) -> None:
        head = file.pread(0, COWD_HEADER.size).ljust(COWD_HEADER.size, b"\0")
        (_, _version, flags, sectors, gran, gd, gd_entries, _free) = COWD_HEADER.unpack(head)
        if gran > MAX_GRAIN_SECTORS:
            raise QemuError("Invalid granularity, image may be corrupt")
        if gd_entries > MAX_COWD_GD_ENTRIES:
            raise QemuError("L1 size too big", errno=27)
        self.file = file
        self.kind = kind
        self.flags = flags
        self.compressed = False
        self.markers = False
        self.zeroed = False
        self.length = sectors * SECTOR
        self.cluster_bytes = gran * SECTOR
        self.gtes = COWD_GTES
        self.gd_entries = gd_entries
        # entries past the end of the file read as zero, as QEMU reads them; reading only
        # what the file holds keeps a hostile header from allocating a huge directory
        self.gd = self._directory(gd, gd_entries, file.length())
        self.rgd = None
        self.gt_cache = OrderedDict()
        self.read_only = True
        self.pending = None
        self.stream_dirty = False

    def _check_grain(self, offset: int) -> int:
        if self.cluster_bytes == 0:
            # qemu-img 7.2 dies of a division by zero here; an error is the kind answer
            raise QemuError("Invalid granularity, image may be corrupt", errno=5)
        cluster = offset // self.cluster_bytes
        return cluster

    def pread(self, offset: int, length: int, backing: Any) -> bytes:
        cb = self.cluster_bytes
        self._check_grain(offset)
        parts = []
        while length > 0:
            cluster, within = divmod(offset, cb)
            n = min(length, cb - within)
            e = 0 if cluster // self.gtes >= self.gd_entries else self.entry(cluster)
            parts.append(backing(offset, n) if e == 0 else self.file.pread(e * SECTOR + within, n))
            offset += n
            length -= n
        return b"".join(parts)

    def pwrite(self, offset: int, data: bytes, backing: Any) -> None:
        raise QemuError("Writing to VMFSSPARSE (COWD) extents is not supported by pyqemu",
                        errno=95)

    def status(self, offset: int, length: int) -> BlockStatus:
        cluster = self._check_grain(offset)
        if cluster // self.gtes >= self.gd_entries:
            raise QemuError("Input/output error", errno=5)
        return super().status(offset, length)

    def flush(self) -> None:
        pass


# --- the node --------------------------------------------------------------------------
def open_format(tree: Dict[str, Any], read_only: bool, file: BlockNode) -> "VmdkNode":
    return VmdkNode(tree, read_only, file)


class VmdkNode(BlockNode):
    driver = "vmdk"
    has_metadata = True
    supports_backing = True

    def __init__(self, options: Dict[str, Any], read_only: bool, file: BlockNode) -> None:
        super().__init__(options, read_only)
        self.file = file
        self.filename = file.filename
        self.extents: List[Any] = []
        self.extent_names: List[str] = []
        self._opened: List[BlockNode] = []
        self.desc_offset = 0
        try:
            self._open(file, read_only)
        except BaseException:
            for f in self._opened:
                f.close()
            raise
        self.starts = []
        total = 0
        for e in self.extents:
            self.starts.append(total)
            total += e.length
        self._size = total
        self.cid_updated = False

    def _open(self, file: BlockNode, read_only: bool) -> None:
        head = file.pread(0, SECTOR)
        if head[:4] == MAGIC:
            h = read_sparse_header(file)
            desc = file.pread(h[5] * SECTOR, min(h[6], DESC_SECTORS * 4) * SECTOR) if h[5] else b""
            self.desc_offset = h[5] * SECTOR
            self.desc = Descriptor(desc.split(b"\0", 1)[0].decode("latin-1"))
            self.extents.append(SparseExtent(file, h, "", read_only))
            self.extent_names.append(file.filename)
            self.create_type = self.desc.values.get("createType", "monolithicSparse")
            return
        if head[:4] == COWD_MAGIC:
            # qemu-img 7.2 reads the header, then finds no descriptor behind it and gives up
            raise QemuError("Could not open '%s': Invalid argument" % file.filename, errno=22)
        flen = file.length()
        if flen > (1 << 21):
            raise QemuError("File too large")
        # as QEMU, the descriptor text ends at the first NUL byte
        raw = file.pread(0, flen).split(b"\0", 1)[0]
        self.desc = Descriptor(raw.decode("latin-1"))
        ct = self.desc.values.get("createType")
        if ct is None:
            raise QemuError("invalid VMDK image descriptor")
        if ct not in ("monolithicFlat", "vmfs", "vmfsSparse", "twoGbMaxExtentSparse",
                      "twoGbMaxExtentFlat", "monolithicSparse", "streamOptimized", "custom"):
            raise QemuError("Unsupported image type '%s'" % ct, errno=95)
        self.create_type = ct
        base = os.path.dirname(file.filename)
        for access, sectors, kind, name, offset, fields in self.desc.extents:
            # QEMU 7.2 uses only read-write extents with a file name and skips the rest
            if access != "RW" or not fields >= 4:
                continue
            if (kind == "FLAT" and fields != 5) or (kind not in ("FLAT", "VMFS") and fields != 4):
                raise QemuError("Invalid extent line: %s" % self.desc.lines[(access, sectors, kind, name)])
            if sectors <= 0 or kind not in ("FLAT", "SPARSE", "VMFS", "VMFSSPARSE"):
                continue
            path = name if os.path.isabs(name) else os.path.join(base, name)
            f = FileNode({"filename": path}, read_only)
            self._opened.append(f)
            if kind in ("FLAT", "VMFS"):
                self.extents.append(FlatExtent(f, sectors, offset, kind))
            else:
                magic = f.pread(0, 4)
                if magic == COWD_MAGIC:
                    self.extents.append(CowdExtent(f, kind))
                else:
                    h = read_sparse_header(f) if magic == MAGIC else None
                    if h is None:
                        raise QemuError("Unsupported extent type '%s'" % kind, errno=95)
                    ext = SparseExtent(f, h, kind, read_only)
                    ext.length = sectors * SECTOR
                    self.extents.append(ext)
            self.extent_names.append(path)
        if not self.extents:
            raise QemuError("Invalid argument", errno=22)

    # --- information --------------------------------------------------------------------
    @property
    def cid(self) -> int:
        return self.desc.hex_value("CID", 0)

    def length(self) -> int:
        return self._size

    def _grain_sizes(self) -> set:
        return {e.cluster_bytes if e.sparse else 0 for e in self.extents}

    @property
    def has_bdrv_info(self) -> bool:
        # QEMU's vmdk get_info fails when the extents' grain sizes differ (a flat extent
        # counts as 0), so qemu-img info then shows neither cluster size nor dirty flag
        return len(self._grain_sizes()) == 1

    def cluster_size(self) -> int:
        if not self.has_bdrv_info:
            return 0
        e = self.extents[0]
        return e.cluster_bytes if e.sparse else 0

    def backing_filename(self) -> Optional[str]:
        return self.desc.values.get("parentFileNameHint") or None

    def backing_format(self) -> Optional[str]:
        return "vmdk" if self.backing_filename() else None

    def get_allocated_file_size(self) -> int:
        total = self.file.get_allocated_file_size()
        for f in self._opened:
            n = f.get_allocated_file_size()
            if n > 0:
                total += n
        return total

    def get_info(self) -> Dict[str, Any]:
        exts = []
        for e, name in zip(self.extents, self.extent_names):
            d: Dict[str, Any] = {}
            if e.sparse and e.compressed:
                d["compressed"] = True
            d["virtual-size"] = e.length
            d["filename"] = name
            if e.sparse:
                d["cluster-size"] = e.cluster_bytes
            d["format"] = e.kind
            exts.append(d)
        return {"cid": self.cid, "parent-cid": self.desc.hex_value("parentCID", 0xFFFFFFFF),
                "create-type": self.create_type, "extents": exts}

    # --- I/O ---------------------------------------------------------------------------------
    def _backing_read(self, offset: int, length: int) -> bytes:
        b = self.backing
        if b is None or offset >= b.length():
            return bytes(length)
        n = min(length, b.length() - offset)
        return b.pread(offset, n) + bytes(length - n)

    def _pieces(self, offset: int, length: int):
        i = 0
        while length > 0:
            while i + 1 < len(self.starts) and self.starts[i + 1] <= offset:
                i += 1
            start = self.starts[i]
            e = self.extents[i]
            n = min(length, start + e.length - offset)
            yield e, start, offset - start, n
            offset += n
            length -= n

    def pread(self, offset: int, length: int) -> bytes:
        self.check_io(offset, length)
        out = []
        for e, start, within, n in self._pieces(offset, length):
            out.append(e.pread(within, n, lambda o, m, s=start: self._backing_read(s + o, m)))
        return b"".join(out)

    def pwrite(self, offset: int, data: bytes) -> None:
        if self.read_only:
            raise QemuError("Permission denied", errno=13)
        self.check_io(offset, len(data))
        if not self.cid_updated:
            self._update_cid()
        pos = 0
        for e, start, within, n in self._pieces(offset, len(data)):
            e.pwrite(within, data[pos:pos + n], lambda o, m, s=start: self._backing_read(s + o, m))
            pos += n

    def _update_cid(self) -> None:
        """A written image gets a new CID, as QEMU gives it, so children notice the change."""
        self.cid_updated = True
        text = re.sub(r"(?m)^CID=[0-9a-fA-F]*", "CID=%x" % random.getrandbits(32), self.desc.text, 1)
        if self.desc_offset:
            if len(text.encode("latin-1")) <= DESC_SECTORS * SECTOR:
                self.file.pwrite(self.desc_offset, text.encode("latin-1"))
        elif not self.create_type.startswith("monolithicSparse"):
            self.file.pwrite(0, text.encode("latin-1"))
            self.file.truncate(len(text.encode("latin-1")))
        self.desc = Descriptor(text)

    def block_status(self, offset: int, length: int) -> BlockStatus:
        length = max(0, min(length, self._size - offset))
        for e, _start, within, n in self._pieces(offset, length):
            st = e.status(within, n)
            return st
        return BlockStatus(0, 0)

    def flush(self) -> None:
        for e in self.extents:
            e.flush()
        for f in self._opened:
            f.flush()
        super().flush()

    def _close(self) -> None:
        try:
            if not self.read_only:
                for e in self.extents:
                    e.flush()
        finally:
            for f in self._opened:
                f.close()


def check_image(node: VmdkNode, fix_leaks: bool = False, fix_errors: bool = False,
                quiet: bool = False) -> Any:
    """QEMU's vmdk check: the first allocated grain past the end of its file fails the check."""
    from pyqemu.block.vdi import CheckResult
    res = CheckResult()
    for e, start in zip(node.extents, node.starts):
        if not e.sparse:
            continue
        if e.cluster_bytes == 0:
            raise QemuError("Invalid granularity, image may be corrupt", errno=5)
        flen = e.file.length()
        per_table = e.gtes * e.cluster_bytes
        for gi in range(min(len(e.gd), (e.length + per_table - 1) // per_table)):
            t = e._gt(gi)
            if t is None:
                continue
            for ti, ent in enumerate(t):
                if ent == 0 or (ent == 1 and e.zeroed):
                    continue
                if ent * SECTOR >= flen:
                    guest = start + (gi * e.gtes + ti) * e.cluster_bytes
                    if guest >= start + e.length:
                        continue
                    sys.stderr.write("ERROR: cluster offset for sector %d points after EOF\n"
                                     % (guest // SECTOR))
                    sys.stderr.flush()
                    raise QemuError("Check failed: Invalid argument", errno=22)
        beyond = e.gd_entries * per_table if isinstance(e, CowdExtent) else e.length
        if beyond < e.length:
            # a COWD directory shorter than its disk: QEMU cannot map the next grain
            sys.stderr.write("ERROR: could not get cluster_offset for sector %d\n"
                             % ((start + beyond) // SECTOR))
            sys.stderr.flush()
            raise QemuError("Check failed: Operation not permitted", errno=1)
    return res


check_image.repairs = False  # type: ignore[attr-defined]
