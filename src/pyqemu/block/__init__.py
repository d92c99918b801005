"""The block layer: a graph of nodes that every pyqemu program opens disks with.

Public API (stable for pyqemu-img, pyqemu-io, pyqemu-nbd and the emulator)::

    from pyqemu.block import open_image, create_image

    node = open_image("disk.qcow2")                # probe the format
    node = open_image("disk.img", fmt="raw", readonly=False, cache="none")
    node = open_image('json:{"driver": "qcow2", "file": {"driver": "file", "filename": "d.qcow2"}}')
    node = open_image({"driver": "qcow2", "file": "d.qcow2", "backing": None})  # an options tree
    data = node.pread(0, 65536)
    node.pwrite(4096, b"...")
    node.pwrite_zeroes(0, 1 << 20, may_unmap=True)
    st = node.block_status(0, node.length())   # BlockStatus(flags, length, offset, file)
    node.flush(); node.close()

    create_image("qcow2", "d.qcow2", 1 << 30, {"cluster_size": "65536", "backing_file": "b.raw"})

A node (:class:`pyqemu.block.node.BlockNode`) has ``driver``, ``node_name``,
``filename``, ``read_only``, children ``file`` and ``backing`` (None when
absent), ``length()``, ``pread``/``pwrite``/``pwrite_zeroes``/``discard``/
``flush``/``truncate``/``block_status``/``close`` and, for qemu-img info,
``get_info()``, ``cluster_size()``, ``backing_filename()``.  Block status
flags are ``STATUS_DATA``, ``STATUS_ZERO``, ``STATUS_ALLOCATED``,
``STATUS_OFFSET_VALID`` (QEMU's ``BDRV_BLOCK_*``); use
:func:`node_block_status` for the answer with QEMU's generic rules applied,
and :func:`get_block_status` to look through the backing chain.

Errors are :class:`pyqemu.util.error.QemuError` with QEMU's wording.  Opening
takes the image locks (OFD locks, compatible with real QEMU); ``force_share``
(``-U``) opens read-only without locking out writers.
"""
from __future__ import annotations

from pyqemu.block.node import (PERM_ALL, PERM_CONSISTENT_READ, PERM_RESIZE, PERM_WRITE,  # noqa: F401
                               PERM_WRITE_UNCHANGED, STATUS_ALLOCATED, STATUS_DATA, STATUS_EOF,
                               STATUS_OFFSET_VALID, STATUS_RAW, STATUS_ZERO, BlockNode, BlockStatus,
                               get_block_status, node_block_status)
from pyqemu.block.open import create_image, open_image, format_names  # noqa: F401

__all__ = ["open_image", "create_image", "format_names", "BlockNode", "BlockStatus",
           "node_block_status", "get_block_status",
           "STATUS_DATA", "STATUS_ZERO", "STATUS_ALLOCATED", "STATUS_OFFSET_VALID", "STATUS_RAW",
           "STATUS_EOF"]

# NBD (nbd://, nbd+unix://, nbd:host:port) is registered lazily: its client pulls in
# socket/ssl, which every pyqemu-img start would otherwise pay for.  On first use the
# real module is imported; it registers its own factory, which then takes over.
from pyqemu.block import open as _open  # noqa: E402


def _nbd_factory(options, read_only):
    from pyqemu.block import nbd  # noqa: F401  (registers the real driver)
    return _open._protocols["nbd"](options, read_only)


def _nbd_parse(name):
    from pyqemu.block import nbd
    return nbd.parse_nbd_filename(name)


for _prefix in ("nbd", "nbd+tcp", "nbd+unix"):
    _open.register_protocol("nbd", _nbd_factory, prefix=_prefix, parse_filename=_nbd_parse)


# vvfat (fat:[floppy:][:12:|:16:|:32:]dir) likewise, imported on first use
def _vvfat_factory(options, read_only):
    from pyqemu.block import vvfat
    return vvfat.open_vvfat(options, read_only)


def _vvfat_parse(name):
    from pyqemu.block import vvfat
    return vvfat.parse_filename(name)


_open.register_protocol("vvfat", _vvfat_factory, prefix="fat", parse_filename=_vvfat_parse)
