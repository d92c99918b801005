"""pyqemu-img measure: the file size a conversion or a new image needs (QEMU's formulas)."""
from __future__ import annotations

import sys
from typing import List, Optional

from pyqemu.block import STATUS_ALLOCATED, STATUS_DATA, STATUS_ZERO, get_block_status
from pyqemu.cli.img import img_open, parse_args, parse_o, parse_output
from pyqemu.cli.img_json import to_json_pretty
from pyqemu.util.error import QemuError
from pyqemu.util.opts import parse_bool, strtosz
from pyqemu.qom.cmdline import add_object_from_cmdline


def refcount_metadata_size(clusters: int, cs: int, refcount_order: int) -> int:
    """Refcount blocks and table clusters for ``clusters``, found as a fixed point."""
    per_table_cluster = cs // 8
    per_block = cs * 8 // (1 << refcount_order)
    table = blocks = n = 0
    while True:
        last = n
        blocks = -(-(clusters + table + blocks) // per_block)
        table = -(-blocks // per_table_cluster)
        n = clusters + blocks + table
        if n == last:
            return (blocks + table) * cs


def prealloc_size(total: int, cs: int, refcount_order: int, extended_l2: bool = False) -> int:
    l2e = 16 if extended_l2 else 8
    aligned = -(-total // cs) * cs
    meta = cs
    nl2e = aligned // cs
    nl2e = -(-nl2e // (cs // l2e)) * (cs // l2e)
    meta += nl2e * l2e
    nl1e = nl2e * l2e // cs
    nl1e = -(-nl1e // (cs // 8)) * (cs // 8)
    meta += nl1e * 8
    meta += refcount_metadata_size((meta + aligned) // cs, cs, refcount_order)
    return meta + aligned


def _size_arg(text: str) -> int:
    try:
        v = strtosz(text, "B")
    except (ValueError, OverflowError, QemuError):
        v = -1
    if v < 0:
        raise QemuError("Invalid image size specified. You may use k, M, G, T, P or E suffixes for")
    return v


def main(argv: List[str]) -> int:
    opts, args = parse_args(argv, "f:O:o:l:U", ["output=", "size=", "image-opts", "object=", "force-share"])
    fmt = None
    out_fmt = "raw"
    output = "human"
    size: Optional[int] = None
    o_values: List[str] = []
    image_opts = force = False
    for k, v in opts:
        if k == "-f":
            fmt = v
        elif k == "-O":
            out_fmt = v
        elif k == "-o":
            o_values.append(v)
        elif k == "--output":
            output = parse_output(v)
        elif k == "--size":
            size = _size_arg(v)
        elif k == "--image-opts":
            image_opts = True
        elif k in ("-U", "--force-share"):
            force = True
        elif k == "--object":
            add_object_from_cmdline(v)
        elif k == "-l":
            raise QemuError("%s is not supported by pyqemu-img yet" % k)
    if size is not None and args:
        raise QemuError("--size N cannot be used together with a filename.")
    if size is None and len(args) != 1:
        raise QemuError("Either --size N or one filename must be specified.")
    o = parse_o(o_values)
    if out_fmt not in ("raw", "qcow2", "luks"):
        raise QemuError("Unknown file format '%s'" % out_fmt)
    node = img_open(args[0], fmt, image_opts, readonly=True, force_share=force) if args else None
    try:
        info = _measure(out_fmt, o, node, size)
    finally:
        if node is not None:
            node.close()
    if output == "json":
        sys.stdout.write(to_json_pretty(info) + "\n")
    else:
        sys.stdout.write("required size: %d\nfully allocated size: %d\n" % (info["required"],
                                                                            info["fully-allocated"]))
        if "bitmaps" in info:
            sys.stdout.write("bitmaps size: %d\n" % info["bitmaps"])
    return 0


def _measure(out_fmt: str, o: dict, node, size: Optional[int]) -> dict:
    from pyqemu.block.crypto.luks import header_bytes
    if out_fmt == "luks":  # header and key slots, then the whole payload
        req = header_bytes(o) + (node.length() if node is not None else -(-(size or 0) // 512) * 512)
        return {"required": req, "fully-allocated": req}
    if out_fmt == "qcow2" and o.get("encrypt.format") == "luks":
        enc = {k[8:]: v for k, v in o.items() if k.startswith("encrypt.") and k != "encrypt.format"}
        cs = strtosz(o.get("cluster_size", "65536"), "B")
        extra = -(-header_bytes(enc, "encrypt.") // cs) * cs
        info = _measure(out_fmt, {k: v for k, v in o.items() if not k.startswith("encrypt.")}, node, size)
        info["required"] += extra
        info["fully-allocated"] += extra
        return info
    if out_fmt == "raw":
        req = node.length() if node is not None else -(-(size or 0) // 512) * 512
        return {"required": req, "fully-allocated": req}
    cs = strtosz(o.get("cluster_size", "65536"), "B")
    if cs < 512 or cs > (2 << 20) or cs & (cs - 1):
        raise QemuError("Cluster size must be a power of two between 512 and 2048k")
    rbits = int(o.get("refcount_bits", "16"))
    if rbits < 1 or rbits > 64 or rbits & (rbits - 1):
        raise QemuError("Refcount width must be a power of two and may not exceed 64 bits")
    order = rbits.bit_length() - 1
    compat = o.get("compat", "1.1")
    version = 2 if compat in ("0.10", "v2") else 3
    extl2 = parse_bool("extended_l2", o.get("extended_l2", "off"))
    prealloc = o.get("preallocation", "off")
    required = 0
    if node is not None:
        ssize = node.length()
        virtual = -(-ssize // cs) * cs
        if o.get("backing_file"):
            required = virtual
        else:
            off = 0
            while off < ssize:
                st, _ = get_block_status(node, off, ssize - off)
                pnum = st.length
                if pnum <= 0:
                    break
                if st.flags & STATUS_ZERO:
                    pass
                elif st.flags & (STATUS_DATA | STATUS_ALLOCATED) == (STATUS_DATA | STATUS_ALLOCATED):
                    pnum = -(-(off + pnum) // cs) * cs - off
                    required += off % cs + pnum
                off += pnum
    else:
        virtual = -(-(size or 0) // cs) * cs
    if prealloc in ("full", "falloc"):
        required = virtual
    full = prealloc_size(virtual, cs, order, extl2)
    info = {"required": full - virtual + required, "fully-allocated": full}
    if version >= 3 and node is not None and node.driver == "qcow2" and node.header.version >= 3:
        info["bitmaps"] = 0
    return info
