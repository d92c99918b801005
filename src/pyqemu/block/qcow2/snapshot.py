"""Internal snapshots of qcow2: list, create, apply, delete.

A snapshot is a copy of the L1 table plus a table entry (id, name, date,
VM clock, VM state size, icount, disk size).  Data clusters and L2 tables
are shared: their refcounts count every L1 table reaching them, and the
active image's COPIED flags are cleared where a refcount exceeds one, so
that the next write copies the cluster.

Ordering for crash safety: refcounts are raised (and flushed) before the
new snapshot table is published in the header; on delete the header stops
naming the snapshot before refcounts are dropped.  An interrupted operation
thus leaves leaked clusters at worst.
"""
from __future__ import annotations

import struct
import time
from typing import List, Optional

from pyqemu.block.qcow2.driver import COMPRESSED, COPIED, L1_OFFSET_MASK, L2_OFFSET_MASK, Qcow2Node
from pyqemu.util.error import QemuError

_ENTRY = struct.Struct(">QIHHIIQII")
MAX_SNAPSHOTS = 65536


class Snapshot:
    def __init__(self) -> None:
        self.l1_table_offset = 0
        self.l1_size = 0
        self.id = ""
        self.name = ""
        self.date_sec = 0
        self.date_nsec = 0
        self.vm_clock_nsec = 0
        self.vm_state_size = 0
        self.disk_size: Optional[int] = None
        self.icount = -1
        self.extra = b""

    def pack(self) -> bytes:
        extra = bytearray(self.extra.ljust(24, b"\0")[:max(24, len(self.extra))])
        struct.pack_into(">QQq", extra, 0, self.vm_state_size, self.disk_size or 0, self.icount)
        ident, name = self.id.encode(), self.name.encode()
        out = _ENTRY.pack(self.l1_table_offset, self.l1_size, len(ident), len(name), self.date_sec,
                          self.date_nsec, self.vm_clock_nsec, min(self.vm_state_size, 0xFFFFFFFF),
                          len(extra)) + bytes(extra) + ident + name
        return out + bytes(-len(out) % 8)

    def info(self) -> dict:
        d = {"id": self.id, "name": self.name, "vm-state-size": self.vm_state_size,
             "date-sec": self.date_sec, "date-nsec": self.date_nsec,
             "vm-clock-sec": self.vm_clock_nsec // 1000000000,
             "vm-clock-nsec": self.vm_clock_nsec % 1000000000}
        if self.icount != -1:
            d["icount"] = self.icount
        return d


def read_snapshots(node: Qcow2Node) -> List[Snapshot]:
    h = node.header
    if h.nb_snapshots > MAX_SNAPSHOTS:
        raise QemuError("Too many snapshots")
    if h.nb_snapshots and h.snapshots_offset % 8:
        raise QemuError("Snapshot table offset invalid")
    flen = node.file.length()
    pos = h.snapshots_offset
    out = []
    for _ in range(h.nb_snapshots):
        if pos + _ENTRY.size > flen:
            raise QemuError("Snapshot table is truncated")
        (l1_off, l1_size, id_len, name_len, ds, dn, vm_clock, vm_state, extra_len) = \
            _ENTRY.unpack(node.file.pread(pos, _ENTRY.size))
        if extra_len > 1024:
            raise QemuError("Too much extra metadata in snapshot table entry")
        pos += _ENTRY.size
        rest = node.file.pread(pos, extra_len + id_len + name_len)
        if len(rest) < extra_len + id_len + name_len or pos + len(rest) > flen:
            raise QemuError("Snapshot table is truncated")
        sn = Snapshot()
        sn.l1_table_offset, sn.l1_size = l1_off, l1_size
        sn.date_sec, sn.date_nsec, sn.vm_clock_nsec, sn.vm_state_size = ds, dn, vm_clock, vm_state
        sn.extra = rest[:extra_len]
        if extra_len >= 8:
            sn.vm_state_size = struct.unpack_from(">Q", rest, 0)[0] or vm_state
        if extra_len >= 16:
            sn.disk_size = struct.unpack_from(">Q", rest, 8)[0]
        if extra_len >= 24:
            sn.icount = struct.unpack_from(">q", rest, 16)[0]
        sn.id = rest[extra_len:extra_len + id_len].decode("utf-8", "replace")
        sn.name = rest[extra_len + id_len:].decode("utf-8", "replace")
        if l1_size * 8 > (32 << 20):
            raise QemuError("Snapshot L1 table too large")
        if l1_off % node.cs:
            raise QemuError("Snapshot L1 table offset invalid")
        pos += len(rest)
        pos = (pos + 7) & ~7
        out.append(sn)
    return out


def _table_bytes(snaps: List[Snapshot]) -> bytes:
    return b"".join(s.pack() for s in snaps)


def _walk_refs(node: Qcow2Node, l1: List[int], delta: int) -> None:
    """Add ``delta`` to the refcount of every L2 table and data cluster reachable from ``l1``."""
    rc = node.refcounts
    cs = node.cs
    for e in l1:
        l2_off = e & L1_OFFSET_MASK
        if not l2_off:
            continue
        raw = node.file.pread(l2_off, cs) if l2_off not in node.l2_cache else None
        table = node.l2_cache[l2_off] if raw is None else node.parse_l2(raw)[0]
        for le in table:
            if le & COMPRESSED:
                host, size = node._compressed_geometry(le)
                rc.update(host & ~511, (host & 511) + size, delta)
            elif le & L2_OFFSET_MASK:
                rc.update(le & L2_OFFSET_MASK, cs, delta)
        rc.update(l2_off, cs, delta)


def _fix_copied_flags(node: Qcow2Node) -> None:
    """Set COPIED on active entries whose refcount is 1, clear it elsewhere."""
    rc = node.refcounts
    cbits = node.cluster_bits
    for i, e in enumerate(node.l1):
        l2_off = e & L1_OFFSET_MASK
        if not l2_off:
            continue
        want = rc.get(l2_off >> cbits) == 1
        new = (l2_off | COPIED) if want else l2_off
        if new != e:
            node.l1[i] = new
            node.l1_dirty = True
        res = node._l2(i)
        assert res is not None
        table, off = res
        changed = False
        for j, le in enumerate(table):
            if le & COMPRESSED or not le & L2_OFFSET_MASK:
                continue
            w = rc.get((le & L2_OFFSET_MASK) >> cbits) == 1
            nle = (le | COPIED) if w else (le & ~COPIED)
            if nle != le:
                table[j] = nle
                changed = True
        if changed:
            node.l2_dirty[off] = True
    node.flush_metadata()


def _publish(node: Qcow2Node, snaps: List[Snapshot]) -> None:
    """Write a new snapshot table and switch the header to it; free the old one."""
    h = node.header
    old_off, old_len = h.snapshots_offset, len(_table_bytes(read_snapshots(node))) if h.nb_snapshots else 0
    data = _table_bytes(snaps)
    new_off = 0
    if snaps:
        n = -(-len(data) // node.cs)
        new_off = node.refcounts.alloc(n)
        node.refcounts.flush()
        node.file.pwrite(new_off, data)
        node.file.flush()
    node.file.pwrite(60, struct.pack(">IQ", len(snaps), new_off))
    node.file.flush()
    h.nb_snapshots, h.snapshots_offset = len(snaps), new_off
    if old_len:
        node.refcounts.update(old_off, old_len, -1)
    node.refcounts.flush()


def find(snaps: List[Snapshot], key: str) -> Optional[Snapshot]:
    for s in snaps:
        if s.id == key:
            return s
    for s in snaps:
        if s.name == key:
            return s
    return None


def create_snapshot(node: Qcow2Node, name: str) -> None:
    node._check_writable()
    if node.data is not node.file:
        raise QemuError("-95 (Operation not supported)")
    snaps = read_snapshots(node)
    if len(snaps) >= MAX_SNAPSHOTS:
        raise QemuError("Too many snapshots")
    node.flush_metadata()
    now = time.time_ns() // 1000 * 1000  # QEMU takes microseconds
    sn = Snapshot()
    sn.id = str(max([int(s.id) for s in snaps if s.id.isdigit()] + [0]) + 1)
    sn.name = name
    sn.date_sec, sn.date_nsec = now // 1000000000, now % 1000000000
    sn.disk_size = node.length()
    sn.icount = 0
    # share everything the active L1 reaches: raise refcounts first
    _walk_refs(node, node.l1, +1)
    node.refcounts.flush()
    l1 = [e & ~COPIED for e in node.l1]
    sn.l1_size = len(l1)
    if l1:
        n = -(-(len(l1) * 8) // node.cs)
        sn.l1_table_offset = node.refcounts.alloc(n)
        node.refcounts.flush()
        node.file.pwrite(sn.l1_table_offset, struct.pack(">%dQ" % len(l1), *l1))
    _fix_copied_flags(node)
    node.file.flush()
    _publish(node, snaps + [sn])


def delete_snapshot(node: Qcow2Node, key: str) -> None:
    node._check_writable()
    snaps = read_snapshots(node)
    sn = find(snaps, key)
    if sn is None:
        raise QemuError("snapshot not found")
    node.flush_metadata()
    _publish(node, [s for s in snaps if s is not sn])
    raw = node.file.pread(sn.l1_table_offset, sn.l1_size * 8)
    l1 = list(struct.unpack(">%dQ" % sn.l1_size, raw))
    node.l2_cache.clear()
    _walk_refs(node, l1, -1)
    if sn.l1_size:
        node.refcounts.update(sn.l1_table_offset, sn.l1_size * 8, -1)
    node.refcounts.flush()
    _fix_copied_flags(node)
    node.file.flush()


def apply_snapshot(node: Qcow2Node, key: str) -> None:
    node._check_writable()
    snaps = read_snapshots(node)
    sn = find(snaps, key)
    if sn is None:
        raise QemuError("Failed to load snapshot: No such file or directory")
    node.flush_metadata()
    raw = node.file.pread(sn.l1_table_offset, sn.l1_size * 8)
    snap_l1 = list(struct.unpack(">%dQ" % sn.l1_size, raw))
    if sn.disk_size is not None and sn.disk_size != node.length():
        need = -(-sn.disk_size // (node.cs * node.l2_entries))
        if need > len(node.l1):
            node._grow_l1(need)
    _walk_refs(node, snap_l1, +1)
    node.refcounts.flush()
    old = list(node.l1)
    new_l1 = [e & ~COPIED for e in snap_l1] + [0] * max(0, len(node.l1) - len(snap_l1))
    node.l1 = new_l1[:max(len(node.l1), len(snap_l1))]
    if len(node.l1) > node.header.l1_size:
        node._grow_l1(len(node.l1))
    node.l1_dirty = True
    node.l2_cache.clear()
    node.l2_dirty.clear()
    node.flush_metadata()
    if sn.disk_size is not None and sn.disk_size != node.length():
        node._size = node.header.size = sn.disk_size
        node.file.pwrite(24, struct.pack(">Q", sn.disk_size))
    node.file.flush()
    _walk_refs(node, old, -1)
    node.refcounts.flush()
    node.l2_cache.clear()
    _fix_copied_flags(node)
    node.file.flush()


def load_snapshot_readonly(node: Qcow2Node, snapshot_id: Optional[str], name: Optional[str],
                           id_or_name: bool = False) -> None:
    """Make a read-only node show a snapshot's disk (``convert -l``): its L1 table and size."""
    if not node.read_only:
        raise QemuError("Failed to load snapshot: Operation not permitted")
    snaps = read_snapshots(node)
    sn = None
    if id_or_name:
        sn = find(snaps, snapshot_id or "")
    else:
        for s in snaps:
            if (snapshot_id is None or s.id == snapshot_id) and (name is None or s.name == name):
                sn = s
                break
    if sn is None:
        raise QemuError("Failed to load snapshot: Can't find snapshot")
    raw = node.file.pread(sn.l1_table_offset, sn.l1_size * 8)
    node.l1 = list(struct.unpack(">%dQ" % sn.l1_size, raw))
    node.l2_cache.clear()
    node.l2_bitmaps.clear()
    if sn.disk_size is not None:
        node._size = sn.disk_size
