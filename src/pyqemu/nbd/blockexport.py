"""A block-layer node as the backend of an NBD export."""
from __future__ import annotations

from typing import List

from pyqemu.block import STATUS_DATA, STATUS_ZERO, BlockNode, get_block_status
from pyqemu.nbd.export import Extent
from pyqemu.nbd.protocol import STATE_HOLE, STATE_ZERO
from pyqemu.util.error import QemuError


def _oserror(exc: QemuError) -> OSError:
    return OSError(exc.errno or 5, exc.msg)


class BlockNodeBackend:
    """Serves a :class:`~pyqemu.block.BlockNode` (any format the block layer opens).

    Block-layer errors become OSErrors so that the server answers the
    request with an NBD error instead of dropping the client.
    """

    def __init__(self, node: BlockNode) -> None:
        self.node = node
        self.read_only = bool(node.read_only)

    def size(self) -> int:
        return self.node.length()

    def pread(self, offset: int, length: int) -> bytes:
        try:
            return self.node.pread(offset, length)
        except QemuError as exc:
            raise _oserror(exc) from None

    def pwrite(self, offset: int, data: bytes, fua: bool = False) -> None:
        try:
            self.node.pwrite(offset, bytes(data))
            if fua:
                self.node.flush()
        except QemuError as exc:
            raise _oserror(exc) from None

    def pwrite_zeroes(self, offset: int, length: int, may_unmap: bool = False,
                      fua: bool = False) -> None:
        try:
            self.node.pwrite_zeroes(offset, length, may_unmap=may_unmap)
            if fua:
                self.node.flush()
        except QemuError as exc:
            raise _oserror(exc) from None

    def discard(self, offset: int, length: int) -> None:
        try:
            self.node.discard(offset, length)
        except QemuError as exc:
            raise _oserror(exc) from None

    def flush(self) -> None:
        try:
            self.node.flush()
        except QemuError as exc:
            raise _oserror(exc) from None

    def block_status(self, offset: int, length: int) -> List[Extent]:
        try:
            st, _depth = get_block_status(self.node, offset, length)
        except QemuError as exc:
            raise _oserror(exc) from None
        n = st.length if st.length > 0 else length
        if not st.flags & (STATUS_DATA | STATUS_ZERO):
            # No layer of the chain allocates it: it reads as zeroes.
            return [(n, STATE_HOLE | STATE_ZERO)]
        flags = 0 if st.flags & STATUS_DATA else STATE_HOLE
        if st.flags & STATUS_ZERO:
            flags |= STATE_ZERO
        return [(n, flags)]

    def close(self) -> None:
        self.node.close()
