"""qcow2 consistency check and repair (``qemu-img check [-r leaks|all]``).

Every metadata structure is walked to count how often each host cluster is
referenced; the counts are compared with the stored refcounts.  A stored
refcount above the count is a leak (harmless), below it a corruption.
Messages and counters follow QEMU's (printed to stderr as QEMU does).
"""
from __future__ import annotations

import struct
import sys
from typing import Dict, List, Tuple

from pyqemu.block.qcow2.driver import COMPRESSED, COPIED, L1_OFFSET_MASK, L2_OFFSET_MASK
from pyqemu.util.error import QemuError


class CheckResult:
    def __init__(self) -> None:
        self.corruptions = 0
        self.leaks = 0
        self.check_errors = 0
        self.corruptions_fixed = 0
        self.leaks_fixed = 0
        self.image_end_offset = 0
        self.total_clusters = 0
        self.allocated_clusters = 0
        self.fragmented_clusters = 0
        self.compressed_clusters = 0


def read_snapshot_table(node) -> List[Tuple[int, int]]:
    """(l1_table_offset, l1_size) of every internal snapshot, plus the table's byte size last."""
    h = node.header
    out = []
    pos = h.snapshots_offset
    flen = node.file.length()
    for _ in range(h.nb_snapshots):
        if pos + 40 > flen:
            raise QemuError("Snapshot table is truncated")
        raw = node.file.pread(pos, 40)
        l1_off, l1_size, id_len, name_len, _ds, _dn, _vm, _vs, extra = struct.unpack(">QIHHIIQII", raw)
        pos += 40 + extra + id_len + name_len
        pos = (pos + 7) & ~7
        out.append((l1_off, l1_size))
    out.append((h.snapshots_offset, pos - h.snapshots_offset))
    return out


def check_image(node, fix_leaks: bool = False, fix_errors: bool = False, quiet: bool = False) -> CheckResult:
    res = CheckResult()
    _run(node, res, fix_leaks, fix_errors, quiet)
    return res


def _run(node, res: CheckResult, fix_leaks: bool, fix_errors: bool, quiet: bool) -> None:
    h = node.header
    cs = node.cs
    cbits = node.cluster_bits
    flen = node.file.length()
    nb_file_clusters = -(-flen // cs)
    counts: Dict[int, int] = {}
    err = sys.stderr

    def say(msg: str) -> None:
        if not quiet:
            err.write(msg + "\n")

    def inc(offset: int, length: int) -> None:
        if length <= 0:
            return
        first = offset >> cbits
        last = (offset + length - 1) >> cbits
        if last - first > (1 << 24):
            say("ERROR: reference to a range of %d clusters at %#x" % (last - first, offset))
            res.corruptions += 1
            return
        for c in range(first, last + 1):
            if c >= nb_file_clusters:
                say("ERROR: cluster %d is beyond the end of the image" % c)
                res.corruptions += 1
                return
            counts[c] = counts.get(c, 0) + 1

    res.total_clusters = -(-h.size // cs)
    inc(0, cs)
    copied_checks: List[Tuple[str, int, int, int]] = []  # (kind, where, entry, host)

    def walk_l1(l1: List[int], active: bool) -> None:
        for i, e in enumerate(l1):
            l2_off = e & L1_OFFSET_MASK
            if not l2_off:
                continue
            if l2_off % cs:
                say("ERROR l2_offset=%x: Table is not cluster aligned; L1 entry corrupted" % l2_off)
                res.corruptions += 1
                continue
            if l2_off + cs > flen:
                say("ERROR l2_offset=%x: L2 table is beyond the end of the image" % l2_off)
                res.corruptions += 1
                continue
            inc(l2_off, cs)
            if active:
                copied_checks.append(("l1", i, e, l2_off))
            raw = node.file.pread(l2_off, cs)
            l2, bitmaps = node.parse_l2(raw)
            next_contig = 0
            for j, le in enumerate(l2):
                if bitmaps and not le & COMPRESSED:
                    bm = bitmaps[j]
                    if bm & (bm >> 32) & 0xFFFFFFFF:
                        say("ERROR invalid cluster entry found  (L2 offset: %#x, L2 index: %#x)" % (l2_off, j))
                        res.corruptions += 1
                    elif bm & 0xFFFFFFFF and not le & L2_OFFSET_MASK:
                        say("ERROR invalid cluster entry found  (L2 offset: %#x, L2 index: %#x)" % (l2_off, j))
                        res.corruptions += 1
                elif bitmaps and bitmaps[j]:
                    say("ERROR compressed cluster %d with a non-zero subcluster bitmap" % j)
                    res.corruptions += 1
                if le & COMPRESSED:
                    host, size = node._compressed_geometry(le)
                    inc(host & ~511, (host & 511) + size)
                    if active:
                        res.allocated_clusters += 1
                        res.compressed_clusters += 1
                        res.fragmented_clusters += 1
                    continue
                host = le & L2_OFFSET_MASK
                if not host and not (le & COPIED and node.data is not node.file):
                    continue
                if host % cs:
                    say("ERROR offset=%x: Cluster is not properly aligned; L2 entry corrupted" % host)
                    res.corruptions += 1
                    continue
                external = node.data is not node.file
                if not external:  # data in an external data file is not refcounted
                    inc(host, cs)
                if active:
                    res.allocated_clusters += 1
                    if next_contig and host != next_contig:
                        res.fragmented_clusters += 1
                    next_contig = host + cs
                    if not external:
                        copied_checks.append(("l2", l2_off + j * (16 if bitmaps else 8), le, host))

    inc(h.l1_table_offset, h.l1_size * 8)
    if getattr(node, "luks_area", None):  # the LUKS header and key material of an encrypted image
        inc(*node.luks_area)
    from pyqemu.block.qcow2.bitmaps import bitmap_ranges
    for off, length in bitmap_ranges(node):  # persistent bitmaps own their clusters
        inc(off, length)
    walk_l1(node.l1, True)
    if h.nb_snapshots:
        snaps = read_snapshot_table(node)
        inc(snaps[-1][0], snaps[-1][1])
        for l1_off, l1_size in snaps[:-1]:
            if l1_size * 8 > (32 << 20) or l1_off % cs:
                say("ERROR snapshot L1 table is invalid")
                res.corruptions += 1
                continue
            inc(l1_off, l1_size * 8)
            raw = node.file.pread(l1_off, l1_size * 8)
            walk_l1(list(struct.unpack(">%dQ" % l1_size, raw)), False)
    rc = node.refcounts
    inc(rc.table_offset, rc.table_clusters * cs)
    for i, b in enumerate(rc.table):
        off = b & ~0x1FF
        if not off:
            continue
        if off % cs:
            say("ERROR refcount block %d is not cluster aligned; refcount table entry corrupted" % i)
            res.corruptions += 1
            continue
        if off >= flen:
            say("ERROR refcount block %d is outside image" % i)
            res.corruptions += 1
            continue
        inc(off, cs)

    # compare: first only report (as QEMU does), then repair in a second pass
    rc = node.refcounts
    per = rc.per_block
    pre = (res.corruptions, res.leaks)
    rebuild, highest = _compare(node, res, counts, nb_file_clusters, False, False, say)
    if rebuild and fix_errors and not node.read_only:
        old = (res.corruptions, res.leaks)
        say("Rebuilding refcount structure")
        counts = _rebuild(node, counts)
        res.corruptions, res.leaks = pre
        leak_res = CheckResult()
        if fix_leaks:  # the old structures are leaked now: free them
            _compare(node, leak_res, counts, -(-node.file.length() // cs), True, False, say)
        if res.corruptions < old[0]:
            res.corruptions_fixed += old[0] - res.corruptions
        if res.leaks < old[1]:
            res.leaks_fixed += old[1] - res.leaks
        res.leaks += leak_res.leaks
        highest = max(counts) if counts else -1
    elif (fix_leaks or fix_errors) and not node.read_only:
        if rebuild:
            say("ERROR need to rebuild refcount structures")
            res.check_errors += 1
        elif res.leaks > pre[1] or res.corruptions > pre[0]:
            res.corruptions, res.leaks = pre
            _, highest = _compare(node, res, counts, nb_file_clusters, fix_leaks, fix_errors, say)
    # OFLAG_COPIED must match refcount == 1.  As QEMU: -r all always repairs it;
    # -r leaks repairs it when the refcounts are now known to be right (fixing
    # leaks can itself turn a refcount of 2 into 1 under a cleared flag)
    rc = node.refcounts
    flag_repair = not node.read_only and (fix_errors or (
        fix_leaks and not res.check_errors and not res.corruptions and not res.leaks))
    for kind, where, entry, host in copied_checks:
        refcount = rc.get(host >> cbits) if (host >> cbits) // per < len(rc.table) else 0
        want = refcount == 1
        if bool(entry & COPIED) == want:
            continue
        repair = flag_repair
        label = "Repairing" if repair else "ERROR"
        if kind == "l1":
            say("%s OFLAG_COPIED L2 cluster: l1_index=%d l1_entry=%x refcount=%d"
                % (label, where, entry, refcount))
        else:
            say("%s OFLAG_COPIED data cluster: l2_entry=%x refcount=%d" % (label, entry, refcount))
        if repair:
            new = (entry | COPIED) if want else (entry & ~COPIED)
            if kind == "l1":
                node.l1[where] = new
                node.l1_dirty = True
            else:
                node.file.pwrite(where, struct.pack(">Q", new))
                node.l2_cache.clear()
                node.l2_dirty.clear()
            res.corruptions_fixed += 1
        else:
            res.corruptions += 1
    if fix_leaks or fix_errors:
        node.flush_metadata()
    res.image_end_offset = (highest + 1) * cs


def _compare(node, res: CheckResult, counts: Dict[int, int], nb_file_clusters: int, fix_leaks: bool,
             fix_errors: bool, say) -> Tuple[bool, int]:
    """Stored refcounts against counted references; returns (rebuild needed, highest cluster)."""
    rc = node.refcounts
    per = rc.per_block
    nb = max([nb_file_clusters] + [c + 1 for c in counts])
    highest = -1
    rebuild = False
    for c in range(nb):
        if c // per < len(rc.table) and rc.table[c // per]:
            stored = rc.get(c)
        else:
            stored = 0
        computed = counts.get(c, 0)
        if computed or stored:
            highest = c
        if stored == computed:
            continue
        fixed = False
        if stored == 0:
            rebuild = True  # QEMU rebuilds the refcount structures for this
        elif stored > computed and fix_leaks:
            fixed = True
        elif stored < computed and fix_errors:
            fixed = True
        label = "Repairing" if fixed else ("ERROR" if stored < computed else "Leaked")
        say("%s cluster %d refcount=%d reference=%d" % (label, c, stored, computed))
        if fixed:
            try:
                rc.set(c, min(computed, rc.max))
                if stored > computed:
                    res.leaks_fixed += 1
                else:
                    res.corruptions_fixed += 1
                continue
            except QemuError:
                res.check_errors += 1
        if stored < computed:
            res.corruptions += 1
        else:
            res.leaks += 1
    return rebuild, highest


def _rebuild(node, counts: Dict[int, int]) -> Dict[int, int]:
    """New refcount blocks and table from the counted references, in the first free
    clusters (the old structures still count as used), switched in by one header write.
    Returns the references including the new structures."""
    cs = node.cs
    rc = node.refcounts
    node.flush_metadata()
    used = dict(counts)
    per = rc.per_block

    def first_free(n: int, start: int = 0) -> int:
        c = start
        while True:
            if all(used.get(c + k, 0) == 0 for k in range(n)):
                return c
            c += 1

    top = max(used) + 1 if used else 1
    nblocks = -(-top // per)
    while True:
        blocks = []
        trial = dict(used)
        for _ in range(nblocks):
            b = first_free(1)
            used[b] = 1
            blocks.append(b)
        ntable = -(-(max(nblocks, (max(used) // per) + 1) * 8) // cs)
        t = first_free(ntable)
        for k in range(ntable):
            used[t + k] = 1
        need = (max(used) // per) + 1
        if need <= nblocks and need * 8 <= ntable * cs:
            break
        used = trial
        nblocks = need
    # the new blocks still count the old structures (they are in use until the
    # switch); afterwards nothing references them, so they show up as leaks
    new = dict(used)
    old = [(b & ~0x1FF) // cs for b in rc.table if b & ~0x1FF]
    old += [rc.table_offset // cs + k for k in range(rc.table_clusters)]
    for c in old:
        if counts.get(c) == 1:
            del new[c]
    from pyqemu.block.qcow2.refcount import pack_refblock
    entries = [0] * (ntable * cs // 8)
    blocks.sort()
    for i in range(nblocks):
        vals = [min(used.get(i * per + j, 0), rc.max) for j in range(per)]
        node.file.pwrite(blocks[i] * cs, pack_refblock(vals, rc.bits))
        entries[i] = blocks[i] * cs
    node.file.pwrite(t * cs, struct.pack(">%dQ" % len(entries), *entries))
    node.file.flush()
    h = node.header
    h.refcount_table_offset, h.refcount_table_clusters = t * cs, ntable
    node.file.pwrite(48, struct.pack(">QI", t * cs, ntable))
    node.file.flush()
    from pyqemu.block.qcow2.refcount import Refcounts
    node.refcounts = Refcounts(node, rc.cache_blocks)
    return new
