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


class Bitmap:
    """One directory entry: what ``convert --bitmaps`` needs to copy it."""

    def __init__(self, name: str, flags: int, gbits: int, table: List[int]) -> None:
        self.name, self.flags, self.gbits, self.table = name, flags, gbits, table

    @property
    def in_use(self) -> bool:
        return bool(self.flags & FLAG_IN_USE)


def read_bitmaps(node: Any) -> List[Bitmap]:
    """The image's bitmaps in directory order (none if the extension is not valid)."""
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
        table_off, table_size, flags, _, gbits, name_size, extra = _ENTRY.unpack_from(data, pos)
        start = pos + _ENTRY.size + extra
        name = data[start:start + name_size].decode("utf-8", "replace")
        pos = (start + name_size + 7) & ~7
        table: List[int] = []
        if table_off and table_size * 8 <= MAX_DIRECTORY:
            table = list(struct.unpack(">%dQ" % table_size, node.file.pread(table_off, table_size * 8)))
        out.append(Bitmap(name, flags, gbits, table))
    return out


def bitmap_clusters(node: Any, bm: Bitmap) -> List[bytes]:
    """The bitmap's data, one cluster each (all-zero and all-one entries expanded)."""
    cs = node.cs
    out = []
    for e in bm.table:
        off = e & 0x00FFFFFFFFFFFE00
        out.append(node.file.pread(off, cs) if off else (b"\xff" * cs if e & 1 else bytes(cs)))
    return out


def store_bitmaps(node: Any, bitmaps: List[Tuple[str, int, int, List[bytes]]]) -> None:
    """Add bitmaps ``(name, flags, granularity bits, clusters)`` to an image without
    any, laid out as QEMU stores them: per bitmap its data clusters then its table,
    the directory last; then the header extension and the autoclear bit."""
    if not bitmaps:
        return
    rc = node.refcounts
    cs = node.cs
    entries = []
    for name, flags, gbits, clusters in bitmaps:
        table = []
        for blob in clusters:
            if blob.count(0) == len(blob):
                table.append(0)
                continue
            off = rc.alloc(1)
            node.file.pwrite(off, blob)
            table.append(off)
        table_off = rc.alloc(-(-len(table) * 8 // cs)) if table else 0
        if table:
            node.file.pwrite(table_off, struct.pack(">%dQ" % len(table), *table))
        raw_name = name.encode()
        entry = _ENTRY.pack(table_off, len(table), flags & FLAG_AUTO, 1, gbits, len(raw_name), 0) + raw_name
        entries.append(entry + bytes(-len(entry) % 8))
    directory = b"".join(entries)
    dir_off = rc.alloc(-(-len(directory) // cs))
    node.file.pwrite(dir_off, directory)
    node.flush_metadata()
    node.file.flush()
    h = node.header
    h.set_ext(EXT_BITMAPS, _EXT.pack(len(bitmaps), 0, len(directory), dir_off))
    h.autoclear |= AUTOCLEAR_BITMAPS
    node.write_header()
