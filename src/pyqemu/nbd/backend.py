"""Opening the image an NBD export serves, through the block layer.

Every format and protocol ``pyqemu.block`` opens can be served; errors carry
qemu-nbd's ``Failed to blk_new_open`` wording.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Union

from pyqemu.block import open_image
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
