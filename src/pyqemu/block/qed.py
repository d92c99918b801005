"""Format driver ``qed``: the QEMU Enhanced Disk format.

A 64-byte little-endian header, a two-level table (L1 -> L2 -> data
cluster, each table ``table_size`` clusters of 64-bit offsets; offset 1
marks a zero cluster) and an optional backing file.  Allocation appends
to the file: data clusters first, then a new L2 table, then the L1 entry,
so that a crash leaves leaks, never a table pointing at garbage.  The
"needs check" feature bit is set while allocating writes are in flight and
an image opened read-write with it set is checked and repaired first.
"""
from __future__ import annotations

import struct
import sys
from typing import Any, Dict, List, Optional

from pyqemu.block.file import FileNode, create_file
from pyqemu.block.node import STATUS_DATA, STATUS_OFFSET_VALID, STATUS_ZERO, BlockNode, BlockStatus
from pyqemu.util.error import QemuError
from pyqemu.util.opts import parse_size

MAGIC = b"QED\0"
HEADER = struct.Struct("<4sIIIQQQQQII")
F_BACKING_FILE = 1
F_NEED_CHECK = 2
F_BACKING_NO_PROBE = 4
FEATURE_MASK = F_BACKING_FILE | F_NEED_CHECK | F_BACKING_NO_PROBE
ZERO_CLUSTER = 1
MIN_CLUSTER, MAX_CLUSTER = 4096, 64 << 20
MIN_TABLE, MAX_TABLE = 1, 16
SECTOR = 512

PRINT_ORDER = [("size", None), ("backing_file", None), ("backing_fmt", None),
               ("cluster_size", "65536"), ("table_size", None)]
CREATE_HELP = [("backing_file", "<str>", "File name of a base image"),
               ("backing_fmt", "<str>", "Image format of the base image"),
               ("cluster_size", "<size>", "Cluster size (in bytes)"),
               ("size", "<size>", "Virtual disk size"),
               ("table_size", "<size>", "L1/L2 table size (in clusters)")]


def _pow2_in(v: int, lo: int, hi: int) -> bool:
    return lo <= v <= hi and not v & (v - 1)


def max_image_size(cluster_size: int, table_size: int) -> int:
    entries = table_size * cluster_size // 8
    return entries * entries * cluster_size


def create(filename: str, size: int, options: Dict[str, Any]) -> None:
    """``qemu-img create -f qed``: header cluster, then an empty L1 table."""
    for k in options:
        if k not in ("backing_file", "backing_fmt", "cluster_size", "table_size"):
            raise QemuError("Invalid parameter '%s'" % k)
    cs = parse_size("cluster_size", str(options.get("cluster_size", "65536")))
    ts = parse_size("table_size", str(options.get("table_size", "4")))
    if not _pow2_in(cs, MIN_CLUSTER, MAX_CLUSTER):
        raise QemuError("QED cluster size must be within range [%d, %d] and power of 2"
                        % (MIN_CLUSTER, MAX_CLUSTER))
    if not _pow2_in(ts, MIN_TABLE, MAX_TABLE):
        raise QemuError("QED table size must be within range [%d, %d] and power of 2"
                        % (MIN_TABLE, MAX_TABLE))
    size = (size + SECTOR - 1) // SECTOR * SECTOR
    if size == 0 or size > max_image_size(cs, ts):
        raise QemuError("QED image size must be a non-zero multiple of cluster size and less "
                        "than %d bytes" % max_image_size(cs, ts))
    features = 0
    backing = options.get("backing_file")
    name = b""
    if backing:
        features |= F_BACKING_FILE
        name = str(backing).encode()
        if options.get("backing_fmt") == "raw":
            features |= F_BACKING_NO_PROBE
    head = HEADER.pack(MAGIC, cs, ts, 1, features, 0, 0, cs, size,
                       HEADER.size if name else 0, len(name))
    if HEADER.size + len(name) > cs:
        raise QemuError("Backing file name too long")
    create_file(filename, 0)
    f = FileNode({"filename": filename}, False)
    try:
        f.pwrite(0, head + name)
        f.truncate(cs * (1 + ts))
    finally:
        f.close()


def open_format(tree: Dict[str, Any], read_only: bool, file: BlockNode) -> "QedNode":
    return QedNode(tree, read_only, file)


class QedNode(BlockNode):
    driver = "qed"
    has_metadata = True
    supports_backing = True

    def __init__(self, options: Dict[str, Any], read_only: bool, file: BlockNode) -> None:
        super().__init__(options, read_only)
        self.file = file
        self.filename = file.filename
        raw = file.pread(0, HEADER.size)
        (magic, cs, ts, hs, features, compat, autoclear, l1_off, size, bf_off,
         bf_size) = HEADER.unpack(raw)
        if magic != MAGIC:
            raise QemuError("Image not in QED format")
        if features & ~FEATURE_MASK:
            raise QemuError("Unsupported QED features: %x" % (features & ~FEATURE_MASK), errno=95)
        if not _pow2_in(cs, MIN_CLUSTER, MAX_CLUSTER):
            raise QemuError("QED cluster size is invalid")
        if not _pow2_in(ts, MIN_TABLE, MAX_TABLE):
            raise QemuError("QED table size is invalid")
        if size % SECTOR or size > max_image_size(cs, ts):
            raise QemuError("QED image size is invalid")
        if hs > 0xFFFFFFFF // cs:
            raise QemuError("QED header size is too large")
        self.cs, self.ts, self.header_size = cs, ts, hs
        self.features = features
        self.l1_offset = l1_off
        self._size = size
        self.entries = ts * cs // 8
        self.file_size = file.length() // cs * cs
        if not self._table_ok(l1_off):
            raise QemuError("QED table offset is invalid")
        self.backing_name: Optional[str] = None
        if features & F_BACKING_FILE:
            if bf_off + bf_size > cs * hs:
                raise QemuError("QED backing filename offset is invalid")
            self.backing_name = file.pread(bf_off, bf_size).decode("utf-8", "replace")
        self.l1 = list(struct.unpack("<%dQ" % self.entries, file.pread(l1_off, ts * cs)))
        self.l2_cache: Dict[int, List[int]] = {}
        if not read_only and autoclear:
            self.file.pwrite(40, struct.pack("<Q", 0))
        if not read_only and features & F_NEED_CHECK:
            # an unclean shutdown: repair before anything is written
            check_image(self, fix_leaks=True, fix_errors=True, quiet=True)
            self._set_need_check(False)

    # --- helpers ------------------------------------------------------------------
    def _cluster_ok(self, off: int) -> bool:
        return off % self.cs == 0 and off >= self.header_size * self.cs and off < self.file_size

    def _table_ok(self, off: int) -> bool:
        # QEMU checks the first and last cluster of the table, and (an overflow guard that
        # also refuses every table_size=1 image) requires the last to lie after the first
        end = off + (self.ts - 1) * self.cs
        return end > off and self._cluster_ok(off) and self._cluster_ok(end)

    def _set_need_check(self, on: bool) -> None:
        if on == bool(self.features & F_NEED_CHECK):
            return
        self.features = self.features | F_NEED_CHECK if on else self.features & ~F_NEED_CHECK
        self.file.pwrite(16, struct.pack("<Q", self.features))
        self.file.flush()

    def _l2(self, l1_index: int) -> Optional[List[int]]:
        off = self.l1[l1_index]
        if off == 0:
            return None
        t = self.l2_cache.get(off)
        if t is None:
            if not self._table_ok(off):
                raise QemuError("Input/output error", errno=5)
            t = list(struct.unpack("<%dQ" % self.entries, self.file.pread(off, self.ts * self.cs)))
            if len(self.l2_cache) > 32:
                self.l2_cache.clear()
            self.l2_cache[off] = t
        return t

    def _entry(self, cluster: int) -> int:
        t = self._l2(cluster // self.entries)
        return 0 if t is None else t[cluster % self.entries]

    # --- information ------------------------------------------------------------
    def length(self) -> int:
        return self._size

    def cluster_size(self) -> int:
        return self.cs

    def backing_filename(self) -> Optional[str]:
        return self.backing_name

    def backing_format(self) -> Optional[str]:
        return "raw" if self.features & F_BACKING_NO_PROBE else None

    def truncate(self, size: int, prealloc: str = "off", exact: bool = False) -> None:
        """Growing only, within what the L1/L2 tables can map (as QEMU)."""
        if prealloc != "off":
            raise QemuError("Unsupported preallocation mode '%s'" % prealloc)
        if size % SECTOR or size > max_image_size(self.cs, self.ts):
            raise QemuError("Invalid image size specified")
        if size < self._size:
            raise QemuError("Shrinking images is currently not supported")
        self.file.pwrite(48, struct.pack("<Q", size))
        self._size = size

    # --- I/O ---------------------------------------------------------------------
    def _backing_read(self, offset: int, length: int) -> bytes:
        b = self.backing
        if b is None or offset >= b.length():
            return bytes(length)
        n = min(length, b.length() - offset)
        return b.pread(offset, n) + bytes(length - n)

    def pread(self, offset: int, length: int) -> bytes:
        self.check_io(offset, length)
        cs = self.cs
        out = []
        while length > 0:
            cluster, within = divmod(offset, cs)
            n = min(length, cs - within)
            e = self._entry(cluster)
            if e == 0:
                out.append(self._backing_read(offset, n))
            elif e == ZERO_CLUSTER:
                out.append(bytes(n))
            else:
                if not self._cluster_ok(e):
                    raise QemuError("Input/output error", errno=5)
                out.append(self.file.pread(e + within, n))
            offset += n
            length -= n
        return b"".join(out)

    def _alloc(self, clusters: int) -> int:
        off = self.file_size
        self.file_size += clusters * self.cs
        return off

    def pwrite(self, offset: int, data: bytes) -> None:
        if self.read_only:
            raise QemuError("Permission denied", errno=13)
        self.check_io(offset, len(data))
        cs = self.cs
        view = memoryview(data)
        pos = 0
        while pos < len(data):
            cluster, within = divmod(offset + pos, cs)
            n = min(len(data) - pos, cs - within)
            e = self._entry(cluster)
            if e > ZERO_CLUSTER:
                if not self._cluster_ok(e):
                    raise QemuError("Input/output error", errno=5)
                self.file.pwrite(e + within, view[pos:pos + n].tobytes())
            else:
                self._set_need_check(True)
                if n == cs:
                    buf = view[pos:pos + n].tobytes()
                else:
                    grain = bytearray(bytes(cs) if e == ZERO_CLUSTER else
                                      self._backing_read(cluster * cs, cs))
                    grain[within:within + n] = view[pos:pos + n]
                    buf = bytes(grain)
                host = self._alloc(1)
                self.file.pwrite(host, buf)
                self._set_entry(cluster, host)
            pos += n

    def _set_entry(self, cluster: int, value: int) -> None:
        li, ti = divmod(cluster, self.entries)
        t = self._l2(li)
        if t is None:
            t = [0] * self.entries
            t[ti] = value
            off = self._alloc(self.ts)
            self.file.pwrite(off, struct.pack("<%dQ" % self.entries, *t))
            self.l2_cache[off] = t
            self.l1[li] = off
            self.file.pwrite(self.l1_offset + li * 8, struct.pack("<Q", off))
            return
        t[ti] = value
        self.file.pwrite(self.l1[li] + ti * 8, struct.pack("<Q", value))

    def block_status(self, offset: int, length: int) -> BlockStatus:
        length = max(0, min(length, self._size - offset))
        cs = self.cs
        cluster, within = divmod(offset, cs)
        e = self._entry(cluster)
        n = min(length, cs - within)

        def kind(x: int) -> int:
            return 0 if x == 0 else (1 if x == ZERO_CLUSTER else 2)

        k = kind(e)
        # runs of the same kind; data runs only while contiguous on the host
        while n < length:
            e2 = self._entry(cluster + 1)
            if kind(e2) != k or (k == 2 and e2 != e + cs):
                break
            cluster += 1
            e = e2
            n = min(length, n + cs)
        if k == 0:
            return BlockStatus(0, n)
        if k == 1:
            return BlockStatus(STATUS_ZERO, n)
        first = self._entry(offset // cs)
        return BlockStatus(STATUS_DATA | STATUS_OFFSET_VALID, n, first + within, self.file)

    def flush(self) -> None:
        super().flush()
        if not self.read_only and self.features & F_NEED_CHECK:
            self._set_need_check(False)

    def _close(self) -> None:
        if not self.read_only and self.features & F_NEED_CHECK:
            self.file.flush()
            self._set_need_check(False)


class CheckResult:
    def __init__(self) -> None:
        self.corruptions = self.leaks = self.check_errors = 0
        self.corruptions_fixed = self.leaks_fixed = 0
        self.image_end_offset = self.total_clusters = self.allocated_clusters = 0
        self.fragmented_clusters = self.compressed_clusters = 0


def check_image(node: QedNode, fix_leaks: bool = False, fix_errors: bool = False,
                quiet: bool = False) -> CheckResult:
    """QEMU's QED check: tables and clusters inside the file, each used once, the rest leaked.

    With any repair flag invalid entries are cleared; leaks are not repaired (as in QEMU 7.2).
    """
    res = CheckResult()
    fix_errors = fix_errors or fix_leaks   # QEMU's qed check repairs with any -r
    cs = node.cs
    nclusters = node.file_size // cs
    used = bytearray(nclusters)

    def mark(off: int, n: int) -> bool:
        """Note clusters as referenced; False if one already was (each is counted)."""
        c = off // cs
        clean = True
        for i in range(c, min(c + n, nclusters)):
            if used[i]:
                res.corruptions += 1
                clean = False
            used[i] = 1
        return clean

    mark(node.l1_offset, node.ts)
    l1_dirty = False
    for li, off in enumerate(node.l1):
        if off == 0:
            continue
        if not node._table_ok(off):
            if fix_errors:
                node.l1[li] = 0
                l1_dirty = True
                res.corruptions_fixed += 1
            else:
                res.corruptions += 1
            continue
        if not mark(off, node.ts):
            continue   # a table sharing clusters is not trusted further (as QEMU)
        table = list(struct.unpack("<%dQ" % node.entries, node.file.pread(off, node.ts * cs)))
        last = 0
        fixed = False
        for i, e in enumerate(table):
            if e in (0, ZERO_CLUSTER):
                continue
            res.allocated_clusters += 1
            if last and last + cs != e:
                res.fragmented_clusters += 1
            last = e
            if not node._cluster_ok(e):
                if fix_errors:
                    table[i] = 0
                    fixed = True
                    res.corruptions_fixed += 1
                else:
                    res.corruptions += 1
                continue
            mark(e, 1)
        if fixed:
            node.file.pwrite(off, struct.pack("<%dQ" % node.entries, *table))
            node.l2_cache.pop(off, None)
    if l1_dirty:
        node.file.pwrite(node.l1_offset, struct.pack("<%dQ" % node.entries, *node.l1))
    for i in range(node.header_size, nclusters):
        if not used[i]:
            res.leaks += 1
    res.total_clusters = (node.length() + cs - 1) // cs
    if not quiet:
        sys.stderr.flush()
    return res
