"""Format driver ``vhdx``: Hyper-V's VHDX images (reading and writing; no create yet).

Layout: a file identifier, two headers (the valid one with the higher
sequence number wins), two copies of the region table pointing to the
block allocation table (BAT) and the metadata region (block size, virtual
size, sector sizes).  BAT entries give each payload block's state and its
offset in MiB; after every ``chunk ratio`` payload entries sits a sector
bitmap entry, used only by differencing images.  Headers and region tables
carry CRC-32C checksums.

Not done yet: creating images, replaying the metadata log (an
image that needs it is refused with QEMU's message), differencing images.
"""
from __future__ import annotations

import struct
from typing import Any, Dict, List, Optional

from pyqemu.block.node import STATUS_DATA, BlockNode, BlockStatus
from pyqemu.util.error import QemuError

KiB, MiB = 1 << 10, 1 << 20
HEADER = struct.Struct("<4sIQ16s16s16sHHIQ")
REGION_HEAD = struct.Struct("<4sIII")
REGION_ENTRY = struct.Struct("<16sQII")
META_ENTRY = struct.Struct("<16sIII")
GUID_BAT = bytes.fromhex("6677c22d23f600429d64115e9bfd4a08")
GUID_META = bytes.fromhex("06a27c8b90479a4bb8fe575f050f886e")
META_FILE_PARAMS = bytes.fromhex("3767a1ca36fa434db3b633f0aa44e76b")
META_DISK_SIZE = bytes.fromhex("2442a52f1bcd7648b2115dbed83bf4b8")
META_PAGE83 = bytes.fromhex("ab12cabee6b2234593efc309e000c746")
META_LOGICAL = bytes.fromhex("1dbf41816fa90947ba47f233a8faab5f")
META_PHYSICAL = bytes.fromhex("c748a3cd5d4471449cc9e9885251c556")
META_PARENT = bytes.fromhex("2d5fd3a80bb34d45abf7d3d84834ab0c")
KNOWN_META = (META_FILE_PARAMS, META_DISK_SIZE, META_PAGE83, META_LOGICAL, META_PHYSICAL, META_PARENT)
PAYLOAD_FULLY_PRESENT, PAYLOAD_PARTIALLY_PRESENT = 6, 7
MAX_DISK_SIZE = 64 << 40
MAX_BAT_BYTES = 64 * MiB * 8  # far above what a 64 TiB image with 1 MiB blocks needs


def _crc32c_table() -> List[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C (Castagnoli), the checksum of VHDX headers, region tables and log entries."""
    crc ^= 0xFFFFFFFF
    t = _CRC_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _checksum_ok(buf: bytes, at: int) -> bool:
    stored = struct.unpack_from("<I", buf, at)[0]
    zeroed = buf[:at] + bytes(4) + buf[at + 4:]
    return crc32c(zeroed) == stored


def open_format(tree: Dict[str, Any], read_only: bool, file: BlockNode) -> "VhdxNode":
    return VhdxNode(tree, read_only, file)


class VhdxNode(BlockNode):
    driver = "vhdx"
    has_metadata = True

    def __init__(self, options: Dict[str, Any], read_only: bool, file: BlockNode) -> None:
        super().__init__(options, read_only)
        self.file = file
        self.filename = file.filename
        if file.pread(0, 8) != b"vhdxfile":
            raise QemuError("Invalid argument", errno=22)
        header = self._current_header()
        (_, _, _seq, _fw, _dw, log_guid, _lv, version, log_len, log_off) = header
        if version != 1:
            raise QemuError("Operation not supported", errno=95)
        if any(log_guid):
            if read_only:
                raise QemuError("VHDX image file '%s' opened read-only, but contains a log that "
                                "needs to be replayed" % self.filename,
                                hint="To replay the log, run:\nqemu-img check -r all '%s'"
                                % self.filename)
            raise QemuError("replaying the VHDX log is not supported by pyqemu yet", errno=95)
        regions = self._regions()
        if GUID_BAT not in regions or GUID_META not in regions:
            raise QemuError("Invalid argument", errno=22)
        self._read_metadata(*regions[GUID_META])
        bat_off, bat_len = regions[GUID_BAT]
        self.chunk_ratio = (1 << 23) * self.logical_sector // self.block_size
        blocks = (self._size + self.block_size - 1) // self.block_size
        entries = blocks + max(0, blocks - 1) // self.chunk_ratio
        if entries * 8 > bat_len or bat_len > MAX_BAT_BYTES:
            raise QemuError("Invalid argument", errno=22)
        flen = file.length()
        if bat_off + entries * 8 > flen:
            raise QemuError("Invalid argument", errno=22)
        self.bat = list(struct.unpack("<%dQ" % entries, file.pread(bat_off, entries * 8)))
        self.bat_offset = bat_off
        self.flen = flen

    def _current_header(self) -> tuple:
        best: Optional[tuple] = None
        for off in (64 * KiB, 128 * KiB):
            buf = self.file.pread(off, 4 * KiB)
            h = HEADER.unpack_from(buf)
            if h[0] != b"head" or not _checksum_ok(buf, 4):
                continue
            if best is None or h[2] > best[2]:
                best = h
        if best is None:
            raise QemuError("No valid VHDX header found")
        return best

    def _regions(self) -> Dict[bytes, tuple]:
        for off in (192 * KiB, 256 * KiB):
            buf = self.file.pread(off, 64 * KiB)
            sig, _, count, _ = REGION_HEAD.unpack_from(buf)
            if sig != b"regi" or count > 2047 or not _checksum_ok(buf, 4):
                continue
            out = {}
            for i in range(count):
                guid, foff, length, required = REGION_ENTRY.unpack_from(buf, 16 + 32 * i)
                if guid not in (GUID_BAT, GUID_META) and required & 1:
                    raise QemuError("Operation not supported", errno=95)
                if foff % MiB or length % MiB:
                    raise QemuError("Invalid argument", errno=22)
                out[guid] = (foff, length)
            return out
        raise QemuError("Invalid argument", errno=22)

    def _read_metadata(self, off: int, length: int) -> None:
        table = self.file.pread(off, 64 * KiB)
        if table[:8] != b"metadata":
            raise QemuError("Invalid argument", errno=22)
        count = struct.unpack_from("<H", table, 10)[0]
        if count > 2047:
            raise QemuError("Invalid argument", errno=22)
        items: Dict[bytes, bytes] = {}
        for i in range(count):
            guid, ioff, ilen, flags = META_ENTRY.unpack_from(table, 32 + 32 * i)
            if guid not in KNOWN_META and flags & 4:
                raise QemuError("Operation not supported", errno=95)
            if ilen > 64 * KiB or ioff + ilen > length:
                raise QemuError("Invalid argument", errno=22)
            items[guid] = self.file.pread(off + ioff, ilen)
        for needed, size in ((META_FILE_PARAMS, 8), (META_DISK_SIZE, 8), (META_LOGICAL, 4),
                             (META_PHYSICAL, 4)):
            if len(items.get(needed, b"")) < size:
                raise QemuError("Invalid argument", errno=22)
        self.block_size, fp_flags = struct.unpack_from("<II", items[META_FILE_PARAMS])
        if fp_flags & 2:
            raise QemuError("Operation not supported", errno=95)  # differencing image
        self._size = struct.unpack_from("<Q", items[META_DISK_SIZE])[0]
        self.logical_sector = struct.unpack_from("<I", items[META_LOGICAL])[0]
        if self.logical_sector not in (512, 4096):
            raise QemuError("Invalid argument", errno=22)
        bs = self.block_size
        if bs < MiB or bs > 256 * MiB or bs & (bs - 1):
            raise QemuError("Invalid argument", errno=22)
        if self._size > MAX_DISK_SIZE or self._size % self.logical_sector:
            raise QemuError("Invalid argument", errno=22)

    # --- information ------------------------------------------------------------
    def length(self) -> int:
        return self._size

    def cluster_size(self) -> int:
        return self.block_size

    # --- reading -------------------------------------------------------------------
    def _host(self, offset: int) -> Optional[int]:
        block, within = divmod(offset, self.block_size)
        e = self.bat[block + block // self.chunk_ratio]
        if e & 7 not in (PAYLOAD_FULLY_PRESENT, PAYLOAD_PARTIALLY_PRESENT):
            return None
        host = (e >> 20) * MiB
        if host + self.block_size > max(self.flen, self.file.length()):
            raise QemuError("Input/output error", errno=5)
        return host + within

    def pread(self, offset: int, length: int) -> bytes:
        self.check_io(offset, length)
        out = []
        while length > 0:
            n = min(length, self.block_size - offset % self.block_size)
            host = self._host(offset)
            out.append(bytes(n) if host is None else self.file.pread(host, n))
            offset += n
            length -= n
        return b"".join(out)

    def pwrite(self, offset: int, data: bytes) -> None:
        """Writes in place; a block not yet present is appended at the MiB-aligned end.

        The BAT entry is written after the data, directly rather than through the
        metadata log (the log stays empty, so any reader sees a consistent image;
        a crash in between leaves only an unreferenced block).
        """
        if self.read_only:
            raise QemuError("Permission denied", errno=13)
        self.check_io(offset, len(data))
        view = memoryview(data)
        pos = 0
        bs = self.block_size
        while pos < len(data):
            cur = offset + pos
            block, within = divmod(cur, bs)
            n = min(len(data) - pos, bs - within)
            host = self._host(cur)
            if host is None:
                start = (self.file.length() + MiB - 1) // MiB * MiB
                # the new block reads as zeroes until written: extend the file over it
                self.file.truncate(start + bs)
                self.flen = start + bs
                host = start + within
                self.file.pwrite(host, view[pos:pos + n].tobytes())
                idx = block + block // self.chunk_ratio
                self.bat[idx] = (start // MiB) << 20 | PAYLOAD_FULLY_PRESENT
                self.file.pwrite(self.bat_offset + idx * 8, struct.pack("<Q", self.bat[idx]))
            else:
                self.file.pwrite(host, view[pos:pos + n].tobytes())
            pos += n

    def block_status(self, offset: int, length: int) -> BlockStatus:
        # QEMU's vhdx driver reports no block status: everything is data
        return BlockStatus(STATUS_DATA, max(0, min(length, self._size - offset)))


def create(filename: str, size: int, options: Dict[str, Any]) -> None:
    raise QemuError("creating VHDX images is not supported by pyqemu yet", errno=95)
