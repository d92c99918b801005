"""Overlapped data I/O for bulk copies (``qemu-img convert`` and friends).

The block graph is driven from one thread: metadata (L1/L2 tables,
refcounts, allocation) is only ever touched there.  What may run elsewhere
is the data transfer itself, the ``pwrite`` system calls, which release the
GIL.  A node therefore splits a request in two:

* ``read_plan(offset, length)`` resolves the mapping now and returns pieces
  to be read: ``(node, host_offset, n)`` for a protocol node's bytes,
  ``(None, data, n)`` for bytes already known (decompressed clusters) and
  ``(None, None, n)`` for zeroes;
* ``write_plan(offset, data)`` allocates and updates metadata now and
  returns ``(node, host_offset, buffers)`` writes still to be issued.

:class:`IOPool` gives the driving thread reusable page-aligned read buffers
and issues the writes: at once (``workers=0``, what convert uses: on these
VMs a thread's wake-ups cost more than the overlap gains, see
``cli/img_convert.py``) or in one writer thread behind it (``workers=1``),
whose ``pwritev`` releases the GIL while the driving thread reads the next
chunk.  One writer keeps writes in submission order, so writes to the same
bytes land as they were issued, and it merges queued back-to-back writes.  A
format node that is about to write metadata calls its ``io_barrier`` first
(set by the pool), so that guest data reaches the disk before the metadata
that points at it and a killed process leaves at worst leaked clusters.
"""
from __future__ import annotations

import mmap
import queue
import threading
from typing import Any, List, Optional, Sequence, Tuple

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
    """Read buffers for the driving thread and a writer thread behind it.

    At most ``buffers`` buffers of ``buffer_size`` bytes exist: a read waits
    for one to come back from the writer, which bounds the bytes in flight.
    With ``workers=0`` writes are done at submission, in the calling thread.
    Use as a context manager; leaving it waits for every write and stops the
    thread, so no thread outlives the copy.
    """

    def __init__(self, workers: int = 1, buffers: int = 4, buffer_size: int = 2 << 20) -> None:
        self.buffer_size = buffer_size
        self._max_buffers = max(1, buffers)
        self._made = 0
        self._free: "queue.SimpleQueue[mmap.mmap]" = queue.SimpleQueue()
        self._error: Optional[BaseException] = None
        self._barrier_nodes: List[BlockNode] = []
        self._queue: "Optional[queue.SimpleQueue[Any]]" = None
        self._thread: Optional[threading.Thread] = None
        if workers > 0:
            self._queue = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._writer, name="pyqemu-io", daemon=True)
            self._thread.start()

    # --- buffers ------------------------------------------------------------------
    def get_buffer(self, length: int) -> memoryview:
        """A page-aligned buffer of ``length`` bytes (its ``obj`` supports ``find``).

        Buffers are anonymous mmaps: the kernel copies to and from a page-aligned
        buffer three times faster than to a bytearray's (16 bytes past a page
        boundary) on this kind of CPU.  They are reused: fresh memory for every
        chunk costs a page fault per page, more than the copy into it."""
        if length > self.buffer_size:
            return memoryview(mmap.mmap(-1, length))  # not pooled: the pool's buffers are one size
        if self._free.empty() and self._made < self._max_buffers:
            self._made += 1
            return memoryview(mmap.mmap(-1, self.buffer_size))[:length]
        return memoryview(self._free.get())[:length]

    def _pooled(self, buf: Optional[memoryview]) -> Any:
        obj = buf.obj if buf is not None else None
        return obj if isinstance(obj, mmap.mmap) and len(obj) == self.buffer_size else None

    def release(self, buf: Optional[memoryview]) -> None:
        """Hand a buffer from :meth:`get_buffer` back for the next read."""
        obj = self._pooled(buf)
        if obj is not None:
            self._free.put(obj)

    def read(self, pieces: Sequence[ReadPiece], length: int) -> memoryview:
        """Read a plan into a pool buffer (release it, or pass it to :meth:`submit_writes`)."""
        buf = self.get_buffer(length)
        try:
            read_pieces_into(pieces, buf)
        except BaseException:
            self.release(buf)
            raise
        return buf

    # --- writes -------------------------------------------------------------------
    def submit_writes(self, pieces: Sequence[WritePiece], release: Optional[memoryview] = None) -> None:
        """Issue data writes, in order; ``release`` is a buffer they use, reused once they are done."""
        self._raise_error()
        q = self._queue
        if q is None:
            try:
                for node, offset, bufs in pieces:
                    node.pwritev(offset, bufs)
            finally:
                self.release(release)
            return
        if not pieces:
            self.release(release)
            return
        last = len(pieces) - 1
        for i, (node, offset, bufs) in enumerate(pieces):
            q.put((node, offset, bufs, release if i == last else None))

    def _writer(self) -> None:
        q = self._queue
        assert q is not None
        while True:
            batch = [q.get()]
            # whatever else is queued goes along: back-to-back writes become one
            # pwritev, and this thread takes the GIL once for them, not once each
            while len(batch) < 64:
                try:
                    batch.append(q.get_nowait())
                except queue.Empty:
                    break
            if not self._write_batch(batch):
                return

    def _write_batch(self, batch: List[Any]) -> bool:
        """Do a batch of queued items in order; False once the stop item is met."""
        i = 0
        while i < len(batch):
            item = batch[i]
            if item is None:
                return False
            node, offset, bufs, rel = item
            if node is None:
                offset.set()  # a drain marker: everything before it is done
                i += 1
                continue
            bufs = list(bufs)
            end = offset + sum(len(b) for b in bufs)
            j = i + 1
            # at most IOV_MAX buffers and 16 MiB (a node without a vectored write joins them)
            while j < len(batch) and batch[j] is not None and batch[j][0] is node and \
                    batch[j][1] == end and len(bufs) + len(batch[j][2]) <= 1024 and end - offset < 16 << 20:
                bufs.extend(batch[j][2])
                end += sum(len(b) for b in batch[j][2])
                j += 1
            if self._error is None:  # after a failure the rest is dropped, as QEMU stops the job
                try:
                    node.pwritev(offset, bufs)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the driving thread
                    self._error = exc
            for k in range(i, j):
                self.release(batch[k][3])
            i = j
        return True

    def _raise_error(self) -> None:
        exc = self._error
        if exc is not None:
            raise exc

    def drain(self) -> None:
        """Wait until every submitted write is done (raises the first error)."""
        if self._queue is not None and self._thread is not None and self._thread.is_alive():
            done = threading.Event()
            self._queue.put((None, done, None, None))
            done.wait()
        self._raise_error()

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
            if self._thread is not None:
                if not raise_errors:
                    self._error = self._error or _Stopped()  # drop what has not started
                assert self._queue is not None
                self._queue.put(None)
                self._thread.join()
                self._thread = None

    def __enter__(self) -> "IOPool":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        # an error already on its way out wins over one from a pending write
        self.close(raise_errors=exc_type is None)


class _Stopped(Exception):
    """Set as the pool's error when it is closed on an error: queued writes are skipped."""
