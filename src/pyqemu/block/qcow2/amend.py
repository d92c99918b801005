"""``qemu-img amend`` for qcow2: compat up/downgrade, lazy_refcounts, refcount_bits,
backing file and size.

Changing the refcount width rebuilds the refcount structures: references are
counted from the metadata, new blocks and table are written past the end of
the image, and one header write switches to them (the old structures then
simply become free clusters).
"""
from __future__ import annotations

import struct
from typing import Dict

from pyqemu.block.qcow2.check import read_snapshot_table
from pyqemu.block.qcow2.driver import (COMPRESSED, COPIED, L1_OFFSET_MASK, L2_OFFSET_MASK, ZERO_ALLOC,
                                       ZERO_FLAG, ZERO_PLAIN, Qcow2Node)
from pyqemu.block.qcow2.header import (COMPAT_LAZY_REFCOUNTS, EXT_FEATURE_TABLE, INCOMPAT_COMPRESSION,
                                       INCOMPAT_DIRTY, feature_table_ext)
from pyqemu.block.qcow2.refcount import Refcounts, pack_refblock
from pyqemu.util.error import QemuError
from pyqemu.util.opts import parse_bool, parse_size

AMEND_OPTS = ("compat", "lazy_refcounts", "refcount_bits", "backing_file", "backing_fmt", "size",
              "data_file", "data_file_raw")
CREATE_ONLY = ("cluster_size", "preallocation", "compression_type", "extended_l2", "nocow", "encryption",
               "encrypt.format")


def amend(node: Qcow2Node, opts: Dict[str, str]) -> None:
    for k in opts:
        if k in CREATE_ONLY:
            raise QemuError("Invalid parameter '%s'" % k, hint="This option is only supported for image creation")
        if k not in AMEND_OPTS:
            raise QemuError("Invalid parameter '%s'" % k)
        if k in ("data_file", "data_file_raw"):
            raise QemuError("Changing %s is not supported by pyqemu yet" % k)
    h = node.header
    version = h.version
    if "compat" in opts:
        c = opts["compat"]
        if c in ("0.10", "v2"):
            version = 2
        elif c in ("1.1", "v3"):
            version = 3
        else:
            raise QemuError("Unknown compatibility level %s" % c)
    lazy = parse_bool("lazy_refcounts", opts["lazy_refcounts"]) if "lazy_refcounts" in opts \
        else bool(h.compatible & COMPAT_LAZY_REFCOUNTS)
    rbits = int(opts["refcount_bits"]) if "refcount_bits" in opts else 1 << h.refcount_order
    if rbits < 1 or rbits > 64 or rbits & (rbits - 1):
        raise QemuError("Refcount width must be a power of two and may not exceed 64 bits")
    if version < 3:
        if lazy and "lazy_refcounts" in opts:
            raise QemuError("Lazy refcounts only supported with compatibility level 1.1 and above "
                            "(use compat=1.1 or greater)")
        if rbits != 16 and "refcount_bits" in opts:
            raise QemuError("Refcount widths other than 16 bits require compatibility level 1.1 "
                            "or above (use compat=1.1 or greater)")
    if version > h.version:
        h.version = 3
        h.header_length = 112
        h.set_ext(EXT_FEATURE_TABLE, feature_table_ext())
        node.write_header()
    if rbits != 1 << h.refcount_order:
        change_refcount_width(node, rbits)
    if version >= 3:
        want = (h.compatible | COMPAT_LAZY_REFCOUNTS) if lazy else (h.compatible & ~COMPAT_LAZY_REFCOUNTS)
        if want != h.compatible:
            h.compatible = want
            node.write_header()
    if "backing_file" in opts or "backing_fmt" in opts:
        name = opts.get("backing_file", h.backing_file)
        fmt = opts.get("backing_fmt", h.backing_format)
        node.set_backing(name or None, fmt)
    if "size" in opts:
        size = parse_size("size", opts["size"])
        node.truncate(size)
    if version < h.version:
        downgrade(node)


def downgrade(node: Qcow2Node) -> None:
    h = node.header
    if h.refcount_order != 4:
        raise QemuError("compat=0.10 requires refcount_bits=16")
    if h.incompatible & INCOMPAT_COMPRESSION:
        raise QemuError("Cannot downgrade an image with a non-zlib compression type")
    if h.incompatible & INCOMPAT_DIRTY:
        raise QemuError("Cannot downgrade a dirty image")
    # zero clusters do not exist in version 2: expand them
    cs = node.cs
    for i, e in enumerate(list(node.l1)):
        if not e & L1_OFFSET_MASK:
            continue
        for j in range(node.l2_entries):
            c = i * node.l2_entries + j
            if c * cs >= node.length():
                break
            entry = node._entry(c)
            kind = node._kind(entry)
            if kind == ZERO_ALLOC:
                node.file.pwrite(entry & L2_OFFSET_MASK, bytes(cs))
                node._set_entry(c, entry & ~ZERO_FLAG)
            elif kind == ZERO_PLAIN:
                if node.backing_filename():
                    host = node.refcounts.alloc(1)
                    node.file.pwrite(host, bytes(cs))
                    node._set_entry(c, host | COPIED)
                else:
                    node._set_entry(c, 0)
    node.flush()
    h.version = 2
    h.compatible = h.autoclear = 0
    h.incompatible = 0
    h.header_length = 72
    h.set_ext(EXT_FEATURE_TABLE, None)
    node.write_header()


def _references(node: Qcow2Node) -> Dict[int, int]:
    """How often each cluster is referenced by anything but the refcount structures."""
    cs, cbits = node.cs, node.cluster_bits
    counts: Dict[int, int] = {}

    def inc(off: int, length: int) -> None:
        for c in range(off >> cbits, ((off + length - 1) >> cbits) + 1):
            counts[c] = counts.get(c, 0) + 1

    h = node.header
    inc(0, cs)
    tables = [(h.l1_table_offset, list(node.l1))]
    if h.nb_snapshots:
        snaps = read_snapshot_table(node)
        inc(snaps[-1][0], snaps[-1][1])
        for off, size in snaps[:-1]:
            raw = node.file.pread(off, size * 8)
            tables.append((off, list(struct.unpack(">%dQ" % size, raw))))
    for off, l1 in tables:
        if l1:
            inc(off, len(l1) * 8)
        for e in l1:
            l2 = e & L1_OFFSET_MASK
            if not l2:
                continue
            inc(l2, cs)
            for le in node.parse_l2(node.file.pread(l2, cs))[0]:
                if le & COMPRESSED:
                    host, size = node._compressed_geometry(le)
                    inc(host & ~511, (host & 511) + size)
                elif le & L2_OFFSET_MASK:
                    inc(le & L2_OFFSET_MASK, cs)
    return counts


def change_refcount_width(node: Qcow2Node, bits: int) -> None:
    node.flush()
    cs = node.cs
    counts = _references(node)
    per = cs * 8 // bits
    limit = (1 << bits) - 1
    for c, v in counts.items():
        if v > limit:
            raise QemuError("Cannot decrease refcount entry width to %d bits: Cluster at offset %#x has a "
                            "refcount of %d" % (bits, c * cs, v))
    start = max([-(-node.file.length() // cs), node.refcounts.alloc_end] + [c + 1 for c in counts])
    blocks = table = 0
    while True:  # fixed point: the new structures also need refcounts
        total = start + blocks + table
        nb = -(-total // per)
        nt = -(-(nb * 8) // cs)
        if (nb, nt) == (blocks, table):
            break
        blocks, table = nb, nt
    new = dict(counts)
    for c in range(start, start + blocks + table):
        new[c] = 1
    table_off = (start + blocks) * cs
    entries = [0] * (table * cs // 8)
    for b in range(blocks):
        vals = [new.get(b * per + i, 0) for i in range(per)]
        off = (start + b) * cs
        node.file.pwrite(off, pack_refblock(vals, bits))
        entries[b] = off
    node.file.pwrite(table_off, struct.pack(">%dQ" % len(entries), *entries))
    node.file.flush()
    h = node.header
    h.refcount_order = bits.bit_length() - 1
    h.refcount_table_offset, h.refcount_table_clusters = table_off, table
    node.write_header()
    node.refcounts = Refcounts(node, node.refcounts.cache_blocks)
