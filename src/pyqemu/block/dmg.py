"""Format driver ``dmg``: Apple UDIF disk images, read-only as in QEMU.

The 512-byte ``koly`` trailer at the end of the file gives the data fork,
the resource fork and the XML property list (all big-endian).  The block
tables ("mish" blocks) come from the resource fork when it is present,
else from every ``<data>`` element of the property list (base64).  Each
table maps runs of 512-byte sectors to chunks of the data fork: zeroes,
ignored (read as zeroes), raw, zlib, bzip2 or lzfse (with the optional
``lzfse`` package; without it such chunks fail as in a QEMU without its
dmg-lzfse module).  Sectors no chunk covers, and chunks of types QEMU
does not know (ADC among them), fail to read with an I/O error.

Chunks are limited as in QEMU (64 MiB of compressed data, 64 MiB
uncompressed) so a hostile image cannot make us allocate more.
"""
from __future__ import annotations

import bz2
import re
import struct
import sys
import zlib
from typing import Any, Dict, List, Optional, Tuple

from pyqemu.block.node import STATUS_DATA, BlockNode, BlockStatus
from pyqemu.util.error import QemuError, strerror

SECTOR = 512
LENGTHS_MAX = 64 << 20
SECTORCOUNTS_MAX = LENGTHS_MAX // SECTOR
XML_MAX = 16 << 20
MISH = 0x6D697368
UDZE, UDRW, UDIG = 0, 1, 2
UDCO, UDZO, UDBZ, ULFO = 0x80000004, 0x80000005, 0x80000006, 0x80000007
UDCM, UDLE = 0x7FFFFFFE, 0xFFFFFFFF
CHUNK = struct.Struct(">IIQQQQ")

try:  # optional (pyqemu[dmg]): QEMU too decodes lzfse only with its dmg-lzfse module
    import lzfse as _lzfse  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the installation
    _lzfse = None



_DECODE_ERRORS = (ValueError, OSError, zlib.error, EOFError, MemoryError, TypeError, struct.error) + \
    ((_lzfse.error,) if _lzfse is not None else ())


def _einval() -> QemuError:
    return QemuError("Invalid argument", errno=22)


def _known(kind: int) -> bool:
    if kind in (UDZE, UDRW, UDIG, UDZO, UDBZ):
        return True
    # without the lzfse package such chunks behave as in a QEMU built without dmg-lzfse
    return kind == ULFO and _lzfse is not None


def _b64decode(text: bytes) -> bytes:
    """Lenient base64 as GLib decodes it: characters outside the alphabet are skipped."""
    import base64
    s = re.sub(rb"[^A-Za-z0-9+/]", b"", text)
    if len(s) % 4 == 1:
        s = s[:-1]
    return base64.b64decode(s + b"=" * (-len(s) % 4))


class _Warned:
    """QEMU warns once per process about each kind of unusable chunk."""

    seen: set = set()

    @classmethod
    def once(cls, msg: str) -> None:
        if msg not in cls.seen:
            cls.seen.add(msg)
            from pyqemu.util.error import warn_report
            warn_report(msg)


def open_format(tree: Dict[str, Any], read_only: bool, file: BlockNode) -> "DmgNode":
    try:
        return DmgNode(tree, read_only, file)
    except QemuError as exc:
        if exc.errno and exc.msg == strerror(exc.errno):
            # a bare errno: QEMU's block layer names the file in front of it
            raise QemuError("Could not open '%s': %s" % (file.filename, exc.msg), errno=exc.errno) from None
        raise


class DmgNode(BlockNode):
    driver = "dmg"
    has_bdrv_info = False

    def __init__(self, options: Dict[str, Any], read_only: bool, file: BlockNode) -> None:
        super().__init__(options, read_only)
        self.file = file
        self.filename = file.filename
        if not read_only:
            raise QemuError("Image is read-only", errno=30)
        # (first sector, sector count, type, file offset, length), in the order found
        self.chunks: List[Tuple[int, int, int, int, int]] = []
        koly = self._find_koly()
        data_fork, = struct.unpack(">Q", self._read(koly + 0x18, 8))
        if data_fork > koly:
            raise _einval()
        rsrc_off, rsrc_len = struct.unpack(">QQ", self._read(koly + 0x28, 16))
        if rsrc_off >= koly or rsrc_len > koly - rsrc_off:
            raise _einval()
        xml_off, xml_len = struct.unpack(">QQ", self._read(koly + 0xD8, 16))
        if xml_off >= koly or xml_len > koly - xml_off:
            raise _einval()
        total, = struct.unpack(">q", self._read(koly + 0x1EC, 8))
        if total < 0:
            raise _einval()
        self.total_sectors = total
        self.data_fork = data_fork
        if rsrc_len:
            self._read_resource_fork(rsrc_off, rsrc_len)
        elif xml_len:
            self._read_plist(xml_off, xml_len)
        else:
            raise _einval()
        self._starts = [c[0] for c in self.chunks]
        self._cache: Optional[Tuple[int, bytes]] = None

    def _read(self, offset: int, n: int) -> bytes:
        # the file reads as whole sectors, zeroes past its end (QEMU's bdrv_getlength rounding)
        return self.file.pread(offset, n).ljust(n, b"\0")

    def _find_koly(self) -> int:
        length = (self.file.length() + SECTOR - 1) // SECTOR * SECTOR
        if length < SECTOR:
            raise QemuError("dmg file must be at least 512 bytes long")
        start = length - 511 - 512 if length > 511 + 512 else 0
        buf = self._read(start, min(length, 515))
        i = buf.find(b"koly")
        if i < 0:
            raise QemuError("Could not locate UDIF trailer in dmg file")
        return start + i

    def _read_resource_fork(self, begin: int, length: int) -> None:
        data_off, = struct.unpack(">I", self._read(begin, 4))
        if data_off > length:
            raise _einval()
        count, = struct.unpack(">I", self._read(begin + 8, 4))
        if count == 0 or data_off + count > length:
            raise _einval()
        offset = begin + data_off
        end = offset + count
        while offset < end:
            size, = struct.unpack(">I", self._read(offset, 4))
            if size == 0 or size > end - offset:
                raise _einval()
            offset += 4
            self._read_mish(self._read(offset, size))
            offset += size

    def _read_plist(self, begin: int, length: int) -> None:
        if length == 0 or length > XML_MAX:
            raise _einval()
        text = self._read(begin, length).split(b"\0", 1)[0]
        pos = 0
        while True:
            start = text.find(b"<data>", pos)
            if start < 0:
                return
            end = text.find(b"</data>", start + 6)
            if end < 0:
                raise _einval()
            self._read_mish(_b64decode(text[start + 6:end]))
            pos = end + 7

    def _read_mish(self, buf: bytes) -> None:
        if len(buf) < 244 or struct.unpack_from(">I", buf)[0] != MISH:
            return  # not a block table: QEMU skips it
        first, = struct.unpack_from(">Q", buf, 8)
        in_offset = self.data_fork + struct.unpack_from(">Q", buf, 0x18)[0]
        for at in range(204, 204 + (len(buf) - 204) // 40 * 40, 40):
            kind, _, sector, count, off, length = CHUNK.unpack_from(buf, at)
            if not _known(kind):
                if kind == UDBZ:
                    _Warned.once("dmg-bzip2 module is missing, accessing bzip2 compressed "
                                 "blocks will result in I/O errors")
                elif kind == ULFO:
                    _Warned.once("dmg-lzfse module is missing, accessing lzfse compressed "
                                 "blocks will result in I/O errors")
                elif kind not in (UDCM, UDLE):
                    _Warned.once("Image contains chunks of unknown type %x, accessing them will "
                                 "result in I/O errors" % kind)
                continue
            index = len(self.chunks)
            if kind not in (UDZE, UDIG) and count > SECTORCOUNTS_MAX:
                self._report("sector count %d for chunk %d is larger than max (%d)"
                             % (count, index, SECTORCOUNTS_MAX))
            if length > LENGTHS_MAX:
                self._report("length %d for chunk %d is larger than max (%d)"
                             % (length, index, LENGTHS_MAX))
            self.chunks.append(((sector + first) & (2**64 - 1), count, kind,
                                (off + in_offset) & (2**64 - 1), length))

    @staticmethod
    def _report(msg: str) -> None:
        from pyqemu.util.error import error_report
        error_report(msg)
        sys.stderr.flush()
        raise _einval()

    # --- information ------------------------------------------------------------
    def length(self) -> int:
        return self.total_sectors * SECTOR

    # --- reading -------------------------------------------------------------------
    def _find(self, sector: int) -> int:
        """Index of the chunk holding ``sector``, as QEMU's binary search finds it (-1: none)."""
        lo, hi = 0, len(self.chunks)
        while lo < hi:
            mid = (lo + hi) // 2
            start, count = self.chunks[mid][0], self.chunks[mid][1]
            if start > sector:
                hi = mid
            elif start + count > sector:
                return mid
            else:
                lo = mid + 1
        return -1

    def _chunk_data(self, index: int) -> bytes:
        if self._cache is not None and self._cache[0] == index:
            return self._cache[1]
        _, count, kind, off, length = self.chunks[index]
        want = count * SECTOR
        raw = self._read(off, length) if length else b""
        try:
            if kind == UDZO:
                d = zlib.decompressobj()
                out = d.decompress(raw, want + 1)
                if not d.eof or len(out) != want:
                    raise ValueError("short zlib chunk")
            elif kind == UDBZ:
                out = _bz2_bounded(raw, want)
            elif kind == ULFO:
                out = _lzfse_bounded(raw, want)
            else:  # UDRW: the chunk's bytes, whole sectors
                out = raw.ljust(-(-length // SECTOR) * SECTOR, b"\0")
        except _DECODE_ERRORS as exc:
            raise QemuError("Input/output error", errno=5) from exc
        self._cache = (index, out)
        return out

    def pread(self, offset: int, length: int) -> bytes:
        self.check_io(offset, length)
        out = []
        end = offset + length
        pos = offset
        while pos < end:
            sector = pos // SECTOR
            index = self._find(sector)
            if index < 0:
                raise QemuError("Input/output error", errno=5)
            start, count, kind, _, _ = self.chunks[index]
            stop = min(end, (start + count) * SECTOR)
            if kind in (UDZE, UDIG):
                out.append(bytes(stop - pos))
            else:
                data = self._chunk_data(index)
                base = start * SECTOR
                piece = data[pos - base:stop - base]
                if len(piece) < stop - pos:
                    raise QemuError("Input/output error", errno=5)
                out.append(piece)
            pos = stop
        return b"".join(out)

    def block_status(self, offset: int, length: int) -> BlockStatus:
        # QEMU's dmg driver reports no block status: everything is data
        return BlockStatus(STATUS_DATA, max(0, min(length, self.length() - offset)))


def _bz2_bounded(raw: bytes, want: int) -> bytes:
    d = bz2.BZ2Decompressor()
    out = d.decompress(raw, want)
    if len(out) < want:
        raise ValueError("short bzip2 chunk")
    return out


def _lzfse_bounded(raw: bytes, want: int) -> bytes:
    """Decode an LZFSE stream whose blocks declare no more than ``want`` bytes in all.

    The decoder grows its output as needed, so the block headers are walked
    first: a stream claiming more than its chunk's sectors is refused before
    anything is allocated for it.
    """
    total = pos = 0
    while True:
        if pos + 4 > len(raw):
            raise ValueError("truncated lzfse stream")
        magic = raw[pos:pos + 4]
        if magic == b"bvx$":
            break
        if pos + 32 > len(raw) and magic == b"bvx2" or pos + 12 > len(raw):
            raise ValueError("truncated lzfse block")
        n_raw = struct.unpack_from("<I", raw, pos + 4)[0]
        if magic == b"bvx-":
            size = 8 + n_raw
        elif magic == b"bvxn":
            size = 12 + struct.unpack_from("<I", raw, pos + 8)[0]
        elif magic == b"bvx1":
            if pos + 28 > len(raw):
                raise ValueError("truncated lzfse block")
            size = 770 + sum(struct.unpack_from("<II", raw, pos + 20))
        elif magic == b"bvx2":
            f0, f1, f2 = struct.unpack_from("<QQQ", raw, pos + 8)
            size = (f2 & 0xFFFFFFFF) + ((f0 >> 20) & 0xFFFFF) + ((f1 >> 40) & 0xFFFFF)
        else:
            raise ValueError("bad lzfse block")
        total += n_raw
        if total > want or size <= 0:
            raise ValueError("lzfse chunk larger than its sectors")
        pos += size
    out = _lzfse.decompress(bytes(raw[:pos + 4]))
    if len(out) < want:
        raise ValueError("short lzfse chunk")
    return out[:want]


def validate_create_options(options: Dict[str, Any]) -> None:
    """qemu-img refuses before it prints ``Formatting``: QEMU has no dmg writer."""
    raise QemuError("Format driver 'dmg' does not support image creation")


def create(filename: str, size: int, options: Dict[str, Any]) -> None:
    validate_create_options(options)

