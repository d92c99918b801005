"""Opening the image an NBD export serves, through the block layer.

Every format and protocol ``pyqemu.block`` opens can be served; errors carry
qemu-nbd's ``Failed to blk_new_open`` wording.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, Optional, Union

from pyqemu.block import create_image, open_image
from pyqemu.nbd.blockexport import BlockNodeBackend
from pyqemu.util.error import QemuError


def open_backend(spec: Union[str, Dict[str, Any]], fmt: Optional[str] = None, read_only: bool = False,
                 cache: str = "writeback", name: Optional[str] = None) -> BlockNodeBackend:
    """Open ``spec`` (a file name or an options tree) for serving."""
    shown = name if name is not None else (spec if isinstance(spec, str) else "")
    try:
        node = open_image(spec, fmt, readonly=read_only, cache=cache)
    except QemuError as exc:
        if isinstance(spec, str) and not exc.msg.startswith("Could not open"):
            exc.prefixed("Could not open '%s'" % shown)
        raise exc.prefixed("Failed to blk_new_open '%s'" % shown) from None
    return BlockNodeBackend(node)


def open_snapshot_backend(filename: str, fmt: Optional[str] = None, cache: str = "writeback") -> BlockNodeBackend:
    """``qemu-nbd -s``: serve a temporary qcow2 overlay whose backing file is ``filename``.

    Writes land in the overlay, which is deleted (unlinked while open) so
    that nothing is left behind; the image itself is only read.
    """
    probe = open_backend(filename, fmt, read_only=True, cache=cache)
    base_fmt = probe.node.driver
    size = probe.size()
    probe.close()
    tmpdir = os.environ.get("TMPDIR") or "/var/tmp"
    fd, overlay = tempfile.mkstemp(prefix="vl.", dir=tmpdir)
    os.close(fd)
    try:
        create_image("qcow2", overlay, size, {"backing_file": os.path.abspath(filename),
                                              "backing_fmt": base_fmt})
        node = open_image(overlay, "qcow2", readonly=False, cache=cache)
    except QemuError as exc:
        raise exc.prefixed("Failed to blk_new_open '%s'" % filename) from None
    finally:
        os.unlink(overlay)
    return BlockNodeBackend(node)


def load_internal_snapshot(backend: BlockNodeBackend, spec: str) -> None:
    """``qemu-nbd -l``: make a read-only qcow2 node show an internal snapshot.

    ``spec`` is ``ID_OR_NAME`` or ``snapshot.id=ID,snapshot.name=NAME``.  The
    node's active L1 view is replaced by the snapshot's L1 table; as the node
    is read-only nothing is ever written back.
    """
    from pyqemu.util.opts import keyval_parse
    node = backend.node
    if "snapshot." in spec:
        tree, _ = keyval_parse(spec)
        want = dict(tree.get("snapshot") or {})
        sid, sname = want.get("id"), want.get("name")
    else:
        sid = sname = None
    if node.driver != "qcow2":
        raise QemuError("Failed to load snapshot: Block format '%s' used by device '' does not support "
                        "temporarily loading internal snapshots" % node.driver)
    import struct

    from pyqemu.block.qcow2.snapshot import read_snapshots
    found = None
    for sn in read_snapshots(node):  # type: ignore[arg-type]
        if sid is None and sname is None:
            match = sn.id == spec or sn.name == spec
        else:
            match = (sid is None or sn.id == str(sid)) and (sname is None or sn.name == str(sname))
        if match:
            found = sn
            break
    if found is None:
        raise QemuError("Failed to load snapshot: Can't find snapshot")
    raw = node.file.pread(found.l1_table_offset, found.l1_size * 8)
    node.l1 = list(struct.unpack(">%dQ" % found.l1_size, raw))  # type: ignore[attr-defined]
    node.l2_cache.clear()  # type: ignore[attr-defined]
    if found.disk_size:
        node._size = found.disk_size  # type: ignore[attr-defined]
