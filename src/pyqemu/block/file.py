"""Protocol driver ``file``: a host file or block device.

* I/O with ``os.pread``/``os.pwrite`` (a bounce buffer aligned to 4 KiB when
  ``O_DIRECT`` is used for ``cache.direct=on``).
* Block status from ``SEEK_DATA``/``SEEK_HOLE``; zero writes and discards
  with ``fallocate`` (punch hole, zero range), falling back to writing zeroes.
* Image locking as QEMU does it, with Linux open file description locks:
  a shared lock on byte ``100 + i`` for every permission bit ``i`` the node
  uses and on byte ``200 + i`` for every permission it does not share with
  other users.  Before taking them, conflicting locks of other processes are
  looked for, so real QEMU and pyqemu see each other's locks.
"""
from __future__ import annotations

import errno
import fcntl
import mmap
import os
import stat
import struct
from typing import Any, Dict, Optional

from pyqemu.block.node import (PERM_ALL, PERM_NAMES, STATUS_DATA, STATUS_EOF, STATUS_OFFSET_VALID,
                               STATUS_ZERO, BlockNode, BlockStatus)
from pyqemu.util.error import QemuError, strerror

LOCK_BASE_PERM = 100
LOCK_BASE_SHARED = 200

_F_OFD_GETLK = getattr(fcntl, "F_OFD_GETLK", 36)
_F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", 37)
_FLOCK = struct.Struct("hhqqi4x")  # struct flock on Linux x86-64

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_FALLOC_FL_ZERO_RANGE = 0x10

_DIRECT_ALIGN = 4096


_fallocate: Any = None


def fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    """``fallocate(2)``; raises OSError."""
    global _fallocate
    import ctypes  # on first use: importing ctypes costs every program's start-up time
    if _fallocate is None:
        # the C library is already loaded into the process: no find_library (it runs ldconfig)
        fn = ctypes.CDLL(None, use_errno=True).fallocate
        fn.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
        fn.restype = ctypes.c_int
        _fallocate = fn
    if _fallocate(fd, mode, offset, length) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _lock(fd: int, start: int, kind: int) -> None:
    fcntl.fcntl(fd, _F_OFD_SETLK, _FLOCK.pack(kind, os.SEEK_SET, start, 1, 0))


def _lock_held_by_other(fd: int, start: int) -> bool:
    """Would an exclusive lock on byte ``start`` conflict with someone else's lock?"""
    res = fcntl.fcntl(fd, _F_OFD_GETLK, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, start, 1, 0))
    return _FLOCK.unpack(res)[0] != fcntl.F_UNLCK


class FileNode(BlockNode):
    """``driver=file``.  Options: filename, locking (auto/on/off),
    cache.direct, cache.no-flush, aio (threads; native is treated as threads)."""

    driver = "file"

    def __init__(self, options: Dict[str, Any], read_only: bool, writethrough: bool = False) -> None:
        super().__init__(options, read_only)
        filename = options.get("filename")
        if not filename:
            raise QemuError("The 'file' block driver requires a file name")
        self.filename = str(filename)
        if "\0" in self.filename:
            raise QemuError("Could not open '%s': Invalid argument" % self.filename.replace("\0", "\\0"),
                            errno=errno.EINVAL)
        self.direct = _opt_bool(options.get("cache", {}).get("direct"), False)
        self.no_flush = _opt_bool(options.get("cache", {}).get("no-flush"), False)
        self.writethrough = writethrough
        locking = str(options.get("locking", "auto"))
        if locking not in ("auto", "on", "off"):
            raise QemuError("Parameter 'locking' does not accept value '%s'" % locking)
        self.use_lock = locking != "off"
        flags = os.O_RDONLY if read_only else os.O_RDWR
        flags |= os.O_CLOEXEC
        if self.direct:
            flags |= os.O_DIRECT
        try:
            self.fd = os.open(self.filename, flags)
        except OSError as exc:
            if exc.errno == errno.EROFS and not read_only:
                raise QemuError("Could not open '%s': %s" % (self.filename, strerror(exc.errno)),
                                errno=exc.errno) from None
            raise QemuError("Could not open '%s': %s" % (self.filename, strerror(exc.errno or errno.EIO)),
                            errno=exc.errno) from None
        st = os.fstat(self.fd)
        if stat.S_ISDIR(st.st_mode):
            os.close(self.fd)
            raise QemuError("Could not open '%s': Is a directory" % self.filename, errno=errno.EISDIR)
        self.is_blockdev = stat.S_ISBLK(st.st_mode)
        self._perm = 0
        self._shared = PERM_ALL
        self._size_cache: Optional[int] = None

    # --- locking ------------------------------------------------------------------
    def set_perm(self, perm: int, shared: int) -> None:
        """Take the locks for using the file with ``perm`` and sharing ``shared``.

        Raises QemuError with QEMU's wording when another process holds a
        conflicting lock.
        """
        self._perm, self._shared = perm, shared
        if not self.use_lock:
            return
        fd = self.fd
        try:
            for i, name in enumerate(PERM_NAMES):
                bit = 1 << i
                if perm & bit and _lock_held_by_other(fd, LOCK_BASE_SHARED + i):
                    raise QemuError('Failed to get "%s" lock' % name,
                                    hint="Is another process using the image [%s]?" % self.filename)
                if not shared & bit and _lock_held_by_other(fd, LOCK_BASE_PERM + i):
                    raise QemuError('Failed to get shared "%s" lock' % name,
                                    hint="Is another process using the image [%s]?" % self.filename)
            for i in range(len(PERM_NAMES)):
                bit = 1 << i
                _lock(fd, LOCK_BASE_PERM + i, fcntl.F_RDLCK if perm & bit else fcntl.F_UNLCK)
                _lock(fd, LOCK_BASE_SHARED + i, fcntl.F_UNLCK if shared & bit else fcntl.F_RDLCK)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOTSUP, errno.ENOLCK) and \
                    self.options.get("locking", "auto") == "auto":
                # a file system without OFD locks: QEMU's "auto" then works unlocked
                self.use_lock = False
                return
            raise QemuError("Failed to lock byte: %s" % strerror(exc.errno or errno.EIO)) from None

    # --- size ---------------------------------------------------------------------
    def length(self) -> int:
        if self.is_blockdev:
            return os.lseek(self.fd, 0, os.SEEK_END)
        if self._size_cache is not None:
            return self._size_cache
        size = os.fstat(self.fd).st_size
        if self.read_only:
            # this node never changes the size, and QEMU too takes a regular
            # file's length once: block status asks for it at every call
            self._size_cache = size
        return size

    def get_allocated_file_size(self) -> int:
        return os.fstat(self.fd).st_blocks * 512

    # --- I/O ----------------------------------------------------------------------
    @staticmethod
    def _check_range(what: str, offset: int, length: int) -> None:
        # offsets come from image metadata too: one past off_t is an error, not an OverflowError
        if offset < 0 or length < 0 or offset + length > (1 << 63) - 1:
            raise QemuError("Invalid argument: %s at offset %d" % (what, offset),
                            errno=errno.EINVAL)

    def pread(self, offset: int, length: int) -> bytes:
        self._check_range("read", offset, length)
        try:
            if self.direct:
                return self._direct_read(offset, length)
            data = os.pread(self.fd, length, offset)
            if len(data) < length:
                # short read at EOF: QEMU reads zeroes beyond the end
                while len(data) < length:
                    more = os.pread(self.fd, length - len(data), offset + len(data))
                    if not more:
                        return data + bytes(length - len(data))
                    data += more
            return data
        except OSError as exc:
            raise QemuError(strerror(exc.errno or errno.EIO), errno=exc.errno) from None

    def preadinto(self, offset: int, buf: memoryview) -> None:
        """``pread`` straight into ``buf`` (no intermediate bytes); zeroes past EOF."""
        self._check_range("read", offset, len(buf))
        if self.direct:
            buf[:] = self.pread(offset, len(buf))
            return
        want = len(buf)
        done = 0
        try:
            while done < want:
                n = os.preadv(self.fd, [buf[done:]], offset + done)
                if n <= 0:
                    buf[done:] = bytes(want - done)
                    return
                done += n
        except OSError as exc:
            raise QemuError(strerror(exc.errno or errno.EIO), errno=exc.errno) from None

    def read_plan(self, offset: int, length: int) -> list:
        return [(self, offset, length)]

    def write_plan(self, offset: int, data: Any) -> list:
        return [(self, offset, [data])]

    def pwrite(self, offset: int, data: bytes) -> None:
        self._check_range("write", offset, len(data))
        try:
            if self.direct:
                self._direct_write(offset, data)
            else:
                mv = memoryview(data)
                while len(mv):
                    n = os.pwrite(self.fd, mv, offset)
                    mv = mv[n:]
                    offset += n
            if self.writethrough:
                os.fdatasync(self.fd)
        except OSError as exc:
            raise QemuError(strerror(exc.errno or errno.EIO), errno=exc.errno) from None

    def pwritev(self, offset: int, buffers: list) -> None:
        """Write several buffers back to back at ``offset`` without joining them."""
        if self.direct or len(buffers) == 1 or len(buffers) > 1024:  # IOV_MAX
            self.pwrite(offset, buffers[0] if len(buffers) == 1 else b"".join(buffers))
            return
        total = sum(len(b) for b in buffers)
        self._check_range("write", offset, total)
        try:
            done = os.pwritev(self.fd, buffers, offset)
            if done < total:  # short write: finish the rest the simple way
                rest = b"".join(buffers)[done:]
                self.pwrite(offset + done, rest)
                return
            if self.writethrough:
                os.fdatasync(self.fd)
        except OSError as exc:
            raise QemuError(strerror(exc.errno or errno.EIO), errno=exc.errno) from None

    def _direct_read(self, offset: int, length: int) -> bytes:
        start = offset & ~(_DIRECT_ALIGN - 1)
        end = (offset + length + _DIRECT_ALIGN - 1) & ~(_DIRECT_ALIGN - 1)
        buf = mmap.mmap(-1, max(end - start, _DIRECT_ALIGN))
        try:
            got = os.preadv(self.fd, [buf], start)
            out = bytes(buf[offset - start:offset - start + length])
        finally:
            buf.close()
        if got < offset - start + length:
            out = out[:max(0, got - (offset - start))]
            out += bytes(length - len(out))
        return out

    def _direct_write(self, offset: int, data: bytes) -> None:
        start = offset & ~(_DIRECT_ALIGN - 1)
        end = (offset + len(data) + _DIRECT_ALIGN - 1) & ~(_DIRECT_ALIGN - 1)
        buf = mmap.mmap(-1, end - start)
        try:
            if start != offset or end != offset + len(data):
                # read-modify-write of the partial blocks at both ends
                buf[:] = self._direct_read(start, end - start)
            buf[offset - start:offset - start + len(data)] = data
            os.pwritev(self.fd, [buf], start)
            if end > offset + len(data) and self.length() < end:
                os.ftruncate(self.fd, max(self.length(), offset + len(data)))
        finally:
            buf.close()

    def pwrite_zeroes(self, offset: int, length: int, may_unmap: bool = False) -> None:
        if length <= 0:
            return
        end = self.length()
        modes = []
        if may_unmap and offset + length <= end:
            modes.append(_FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE)
        modes.append(_FALLOC_FL_ZERO_RANGE)
        for mode in modes:
            try:
                fallocate(self.fd, mode, offset, length)
                return
            except OSError:
                continue
        super().pwrite_zeroes(offset, length)

    def discard(self, offset: int, length: int) -> None:
        if length <= 0 or self.read_only:
            return
        try:
            fallocate(self.fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length)
        except OSError:
            pass  # discard is advisory

    def flush(self) -> None:
        if self.no_flush or self.read_only:
            return
        try:
            os.fdatasync(self.fd)
        except OSError as exc:
            raise QemuError(strerror(exc.errno or errno.EIO), errno=exc.errno) from None

    def truncate(self, size: int, prealloc: str = "off", exact: bool = False) -> None:
        try:
            cur = self.length()
            if self.is_blockdev:
                if size > cur:
                    raise QemuError("Cannot grow device files")
                return
            if prealloc == "off" or size <= cur:
                os.ftruncate(self.fd, size)
            elif prealloc == "falloc":
                os.posix_fallocate(self.fd, cur, size - cur)
            elif prealloc == "full":
                os.ftruncate(self.fd, size)
                chunk = bytes(1 << 20)
                pos = cur
                while pos < size:
                    n = min(len(chunk), size - pos)
                    os.pwrite(self.fd, chunk[:n], pos)
                    pos += n
            else:
                raise QemuError("Unsupported preallocation mode '%s'" % prealloc)
        except OSError as exc:
            raise QemuError("Failed to resize file: %s" % strerror(exc.errno or errno.EIO)) from None

    def block_status(self, offset: int, length: int) -> BlockStatus:
        size = self.length()
        valid = STATUS_OFFSET_VALID
        if offset >= size:
            # past the end of the file (a format may map there): reads as zeroes
            return BlockStatus(STATUS_ZERO | STATUS_EOF | valid, length, offset, self)
        length = min(length, size - offset)
        try:
            data = os.lseek(self.fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole up to EOF
                return BlockStatus(STATUS_ZERO | valid, length, offset, self)
            return BlockStatus(STATUS_DATA | valid, length, offset, self)
        if data > offset:
            return BlockStatus(STATUS_ZERO | valid, min(length, data - offset), offset, self)
        try:
            hole = os.lseek(self.fd, offset, os.SEEK_HOLE)
        except OSError:
            hole = size
        return BlockStatus(STATUS_DATA | valid, min(length, max(hole - offset, 1)), offset, self)

    def _close(self) -> None:
        try:
            os.close(self.fd)  # closing the descriptor drops its OFD locks
        except OSError:
            pass


def _opt_bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    from pyqemu.util.opts import parse_bool
    return parse_bool("cache.direct", str(value))


def create_file(filename: str, size: int, prealloc: str = "off", nocow: bool = False) -> None:
    """Create (or truncate) a host file of ``size`` bytes, as ``qemu-img create -f raw`` does."""
    try:
        fd = os.open(filename, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise QemuError("Could not create '%s': %s" % (filename, strerror(exc.errno or errno.EIO)),
                        errno=exc.errno) from None
    try:
        if prealloc == "off":
            os.ftruncate(fd, size)
            if size > 0 and stat.S_ISREG(os.fstat(fd).st_mode):
                # QEMU writes the first block so that its alignment probing works later
                n = min(size, 4096)
                os.pwrite(fd, bytes(n), 0)
        elif prealloc == "falloc":
            os.ftruncate(fd, 0)
            if size:
                os.posix_fallocate(fd, 0, size)
        elif prealloc == "full":
            os.ftruncate(fd, size)
            chunk = bytes(1 << 20)
            pos = 0
            while pos < size:
                n = min(len(chunk), size - pos)
                os.pwrite(fd, chunk[:n], pos)
                pos += n
        else:
            raise QemuError("Invalid preallocation mode: '%s'" % prealloc)
    except OSError as exc:
        raise QemuError("Could not resize file: %s" % strerror(exc.errno or errno.EIO)) from None
    finally:
        os.close(fd)
