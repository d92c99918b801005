"""The on-disk structures of VHDX (MS-VHDX v1.0) that the reader, writer, log and create share.

All fields are little-endian.  Headers (4 KiB), region tables (64 KiB) and
log entries carry CRC-32C checksums computed with the checksum field zeroed.
"""
from __future__ import annotations

import os
import struct
from typing import List, NamedTuple

KiB, MiB = 1 << 10, 1 << 20
HEADER_OFFSETS = (64 * KiB, 128 * KiB)
REGION_OFFSETS = (192 * KiB, 256 * KiB)
HEADER_SECTION_END = MiB
HEADER_SIZE = 4 * KiB
REGION_SIZE = 64 * KiB
LOG_SECTOR = 4 * KiB

# signature, checksum, sequence, file_write_guid, data_write_guid, log_guid,
# log_version, version, log_length, log_offset
HEADER = struct.Struct("<4sIQ16s16s16sHHIQ")
REGION_HEAD = struct.Struct("<4sIII")
REGION_ENTRY = struct.Struct("<16sQII")
META_HEAD = struct.Struct("<8sHH20s")
META_ENTRY = struct.Struct("<16sIIII")
# log entry header: signature, checksum, entry_length, tail, sequence, descriptor count,
# reserved, log_guid, flushed_file_offset, last_file_offset
LOG_HEAD = struct.Struct("<4sIIIQII16sQQ")
# data descriptor: signature, trailing bytes, leading bytes, file offset, sequence
LOG_DESC = struct.Struct("<4sI8sQQ")
# zero descriptor: signature, reserved, zero length, file offset, sequence
LOG_ZERO = struct.Struct("<4sIQQQ")

GUID_BAT = bytes.fromhex("6677c22d23f600429d64115e9bfd4a08")
GUID_META = bytes.fromhex("06a27c8b90479a4bb8fe575f050f886e")
META_FILE_PARAMS = bytes.fromhex("3767a1ca36fa434db3b633f0aa44e76b")
META_DISK_SIZE = bytes.fromhex("2442a52f1bcd7648b2115dbed83bf4b8")
META_PAGE83 = bytes.fromhex("ab12cabee6b2234593efc309e000c746")
META_LOGICAL = bytes.fromhex("1dbf41816fa90947ba47f233a8faab5f")
META_PHYSICAL = bytes.fromhex("c748a3cd5d4471449cc9e9885251c556")
META_PARENT = bytes.fromhex("2d5fd3a80bb34d45abf7d3d84834ab0c")
META_IS_VIRTUAL_DISK, META_IS_REQUIRED = 2, 4
PARAMS_LEAVE_BLOCKS_ALLOCATED, PARAMS_HAS_PARENT = 1, 2

PAYLOAD_NOT_PRESENT, PAYLOAD_UNDEFINED, PAYLOAD_ZERO, PAYLOAD_UNMAPPED = 0, 1, 2, 3
PAYLOAD_FULLY_PRESENT, PAYLOAD_PARTIALLY_PRESENT = 6, 7
MAX_SECTORS_PER_BLOCK = 1 << 23  # what one sector bitmap block covers
MAX_DISK_SIZE = 64 << 40
ZERO_GUID = bytes(16)


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


def checksum_ok(buf: bytes, at: int) -> bool:
    stored = struct.unpack_from("<I", buf, at)[0]
    zeroed = buf[:at] + bytes(4) + buf[at + 4:]
    return crc32c(zeroed) == stored


def with_checksum(buf: bytearray, at: int) -> bytes:
    """``buf`` with its CRC-32C stored at ``at`` (computed over the field zeroed)."""
    struct.pack_into("<I", buf, at, 0)
    struct.pack_into("<I", buf, at, crc32c(bytes(buf)))
    return bytes(buf)


def new_guid() -> bytes:
    return os.urandom(16)


class Header(NamedTuple):
    sequence: int
    file_write_guid: bytes
    data_write_guid: bytes
    log_guid: bytes
    log_version: int
    version: int
    log_length: int
    log_offset: int

    @classmethod
    def unpack(cls, buf: bytes) -> "Header":
        f = HEADER.unpack_from(buf)
        return cls(*f[2:])

    def pack(self) -> bytes:
        buf = bytearray(HEADER_SIZE)
        HEADER.pack_into(buf, 0, b"head", 0, *self)
        return with_checksum(buf, 4)


def bat_entries(size: int, block_size: int, chunk_ratio: int) -> int:
    """Number of BAT entries (payload blocks plus interleaved sector-bitmap entries).

    The block count is a 32-bit quantity in QEMU, so an empty image wraps
    round to a huge BAT exactly as qemu-img creates it.
    """
    blocks = (size + block_size - 1) // block_size
    return blocks + (((blocks - 1) & 0xFFFFFFFF) // chunk_ratio)
