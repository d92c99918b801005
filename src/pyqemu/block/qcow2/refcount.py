"""Refcount table and blocks, and cluster allocation.

Write ordering: a refcount block is written before the table entry that
points to it; refcount increases reach the disk (``flush``) before any L2/L1
entry that uses the cluster (the driver flushes refcounts first).  A crash
therefore leaves at worst clusters with a refcount but no user (leaks).

A missing refcount block means all clusters of its range are free; a new
block is put at the first cluster of the range it describes, which is
therefore always free.
"""
from __future__ import annotations

import struct
from collections import OrderedDict
from typing import Dict, List

from pyqemu.util.error import QemuError

_FMT = {8: "B", 16: "H", 32: "I", 64: "Q"}


def unpack_refblock(data: bytes, bits: int) -> List[int]:
    if bits >= 8:
        return list(struct.unpack(">%d%s" % (len(data) * 8 // bits, _FMT[bits]), data))
    per = 8 // bits
    mask = (1 << bits) - 1
    shifts = [bits * j for j in range(per)]
    return [(b >> s) & mask for b in data for s in shifts]


def pack_refblock(values: List[int], bits: int) -> bytes:
    if bits >= 8:
        return struct.pack(">%d%s" % (len(values), _FMT[bits]), *values)
    per = 8 // bits
    out = bytearray(len(values) // per)
    for i, v in enumerate(values):
        if v:
            out[i // per] |= v << (bits * (i % per))
    return bytes(out)


class Refcounts:
    """Refcounts of one qcow2 image (``node`` gives file, header and cluster size)."""

    def __init__(self, node, cache_blocks: int = 64) -> None:
        self.node = node
        self.file = node.file
        h = node.header
        self.cs = h.cluster_size
        self.bits = 1 << h.refcount_order
        self.max = (1 << self.bits) - 1
        self.per_block = self.cs * 8 // self.bits
        self.table_offset = h.refcount_table_offset
        self.table_clusters = h.refcount_table_clusters
        raw = self.file.pread(self.table_offset, self.table_clusters * self.cs)
        self.table: List[int] = list(struct.unpack(">%dQ" % (len(raw) // 8), raw))
        self.blocks: "OrderedDict[int, List[int]]" = OrderedDict()
        self.dirty: Dict[int, bool] = {}
        self.cache_blocks = max(4, cache_blocks)
        self.free_hint = 0
        self.alloc_end = 0  # clusters handed out this session may be past the file end

    # --- reading ------------------------------------------------------------------
    def _block(self, idx: int, create: bool = False):
        off = self.table[idx] & ~0x1FF if idx < len(self.table) else 0
        if off == 0:
            if not create:
                return None, 0
            off = self._new_block(idx)
        blk = self.blocks.get(off)
        if blk is None:
            if off % self.cs:
                raise QemuError("Refblock offset %#x unaligned (reftable index: %#x)" % (off, idx))
            if off >= max(self.file.length(), self.alloc_end * self.cs):
                raise QemuError("Refblock at %#x is beyond the end of the image (reftable index: %#x)"
                                % (off, idx))
            blk = unpack_refblock(self.file.pread(off, self.cs), self.bits)
            self.blocks[off] = blk
            self._evict()
        else:
            self.blocks.move_to_end(off)
        return blk, off

    def _evict(self) -> None:
        while len(self.blocks) > self.cache_blocks:
            off, blk = next(iter(self.blocks.items()))
            if self.dirty.pop(off, False):
                self.file.pwrite(off, pack_refblock(blk, self.bits))
            del self.blocks[off]

    def get(self, cluster: int) -> int:
        blk, _ = self._block(cluster // self.per_block)
        return blk[cluster % self.per_block] if blk is not None else 0

    # --- changing -----------------------------------------------------------------
    def set(self, cluster: int, value: int) -> None:
        if value < 0 or value > self.max:
            raise QemuError("Refcount of cluster %#x would be %d: out of range" % (cluster, value))
        blk, off = self._block(cluster // self.per_block, create=True)
        blk[cluster % self.per_block] = value
        self.dirty[off] = True
        if value == 0 and cluster < self.free_hint:
            self.free_hint = cluster

    def update(self, offset: int, length: int, delta: int) -> None:
        first = offset // self.cs
        last = (offset + length - 1) // self.cs
        for c in range(first, last + 1):
            self.set(c, self.get(c) + delta)

    def _new_block(self, idx: int) -> int:
        if idx >= len(self.table):
            self._grow_table(idx + 1)
            if self.table[idx]:
                return self.table[idx]
        cluster = idx * self.per_block
        off = cluster * self.cs
        blk = [0] * self.per_block
        blk[0] = 1  # the block describes itself
        self.file.pwrite(off, pack_refblock(blk, self.bits))
        self.blocks[off] = blk
        self.table[idx] = off
        self.file.pwrite(self.table_offset + idx * 8, struct.pack(">Q", off))
        self.alloc_end = max(self.alloc_end, cluster + 1)
        self._evict()
        return off

    def _end_cluster(self) -> int:
        flen = -(-self.file.length() // self.cs)
        return max(flen, self.alloc_end)

    def _grow_table(self, min_entries: int) -> None:
        """Move the refcount table to a bigger one at the end of the image."""
        per = self.per_block
        t = self._end_cluster()
        while True:
            entries = max(min_entries, len(self.table) * 3 // 2 + 1)
            tc = -(-(entries * 8) // self.cs)
            entries = max(entries, (t + tc) // per + 2)
            tc = -(-(entries * 8) // self.cs)
            new_ranges = [k for k in range(t // per, (t + tc - 1) // per + 1)
                          if k >= len(self.table) or not self.table[k]]
            clash = [k for k in new_ranges if t <= k * per < t + tc]
            if clash:
                t = clash[-1] * per + 1
                continue
            break
        if tc * self.cs > (8 << 20):
            raise QemuError("Refcount table too large")
        table = self.table + [0] * (tc * self.cs // 8 - len(self.table))
        for k in new_ranges:
            blk = [0] * per
            blk[0] = 1
            for c in range(max(t, k * per), min(t + tc, (k + 1) * per)):
                blk[c - k * per] = 1
            off = k * per * self.cs
            self.file.pwrite(off, pack_refblock(blk, self.bits))
            self.blocks[off] = blk
            table[k] = off
        self.flush()  # old blocks we touched must be on disk before the switch
        self.file.pwrite(t * self.cs, struct.pack(">%dQ" % len(table), *table))
        self.file.flush()
        old_off, old_clusters = self.table_offset, self.table_clusters
        self.table = table
        self.table_offset, self.table_clusters = t * self.cs, tc
        for k in range(t // per, (t + tc - 1) // per + 1):
            if k not in new_ranges:
                for c in range(max(t, k * per), min(t + tc, (k + 1) * per)):
                    self.set(c, 1)
        self.alloc_end = max(self.alloc_end, t + tc, max([k * per + 1 for k in new_ranges] or [0]))
        self.flush()
        self.node.header.refcount_table_offset = self.table_offset
        self.node.header.refcount_table_clusters = tc
        self.file.pwrite(48, struct.pack(">QI", self.table_offset, tc))
        self.file.flush()
        self.update(old_off, old_clusters * self.cs, -1)

    def alloc(self, n: int) -> int:
        """Allocate ``n`` contiguous clusters (refcount 1); returns the host offset."""
        per = self.per_block
        c = self.free_hint
        while True:
            run = 0
            start = c
            while run < n:
                # a refcount block's worth at a time: list slices and any() run in C
                idx, i = divmod(c, per)
                blk, _ = self._block(idx)
                take = min(per - i, n - run)
                seg = blk[i:i + take] if blk is not None else None
                if seg is not None and any(seg):
                    used = max(k for k, v in enumerate(seg) if v)
                    c += used + 1
                    start = c
                    run = 0
                else:
                    c += take
                    run += take
            # blocks describing the run must exist; a new one lands at its range start
            restart = False
            for k in range(start // per, (start + n - 1) // per + 1):
                if k >= len(self.table) or not self.table[k]:
                    self._block(k, create=True)
                    if start <= k * per < start + n:
                        restart = True
            if restart:
                c = start
                continue
            break
        c = start
        while c < start + n:
            idx, i = divmod(c, per)
            blk, off = self._block(idx, create=True)
            take = min(per - i, start + n - c)
            blk[i:i + take] = [1] * take
            self.dirty[off] = True
            c += take
        if n == 1 or start == self.free_hint:
            self.free_hint = start + n
        self.alloc_end = max(self.alloc_end, start + n)
        return start * self.cs

    def free(self, offset: int, length: int) -> None:
        self.update(offset, length, -1)

    # --- writing back ---------------------------------------------------------------
    def flush(self) -> None:
        for off, d in list(self.dirty.items()):
            if d:
                blk = self.blocks.get(off)
                if blk is not None:
                    self.file.pwrite(off, pack_refblock(blk, self.bits))
        self.dirty.clear()
