"""Overlapped data I/O for bulk copies (``qemu-img convert`` and friends).

The block graph is driven from one thread: metadata (L1/L2 tables,
refcounts, allocation) is only ever touched there.  What may run elsewhere
is the data transfer itself, the ``pread``/``pwrite`` system calls, which
release the GIL.  A node therefore splits a request in two:

* ``read_plan(offset, length)`` resolves the mapping now and returns pieces
  to be read later: ``(node, host_offset, n)`` for a protocol node's bytes,
  ``(None, data, n)`` for bytes already known (decompressed clusters) and
  ``(None, None, n)`` for zeroes;
* ``write_plan(offset, data)`` allocates and updates metadata now and
  returns ``(node, host_offset, buffers)`` writes still to be issued.

:class:`IOPool` runs those pieces in worker threads, several requests in
flight as QEMU's convert keeps several coroutines busy.  A format node
that is about to write metadata calls its ``io_barrier`` first (set by the
pool), so that guest data still reaches the disk before the metadata that
points at it and a killed process leaves at worst leaked clusters.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Callable, Deque, List, Optional, Sequence, Tuple

from pyqemu.block.node import BlockNode

ReadPiece = Tuple[Optional[BlockNode], Any, int]
WritePiece = Tuple[BlockNode, int, List[Any]]


def read_pieces_into(pieces: Sequence[ReadPiece], mv: memoryview) -> None:
    """Fill ``mv`` from a read plan."""
    pos = 0
    for node, where, n in pieces:
        if node is not None:
            node.preadinto(where, mv[pos:pos + n])
        elif where is not None:
            mv[pos:pos + n] = where
        else:
            mv[pos:pos + n] = bytes(n)
        pos += n


def graph_nodes(node: Optional[BlockNode]) -> List[BlockNode]:
    """A node and everything below it (file, backing and other children)."""
    out: List[BlockNode] = []
    todo = [node]
    while todo:
        n = todo.pop()
        if n is None or any(n is m for m in out):
            continue
        out.append(n)
        todo.extend((n.file, n.backing, getattr(n, "data", None)))
    return out


class IOPool:
    """Worker threads for data reads and writes, with bounded bytes in flight.

    Use as a context manager; leaving it waits for every write and stops the
    threads, so no thread outlives the copy.
    """

    def __init__(self, workers: int = 3, max_inflight: int = 8 << 20, buffer_size: int = 2 << 20) -> None:
        from concurrent.futures import ThreadPoolExecutor
        self._ex: Any = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pyqemu-io") \
            if workers > 0 else _Inline()
        # (future, bytes, buffer to release when done, node, offset)
        self._writes: Deque[Tuple[Any, int, Any, BlockNode, int]] = deque()
        self._free: List[bytearray] = []
        self._write_bytes = 0
        self.max_inflight = max_inflight
        self.buffer_size = buffer_size
        self._barrier_nodes: List[BlockNode] = []

    # --- reads --------------------------------------------------------------------
    def submit_read(self, pieces: Sequence[ReadPiece], length: int,
                    then: Optional[Callable[[memoryview], Any]] = None) -> Any:
        """Read a plan into a buffer in a worker; the future's result is
        ``(buffer, then(buffer))``.  Hand the buffer back with :meth:`release`
        (or with the writes that use it) so that the next read reuses it:
        fresh memory for every chunk costs a page fault per page."""
        buf = self._get_buffer(length)

        def job() -> Any:
            read_pieces_into(pieces, buf)
            return buf, (then(buf) if then is not None else None)
        return self._ex.submit(job)

    def _get_buffer(self, length: int) -> memoryview:
        for i, b in enumerate(self._free):
            if len(b) >= length:
                del self._free[i]
                return memoryview(b)[:length]
        # one size for all, so that any free buffer fits the next request
        return memoryview(bytearray(max(length, self.buffer_size)))[:length]

    def release(self, buf: memoryview) -> None:
        if len(self._free) < 16:
            self._free.append(buf.obj)

    # --- writes -------------------------------------------------------------------
    def submit_writes(self, pieces: Sequence[WritePiece], release: Optional[memoryview] = None) -> None:
        """Issue data writes; ``release`` is a read buffer they use, reused once they are done."""
        if not pieces:
            if release is not None:
                self.release(release)
            return
        for i, (node, offset, bufs) in enumerate(pieces):
            n = sum(len(b) for b in bufs)
            while self._writes and self._write_bytes + n > self.max_inflight:
                self._retire_one()
            # writes to overlapping bytes must land in order: wait for the older one
            while any(w[3] is node and w[4] < offset + n and offset < w[4] + w[1] for w in self._writes):
                self._retire_one()
            fut = self._ex.submit(node.pwritev, offset, bufs)
            self._writes.append((fut, n, release if i == len(pieces) - 1 else None, node, offset))
            self._write_bytes += n
        # hand finished buffers back early: every new buffer costs page faults
        while self._writes and self._writes[0][0].done():
            self._retire_one()

    def _retire_one(self) -> None:
        fut, n, buf = self._writes.popleft()[:3]
        self._write_bytes -= n
        fut.result()  # re-raises the worker's QemuError here, in the driving thread
        if buf is not None:  # FIFO: every earlier write using it is done too
            self.release(buf)

    def drain(self) -> None:
        """Wait until every submitted write is done (raises the first error)."""
        while self._writes:
            self._retire_one()

    def guard(self, node: BlockNode) -> None:
        """Make ``node``'s graph drain this pool's writes before writing metadata."""
        for n in graph_nodes(node):
            n.io_barrier = self.drain
            self._barrier_nodes.append(n)

    # --- lifecycle ----------------------------------------------------------------
    def close(self, raise_errors: bool = True) -> None:
        try:
            if raise_errors:
                self.drain()
        finally:
            for n in self._barrier_nodes:
                n.io_barrier = None
            self._barrier_nodes = []
            # on an error, drop what has not started and wait for what has
            while self._writes:
                fut = self._writes.popleft()[0]
                fut.cancel()
            self._ex.shutdown(wait=True)

    def __enter__(self) -> "IOPool":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        # an error already on its way out wins over one from a pending write
        self.close(raise_errors=exc_type is None)


class _Done:
    """The future of a job already run (or failed) in the calling thread."""

    def __init__(self, fn: Callable[..., Any], args: Tuple[Any, ...]) -> None:
        self._exc: Optional[BaseException] = None
        try:
            self._value = fn(*args)
        except Exception as exc:  # noqa: BLE001 - handed to whoever asks for the result
            self._exc = exc

    def result(self) -> Any:
        if self._exc is not None:
            raise self._exc
        return self._value

    def cancel(self) -> bool:
        return False

    def done(self) -> bool:
        return True


class _Inline:
    """An executor without threads: jobs run at submission."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> _Done:
        return _Done(fn, args)

    def shutdown(self, wait: bool = True) -> None:
        pass
