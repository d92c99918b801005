"""What an NBD server serves: the export interface and adapters over it.

The server only needs a handful of operations from the disk behind an
export; :class:`ExportBackend` names them.  Anything with these methods can
be served — a block-layer node through :class:`BlockNodeBackend`, a raw file
through :class:`RawFileBackend`, or a window of either (``-o``, ``-P``)
through :class:`WindowBackend`.

``block_status`` answers with ``(length, flags)`` runs in NBD's
``base:allocation`` terms (``STATE_HOLE``, ``STATE_ZERO``), covering at least
the first byte asked about.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import threading
from typing import Any, List, Optional, Protocol, Tuple

from pyqemu.nbd.protocol import STATE_HOLE, STATE_ZERO

Extent = Tuple[int, int]


class ExportBackend(Protocol):
    """The disk behind an export.  Errors are raised as OSError with an errno."""

    read_only: bool

    def size(self) -> int: ...

    def pread(self, offset: int, length: int) -> bytes: ...

    def pwrite(self, offset: int, data: bytes, fua: bool = False) -> None: ...

    def pwrite_zeroes(self, offset: int, length: int, may_unmap: bool = False,
                      fua: bool = False) -> None: ...

    def discard(self, offset: int, length: int) -> None: ...

    def flush(self) -> None: ...

    def block_status(self, offset: int, length: int) -> List[Extent]: ...

    def close(self) -> None: ...


# fallocate(2) modes: Python's os module has no hole punching.
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_FALLOC_FL_ZERO_RANGE = 0x10
_libc: Optional[Any] = None


def _fallocate(fd: int, mode: int, offset: int, length: int) -> bool:
    """Call fallocate(2); False when the file system does not support ``mode``."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    if _libc.fallocate(fd, mode, offset, length) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(err, os.strerror(err))


class RawFileBackend:
    """A raw image file served as it is on disk (holes found with SEEK_HOLE)."""

    def __init__(self, path: str, read_only: bool = False, writethrough: bool = False) -> None:
        flags = os.O_RDONLY if read_only else os.O_RDWR
        self.fd = os.open(path, flags | os.O_CLOEXEC)
        self.read_only = read_only
        self.writethrough = writethrough
        self.path = path

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def pread(self, offset: int, length: int) -> bytes:
        data = os.pread(self.fd, length, offset)
        if len(data) < length:   # a file shrunk under us reads as zeroes
            data += bytes(length - len(data))
        return data

    def pwrite(self, offset: int, data: bytes, fua: bool = False) -> None:
        view = memoryview(data)
        while view:
            done = os.pwrite(self.fd, view, offset)
            view = view[done:]
            offset += done
        if fua or self.writethrough:
            os.fdatasync(self.fd)

    def pwrite_zeroes(self, offset: int, length: int, may_unmap: bool = False,
                      fua: bool = False) -> None:
        if not (may_unmap and _fallocate(self.fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE,
                                         offset, length)) \
                and not _fallocate(self.fd, _FALLOC_FL_ZERO_RANGE | _FALLOC_FL_KEEP_SIZE,
                                   offset, length):
            chunk = bytes(min(length, 1 << 20))
            end = offset + length
            while offset < end:
                n = min(len(chunk), end - offset)
                self.pwrite(offset, chunk[:n])
                offset += n
        if fua:
            os.fdatasync(self.fd)

    def discard(self, offset: int, length: int) -> None:
        # Discard is advisory: a file system without hole punching keeps the data.
        _fallocate(self.fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length)

    def flush(self) -> None:
        os.fdatasync(self.fd)

    def block_status(self, offset: int, length: int) -> List[Extent]:
        end = min(offset + length, self.size())
        if offset >= end:
            return [(length, 0)]
        try:
            data = os.lseek(self.fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:     # only a hole up to EOF
                return [(end - offset, STATE_HOLE | STATE_ZERO)]
            return [(end - offset, 0)]
        if data > offset:
            return [(min(data, end) - offset, STATE_HOLE | STATE_ZERO)]
        hole = os.lseek(self.fd, offset, os.SEEK_HOLE)
        return [(min(hole, end) - offset, 0)]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class WindowBackend:
    """A byte range of another backend: ``qemu-nbd -o OFFSET`` and ``-P N``."""

    def __init__(self, inner: ExportBackend, offset: int, length: Optional[int] = None) -> None:
        self.inner = inner
        self.offset = offset
        self.length = length
        self.read_only = inner.read_only

    def size(self) -> int:
        if self.length is not None:
            return self.length
        return max(0, self.inner.size() - self.offset)

    def pread(self, offset: int, length: int) -> bytes:
        return self.inner.pread(self.offset + offset, length)

    def pwrite(self, offset: int, data: bytes, fua: bool = False) -> None:
        self.inner.pwrite(self.offset + offset, data, fua)

    def pwrite_zeroes(self, offset: int, length: int, may_unmap: bool = False,
                      fua: bool = False) -> None:
        self.inner.pwrite_zeroes(self.offset + offset, length, may_unmap, fua)

    def discard(self, offset: int, length: int) -> None:
        self.inner.discard(self.offset + offset, length)

    def flush(self) -> None:
        self.inner.flush()

    def block_status(self, offset: int, length: int) -> List[Extent]:
        return self.inner.block_status(self.offset + offset, length)

    def close(self) -> None:
        self.inner.close()


class LockedBackend:
    """Serialises calls into a backend that is not safe to call from several threads."""

    def __init__(self, inner: ExportBackend) -> None:
        self.inner = inner
        self.read_only = inner.read_only
        self._lock = threading.Lock()

    def size(self) -> int:
        with self._lock:
            return self.inner.size()

    def pread(self, offset: int, length: int) -> bytes:
        with self._lock:
            return self.inner.pread(offset, length)

    def pwrite(self, offset: int, data: bytes, fua: bool = False) -> None:
        with self._lock:
            self.inner.pwrite(offset, data, fua)

    def pwrite_zeroes(self, offset: int, length: int, may_unmap: bool = False,
                      fua: bool = False) -> None:
        with self._lock:
            self.inner.pwrite_zeroes(offset, length, may_unmap, fua)

    def discard(self, offset: int, length: int) -> None:
        with self._lock:
            self.inner.discard(offset, length)

    def flush(self) -> None:
        with self._lock:
            self.inner.flush()

    def block_status(self, offset: int, length: int) -> List[Extent]:
        with self._lock:
            return self.inner.block_status(offset, length)

    def close(self) -> None:
        with self._lock:
            self.inner.close()


class Export:
    """One named export of a server: the backend plus what clients are told."""

    def __init__(self, name: str, backend: ExportBackend, description: str = "",
                 multi_conn: bool = False) -> None:
        self.name = name
        self.backend = backend
        self.description = description
        self.multi_conn = multi_conn

    @property
    def read_only(self) -> bool:
        return bool(self.backend.read_only)


class PolicyBackend:
    """``--discard`` and ``--detect-zeroes`` of qemu-nbd, in front of a backend.

    As in QEMU, discard requests (and unmapping on zero writes) are ignored
    unless ``discard`` is ``unmap``; ``detect_zeroes`` turns writes of all
    zero bytes into zero writes (``unmap`` lets those unmap when discard allows).
    """

    def __init__(self, inner: ExportBackend, discard: str = "ignore", detect_zeroes: str = "off") -> None:
        self.inner = inner
        self.read_only = inner.read_only
        self.unmap = discard in ("unmap", "on")
        self.detect = detect_zeroes

    def size(self) -> int:
        return self.inner.size()

    def pread(self, offset: int, length: int) -> bytes:
        return self.inner.pread(offset, length)

    def pwrite(self, offset: int, data: bytes, fua: bool = False) -> None:
        if self.detect != "off" and data and not any(data):
            self.inner.pwrite_zeroes(offset, len(data), self.unmap and self.detect == "unmap", fua)
            return
        self.inner.pwrite(offset, data, fua)

    def pwrite_zeroes(self, offset: int, length: int, may_unmap: bool = False,
                      fua: bool = False) -> None:
        self.inner.pwrite_zeroes(offset, length, may_unmap and self.unmap, fua)

    def discard(self, offset: int, length: int) -> None:
        if self.unmap:
            self.inner.discard(offset, length)

    def flush(self) -> None:
        self.inner.flush()

    def block_status(self, offset: int, length: int) -> List[Extent]:
        return self.inner.block_status(offset, length)

    def close(self) -> None:
        self.inner.close()
