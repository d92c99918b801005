"""A writer for cpio archives in the SVR4 'newc' format (magic 070701).

This is the format the Linux kernel unpacks as an initramfs: each member is a
110-byte ASCII header of thirteen 8-digit hexadecimal fields, the NUL-terminated
name, padding to a multiple of four, the data, padding to a multiple of four.
The archive ends with a member named ``TRAILER!!!``.  Only what an initramfs
needs is supported: directories, regular files, symbolic links and device
nodes.
"""
from __future__ import annotations

import io
import stat
from typing import BinaryIO, Dict, List, Optional, Tuple

from pyqemu.util.error import QemuError

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
# The header's fields are eight hex digits wide.
_FIELD_MAX = 0xFFFFFFFF


def _pad4(n: int) -> bytes:
    return b"\0" * ((4 - n % 4) % 4)


class CpioWriter:
    """Appends members to a binary stream; call close() to write the trailer."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._ino = 300000  # arbitrary start; the kernel uses (ino, dev) to link hard links
        self._names: Dict[str, int] = {}
        self._closed = False

    def _member(self, name: str, mode: int, data: bytes = b"", uid: int = 0, gid: int = 0,
                nlink: int = 1, mtime: int = 0, rdev: Tuple[int, int] = (0, 0)) -> None:
        if self._closed:
            raise QemuError("cpio archive is already closed")
        name = name.lstrip("/")
        if not name or name == TRAILER:
            raise QemuError("invalid cpio member name '%s'" % name)
        if name in self._names:
            raise QemuError("duplicate cpio member '%s'" % name)
        if len(data) > _FIELD_MAX:
            raise QemuError("cpio member '%s' is too large" % name)
        self._ino += 1
        self._names[name] = self._ino
        self._write_header(name, self._ino, mode, uid, gid, nlink, mtime, len(data), rdev)
        self._out.write(data)
        self._out.write(_pad4(len(data)))

    def _write_header(self, name: str, ino: int, mode: int, uid: int, gid: int, nlink: int,
                      mtime: int, filesize: int, rdev: Tuple[int, int]) -> None:
        bname = name.encode() + b"\0"
        fields = (ino, mode, uid, gid, nlink, mtime, filesize, 0, 0, rdev[0], rdev[1],
                  len(bname), 0)
        hdr = MAGIC + b"".join(b"%08X" % (f & _FIELD_MAX) for f in fields)
        self._out.write(hdr)
        self._out.write(bname)
        self._out.write(_pad4(len(hdr) + len(bname)))

    def add_dir(self, name: str, perm: int = 0o755, **kw: int) -> None:
        self._member(name, stat.S_IFDIR | perm, nlink=2, **kw)

    def add_file(self, name: str, data: bytes, perm: int = 0o644, **kw: int) -> None:
        self._member(name, stat.S_IFREG | perm, data, **kw)

    def add_symlink(self, name: str, target: str, **kw: int) -> None:
        self._member(name, stat.S_IFLNK | 0o777, target.encode(), **kw)

    def add_chardev(self, name: str, major: int, minor: int, perm: int = 0o600,
                    **kw: int) -> None:
        self._member(name, stat.S_IFCHR | perm, rdev=(major, minor), **kw)

    def close(self) -> None:
        if not self._closed:
            self._write_header(TRAILER, 0, 0, 0, 0, 1, 0, 0, (0, 0))
            self._closed = True


def read_newc(data: bytes) -> List[Tuple[str, int, bytes, Optional[Tuple[int, int]]]]:
    """Parse a newc archive into (name, mode, data, rdev) tuples, for checks and tests."""
    out: List[Tuple[str, int, bytes, Optional[Tuple[int, int]]]] = []
    pos = 0
    while True:
        if data[pos:pos + 6] != MAGIC or len(data) < pos + 110:
            raise QemuError("not a cpio newc archive at offset %d" % pos)
        f = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = f[11], f[6]
        name_start = pos + 110
        name = data[name_start:name_start + namesize - 1].decode()
        pos = name_start + namesize
        pos += (4 - pos % 4) % 4
        if name == TRAILER:
            return out
        body = data[pos:pos + filesize]
        if len(body) != filesize:
            raise QemuError("truncated cpio member '%s'" % name)
        pos += filesize
        pos += (4 - pos % 4) % 4
        rdev = (f[9], f[10]) if stat.S_ISCHR(f[1]) or stat.S_ISBLK(f[1]) else None
        out.append((name, f[1], body, rdev))


def build_newc(members: List[Tuple[str, str, object]]) -> bytes:
    """Build an archive from ('dir'|'file'|'symlink'|'exec', name, payload) triples."""
    buf = io.BytesIO()
    w = CpioWriter(buf)
    for kind, name, payload in members:
        if kind == "dir":
            w.add_dir(name)
        elif kind == "file":
            w.add_file(name, payload)  # type: ignore[arg-type]
        elif kind == "exec":
            w.add_file(name, payload, perm=0o755)  # type: ignore[arg-type]
        elif kind == "symlink":
            w.add_symlink(name, payload)  # type: ignore[arg-type]
        else:
            raise QemuError("unknown cpio member kind '%s'" % kind)
    w.close()
    return buf.getvalue()
