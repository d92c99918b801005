"""Builds UDIF (.dmg) images for the tests: the data fork, mish block tables and the koly trailer.

Written from the format's description (koly trailer of 512 bytes, big-endian;
"blkx" resources holding mish tables of 40-byte chunk entries), so that the
same images can be read by real qemu-img, by dmg2img and by pyqemu.
"""
from __future__ import annotations

import base64
import bz2
import struct
import zlib
from typing import List, Sequence, Tuple

SECTOR = 512
UDZE, UDRW, UDIG, UDCO, UDZO, UDBZ, ULFO = 0, 1, 2, 0x80000004, 0x80000005, 0x80000006, 0x80000007
UDCM, UDLE = 0x7FFFFFFE, 0xFFFFFFFF


def _mish(first: int, count: int, data_offset: int, chunks: Sequence[Tuple[int, int, int, int, int]]) -> bytes:
    head = struct.pack(">IIQQQII", 0x6D697368, 1, first, count, data_offset, 0, 0)
    head = head.ljust(0x40, b"\0")
    head += struct.pack(">II", 2, 32) + bytes(128)            # checksum type/size/data
    head += struct.pack(">I", len(chunks))
    assert len(head) == 204
    body = b"".join(struct.pack(">IIQQQQ", *c) for c in chunks)
    return head + body


def build(runs: Sequence[Tuple[int, bytes]], mode: str = "xml", tables: int = 1,
          extra: Sequence[Tuple[int, int, int, int, int]] = ()) -> Tuple[bytes, bytes]:
    """An image of ``runs`` [(chunk type, uncompressed bytes)], and the disk it holds.

    ``tables`` splits the chunks over that many mish blocks; ``mode`` puts the
    tables in the XML property list or in a resource fork; ``extra`` chunk
    entries (type, comment, sector, count, offset, length) are appended raw
    to the last table.
    """
    fork = bytearray()
    disk = bytearray()
    entries: List[List[Tuple[int, int, int, int, int]]] = [[] for _ in range(tables)]
    firsts = []
    per = max(1, -(-len(runs) // tables))
    sector = 0
    for i, (kind, data) in enumerate(runs):
        t = min(i // per, tables - 1)
        if len(firsts) <= t:
            firsts.append(sector)
        count = len(data) // SECTOR
        assert len(data) == count * SECTOR
        if kind == UDZO:
            payload = zlib.compress(bytes(data))
        elif kind == UDBZ:
            payload = bz2.compress(bytes(data))
        elif kind == ULFO:
            import lzfse   # the reference LZFSE implementation's Python binding
            payload = lzfse.compress(bytes(data))
        elif kind == UDRW:
            payload = bytes(data)
        else:
            payload = b""
            data = bytes(len(data))
        entries[t].append((kind, 0, sector - firsts[t], count, len(fork), len(payload)))
        fork += payload
        disk += data
        sector += count
    for t in range(tables):
        entries[t].append((UDLE, 0, sector - firsts[t], 0, len(fork), 0))
    entries[-1][-1:-1] = list(extra)
    mishes = [_mish(firsts[t], sector - firsts[t], 0, entries[t]) for t in range(tables)]
    out = bytearray(fork)
    rsrc_off = rsrc_len = xml_off = xml_len = 0
    if mode == "xml":
        items = "".join("\t\t\t<dict>\n\t\t\t\t<key>Data</key>\n\t\t\t\t<data>\n\t\t\t\t%s\n\t\t\t\t</data>\n"
                        "\t\t\t\t<key>Name</key>\n\t\t\t\t<string>part %d</string>\n\t\t\t</dict>\n"
                        % (base64.b64encode(m).decode(), i) for i, m in enumerate(mishes))
        xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n'
               '\t<key>resource-fork</key>\n\t<dict>\n\t\t<key>blkx</key>\n\t\t<array>\n%s'
               '\t\t</array>\n\t</dict>\n</dict>\n</plist>\n' % items).encode()
        xml_off, xml_len = len(out), len(xml)
        out += xml
    else:
        data = b"".join(struct.pack(">I", len(m)) + m for m in mishes)
        rsrc = struct.pack(">IIII", 256, 256 + len(data), len(data), 0).ljust(256, b"\0") + data
        rsrc_off, rsrc_len = len(out), len(rsrc)
        out += rsrc
    koly = bytearray(512)
    struct.pack_into(">4sIIIQQQQQII", koly, 0, b"koly", 4, 512, 1, 0, 0, len(fork),
                     rsrc_off, rsrc_len, 1, 1)
    struct.pack_into(">QQ", koly, 0xD8, xml_off, xml_len)
    struct.pack_into(">II", koly, 0x1E8, 1, 0)   # image variant; sector count follows
    struct.pack_into(">Q", koly, 0x1EC, sector)
    out += koly
    return bytes(out), bytes(disk)
