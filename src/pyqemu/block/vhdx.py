"""Format driver ``vhdx``: Hyper-V's VHDX images, created, read and written as QEMU 7.2 does.

Layout: a file identifier, two headers (the valid one with the higher
sequence number wins), two copies of the region table pointing to the
block allocation table (BAT) and the metadata region (block size, virtual
size, sector sizes).  BAT entries give each payload block's state and its
offset in MiB; after every ``chunk ratio`` payload entries sits a sector
bitmap entry, used only by differencing images.  Headers and region tables
carry CRC-32C checksums.

BAT updates go through the metadata log (vhdx_log.py) as in QEMU, and a
log left behind by a crash is replayed when the image is opened read-write.
Creating images is in vhdx_create.py.  Not done: differencing images.
"""
from __future__ import annotations

import struct
from typing import Any, Dict, Optional

from pyqemu.block import vhdx_log
from pyqemu.block.node import STATUS_DATA, BlockNode, BlockStatus
from pyqemu.block.vhdx_create import CREATE_HELP, PRINT_ORDER, create, validate_create_options
from pyqemu.block.vhdx_layout import (GUID_BAT, GUID_META, HEADER_OFFSETS, LOG_SECTOR, META_DISK_SIZE,
                                      META_ENTRY, META_FILE_PARAMS, META_LOGICAL, META_PAGE83,
                                      META_PARENT, META_PHYSICAL, PAYLOAD_FULLY_PRESENT,
                                      PAYLOAD_PARTIALLY_PRESENT, REGION_ENTRY, REGION_HEAD,
                                      REGION_OFFSETS, ZERO_GUID, Header, KiB, MiB, checksum_ok, crc32c,
                                      new_guid)
from pyqemu.util.error import QemuError, strerror

__all__ = ["CREATE_HELP", "PRINT_ORDER", "create", "validate_create_options", "crc32c",
           "open_format", "check_image", "VhdxNode"]

KNOWN_META = (META_FILE_PARAMS, META_DISK_SIZE, META_PAGE83, META_LOGICAL, META_PHYSICAL, META_PARENT)
MAX_DISK_SIZE = 64 << 40
MAX_BAT_BYTES = 64 * MiB * 8  # far above what a 64 TiB image with 1 MiB blocks needs


def open_format(tree: Dict[str, Any], read_only: bool, file: BlockNode) -> "VhdxNode":
    try:
        return VhdxNode(tree, read_only, file)
    except QemuError as exc:
        if exc.errno and exc.msg == strerror(exc.errno):
            # a bare errno: QEMU's block layer names the file in front of it
            raise QemuError("Could not open '%s': %s" % (file.filename, exc.msg), errno=exc.errno) from None
        raise


class VhdxNode(BlockNode):
    driver = "vhdx"
    has_metadata = True

    def __init__(self, options: Dict[str, Any], read_only: bool, file: BlockNode) -> None:
        super().__init__(options, read_only)
        self.file = file
        self.filename = file.filename
        self.log_replayed_on_open = False
        self._visible_write_done = False
        self._log_sequence = 1
        if file.pread(0, 8) != b"vhdxfile":
            raise QemuError("Invalid argument", errno=22)
        self._read_headers()
        header = self.header
        if header.version != 1:
            raise QemuError("Operation not supported", errno=95)
        regions = self._regions()
        if GUID_BAT not in regions or GUID_META not in regions:
            raise QemuError("Invalid argument", errno=22)
        self._check_regions(regions)
        self._parse_log()
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
        self.bat_length = bat_len
        self.flen = flen
        if not read_only:
            # a new session: the file write GUID changes before anything else is written
            self.session_guid = new_guid()
            self._update_headers()

    # --- headers ----------------------------------------------------------------
    def _read_headers(self) -> None:
        best: Optional[Header] = None
        for idx, off in enumerate(HEADER_OFFSETS):
            buf = self.file.pread(off, 4 * KiB)
            if buf[:4] != b"head" or not checksum_ok(buf, 4):
                continue
            h = Header.unpack(buf)
            if best is None or h.sequence > best.sequence:
                best, self.header_index = h, idx
        if best is None:
            raise QemuError("No valid VHDX header found")
        self.header = best

    def _update_headers(self, new_data_guid: bool = False, log_guid: Optional[bytes] = None) -> None:
        """Write both header copies, the inactive one first, each flushed (as QEMU does)."""
        for _ in range(2):
            h = self.header._replace(sequence=self.header.sequence + 1,
                                     file_write_guid=getattr(self, "session_guid",
                                                             self.header.file_write_guid))
            if new_data_guid:
                h = h._replace(data_write_guid=new_guid())
                new_data_guid = False
            if log_guid is not None:
                h = h._replace(log_guid=log_guid)
            target = 1 - self.header_index
            self.file.pwrite(HEADER_OFFSETS[target], h.pack())
            self.file.flush()
            self.header, self.header_index = h, target

    def _check_regions(self, regions: Dict[bytes, tuple]) -> None:
        """The log, BAT and metadata may not overlap each other or the header section."""
        h = self.header
        spans = [(h.log_offset, h.log_length)] + [regions[g] for g in (GUID_BAT, GUID_META)]
        spans = [(o, n) for o, n in spans if n]
        if h.log_length and (h.log_offset % MiB or h.log_length % MiB):
            raise QemuError("Invalid argument", errno=22)
        for i, (o, n) in enumerate(spans):
            if o < MiB:
                raise QemuError("Invalid argument", errno=22)
            for o2, n2 in spans[i + 1:]:
                if o < o2 + n2 and o2 < o + n:
                    raise QemuError("Invalid argument", errno=22)

    # --- the log --------------------------------------------------------------------
    def _parse_log(self) -> None:
        h = self.header
        if h.log_guid == ZERO_GUID or h.log_length == 0:
            return
        if h.log_version != 0 or h.log_length % MiB or h.log_offset % MiB or h.log_offset < MiB:
            raise QemuError("Invalid argument", errno=22)
        entries = vhdx_log.find_active_sequence(self.file, h.log_offset, h.log_length, h.log_guid)
        if not entries:
            return
        if self.read_only:
            raise QemuError("VHDX image file '%s' opened read-only, but contains a log that "
                            "needs to be replayed" % self.filename,
                            hint="To replay the log, run:\nqemu-img check -r all '%s'"
                            % self.filename)
        self.session_guid = new_guid()
        self._update_headers(new_data_guid=True)
        vhdx_log.replay(self.file, entries)
        self._log_sequence = entries[-1].sequence + 1
        self._update_headers(log_guid=ZERO_GUID)
        self.log_replayed_on_open = True

    def _log_write_and_flush(self, file_offset: int, data: bytes) -> None:
        """Metadata at ``file_offset`` (whole log sectors) through the log, then in place."""
        h = self.header
        if h.log_guid == ZERO_GUID:
            self._update_headers(log_guid=new_guid())
            h = self.header
        sectors = [(file_offset + i, data[i:i + LOG_SECTOR]) for i in range(0, len(data), LOG_SECTOR)]
        entry = vhdx_log.build_entry(self._log_sequence, h.log_guid, 0, self.file.length(), sectors)
        if len(entry) > h.log_length:
            raise QemuError("No space left on device", errno=28)
        self._log_sequence += 1
        self.file.pwrite(h.log_offset, entry)
        self.file.flush()
        self.file.pwrite(file_offset, data)
        self.file.flush()
        self._update_headers(log_guid=ZERO_GUID)

    def _regions(self) -> Dict[bytes, tuple]:
        for off in REGION_OFFSETS:
            buf = self.file.pread(off, 64 * KiB)
            sig, _, count, _ = REGION_HEAD.unpack_from(buf)
            if sig != b"regi" or count > 2047 or not checksum_ok(buf, 4):
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
            guid, ioff, ilen, flags, _ = META_ENTRY.unpack_from(table, 32 + 32 * i)
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

        The new block's data is written first, then its BAT entry goes through
        the log, so a crash at any point leaves either the old entry or one
        that a log replay completes.
        """
        if self.read_only:
            raise QemuError("Permission denied", errno=13)
        self.check_io(offset, len(data))
        if not self._visible_write_done:
            # the first guest-visible write of a session gets a new data write GUID
            self._update_headers(new_data_guid=True)
            self._visible_write_done = True
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
                self.file.pwrite(start + within, view[pos:pos + n].tobytes())
                idx = block + block // self.chunk_ratio
                self.bat[idx] = (start // MiB) << 20 | PAYLOAD_FULLY_PRESENT
                self._write_bat_entry(idx)
            else:
                self.file.pwrite(host, view[pos:pos + n].tobytes())
            pos += n

    def _write_bat_entry(self, idx: int) -> None:
        first = idx * 8 // LOG_SECTOR * LOG_SECTOR // 8
        count = min(LOG_SECTOR // 8, len(self.bat) - first)
        sector = struct.pack("<%dQ" % count, *self.bat[first:first + count])
        if len(sector) < LOG_SECTOR:
            # the BAT region goes on past the last entry; keep what the file has there
            tail_off = self.bat_offset + first * 8 + len(sector)
            sector += self.file.pread(tail_off, LOG_SECTOR - len(sector))
        self._log_write_and_flush(self.bat_offset + first * 8, sector)

    def block_status(self, offset: int, length: int) -> BlockStatus:
        # QEMU's vhdx driver reports no block status: everything is data
        return BlockStatus(STATUS_DATA, max(0, min(length, self._size - offset)))


class CheckResult:
    """What ``qemu-img check`` prints for a VHDX image (attributes as the CLI expects)."""

    def __init__(self) -> None:
        self.corruptions = self.leaks = self.check_errors = 0
        self.corruptions_fixed = self.leaks_fixed = 0
        self.image_end_offset = self.total_clusters = self.allocated_clusters = 0
        self.fragmented_clusters = self.compressed_clusters = 0


def check_image(node: VhdxNode, fix_leaks: bool = False, fix_errors: bool = False,
                quiet: bool = False) -> CheckResult:
    """QEMU's vhdx check: opening read-write already replayed any log, which counts as a fix."""
    res = CheckResult()
    if node.log_replayed_on_open:
        res.corruptions_fixed = 1
    return res
