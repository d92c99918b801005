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
