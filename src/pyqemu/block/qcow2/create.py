"""``qemu-img create -f qcow2``: the same initial layout as QEMU 7.2.

Cluster 0 holds the header, cluster 1 the refcount table, cluster 2 the
first refcount block, and the L1 table is then allocated (cluster 3 for
small images) by growing it through the normal allocator.
"""
from __future__ import annotations

import struct
from typing import Any, Dict

from pyqemu.block.file import create_file
from pyqemu.block.qcow2.header import (COMPAT_LAZY_REFCOUNTS, EXT_BACKING_FORMAT, EXT_FEATURE_TABLE,
                                       AUTOCLEAR_DATA_FILE_RAW, EXT_DATA_FILE, INCOMPAT_COMPRESSION,
                                       INCOMPAT_DATA_FILE, INCOMPAT_EXTL2, Header, feature_table_ext)
from pyqemu.block.qcow2.refcount import pack_refblock
from pyqemu.util.error import QemuError
from pyqemu.util.opts import parse_bool, parse_size

CREATE_OPTS = ("size", "compat", "backing_file", "backing_fmt", "data_file", "data_file_raw",
               "encryption", "cluster_size", "preallocation", "lazy_refcounts", "refcount_bits",
               "compression_type", "extended_l2", "nocow")


def create_qcow2(filename: str, size: int, options: Dict[str, Any]) -> None:
    opts = dict(options)
    from pyqemu.block.qcow2.encrypt import pop_encrypt_options, set_up_encryption
    enc = pop_encrypt_options(opts)
    for k in opts:
        if k not in CREATE_OPTS:
            raise QemuError("Invalid parameter '%s'" % k)
    compat = str(opts.get("compat", "1.1"))
    if compat in ("0.10", "v2"):
        version = 2
    elif compat in ("1.1", "v3"):
        version = 3
    else:
        raise QemuError("Parameter 'version' does not accept value '%s'" % compat)
    cs = parse_size("cluster_size", str(opts.get("cluster_size", "65536")))
    if cs < 512 or cs > (2 << 20) or cs & (cs - 1):
        raise QemuError("Cluster size must be a power of two between 512 and 2048k")
    rbits = int(str(opts.get("refcount_bits", "16")))
    if rbits < 1 or rbits > 64 or rbits & (rbits - 1):
        raise QemuError("Refcount width must be a power of two and may not exceed 64 bits")
    if version < 3 and rbits != 16:
        raise QemuError("Different refcount widths than 16 bits require compatibility level 1.1 "
                        "or above (use version=v3 or greater)")
    lazy = parse_bool("lazy_refcounts", str(opts.get("lazy_refcounts", "off")))
    if lazy and version < 3:
        raise QemuError("Lazy refcounts only supported with compatibility level 1.1 and above "
                        "(use version=v3 or greater)")
    ctype = str(opts.get("compression_type", "zlib"))
    if ctype not in ("zlib", "zstd"):
        raise QemuError("Parameter 'compression-type' does not accept value '%s'" % ctype)
    if ctype == "zstd" and version < 3:
        raise QemuError("Compression type selection is only supported with compatibility level 1.1 "
                        "and above (use version=v3 or greater)")
    extl2 = parse_bool("extended_l2", str(opts.get("extended_l2", "off")))
    if extl2 and version < 3:
        raise QemuError("Extended L2 entries are only supported with compatibility level 1.1 and above "
                        "(use version=v3 or greater)")
    if extl2 and cs < 16384:
        raise QemuError("Extended L2 entries are only supported with cluster sizes of at least 16384 bytes")
    data_file = opts.get("data_file")
    data_raw = parse_bool("data_file_raw", str(opts.get("data_file_raw", "off")))
    if data_raw and not data_file:
        raise QemuError("data-file-raw requires data-file")
    if data_raw and opts.get("backing_file"):
        raise QemuError("Backing file and data-file-raw cannot be used at the same time")
    if data_file and version < 3:
        raise QemuError("Data file is only supported with compatibility level 1.1 and above "
                        "(use version=v3 or greater)")
    prealloc = str(opts.get("preallocation", "off"))
    if prealloc not in ("off", "metadata", "falloc", "full"):
        raise QemuError("Parameter 'preallocation' does not accept value '%s'" % prealloc)
    backing = opts.get("backing_file")
    backing_fmt = opts.get("backing_fmt")
    if backing_fmt and not backing:
        raise QemuError("Backing format cannot be used without backing file")
    cbits = cs.bit_length() - 1

    h = Header()
    h.version = version
    h.cluster_bits = cbits
    h.size = 0
    h.refcount_order = rbits.bit_length() - 1
    h.refcount_table_offset = cs
    h.refcount_table_clusters = 1
    if lazy:
        h.compatible |= COMPAT_LAZY_REFCOUNTS
    if extl2:
        h.incompatible |= INCOMPAT_EXTL2
    if data_file:
        h.incompatible |= INCOMPAT_DATA_FILE
        if data_raw:
            h.autoclear |= AUTOCLEAR_DATA_FILE_RAW
    if ctype == "zstd":
        h.compression_type = 1
        h.incompatible |= INCOMPAT_COMPRESSION
    if backing_fmt:
        h.set_ext(EXT_BACKING_FORMAT, str(backing_fmt).encode())
    if data_file:  # QEMU's extension order: backing format, data file, feature table
        h.set_ext(EXT_DATA_FILE, str(data_file).encode())
    if version >= 3:
        h.set_ext(EXT_FEATURE_TABLE, feature_table_ext())
    if backing:
        h.backing_file = str(backing)
    if data_file:
        from pyqemu.block.open import resolve_backing_path
        create_file(resolve_backing_path(filename, str(data_file)), size)
        if data_raw and prealloc == "off":
            prealloc = "metadata"  # a raw data file needs every cluster mapped
    create_file(filename, 0)
    from pyqemu.block.file import FileNode
    f = FileNode({"filename": filename}, False)
    try:
        f.pwrite(0, h.pack().ljust(cs, b"\0"))
        table = bytearray(cs)
        struct.pack_into(">Q", table, 0, 2 * cs)
        f.pwrite(cs, bytes(table))
        blk = [0] * (cs * 8 // rbits)
        blk[0] = blk[1] = blk[2] = 1
        f.pwrite(2 * cs, pack_refblock(blk, rbits))
    finally:
        f.close()
    from pyqemu.block.open import open_image
    # like qemu-img convert's target, a new image is not synced to the disk here
    node = open_image({"driver": "qcow2", "file": filename, "backing": None}, readonly=False,
                      cache="unsafe")
    try:
        node.truncate(size, prealloc)
        if enc is not None:
            set_up_encryption(node, enc)
    finally:
        node.close()
