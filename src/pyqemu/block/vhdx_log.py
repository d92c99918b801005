"""The VHDX metadata log: writing entries for metadata updates, and replaying them on open.

A metadata update (a BAT sector) is first written as a log entry (a header
sector with descriptors, then one data sector per 4 KiB of metadata), the
entry is flushed, and only then is the metadata written in place.  Until the
log GUID in the image header is cleared again, a reader must replay the
log: find the newest run of valid entries whose head names its first entry
as the tail, and write every descriptor's sector (or zeroes) to the file.

Data sectors keep the entry's sequence number in their first 8 and last 4
bytes; the sector's real bytes there are saved in the descriptor.
"""
from __future__ import annotations

import struct
from typing import Dict, List, NamedTuple, Optional, Tuple

from pyqemu.block.node import BlockNode
from pyqemu.block.vhdx_layout import (LOG_DESC, LOG_HEAD, LOG_SECTOR, LOG_ZERO, MAX_DISK_SIZE, MiB,
                                      checksum_ok, with_checksum)
from pyqemu.util.error import QemuError

# entries bigger than this are treated as invalid rather than read into memory
MAX_ENTRY = 32 * MiB
# a replay may grow the file at most this far past the largest image VHDX allows
MAX_FILE_OFFSET = MAX_DISK_SIZE + (1 << 40)


class Descriptor(NamedTuple):
    is_zero: bool
    file_offset: int
    length: int           # 4096 for a data sector, zero_length for zeroes
    data: bytes = b""     # the reconstructed 4 KiB sector


class Entry(NamedTuple):
    position: int         # offset inside the log
    length: int
    tail: int
    sequence: int
    flushed_file_offset: int
    last_file_offset: int
    descriptors: List[Descriptor]


def _ceil_sectors(n: int) -> int:
    return (n + LOG_SECTOR - 1) // LOG_SECTOR


class _LogReader:
    """Reads entries of the circular log at ``log_off`` (``log_len`` bytes) of ``file``."""

    def __init__(self, file: BlockNode, log_off: int, log_len: int, log_guid: bytes) -> None:
        self.file = file
        self.log_off = log_off
        self.log_len = log_len
        self.guid = log_guid
        self.flen = file.length()
        self.cache: Dict[int, Optional[Entry]] = {}

    def read(self, pos: int, n: int) -> bytes:
        """``n`` bytes from log position ``pos``, wrapping round the end of the log."""
        out = []
        while n > 0:
            k = min(n, self.log_len - pos)
            out.append(self.file.pread(self.log_off + pos, k))
            n -= k
            pos = 0
        return b"".join(out)

    def entry(self, pos: int) -> Optional[Entry]:
        if pos not in self.cache:
            self.cache[pos] = self._parse(pos)
        return self.cache[pos]

    def _parse(self, pos: int) -> Optional[Entry]:
        head = self.read(pos, LOG_SECTOR)
        (sig, _crc, length, tail, seq, count, _res, guid, flushed,
         last) = LOG_HEAD.unpack_from(head)
        if sig != b"loge" or guid != self.guid or seq == 0:
            return None
        if length % LOG_SECTOR or not LOG_SECTOR <= length <= min(self.log_len, MAX_ENTRY):
            return None
        if tail % LOG_SECTOR or tail >= self.log_len:
            return None
        desc_sectors = _ceil_sectors(LOG_HEAD.size + 32 * count)
        if desc_sectors * LOG_SECTOR > length:
            return None
        buf = head if length == LOG_SECTOR else self.read(pos, length)
        if not checksum_ok(buf, 4):
            return None
        descs: List[Descriptor] = []
        data_at = desc_sectors * LOG_SECTOR
        for i in range(count):
            at = LOG_HEAD.size + 32 * i
            dsig = buf[at:at + 4]
            if dsig == b"zero":
                _, _, zlen, off, dseq = LOG_ZERO.unpack_from(buf, at)
                if dseq != seq or zlen % LOG_SECTOR or off % LOG_SECTOR:
                    return None
                descs.append(Descriptor(True, off, zlen))
            elif dsig == b"desc":
                _, trailing, leading, off, dseq = LOG_DESC.unpack_from(buf, at)
                if dseq != seq or off % LOG_SECTOR or data_at + LOG_SECTOR > length:
                    return None
                sector = buf[data_at:data_at + LOG_SECTOR]
                dsig2, high = struct.unpack_from("<4sI", sector)
                low = struct.unpack_from("<I", sector, LOG_SECTOR - 4)[0]
                if dsig2 != b"data" or (high << 32 | low) != seq:
                    return None
                data = leading + sector[8:LOG_SECTOR - 4] + struct.pack("<I", trailing)
                descs.append(Descriptor(False, off, LOG_SECTOR, data))
                data_at += LOG_SECTOR
            else:
                return None
        if data_at != length:
            return None
        for d in descs:
            if d.file_offset + d.length > MAX_FILE_OFFSET:
                return None
        if last > MAX_FILE_OFFSET:
            return None
        return Entry(pos, length, tail, seq, flushed, last, descs)

    def candidates(self) -> List[int]:
        """Log positions (4 KiB aligned) whose sector starts with an entry signature."""
        found = []
        chunk = MiB
        pos = 0
        while pos < self.log_len and self.log_off + pos < self.flen:
            n = min(chunk, self.log_len - pos)
            buf = self.file.pread(self.log_off + pos, n)
            for i in range(0, len(buf), LOG_SECTOR):
                if buf[i:i + 4] == b"loge":
                    found.append(pos + i)
            pos += n
        return found


def find_active_sequence(file: BlockNode, log_off: int, log_len: int,
                         log_guid: bytes) -> List[Entry]:
    """The entries to replay, oldest first (empty when the log holds no valid sequence)."""
    reader = _LogReader(file, log_off, log_len, log_guid)
    best: List[Entry] = []
    budget = 1 << 16   # entry visits; only a hostile log needs more
    for start in reader.candidates():
        first = reader.entry(start)
        if first is None:
            continue
        chain = [first]
        used = first.length
        pos = (start + first.length) % log_len
        while used < log_len:
            budget -= 1
            if budget < 0:
                raise QemuError("Invalid argument", errno=22)
            nxt = reader.entry(pos)
            if nxt is None or nxt.sequence != chain[-1].sequence + 1:
                break
            chain.append(nxt)
            used += nxt.length
            pos = (pos + nxt.length) % log_len
        # a sequence is complete only when its newest entry names its first as the tail
        while chain and chain[-1].tail != start:
            chain.pop()
        if chain and (not best or chain[-1].sequence > best[-1].sequence):
            best = chain
    return best


def replay(file: BlockNode, entries: List[Entry]) -> None:
    """Apply ``entries`` to ``file`` (which must be writable) and flush."""
    last = max(e.last_file_offset for e in entries)
    if file.length() < last:
        # the log was written for a file this long: restore the length first
        file.truncate((last + MiB - 1) // MiB * MiB)
    for e in entries:
        for d in e.descriptors:
            if d.is_zero:
                file.pwrite_zeroes(d.file_offset, d.length)
            else:
                file.pwrite(d.file_offset, d.data)
    file.flush()


def build_entry(sequence: int, log_guid: bytes, tail: int, file_length: int,
                sectors: List[Tuple[int, bytes]]) -> bytes:
    """One log entry writing the 4 KiB ``sectors`` ``[(file_offset, data)]``."""
    count = len(sectors)
    desc_sectors = _ceil_sectors(LOG_HEAD.size + 32 * count)
    length = (desc_sectors + count) * LOG_SECTOR
    buf = bytearray(length)
    LOG_HEAD.pack_into(buf, 0, b"loge", 0, length, tail, sequence, count, 0, log_guid,
                       file_length, file_length)
    for i, (off, data) in enumerate(sectors):
        if len(data) != LOG_SECTOR or off % LOG_SECTOR:
            raise ValueError("log sectors are 4 KiB and aligned")
        trailing = struct.unpack_from("<I", data, LOG_SECTOR - 4)[0]
        LOG_DESC.pack_into(buf, LOG_HEAD.size + 32 * i, b"desc", trailing, data[:8], off, sequence)
        at = (desc_sectors + i) * LOG_SECTOR
        buf[at:at + LOG_SECTOR] = data
        struct.pack_into("<4sI", buf, at, b"data", sequence >> 32)
        struct.pack_into("<I", buf, at + LOG_SECTOR - 4, sequence & 0xFFFFFFFF)
    return with_checksum(buf, 4)

