"""The node of the block graph and what every driver shares.

A :class:`BlockNode` is one driver instance: a protocol driver (``file``,
``null-co``) talks to storage, a format driver (``raw``, ``qcow2``) sits on a
``file`` child and may have a ``backing`` child.  All offsets and lengths
are in bytes; there is no sector granularity in the API.

Block status flags are QEMU's ``BDRV_BLOCK_*`` values so that callers (map,
convert, NBD) can use them the way QEMU does.
"""
from __future__ import annotations

import itertools
from typing import Any, Callable, Dict, List, NamedTuple, Optional

from pyqemu.util.error import QemuError

# Block status flags (QEMU's BDRV_BLOCK_*).
STATUS_DATA = 0x01
STATUS_ZERO = 0x02
STATUS_OFFSET_VALID = 0x04
STATUS_RAW = 0x08
STATUS_ALLOCATED = 0x10
STATUS_EOF = 0x20
STATUS_RECURSE = 0x40  # ask the file child whether the data there reads as zeroes

# Permissions (QEMU's BLK_PERM_*), used for image locking.
PERM_CONSISTENT_READ = 0x01
PERM_WRITE = 0x02
PERM_WRITE_UNCHANGED = 0x04
PERM_RESIZE = 0x08
PERM_ALL = 0x0F
PERM_NAMES = ("consistent read", "write", "write unchanged", "resize")

_node_counter = itertools.count(1)


class BlockStatus(NamedTuple):
    """Answer of :meth:`BlockNode.block_status` for a run of bytes.

    ``flags`` are ``STATUS_*`` bits, ``length`` how many bytes from the
    requested offset share them, ``offset`` the host offset in ``file``
    when ``STATUS_OFFSET_VALID`` is set.
    """

    flags: int
    length: int
    offset: Optional[int] = None
    file: Optional["BlockNode"] = None


class BlockNode:
    """Base class of every driver.  Subclasses override the ``_``-less methods.

    Attributes a user may read: ``driver`` (name), ``node_name``,
    ``filename``, ``read_only``, ``file`` and ``backing`` children (or None),
    ``options`` (the nested options tree the node was opened with).
    """

    driver = "?"
    #: a format driver has metadata on its file child (qcow2) and unshares writes on it
    has_metadata = False
    supports_backing = False

    def __init__(self, options: Dict[str, Any], read_only: bool) -> None:
        self.options = options
        self.read_only = read_only
        self.node_name = options.get("node-name") or "#block%03d" % next(_node_counter)
        self.file: Optional[BlockNode] = None
        self.backing: Optional[BlockNode] = None
        self.filename = ""
        self.closed = False
        #: called before metadata is written while data writes may be in flight
        #: (set by :class:`pyqemu.block.pipeline.IOPool`)
        self.io_barrier: Optional[Callable[[], None]] = None

    # --- size -----------------------------------------------------------------
    def length(self) -> int:
        raise NotImplementedError

    @property
    def size(self) -> int:
        return self.length()

    # --- I/O ------------------------------------------------------------------
    def pread(self, offset: int, length: int) -> bytes:
        raise NotImplementedError

    def pwrite(self, offset: int, data: bytes) -> None:
        raise QemuError("Driver '%s' does not support writing" % self.driver)

    def preadinto(self, offset: int, buf: memoryview) -> None:
        """Read ``len(buf)`` bytes into ``buf``; protocol drivers avoid the copy."""
        buf[:] = self.pread(offset, len(buf))

    def read_plan(self, offset: int, length: int) -> List[Any]:
        """The mapping of a read resolved now, the data transfer left for later
        (see :mod:`pyqemu.block.pipeline`).  Default: read it now."""
        return [(None, self.pread(offset, length), length)]

    def write_plan(self, offset: int, data: Any) -> List[Any]:
        """Allocate and update metadata for a write now; return the data writes
        ``(node, host_offset, buffers)`` still to be issued.  Default: write now."""
        self.pwrite(offset, data)
        return []

    def pwritev(self, offset: int, buffers: list) -> None:
        """Write buffers back to back; drivers with a vectored path override it."""
        self.pwrite(offset, buffers[0] if len(buffers) == 1 else b"".join(buffers))

    def pwrite_zeroes(self, offset: int, length: int, may_unmap: bool = False) -> None:
        """Default: write a zero buffer in big pieces."""
        chunk = bytes(min(length, 1 << 20))
        while length > 0:
            n = min(length, len(chunk))
            self.pwrite(offset, chunk[:n] if n < len(chunk) else chunk)
            offset += n
            length -= n

    def discard(self, offset: int, length: int) -> None:
        """A hint; drivers that cannot discard ignore it, as QEMU does."""

    def flush(self) -> None:
        if self.file is not None:
            self.file.flush()

    def truncate(self, size: int, prealloc: str = "off", exact: bool = False) -> None:
        raise QemuError("Image format driver does not support resize")

    def block_status(self, offset: int, length: int) -> BlockStatus:
        """Status of the bytes at ``offset``: all data, allocated, by default."""
        return BlockStatus(STATUS_DATA | STATUS_ALLOCATED | STATUS_OFFSET_VALID,
                           max(0, min(length, self.length() - offset)), offset, self)

    def check_io(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.length():
            raise QemuError("Input/output error: request %d+%d beyond end of %d-byte image"
                            % (offset, length, self.length()), errno=5)

    # --- information ------------------------------------------------------------
    def get_allocated_file_size(self) -> int:
        """Bytes used on the host (``disk size``); -1 when unknown."""
        if self.file is not None:
            return self.file.get_allocated_file_size()
        return -1

    def get_info(self) -> Dict[str, Any]:
        """Format-specific information for ``qemu-img info`` (may be empty)."""
        return {}

    def cluster_size(self) -> int:
        return 0

    def backing_filename(self) -> Optional[str]:
        """The backing file name as stored in the image (None if none)."""
        return None

    def backing_format(self) -> Optional[str]:
        return None

    def is_dirty(self) -> bool:
        return False

    # --- lifecycle --------------------------------------------------------------
    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._close()
        finally:
            for child in (self.backing, self.file):
                if child is not None:
                    child.close()

    def _close(self) -> None:
        pass

    def __enter__(self) -> "BlockNode":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<%s node %s %r>" % (self.driver, self.node_name, self.filename)


def node_block_status(node: BlockNode, offset: int, length: int) -> BlockStatus:
    """A node's status with the generic rules QEMU's block layer adds.

    ``STATUS_RAW`` answers are resolved in the file child, ``STATUS_ALLOCATED``
    is added to anything with data or zeroes, and an unallocated range of a
    node without a backing file (or past the end of its backing file) reads
    as zeroes.
    """
    st = node.block_status(offset, length)
    if st.length <= 0 < length and offset < node.length():
        # a driver with nothing to say about an in-range request: zeroes, never a stall
        st = BlockStatus(STATUS_ZERO, min(length, node.length() - offset))
    flags = st.flags
    if flags & STATUS_RAW and st.file is not None:
        inner = node_block_status(st.file, st.offset or 0, st.length)
        return inner
    length = st.length
    if flags & (STATUS_DATA | STATUS_ZERO):
        flags |= STATUS_ALLOCATED
    elif node.supports_backing:
        if node.backing is None or offset >= node.backing.length():
            flags |= STATUS_ZERO
    if flags & STATUS_RECURSE and st.file is not None and st.file is not node and \
            flags & STATUS_DATA and not flags & STATUS_ZERO and flags & STATUS_OFFSET_VALID:
        # a driver that preallocates (qcow2 with preallocated metadata, static
        # images) asks: data mapped to a hole of the file below reads as zeroes
        # (qemu-img map: "zero": true, "data": true; convert skips it)
        inner = node_block_status(st.file, st.offset or 0, length)
        if inner.flags & STATUS_EOF and (inner.length <= 0 or inner.flags & STATUS_ZERO):
            flags |= STATUS_ZERO
        elif inner.length > 0:
            length = min(length, inner.length)
            flags |= inner.flags & STATUS_ZERO
    return BlockStatus(flags & ~STATUS_RECURSE, length, st.offset, st.file)


def get_block_status(node: BlockNode, offset: int, length: int):
    """What ``qemu-img map`` reports for ``offset``: ``(status, depth)``.

    Walks down the backing chain until a layer has data or zeroes there;
    ``depth`` counts the backing links followed.  The status of a range that
    no layer allocates has neither DATA nor ZERO.
    """
    depth = 0
    cur = node
    while True:
        st = node_block_status(cur, offset, length)
        if st.length <= 0:
            return st, depth
        length = st.length
        if st.flags & (STATUS_DATA | STATUS_ZERO):
            return st, depth
        if cur.backing is None:
            return BlockStatus(0, length, None, None), depth
        cur = cur.backing
        depth += 1
