"""pyqemu-img info."""
from __future__ import annotations

import sys
from typing import Any, Dict, List

from pyqemu.block import BlockNode
from pyqemu.block.open import resolve_backing_path
from pyqemu.cli.img import img_open, parse_args, parse_output
from pyqemu.cli.img_filename import refreshed_filename
from pyqemu.cli.img_json import qdict_order, to_json_pretty
from pyqemu.util.error import UsageError
from pyqemu.util.units import size_to_str
from pyqemu.qom.cmdline import add_object_from_cmdline


def _on_local_file(node: BlockNode) -> bool:
    proto = node
    while proto.file is not None and proto.file is not proto:
        proto = proto.file
    return proto.driver in ("file", "host_device")


def image_info(node: BlockNode, filename: str) -> Dict[str, Any]:
    """The ImageInfo object qemu-img prints (keys in insertion order; the printer reorders)."""
    local = _on_local_file(node)
    # QEMU shows the name it recomputes from the open options (json:{...} when
    # they say more than a file name, the protocol's normalised name over NBD)
    filename = refreshed_filename(node)
    info: Dict[str, Any] = {"filename": filename, "format": node.driver,
                            "virtual-size": node.length()}
    actual = node.get_allocated_file_size()
    if actual >= 0:
        info["actual-size"] = actual
    cs = node.cluster_size()
    if cs:
        info["cluster-size"] = cs
    if getattr(node, "encrypted", False):
        info["encrypted"] = True
    backing = node.backing_filename()
    if backing:
        info["backing-filename"] = backing
        info["full-backing-filename"] = resolve_backing_path(node.filename, backing)
        if node.backing_format():
            info["backing-filename-format"] = node.backing_format()
    if (local or node.driver == "qcow2") and getattr(node, "has_bdrv_info", True):
        # QEMU has the flag only where bdrv_get_info() works: not for raw over NBD
        info["dirty-flag"] = node.is_dirty()
    if node.driver == "qcow2" and node.header.nb_snapshots:
        from pyqemu.block.qcow2.snapshot import read_snapshots
        snaps = read_snapshots(node)
        info["snapshots"] = [s.info() for s in snaps]
        info["_snapshot_objects"] = snaps
    spec = node.get_info()
    if spec:
        info["format-specific"] = {"type": node.driver, "data": spec}
    return info


def _dump_value(data: Any, indent: int, lines: List[str]) -> None:
    """Nested format-specific data as QEMU's human printer lays it out (lists as [i]:)."""
    items = [("[%d]" % i, v) for i, v in enumerate(data)] if isinstance(data, list) else \
        [(k.replace("-", " "), data[k]) for k in qdict_order(list(data))]
    for k, v in items:
        if isinstance(v, (dict, list)):
            lines.append("%s%s:" % (" " * indent, k))
            _dump_value(v, indent + 4, lines)
        else:
            if isinstance(v, bool):
                v = "true" if v else "false"
            lines.append("%s%s: %s" % (" " * indent, k, v))


def human(info: Dict[str, Any]) -> str:
    lines = ["image: %s" % info["filename"], "file format: %s" % info["format"],
             "virtual size: %s (%d bytes)" % (size_to_str(info["virtual-size"]), info["virtual-size"]),
             "disk size: %s" % (size_to_str(info["actual-size"]) if "actual-size" in info
                                else "unavailable")]
    if info.get("encrypted"):
        lines.append("encrypted: yes")
    if info.get("cluster-size"):
        lines.append("cluster_size: %d" % info["cluster-size"])
    if "backing-filename" in info:
        line = "backing file: %s" % info["backing-filename"]
        if info["full-backing-filename"] != info["backing-filename"]:
            line += " (actual path: %s)" % info["full-backing-filename"]
        lines.append(line)
        if "backing-filename-format" in info:
            lines.append("backing file format: %s" % info["backing-filename-format"])
    if info.get("dirty-flag"):
        lines.append("dirty flag: yes")
    if info.get("_snapshot_objects"):
        from pyqemu.cli.img_snapshot import snapshot_table_text
        lines.append("Snapshot list:")
        lines.append(snapshot_table_text(info["_snapshot_objects"]).rstrip("\n"))
    if "format-specific" in info:
        lines.append("Format specific information:")
        _dump_value(info["format-specific"]["data"], 4, lines)
    return "\n".join(lines) + "\n"


def main(argv: List[str]) -> int:
    opts, args = parse_args(argv, "f:U", ["output=", "backing-chain", "image-opts", "force-share",
                                          "object=", "format="])
    fmt = None
    output = "human"
    chain = False
    image_opts = False
    force = False
    for k, v in opts:
        if k in ("-f", "--format"):
            fmt = v
        elif k == "--output":
            output = parse_output(v)
        elif k == "--backing-chain":
            chain = True
        elif k == "--image-opts":
            image_opts = True
        elif k in ("-U", "--force-share"):
            force = True
        elif k == "--object":
            add_object_from_cmdline(v)
    if len(args) != 1:
        raise UsageError("Expecting one image file name")
    filename = args[0]
    from pyqemu.block.crypto import header_only
    with header_only():  # as QEMU's BDRV_O_NO_IO: encryption headers are read, no key is needed
        node = img_open(filename, fmt, image_opts, readonly=True, force_share=force, no_backing=not chain)
    try:
        infos = []
        cur = node
        name = filename
        while cur is not None:
            infos.append(image_info(cur, name))
            if not chain:
                break
            if cur.backing is None:
                break
            name = infos[-1].get("full-backing-filename", cur.backing.filename)
            cur = cur.backing
        if output == "json":
            for i in infos:
                i.pop("_snapshot_objects", None)
            sys.stdout.write(to_json_pretty(infos if chain else infos[0]) + "\n")
        else:
            sys.stdout.write("\n".join(human(i) for i in infos))
    finally:
        node.close()
    return 0
