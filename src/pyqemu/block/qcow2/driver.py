"""The qcow2 node: guest offsets -> L1 -> L2 -> host clusters.

Reads coalesce runs of clusters that are contiguous on the host into one
``pread``; writes allocate clusters from :class:`Refcounts`, copy the parts
of a partially written cluster from the backing file (or zeroes), and write
data before metadata.  Metadata is cached: L2 tables (bounded by
``l2-cache-size``) and refcount blocks (``refcount-cache-size``); ``flush``
writes refcounts, then L2 tables, then the L1 table.
"""
from __future__ import annotations

import struct
import zlib
from collections import OrderedDict
from typing import Any, Dict, Iterator, List, Optional, Tuple

from pyqemu.block.node import (STATUS_DATA, STATUS_OFFSET_VALID, STATUS_RECURSE, STATUS_ZERO, BlockNode,
                               BlockStatus)
from pyqemu.block.qcow2.header import (AUTOCLEAR_BITMAPS, AUTOCLEAR_DATA_FILE_RAW, COMPAT_LAZY_REFCOUNTS,
                                       EXT_BITMAPS, EXT_DATA_FILE,
                                       INCOMPAT_CORRUPT, INCOMPAT_DATA_FILE, INCOMPAT_DIRTY, INCOMPAT_EXTL2,
                                       Header)
from pyqemu.block.qcow2.refcount import Refcounts
from pyqemu.util.error import QemuError
from pyqemu.util.opts import parse_size

L1_OFFSET_MASK = 0x00FFFFFFFFFFFE00
L2_OFFSET_MASK = 0x00FFFFFFFFFFFE00
COPIED = 1 << 63
COMPRESSED = 1 << 62
ZERO_FLAG = 1

# cluster kinds
UNALLOC, NORMAL, ZERO_PLAIN, ZERO_ALLOC, COMPRESSED_KIND = range(5)


def _run_length(table: List[int], i: int, n: int, first: int, step: int) -> int:
    """How many entries from ``table[i]`` (== ``first``, at most ``n``) continue
    ``first, first + step, ...``: list slices compared in C, halving the length."""
    def matches(k: int) -> bool:
        want = list(range(first, first + k * step, step)) if step else [0] * k
        return table[i:i + k] == want
    if matches(n):
        return n
    lo, hi = 1, n  # a prefix of lo entries matches, one of hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if matches(mid):
            lo = mid
        else:
            hi = mid
    return lo


class Qcow2Node(BlockNode):
    driver = "qcow2"
    has_metadata = True
    supports_backing = True

    def __init__(self, options: Dict[str, Any], read_only: bool, file: BlockNode) -> None:
        super().__init__(options, read_only)
        self.file = file
        self.filename = file.filename
        flen = file.length()
        head = file.pread(0, min(max(flen, 0), 1 << 21) or 0)
        if len(head) < 4 or head[:4] != b"QFI\xfb":
            raise QemuError("Image is not in qcow2 format")
        h = Header.parse(head[:1 << 21], flen)
        head = head[:h.cluster_size]
        self.header = h
        self.cs = cs = h.cluster_size
        self.cluster_bits = h.cluster_bits
        # extended L2 entries: 16 bytes (entry + subcluster bitmap), 32 subclusters a cluster
        self.ext_l2 = bool(h.incompatible & INCOMPAT_EXTL2)
        self.l2_entries = cs // 16 if self.ext_l2 else cs // 8
        self.l2_bits = self.l2_entries.bit_length() - 1
        self.sc_size = cs // 32 if self.ext_l2 else cs
        self.l2_bitmaps: Dict[int, List[int]] = {}
        self._size = h.size
        if h.l1_size and h.l1_table_offset + h.l1_size * 8 > max(flen, 0) + cs * 0 and \
                h.l1_table_offset + h.l1_size * 8 > flen:
            raise QemuError("Active L1 table offset invalid: points beyond the end of the file")
        if h.refcount_table_offset + h.refcount_table_clusters * cs > flen:
            raise QemuError("Reference count table offset invalid: points beyond the end of the file")
        if h.l1_table_offset and h.l1_table_offset < cs and h.l1_size:
            raise QemuError("Active L1 table overlaps the image header")
        raw = file.pread(h.l1_table_offset, h.l1_size * 8) if h.l1_size else b""
        self.l1: List[int] = list(struct.unpack(">%dQ" % h.l1_size, raw))
        self.l1_dirty = False
        l2_cache = options.get("l2-cache-size")
        rc_cache = options.get("refcount-cache-size")
        total = options.get("cache-size")
        l2_bytes = parse_size("l2-cache-size", str(l2_cache)) if l2_cache is not None else None
        if l2_bytes is None:
            l2_bytes = parse_size("cache-size", str(total)) if total is not None else 32 << 20
        rc_bytes = parse_size("refcount-cache-size", str(rc_cache)) if rc_cache is not None \
            else max(4 * cs, l2_bytes // 4)
        self.l2_cache_max = max(2, min(l2_bytes // cs, 1 << 16))
        self.l2_cache: "OrderedDict[int, List[int]]" = OrderedDict()
        self.l2_dirty: Dict[int, bool] = {}
        self.refcounts = Refcounts(self, max(4, rc_bytes // cs))
        self.compression_type = h.compression_type
        self._prealloc_detected: Optional[bool] = None
        self.data: BlockNode = file
        self.data_file_name: Optional[str] = None
        if h.incompatible & INCOMPAT_DATA_FILE:
            self._open_data_file(options, read_only)
        self.corrupt = bool(h.incompatible & INCOMPAT_CORRUPT)
        if self.corrupt and not read_only:
            if self.data is not file:
                self.data.close()
            raise QemuError("qcow2: Image is corrupt; cannot be opened read/write")
        if h.version >= 3 and h.ext(EXT_BITMAPS) is not None and not h.autoclear & AUTOCLEAR_BITMAPS:
            import sys
            from pyqemu.util.error import warn_report
            warn_report("a program lacking bitmap support modified this file, so all bitmaps are now "
                        "considered inconsistent")
            # (sic: QEMU ends this line without a newline)
            sys.stderr.write("Some clusters may be leaked, run 'qemu-img check -r' on the image file to fix.")
            sys.stderr.flush()
        if not read_only and h.version >= 3 and h.autoclear & ~AUTOCLEAR_DATA_FILE_RAW:
            # Autoclear features this writer does not maintain (persistent dirty
            # bitmaps) must be declared invalid before anything changes: QEMU then
            # treats those bitmaps as inconsistent instead of trusting stale ones.
            h.autoclear &= AUTOCLEAR_DATA_FILE_RAW
            file.pwrite(88, struct.pack(">Q", h.autoclear))
            file.flush()
        self.dirty_repaired = False
        if h.incompatible & INCOMPAT_DIRTY and not read_only:
            self._repair_dirty()
        elif h.incompatible & INCOMPAT_DIRTY and h.version >= 3 and \
                not h.compatible & COMPAT_LAZY_REFCOUNTS:
            pass  # read-only: the refcounts are not used for reading
        self._compressed_cur = 0  # host offset where the next compressed cluster may go

    def _open_data_file(self, options: Dict[str, Any], read_only: bool) -> None:
        """External data file: guest data lives there at the guest offsets (unrefcounted)."""
        from pyqemu.block.file import FileNode
        from pyqemu.block.node import PERM_CONSISTENT_READ, PERM_RESIZE, PERM_WRITE, PERM_WRITE_UNCHANGED
        from pyqemu.block.open import resolve_backing_path
        name = self.header.ext(EXT_DATA_FILE)
        spec = options.get("data-file")
        if isinstance(spec, dict):
            path = str(spec.get("filename", ""))
        elif spec:
            path = str(spec)
        elif name:
            self.data_file_name = name.decode("utf-8", "replace")
            path = resolve_backing_path(self.filename, self.data_file_name)
        else:
            raise QemuError("'data-file' is required for this image")
        if self.data_file_name is None and name:
            self.data_file_name = name.decode("utf-8", "replace")
        node = FileNode({"filename": path}, read_only)
        perm = PERM_CONSISTENT_READ | (0 if read_only else PERM_WRITE | PERM_RESIZE)
        try:
            node.set_perm(perm, PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED)
        except QemuError:
            node.close()
            raise
        self.data = node

    def data_file_raw(self) -> bool:
        return bool(self.header.autoclear & AUTOCLEAR_DATA_FILE_RAW)

    def _repair_dirty(self) -> None:
        """A dirty image (lazy refcounts, unclean shutdown): rebuild refcounts first."""
        from pyqemu.block.qcow2.check import check_image
        check_image(self, fix_leaks=True, fix_errors=True, quiet=True)
        self.header.incompatible &= ~INCOMPAT_DIRTY
        self._write_header_features()
        self.dirty_repaired = True

    def _write_header_features(self) -> None:
        self.file.pwrite(72, struct.pack(">Q", self.header.incompatible))

    # --- size/info ----------------------------------------------------------------
    def length(self) -> int:
        return self._size

    def cluster_size(self) -> int:
        return self.cs

    def backing_filename(self) -> Optional[str]:
        return self.header.backing_file

    def backing_format(self) -> Optional[str]:
        return self.header.backing_format

    def is_dirty(self) -> bool:
        return bool(self.header.incompatible & INCOMPAT_DIRTY)

    def get_info(self) -> Dict[str, Any]:
        h = self.header
        if h.version == 2:
            return {"compat": "0.10", "compression-type": "zlib", "refcount-bits": 1 << h.refcount_order}
        from pyqemu.block.qcow2.bitmaps import bitmap_infos
        bitmaps = bitmap_infos(self)
        return {"compat": "1.1",
                "compression-type": "zstd" if h.compression_type else "zlib",
                "lazy-refcounts": bool(h.compatible & COMPAT_LAZY_REFCOUNTS),
                **({"bitmaps": bitmaps} if bitmaps else {}),
                "refcount-bits": 1 << h.refcount_order,
                **({"data-file": self.data_file_name, "data-file-raw": self.data_file_raw()}
                   if self.data is not self.file else {}),
                "corrupt": bool(h.incompatible & INCOMPAT_CORRUPT),
                "extended-l2": self.ext_l2}

    # --- L2 access ----------------------------------------------------------------
    def parse_l2(self, raw: bytes) -> Tuple[List[int], List[int]]:
        """An L2 table's entries and (extended L2) subcluster bitmaps."""
        vals = struct.unpack(">%dQ" % (len(raw) // 8), raw)
        if self.ext_l2:
            return list(vals[0::2]), list(vals[1::2])
        return list(vals), []

    def pack_l2(self, l2_off: int, table: List[int]) -> bytes:
        if self.ext_l2:
            bitmaps = self.l2_bitmaps.get(l2_off) or [0] * len(table)
            vals = [v for pair in zip(table, bitmaps) for v in pair]
            return struct.pack(">%dQ" % len(vals), *vals)
        return struct.pack(">%dQ" % len(table), *table)

    def _l2(self, l1_index: int, create: bool = False) -> Optional[Tuple[List[int], int]]:
        if l1_index >= len(self.l1):
            if not create:
                return None
            raise QemuError("L1 index %d out of range" % l1_index)
        l2_off = self.l1[l1_index] & L1_OFFSET_MASK
        if l2_off == 0:
            if not create:
                return None
            l2_off = self.refcounts.alloc(1)
            table = [0] * self.l2_entries
            self.file.pwrite(l2_off, bytes(self.cs))
            self.l2_cache[l2_off] = table
            if self.ext_l2:
                self.l2_bitmaps[l2_off] = [0] * self.l2_entries
            self.l2_dirty[l2_off] = True
            self.l1[l1_index] = l2_off | COPIED
            self.l1_dirty = True
            self._evict_l2()
            return table, l2_off
        if create and not self.l1[l1_index] & COPIED:
            return self._cow_l2(l1_index, l2_off)
        table = self.l2_cache.get(l2_off)
        if table is None:
            if l2_off % self.cs:
                self._mark_corrupt("L2 table offset %#x unaligned (L1 index: %#x)" % (l2_off, l1_index))
            raw = self.file.pread(l2_off, self.cs)
            table, bitmaps = self.parse_l2(raw)
            self.l2_cache[l2_off] = table
            if self.ext_l2:
                self.l2_bitmaps[l2_off] = bitmaps
            self._evict_l2()
        else:
            self.l2_cache.move_to_end(l2_off)
        return table, l2_off

    def _cow_l2(self, l1_index: int, old_off: int) -> Tuple[List[int], int]:
        """An L2 table shared with a snapshot is copied before it is changed."""
        old = self._l2(l1_index)
        assert old is not None
        table = list(old[0])
        new_off = self.refcounts.alloc(1)
        if self.ext_l2:
            self.l2_bitmaps[new_off] = list(self.l2_bitmaps.get(old_off) or [0] * len(table))
        self.refcounts.flush()
        self.file.pwrite(new_off, self.pack_l2(new_off, table))
        self.l2_cache[new_off] = table
        self.l1[l1_index] = new_off | COPIED
        self.l1_dirty = True
        self.flush_metadata()
        self.refcounts.update(old_off, self.cs, -1)
        self._evict_l2()
        return table, new_off

    def _evict_l2(self) -> None:
        while len(self.l2_cache) > self.l2_cache_max:
            off, table = next(iter(self.l2_cache.items()))
            if self.l2_dirty.pop(off, False):
                if self.io_barrier is not None:
                    self.io_barrier()
                self.refcounts.flush()
                self.file.pwrite(off, self.pack_l2(off, table))
            del self.l2_cache[off]
            self.l2_bitmaps.pop(off, None)

    def _mark_corrupt(self, why: str) -> None:
        if not self.read_only and not self.corrupt:
            self.header.incompatible |= INCOMPAT_CORRUPT
            self.corrupt = True
            try:
                self._write_header_features()
            except QemuError:
                pass
        raise QemuError("Marking image as corrupt: %s; further corruption events will be suppressed"
                        % why if not self.read_only else "Image is corrupt: %s" % why)

    def _entry(self, cluster: int) -> int:
        """The L2 entry of a cluster.  With extended L2 entries, a standard entry
        equivalent to entry + bitmap: all subclusters zero -> zero flag, all
        allocated -> as is, anything mixed -> COPIED cleared so that writers
        rewrite the whole cluster."""
        res = self._l2(cluster >> self.l2_bits)
        if res is None:
            return 0
        idx = cluster & (self.l2_entries - 1)
        entry = res[0][idx]
        if not self.ext_l2 or entry & COMPRESSED:
            return entry
        bitmap = self.l2_bitmaps[res[1]][idx]
        full = self._full_alloc_bits(cluster)
        if bitmap >> 32 == 0xFFFFFFFF or (bitmap >> 32) & full == full and not bitmap & 0xFFFFFFFF:
            return (entry & ~COPIED) | ZERO_FLAG if entry & L2_OFFSET_MASK else ZERO_FLAG
        if bitmap & full == full:
            return entry
        if bitmap == 0 and not entry & L2_OFFSET_MASK:
            return 0
        # mixed: the cluster is rewritten whole from what the guest sees (pread)
        return entry & ~COPIED if entry & L2_OFFSET_MASK else 0

    def _full_alloc_bits(self, cluster: int) -> int:
        """Bitmap bits of the subclusters of ``cluster`` that lie inside the image."""
        start = cluster << self.cluster_bits
        n = min(32, -(-(self._size - start) // self.sc_size)) if self._size > start else 32
        return (1 << n) - 1

    def _kind(self, entry: int) -> int:
        if entry & COMPRESSED:
            return COMPRESSED_KIND
        # host offset 0 is a real cluster of an external data file when COPIED is set
        off = entry & L2_OFFSET_MASK or (entry & COPIED and self.data is not self.file)
        if entry & ZERO_FLAG and self.header.version >= 3:
            return ZERO_ALLOC if off else ZERO_PLAIN
        return NORMAL if off else UNALLOC

    def _extents(self, offset: int, length: int) -> Iterator[Tuple[int, int, int, int, int]]:
        """Runs ``(kind, guest_offset, length, host_offset, entry)`` covering the range.

        Neighbouring clusters of one kind merge when (for NORMAL/ZERO_ALLOC)
        their host offsets are contiguous; compressed clusters never merge.
        """
        cs = self.cs
        end = offset + length
        pos = offset
        cur = None
        l2_entries = self.l2_entries
        l2_shift = self.l2_bits
        cbits = self.cluster_bits
        flen_limit = None
        while pos < end:
            cluster = pos >> cbits
            res = self._l2(cluster >> l2_shift)
            l2_idx = cluster & (l2_entries - 1)
            # handle every cluster of this L2 table that the range covers
            n_in_table = min(l2_entries - l2_idx, ((end - 1) >> cbits) - cluster + 1)
            if res is None:
                # no L2 table: the whole range it would map is unallocated, in one step
                e = min(end, (cluster + n_in_table) << cbits)
                if cur is not None and cur[0] == UNALLOC:
                    cur[2] += e - pos
                else:
                    if cur is not None:
                        yield tuple(cur)  # type: ignore[misc]
                    cur = [UNALLOC, pos, e - pos, 0, 0]
                pos = e
                continue
            bitmaps = self.l2_bitmaps.get(res[1]) if self.ext_l2 else None
            table = res[0]
            prev = -1
            j = 0
            while j < n_in_table:
                entry = table[l2_idx + j]
                if prev >= 0 and cur is not None and bitmaps is None and \
                        ((entry == prev + cs and not entry & COMPRESSED and
                          (entry & L2_OFFSET_MASK) < flen_limit) or entry == prev == 0):
                    # fast path: the next clusters of a contiguous run (or of an unallocated
                    # one), as many as the table holds in a row, found by list compares in C
                    step = cs if entry else 0
                    k = _run_length(table, l2_idx + j, n_in_table - j, entry, step)
                    if step:  # stop before a cluster past the end of the file (reported below)
                        k = min(k, -(-(flen_limit - (entry & L2_OFFSET_MASK)) // cs))
                    c_first = (cluster + j) << cbits
                    cur[2] += min(end, c_first + (k << cbits)) - c_first
                    prev = entry + (k - 1) * step
                    j += k
                    continue
                jj = j
                j += 1
                prev = entry if bitmaps is None and (entry == 0 or flen_limit is not None) else -1
                c_start = (cluster + jj) << cbits
                s = max(pos, c_start)
                e = min(end, c_start + cs)
                if bitmaps is not None and not entry & COMPRESSED:
                    cur = yield from self._ext_subclusters(cur, entry, bitmaps[l2_idx + jj], c_start, s, e)
                    pos = e
                    continue
                kind = self._kind(entry)
                host = entry & L2_OFFSET_MASK if kind != COMPRESSED_KIND else 0
                if kind in (NORMAL, ZERO_ALLOC):
                    if host % cs:
                        self._mark_corrupt("Cluster allocation offset %#x unaligned (L2 offset: %#x, "
                                           "L2 index: %#x)" % (host, res[1], l2_idx + jj))
                    if flen_limit is None:
                        flen_limit = max(self.file.length(), self.refcounts.alloc_end * cs) \
                            if self.data is self.file else 1 << 62
                    if host >= flen_limit and kind == NORMAL:
                        self._mark_corrupt("Data cluster %#x points beyond the end of the image" % host)
                    host += s - c_start
                if cur is not None and cur[0] == kind and kind != COMPRESSED_KIND and \
                        (kind in (UNALLOC, ZERO_PLAIN) or cur[3] + cur[2] == host):
                    cur[2] += e - s
                else:
                    if cur is not None:
                        yield tuple(cur)  # type: ignore[misc]
                    cur = [kind, s, e - s, host, entry]
                pos = e
            pos = min(end, (cluster + n_in_table) << cbits)
        if cur is not None:
            yield tuple(cur)  # type: ignore[misc]

    def _ext_subclusters(self, cur, entry: int, bitmap: int, c_start: int, s: int, e: int):
        """Extended L2: split a cluster into runs of subclusters of one kind."""
        sc = self.sc_size
        base = entry & L2_OFFSET_MASK
        if bitmap & (bitmap >> 32) & 0xFFFFFFFF:
            self._mark_corrupt("Invalid cluster entry found (L2 bitmap %#x: subclusters both "
                               "allocated and zero)" % bitmap)
        while s < e:
            i = (s - c_start) // sc
            se = min(e, c_start + (i + 1) * sc)
            if bitmap >> (32 + i) & 1:
                # a zero subcluster of a cluster with a host offset: QEMU maps it there
                kind, host = (ZERO_ALLOC, base + (s - c_start)) if base else (ZERO_PLAIN, 0)
            elif bitmap >> i & 1:
                if (not base and self.data is self.file) or base % self.cs:
                    self._mark_corrupt("Data cluster offset %#x invalid for an allocated subcluster" % base)
                kind, host = NORMAL, base + (s - c_start)
            else:
                # unallocated, possibly with a reserved host cluster (preallocation)
                kind, host = UNALLOC, (base + (s - c_start)) if base else 0
            if cur is not None and cur[0] == kind and (cur[3] + cur[2] == host if host else not cur[3]):
                cur[2] += se - s
            else:
                if cur is not None:
                    yield tuple(cur)
                cur = [kind, s, se - s, host, entry]
            s = se
        return cur

    # --- reading ------------------------------------------------------------------
    def pread(self, offset: int, length: int) -> bytes:
        self.check_io(offset, length)
        if length == 0:
            return b""
        parts = []
        for kind, goff, n, host, entry in self._extents(offset, length):
            if kind == NORMAL:
                parts.append(self.data.pread(host, n))
            elif kind == COMPRESSED_KIND:
                data = self._read_compressed(entry)
                s = goff & (self.cs - 1)
                parts.append(data[s:s + n])
            elif kind == UNALLOC and self.backing is not None:
                parts.append(self._read_backing(goff, n))
            else:
                parts.append(bytes(n))
        return b"".join(parts)

    def read_plan(self, offset: int, length: int) -> List[Any]:
        self.check_io(offset, length)
        plan: List[Any] = []
        for kind, goff, n, host, entry in self._extents(offset, length):
            if kind == NORMAL:
                plan.extend(self.data.read_plan(host, n))
            elif kind == COMPRESSED_KIND:
                s = goff & (self.cs - 1)
                plan.append((None, self._read_compressed(entry)[s:s + n], n))
            elif kind == UNALLOC and self.backing is not None:
                blen = self.backing.length()
                inside = max(0, min(n, blen - goff))
                if inside:
                    plan.extend(self.backing.read_plan(goff, inside))
                if inside < n:
                    plan.append((None, None, n - inside))
            else:
                plan.append((None, None, n))
        return plan

    def _read_backing(self, offset: int, n: int) -> bytes:
        blen = self.backing.length()
        if offset >= blen:
            return bytes(n)
        if offset + n <= blen:
            return self.backing.pread(offset, n)
        return self.backing.pread(offset, blen - offset) + bytes(offset + n - blen)

    def _compressed_geometry(self, entry: int) -> Tuple[int, int]:
        x = 62 - (self.cluster_bits - 8)
        host = entry & ((1 << x) - 1)
        nsect = ((entry >> x) & ((1 << (self.cluster_bits - 8)) - 1)) + 1
        size = nsect * 512 - (host & 511)
        return host, size

    def _read_compressed(self, entry: int) -> bytes:
        host, size = self._compressed_geometry(entry)
        buf = self.file.pread(host, size)
        try:
            if self.compression_type == 1:
                import zstandard
                d = zstandard.ZstdDecompressor().decompressobj()
                out = d.decompress(buf)
            else:
                d = zlib.decompressobj(-12)
                out = d.decompress(buf, self.cs)
        except (zlib.error, Exception) as exc:  # noqa: BLE001 - any codec failure is an EIO
            if isinstance(exc, QemuError):
                raise
            raise QemuError("Input/output error: could not decompress cluster at %#x" % host,
                            errno=5) from None
        if len(out) < self.cs:
            raise QemuError("Input/output error: compressed cluster at %#x is short" % host, errno=5)
        return out[:self.cs]

    # --- block status ------------------------------------------------------------
    def block_status(self, offset: int, length: int) -> BlockStatus:
        length = min(length, self._size - offset)
        if length <= 0:
            return BlockStatus(0, 0)
        for kind, goff, n, host, entry in self._extents(offset, min(length, 1 << 30)):
            if kind == NORMAL:
                flags = STATUS_DATA | STATUS_OFFSET_VALID
                if self._metadata_preallocated():
                    flags |= STATUS_RECURSE
                return BlockStatus(flags, n, host, self.data)
            if kind == ZERO_ALLOC:
                return BlockStatus(STATUS_ZERO | STATUS_OFFSET_VALID, n, host, self.data)
            if kind == ZERO_PLAIN:
                return BlockStatus(STATUS_ZERO, n)
            if kind == COMPRESSED_KIND:
                return BlockStatus(STATUS_DATA, n)
            if host:
                return BlockStatus(STATUS_OFFSET_VALID, n, host, self.data)
            return BlockStatus(0, n)
        return BlockStatus(0, 0)

    def _metadata_preallocated(self) -> bool:
        """QEMU's heuristic: many more clusters in use than the file really occupies."""
        if self._prealloc_detected is None:
            used = self.file.get_allocated_file_size()
            if used < 0:
                self._prealloc_detected = False
                return False
            real = used // self.cs
            threshold = max(real * 10 // 9, real + 2)
            end = -(-self.file.length() // self.cs)
            count = 0
            rc = self.refcounts
            per = rc.per_block
            # whole refcount blocks at a time: count() runs in C
            for idx in range(-(-end // per)):
                blk, _ = rc._block(idx)
                if blk is not None:
                    n = min(per, end - idx * per)
                    count += n - (blk[:n].count(0) if n < per else blk.count(0))
                if count > threshold:
                    break
            self._prealloc_detected = count > threshold
        return self._prealloc_detected

    # --- writing ------------------------------------------------------------------
    def _check_writable(self) -> None:
        if self.read_only:
            raise QemuError("Permission denied: image opened read-only", errno=13)
        if self.corrupt:
            raise QemuError("Input/output error: image is corrupt", errno=5)

    def _set_entry(self, cluster: int, value: int) -> int:
        """Set an L2 entry (allocating the L2 table); returns the old entry.

        With extended L2 entries the standard meaning is translated: the zero
        flag makes every subcluster zero, a data offset allocates them all.
        """
        table, l2_off = self._l2(cluster >> self.l2_bits, create=True)
        idx = cluster & (self.l2_entries - 1)
        old = table[idx]
        if self.ext_l2:
            if value & COMPRESSED:
                bitmap = 0
            elif value & ZERO_FLAG:
                bitmap = self._full_alloc_bits(cluster) << 32
                value &= ~ZERO_FLAG
            elif value & L2_OFFSET_MASK:
                bitmap = self._full_alloc_bits(cluster)
            else:
                bitmap = 0
            self.l2_bitmaps[l2_off][idx] = bitmap
        table[idx] = value
        self.l2_dirty[l2_off] = True
        return old

    def _cluster_base(self, cluster: int, entry: int) -> bytes:
        """What the guest currently sees in a whole cluster (for copy-on-write)."""
        if self.io_barrier is not None:
            self.io_barrier()  # data writes still in flight may be part of it
        start = cluster << self.cluster_bits
        n = min(self.cs, self._size - start)
        kind = self._kind(entry)
        if self.ext_l2 and kind != COMPRESSED_KIND:
            data = self.pread(start, n)  # subclusters may mix data, zeroes and backing
        elif kind == COMPRESSED_KIND:
            data = self._read_compressed(entry)
        elif kind == NORMAL:
            data = self.data.pread(entry & L2_OFFSET_MASK, n)
        elif kind == UNALLOC and self.backing is not None:
            data = self._read_backing(start, n)
        else:
            data = bytes(n)
        return data.ljust(self.cs, b"\0")[:self.cs]

    def pwrite(self, offset: int, data: bytes) -> None:
        for node, host, bufs in self.write_plan(offset, data):
            node.pwritev(host, bufs)

    def write_plan(self, offset: int, data: Any) -> List[Any]:
        """Allocate and map now; the data writes are returned (see pipeline.py).

        Writes that replace clusters (whose old references are dropped once
        the new mapping is on disk) are done here and now instead."""
        self._check_writable()
        self.check_io(offset, len(data))
        mv = memoryview(data)
        cs = self.cs
        cbits = self.cluster_bits
        pos = offset
        end = offset + len(data)
        # contiguous host writes: [node, host_start, [chunks], length]
        out_ios: List[List[Any]] = []
        frees: List[int] = []
        own_file = self.data is self.file
        while pos < end:
            cluster = pos >> cbits
            c_start = cluster << cbits
            s = pos - c_start
            n = min(end - pos, cs - s)
            piece = self._write_subclusters(cluster, s, mv[pos - offset:pos - offset + n]) \
                if self.ext_l2 else None
            if piece is not None:
                host, chunk = piece
                last = out_ios[-1] if out_ios else None
                if last is not None and last[1] + last[3] == host:
                    last[2].append(chunk)
                    last[3] += len(chunk)
                else:
                    out_ios.append([self.data, host, [chunk], len(chunk)])
                pos += n
                continue
            entry = self._entry(cluster)
            kind = self._kind(entry)
            if kind == NORMAL and entry & COPIED:
                host = (entry & L2_OFFSET_MASK) + s
                chunk = mv[pos - offset:pos - offset + n]
            elif s == 0 and n == cs and kind in (UNALLOC, ZERO_PLAIN) and own_file:
                # a run of whole fresh clusters in this L2 table gets one contiguous allocation
                table, l2_off = self._l2(cluster >> self.l2_bits, create=True)
                idx = cluster & (self.l2_entries - 1)
                limit = min(self.l2_entries - idx, (end - pos) >> cbits)
                k = 1
                if self.ext_l2:
                    while k < limit and self._kind(self._entry(cluster + k)) in (UNALLOC, ZERO_PLAIN):
                        k += 1
                else:
                    fresh = (0, ZERO_FLAG) if self.header.version >= 3 else (0,)
                    while k < limit and table[idx + k] in fresh:
                        k += 1
                hbase = self.refcounts.alloc(k)
                if self.ext_l2:
                    for j in range(k):
                        self._set_entry(cluster + j, (hbase + j * cs) | COPIED)
                else:
                    table[idx:idx + k] = range(hbase | COPIED, (hbase | COPIED) + k * cs, cs)
                    self.l2_dirty[l2_off] = True
                host = hbase
                n = k * cs
                chunk = mv[pos - offset:pos - offset + n]
            else:
                if kind == ZERO_ALLOC and entry & COPIED:
                    hbase = entry & L2_OFFSET_MASK
                else:
                    # the L2 table first, so that data clusters stay contiguous
                    self._l2(cluster >> self.l2_bits, create=True)
                    hbase = self.refcounts.alloc(1) if own_file else c_start
                    if kind in (NORMAL, ZERO_ALLOC, COMPRESSED_KIND):
                        frees.append(entry)
                if n == cs:
                    chunk = mv[pos - offset:pos - offset + n]
                else:
                    buf = bytearray(self._cluster_base(cluster, entry))
                    buf[s:s + n] = mv[pos - offset:pos - offset + n]
                    chunk = memoryview(buf)
                    s = 0  # the whole cluster is written
                host = hbase + s
                self._set_entry(cluster, hbase | COPIED)
            last = out_ios[-1] if out_ios else None
            if last is not None and last[1] + last[3] == host:
                last[2].append(chunk)
                last[3] += len(chunk)
            else:
                out_ios.append([self.data, host, [chunk], len(chunk)])
            pos += n
        ios = [(node, host, bufs) for node, host, bufs, _ in out_ios]
        if frees:
            for node, host, bufs in ios:
                node.pwritev(host, bufs)
            self._free_entries(frees)
            return []
        return ios

    def _write_subclusters(self, cluster: int, s: int, chunk: memoryview) -> Optional[Tuple[int, Any]]:
        """Extended L2: write only the subclusters a request touches, as QEMU does.

        The host cluster is allocated if the entry has none; head and tail of
        partly written subclusters are filled from what the guest sees.  Returns
        ``(host_offset, buffer)`` to write, or None for the cases left to the
        whole-cluster path (compressed clusters, clusters shared with snapshots).
        """
        table, l2_off = self._l2(cluster >> self.l2_bits, create=True)
        idx = cluster & (self.l2_entries - 1)
        entry = table[idx]
        host = entry & L2_OFFSET_MASK
        own_file = self.data is self.file
        if entry & COMPRESSED or ((host or not own_file) and entry & ~ZERO_FLAG and not entry & COPIED):
            return None
        c_start = cluster << self.cluster_bits
        sc = self.sc_size
        n = len(chunk)
        first, last = s // sc, (s + n - 1) // sc
        a = first * sc
        b = min((last + 1) * sc, self._size - c_start)
        if a < s or b > s + n:
            if self.io_barrier is not None:
                self.io_barrier()
            buf = bytearray(self.pread(c_start + a, b - a))
            buf[s - a:s - a + n] = chunk
            out: Any = memoryview(buf)
        else:
            out = chunk
        if not host and (own_file or not entry & COPIED):
            host = self.refcounts.alloc(1) if own_file else c_start
        bits = ((1 << (last + 1)) - 1) ^ ((1 << first) - 1)
        bitmaps = self.l2_bitmaps[l2_off]
        bitmaps[idx] = (bitmaps[idx] | bits) & ~(bits << 32)
        table[idx] = host | COPIED
        self.l2_dirty[l2_off] = True
        return host + a, out

    def _zero_subclusters(self, offset: int, length: int) -> None:
        """Extended L2, inside one cluster: whole subclusters become zero subclusters
        (no allocation, as QEMU), the partial ones at the edges are written."""
        sc = self.sc_size
        a = -(-offset // sc) * sc
        b = (offset + length) // sc * sc
        if (offset + length) == self._size:
            b = offset + length  # the image's last subcluster counts as whole
        if a >= b:
            self.pwrite(offset, bytes(length))
            return
        if offset < a:
            self.pwrite(offset, bytes(a - offset))
        cluster = offset >> self.cluster_bits
        c_start = cluster << self.cluster_bits
        table, l2_off = self._l2(cluster >> self.l2_bits, create=True)
        idx = cluster & (self.l2_entries - 1)
        if table[idx] & COMPRESSED or (table[idx] & L2_OFFSET_MASK and not table[idx] & COPIED):
            self.pwrite(a, bytes(b - a))  # left to the whole-cluster path
        else:
            first, last = (a - c_start) // sc, -(-(b - c_start) // sc) - 1
            bits = ((1 << (last + 1)) - 1) ^ ((1 << first) - 1)
            bitmaps = self.l2_bitmaps[l2_off]
            bitmaps[idx] = (bitmaps[idx] | (bits << 32)) & ~bits
            self.l2_dirty[l2_off] = True
        if b < offset + length:
            self.pwrite(b, bytes(offset + length - b))

    def _free_entries(self, entries: List[int]) -> None:
        """Drop references of replaced entries, after the L2 tables no longer point at them."""
        self.flush_metadata()
        if self.data is not self.file:
            return  # clusters of an external data file are not refcounted
        for entry in entries:
            if entry & COMPRESSED:
                host, size = self._compressed_geometry(entry)
                self.refcounts.update(host & ~511, ((host & 511) + size), -1)
            else:
                host = entry & L2_OFFSET_MASK
                if host:
                    self.refcounts.update(host, self.cs, -1)

    def pwrite_zeroes(self, offset: int, length: int, may_unmap: bool = False) -> None:
        self._check_writable()
        self.check_io(offset, length)
        # As QEMU: a piece at either end that is not a whole (sub)cluster becomes a
        # zero (sub)cluster when the rest of it reads as zeroes already, else it is
        # written as zero bytes.
        g = self.sc_size
        end = offset + length
        if offset % g:
            piece_end = min(end, offset - offset % g + g)
            offset = self._zero_edge(offset, piece_end, may_unmap)
        if offset < end and end % g and end != self._size:
            tail = max(offset, end - end % g)
            self._zero_edge(tail, end, may_unmap)
            end = tail
        if offset < end:
            self._zero_aligned(offset, end - offset, may_unmap)

    def _zero_edge(self, start: int, end: int, may_unmap: bool) -> int:
        """Zero [start, end) inside one (sub)cluster; returns ``end``."""
        from pyqemu.block.node import get_block_status
        g = self.sc_size
        a = start - start % g
        b = min(a + g, self._size)
        pos = a
        while pos < b:
            st, _ = get_block_status(self, pos, b - pos)
            if st.length <= 0 or not st.flags & STATUS_ZERO:
                self.pwrite(start, bytes(end - start))
                return end
            pos += st.length
        self._zero_aligned(a, b - a, may_unmap)
        return end

    def _zero_aligned(self, offset: int, length: int, may_unmap: bool) -> None:
        cs = self.cs
        end = offset + length
        head = offset % cs
        if head or (self.ext_l2 and length < cs and end != self._size):
            n = min(cs - head, length)
            if self.ext_l2:
                self._zero_subclusters(offset, n)
            else:
                self.pwrite(offset, bytes(n))
            offset += n
        # whole clusters (a partial last cluster of the image counts as whole)
        tail_start = max(offset, end - end % cs) if end != self._size else end
        if self.header.version < 3:
            # no zero flag: whole clusters become unallocated when nothing shows through
            if self.backing is None:
                self.discard(offset, tail_start - offset)
            else:
                super().pwrite_zeroes(offset, tail_start - offset)
        else:
            frees = []
            for c in range(offset // cs, -(-tail_start // cs) if tail_start > offset else offset // cs):
                entry = self._entry(c)
                kind = self._kind(entry)
                # as QEMU: every cluster becomes a zero cluster (even an unallocated one),
                # keeping its host cluster unless unmapping is allowed
                if kind == ZERO_PLAIN or (kind == ZERO_ALLOC and not may_unmap):
                    continue
                if kind == ZERO_ALLOC:
                    self._set_entry(c, ZERO_FLAG)
                    frees.append(entry)
                    continue
                if kind == NORMAL and entry & COPIED and not may_unmap:
                    self._set_entry(c, (entry & L2_OFFSET_MASK) | COPIED | ZERO_FLAG)
                else:
                    self._set_entry(c, ZERO_FLAG)
                    if kind in (NORMAL, COMPRESSED_KIND):
                        frees.append(entry)
            if frees:
                self._free_entries(frees)
        if tail_start < end:
            if self.ext_l2:
                self._zero_subclusters(tail_start, end - tail_start)
            else:
                self.pwrite(tail_start, bytes(end - tail_start))

    def discard(self, offset: int, length: int) -> None:
        self._check_writable()
        cs = self.cs
        first = -(-offset // cs)
        last = (offset + length) // cs if offset + length < self._size else -(-self._size // cs)
        frees = []
        for c in range(first, last):
            entry = self._entry(c)
            kind = self._kind(entry)
            if kind == UNALLOC:
                continue
            new = ZERO_FLAG if self.backing is not None and self.header.version >= 3 else 0
            if self.backing is not None and self.header.version < 3:
                continue  # unmapping would expose the backing file
            self._set_entry(c, new)
            if kind != ZERO_PLAIN:
                frees.append(entry)
        if frees:
            self._free_entries(frees)

    def compress_cluster(self, data: bytes) -> bytes:
        """One cluster compressed with the image's compression type (thread-safe, releases the GIL)."""
        data = bytes(data).ljust(self.cs, b"\0")
        if self.compression_type == 1:
            import zstandard
            return zstandard.ZstdCompressor().compress(data)
        c = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -12, 9)
        return c.compress(data) + c.flush()

    def write_compressed(self, offset: int, data: bytes, comp: Optional[bytes] = None) -> None:
        """Write one whole cluster compressed (``convert -c``); stored plain if it does not shrink.

        ``comp`` may carry :meth:`compress_cluster`'s result computed beforehand
        (convert compresses in worker threads).
        """
        self._check_writable()
        cs = self.cs
        if self.data is not self.file:
            raise QemuError("Operation not supported", errno=95)
        if offset % cs or (len(data) != cs and offset + len(data) != self._size):
            raise QemuError("Compression can't overwrite anything: unaligned request")
        data = bytes(data).ljust(cs, b"\0")
        if comp is None:
            comp = self.compress_cluster(data)
        cluster = offset // cs
        if self._kind(self._entry(cluster)) != UNALLOC:
            raise QemuError("Compression can't overwrite anything")
        if len(comp) >= cs - 512:
            self.pwrite(offset, data[:min(cs, self._size - offset)])
            return
        cur = self._compressed_cur
        if cur and (cur % cs) and (cur % cs) + len(comp) <= cs:
            host = cur
            self.refcounts.update(host, len(comp), +1)
        else:
            nclusters = -(-len(comp) // cs)
            host = self.refcounts.alloc(nclusters)
        self.file.pwrite(host, comp)
        self._compressed_cur = host + len(comp)
        x = 62 - (self.cluster_bits - 8)
        nsect = ((host + len(comp) - 1) >> 9) - (host >> 9)
        self._set_entry(cluster, COMPRESSED | (nsect << x) | host)

    # --- backing file and emptying (rebase, commit) ------------------------------
    def set_backing(self, name: Optional[str], fmt: Optional[str]) -> None:
        """Rewrite the header to name another backing file (None: no backing file)."""
        from pyqemu.block.qcow2.header import EXT_BACKING_FORMAT
        self._check_writable()
        h = self.header
        h.backing_file = name or None
        h.set_ext(EXT_BACKING_FORMAT, fmt.encode() if name and fmt else None)
        self.write_header()

    def write_header(self) -> None:
        """Write the whole header (with extensions) in one write, after all metadata."""
        data = self.header.pack()
        self.flush()
        self.file.pwrite(0, data)
        self.file.flush()

    def make_empty(self) -> None:
        """Unallocate every cluster so that all reads go to the backing file (commit)."""
        self._check_writable()
        frees = []
        for i, e in enumerate(self.l1):
            if not e & L1_OFFSET_MASK:
                continue
            for j in range(self.l2_entries):
                cluster = i * self.l2_entries + j
                if cluster * self.cs >= self._size:
                    break
                entry = self._entry(cluster)
                if entry:
                    self._set_entry(cluster, 0)
                    if self._kind(entry) != ZERO_PLAIN:
                        frees.append(entry)
        if frees:
            self._free_entries(frees)
        self.flush()

    # --- resize -------------------------------------------------------------------
    def truncate(self, size: int, prealloc: str = "off", exact: bool = False) -> None:
        self._check_writable()
        if self.header.nb_snapshots and size < self._size:
            raise QemuError("Can't shrink an image which has snapshots")
        if prealloc not in ("off", "metadata", "falloc", "full"):
            raise QemuError("Unsupported preallocation mode '%s'" % prealloc)
        old_size = self._size
        if size < self._size:
            self.discard(size, self._size - size) if size % self.cs == 0 else None
            if size % self.cs:
                tail = -(-size // self.cs) * self.cs
                if tail < self._size:
                    self.discard(tail, self._size - tail)
                self.pwrite_zeroes(size, min(tail, self._size) - size)
        need = -(-size // (self.cs * self.l2_entries))
        if need > len(self.l1):
            self.flush_metadata()
            self._grow_l1(need)
        if prealloc != "off" and size > old_size:
            self._preallocate(old_size, size, prealloc)
        self._size = size
        self.header.size = size
        self.flush_metadata()
        self.file.pwrite(24, struct.pack(">Q", size))
        self.file.flush()

    def _preallocate(self, start: int, end: int, mode: str) -> None:
        """Allocate L2 tables and data clusters for [start, end), as QEMU's preallocation does:
        per L2 table its table first, then its data clusters in one contiguous run."""
        cs = self.cs
        c = start // cs
        last = -(-end // cs)
        data_end = 0
        while c < last:
            l1_index = c // self.l2_entries
            table, l2_off = self._l2(l1_index, create=True)
            first = c % self.l2_entries
            n = min(self.l2_entries - first, last - c)
            todo = [j for j in range(first, first + n) if self._kind(table[j]) == UNALLOC]
            # contiguous runs of unallocated entries get contiguous host clusters
            i = 0
            while i < len(todo):
                k = i
                while k + 1 < len(todo) and todo[k + 1] == todo[k] + 1:
                    k += 1
                if self.data is self.file:
                    host = self.refcounts.alloc(k - i + 1)
                else:  # external data file: guest offset == host offset
                    host = (l1_index * self.l2_entries + todo[i]) * cs
                for m, j in enumerate(todo[i:k + 1]):
                    table[j] = (host + m * cs) | COPIED
                    if self.ext_l2:
                        # as QEMU: host clusters reserved, subclusters still unallocated
                        self.l2_bitmaps[l2_off][j] = 0
                data_end = max(data_end, host + (k - i + 1) * cs)
                i = k + 1
            self.l2_dirty[l2_off] = True
            c += n
        self.flush_metadata()
        if data_end > self.data.length():
            # metadata: the file just grows (sparse); falloc/full: the space is really reserved
            self.data.truncate(data_end, "off" if mode == "metadata" else mode)

    def _grow_l1(self, need: int) -> None:
        if need * 8 > (32 << 20):
            raise QemuError("Image is too big")
        new_size = need
        nclusters = -(-(new_size * 8) // self.cs)
        off = self.refcounts.alloc(nclusters)
        l1 = self.l1 + [0] * (new_size - len(self.l1))
        self.refcounts.flush()
        self.file.pwrite(off, struct.pack(">%dQ" % len(l1), *l1))
        self.file.flush()
        old_off, old_size = self.header.l1_table_offset, len(self.l1)
        self.file.pwrite(36, struct.pack(">IQ", new_size, off))
        self.file.flush()
        self.header.l1_size, self.header.l1_table_offset = new_size, off
        self.l1 = l1
        if old_size:
            self.refcounts.update(old_off, old_size * 8, -1)

    # --- flushing -----------------------------------------------------------------
    def flush_metadata(self) -> None:
        """Refcounts, then L2 tables, then L1: a crash in between only leaks clusters."""
        if self.read_only:
            return
        if self.io_barrier is not None:
            self.io_barrier()  # guest data first
        self.refcounts.flush()
        for off, d in list(self.l2_dirty.items()):
            if d:
                table = self.l2_cache[off]
                self.file.pwrite(off, self.pack_l2(off, table))
        self.l2_dirty.clear()
        if self.l1_dirty:
            self.file.pwrite(self.header.l1_table_offset,
                             struct.pack(">%dQ" % len(self.l1), *self.l1))
            self.l1_dirty = False

    def flush(self) -> None:
        if self.data is not self.file:
            self.data.flush()  # guest data before the metadata pointing at it
        self.flush_metadata()
        self.file.flush()

    def _close(self) -> None:
        try:
            if not self.read_only:
                self.flush()
        finally:
            if self.data is not self.file:
                self.data.close()
