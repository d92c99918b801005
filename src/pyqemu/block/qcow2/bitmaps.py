"""The persistent dirty bitmaps directory of a qcow2 image (read-only).

The bitmaps header extension names a directory of variable-sized entries:
table offset (u64), table size (u32), flags (u32), type (u8), granularity
bits (u8), name size (u16), extra data size (u32), the extra data, the
name, padding to 8 bytes.  Only what ``qemu-img info`` lists is read here.
"""
from __future__ import annotations

import struct
from typing import Any, Dict, List, Tuple

from pyqemu.block.qcow2.header import AUTOCLEAR_BITMAPS, EXT_BITMAPS

FLAG_IN_USE = 1 << 0
FLAG_AUTO = 1 << 1
_EXT = struct.Struct(">IIQQ")
_ENTRY = struct.Struct(">QIIBBHI")
MAX_DIRECTORY = 64 << 20  # QEMU's limit on the directory size


def bitmap_infos(node: Any) -> List[Dict[str, Any]]:
    """``[{"flags": [...], "name": ..., "granularity": ...}]`` as qemu-img info shows them;
    empty when the image has no (valid) bitmaps extension."""
    h = node.header
    raw = h.ext(EXT_BITMAPS)
    if not raw or len(raw) < _EXT.size or not h.autoclear & AUTOCLEAR_BITMAPS:
        return []
    count, _, dir_size, dir_offset = _EXT.unpack_from(raw)
    if not count or dir_size > MAX_DIRECTORY:
        return []
    data = node.file.pread(dir_offset, dir_size)
    out = []
    pos = 0
    for _ in range(count):
        if pos + _ENTRY.size > len(data):
            break
        _, _, flags, _, gbits, name_size, extra = _ENTRY.unpack_from(data, pos)
        start = pos + _ENTRY.size + extra
        name = data[start:start + name_size].decode("utf-8", "replace")
        pos = (start + name_size + 7) & ~7
        names = [n for bit, n in ((FLAG_IN_USE, "in-use"), (FLAG_AUTO, "auto")) if flags & bit]
        out.append({"flags": names, "name": name, "granularity": 1 << gbits})
    return out


def bitmap_ranges(node: Any) -> List[Tuple[int, int]]:
    """``(offset, length)`` of every cluster range the bitmaps use (directory,
    bitmap tables, bitmap data), so that ``check`` counts them and never takes
    them for leaks."""
    h = node.header
    raw = h.ext(EXT_BITMAPS)
    if not raw or len(raw) < _EXT.size or not h.autoclear & AUTOCLEAR_BITMAPS:
        return []
    count, _, dir_size, dir_offset = _EXT.unpack_from(raw)
    if not count or dir_size > MAX_DIRECTORY:
        return []
    ranges = [(dir_offset, dir_size)]
    data = node.file.pread(dir_offset, dir_size)
    pos = 0
    for _ in range(count):
        if pos + _ENTRY.size > len(data):
            break
        table_off, table_size, _, _, _, name_size, extra = _ENTRY.unpack_from(data, pos)
        pos = (pos + _ENTRY.size + extra + name_size + 7) & ~7
        if not table_off or table_size * 8 > MAX_DIRECTORY:
            continue
        ranges.append((table_off, table_size * 8))
        table = struct.unpack(">%dQ" % table_size, node.file.pread(table_off, table_size * 8))
        ranges.extend((e & 0x00FFFFFFFFFFFE00, node.cs) for e in table if e & 0x00FFFFFFFFFFFE00)
    return ranges
