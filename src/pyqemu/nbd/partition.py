"""Partition tables for ``pyqemu-nbd -P N``: MBR (primary and logical) and GPT.

Only the table is parsed; the export then becomes a window over the
partition.  Every offset read from the disk is checked against its size, so
a crafted table gives an error, not a window outside the image.
"""
from __future__ import annotations

import struct
from typing import Callable, Optional, Tuple

from pyqemu.util.error import QemuError

SECTOR = 512
_MBR_ENTRY = struct.Struct("<B3sB3sII")        # status, chs, type, chs, first lba, sectors
_EXTENDED = (0x05, 0x0F, 0x85)
_GPT_HEADER = struct.Struct("<8sIIIIQQQQ16sQIII")
_GPT_ENTRY = struct.Struct("<16s16sQQQ")       # type, unique, first lba, last lba, attributes
MAX_LOGICAL = 128                               # bounds the EBR chain walk

Reader = Callable[[int, int], bytes]


def _mbr_entries(sector: bytes):
    return [_MBR_ENTRY.unpack_from(sector, 446 + 16 * i) for i in range(4)]


def _gpt(read: Reader, size: int, index: int) -> Optional[Tuple[int, int]]:
    hdr = read(SECTOR, SECTOR)
    if hdr[:8] != b"EFI PART":
        return None
    (_, _, hsize, _, _, _, _, _, _, _, entries_lba, count, esize, _) = _GPT_HEADER.unpack_from(hdr)
    if esize < _GPT_ENTRY.size or esize > 4096 or count > 4096:
        raise QemuError("Invalid GPT partition table")
    if index > count:
        return (0, 0)
    pos = entries_lba * SECTOR + (index - 1) * esize
    if pos + esize > size:
        raise QemuError("Invalid GPT partition table")
    ptype, _, first, last, _ = _GPT_ENTRY.unpack_from(read(pos, _GPT_ENTRY.size))
    if ptype == bytes(16) or last < first:
        return (0, 0)
    return first * SECTOR, (last - first + 1) * SECTOR


def find_partition(read: Reader, size: int, index: int) -> Tuple[int, int]:
    """``(offset, length)`` in bytes of partition ``index`` (1-4 primary, 5+ logical, or GPT entry)."""
    if size < SECTOR:
        raise QemuError("Could not find partition %d" % index)
    mbr = read(0, SECTOR)
    if mbr[510:512] != b"\x55\xaa":
        raise QemuError("Could not find partition %d: no partition table" % index)
    entries = _mbr_entries(mbr)
    found: Optional[Tuple[int, int]] = None
    if any(e[2] == 0xEE for e in entries):
        found = _gpt(read, size, index)
    if found is None:
        if index <= 4:
            _, _, ptype, _, lba, count = entries[index - 1]
            found = (lba * SECTOR, count * SECTOR) if ptype and count else (0, 0)
        else:
            found = _logical(read, size, entries, index)
    offset, length = found
    if not length:
        raise QemuError("Could not find partition %d" % index)
    if offset + length > size:
        raise QemuError("Could not find partition %d: it lies beyond the end of the image" % index)
    return offset, length


def _logical(read: Reader, size: int, entries, index: int) -> Tuple[int, int]:
    ext = next((e for e in entries if e[2] in _EXTENDED and e[5]), None)
    if ext is None:
        return (0, 0)
    ext_start = ext[4]
    ebr_lba = ext_start
    number = 5
    for _ in range(MAX_LOGICAL):
        if ebr_lba * SECTOR + SECTOR > size:
            break
        ebr = read(ebr_lba * SECTOR, SECTOR)
        if ebr[510:512] != b"\x55\xaa":
            break
        first, nxt = _mbr_entries(ebr)[:2]
        if number == index:
            return ((ebr_lba + first[4]) * SECTOR, first[5] * SECTOR) if first[2] and first[5] else (0, 0)
        if not nxt[2] or not nxt[4]:
            break
        ebr_lba = ext_start + nxt[4]
        number += 1
    return (0, 0)
