"""The qcow2 header and its extensions, read and written.

Layout per docs/interop/qcow2.txt of QEMU: a 72-byte version 2 header, a
version 3 header of ``header_length`` bytes (104 or more; 112 with the
compression type byte), then extensions ``type, length, data`` padded to 8
bytes and ended by type 0, and the backing file name at its own offset.
"""
from __future__ import annotations

import struct
from typing import Dict, List, Optional, Tuple

from pyqemu.util.error import QemuError

MAGIC = 0x514649FB
V2 = struct.Struct(">IIQIIQIIQQIIQ")
V3 = struct.Struct(">QQQII")
V2_SIZE = 72

EXT_END = 0
EXT_BACKING_FORMAT = 0xE2792ACA
EXT_FEATURE_TABLE = 0x6803F857
EXT_CRYPTO = 0x0537BE77
EXT_BITMAPS = 0x23852875
EXT_DATA_FILE = 0x44415441

INCOMPAT_DIRTY = 1 << 0
INCOMPAT_CORRUPT = 1 << 1
INCOMPAT_DATA_FILE = 1 << 2
INCOMPAT_COMPRESSION = 1 << 3
INCOMPAT_EXTL2 = 1 << 4
INCOMPAT_SUPPORTED = (INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2
                      | INCOMPAT_DATA_FILE)
COMPAT_LAZY_REFCOUNTS = 1 << 0
AUTOCLEAR_BITMAPS = 1 << 0
AUTOCLEAR_DATA_FILE_RAW = 1 << 1

FEATURE_TABLE = [
    (0, 0, "dirty bit"), (0, 1, "corrupt bit"), (0, 2, "external data file"),
    (0, 3, "compression type"), (0, 4, "extended L2 entries"),
    (1, 0, "lazy refcounts"), (2, 0, "bitmaps"), (2, 1, "raw external data"),
]

MAX_CLUSTER_BITS = 21
MIN_CLUSTER_BITS = 9
MAX_L1_BYTES = 32 << 20
MAX_REFTABLE_BYTES = 8 << 20


class Header:
    """All header fields; extensions kept as ``(type, data)`` so unknown ones survive a rewrite."""

    def __init__(self) -> None:
        self.version = 3
        self.backing_file_offset = 0
        self.backing_file_size = 0
        self.cluster_bits = 16
        self.size = 0
        self.crypt_method = 0
        self.l1_size = 0
        self.l1_table_offset = 0
        self.refcount_table_offset = 0
        self.refcount_table_clusters = 0
        self.nb_snapshots = 0
        self.snapshots_offset = 0
        self.incompatible = 0
        self.compatible = 0
        self.autoclear = 0
        self.refcount_order = 4
        self.header_length = 112
        self.compression_type = 0
        self.extensions: List[Tuple[int, bytes]] = []
        self.backing_file: Optional[str] = None

    @property
    def cluster_size(self) -> int:
        return 1 << self.cluster_bits

    def ext(self, kind: int) -> Optional[bytes]:
        for t, d in self.extensions:
            if t == kind:
                return d
        return None

    def set_ext(self, kind: int, data: Optional[bytes]) -> None:
        self.extensions = [(t, d) for t, d in self.extensions if t != kind]
        if data is not None:
            self.extensions.append((kind, data))

    @property
    def backing_format(self) -> Optional[str]:
        d = self.ext(EXT_BACKING_FORMAT)
        return d.decode("utf-8", "replace") if d is not None else None

    # --- reading ------------------------------------------------------------------
    @classmethod
    def parse(cls, buf: bytes, file_size: int) -> "Header":
        """Parse the first cluster; ``file_size`` bounds offsets (QEMU's checks, wording)."""
        h = cls()
        if len(buf) < V2_SIZE:
            raise QemuError("Image is not in qcow2 format")
        (magic, h.version, h.backing_file_offset, h.backing_file_size, h.cluster_bits, h.size,
         h.crypt_method, h.l1_size, h.l1_table_offset, h.refcount_table_offset,
         h.refcount_table_clusters, h.nb_snapshots, h.snapshots_offset) = V2.unpack_from(buf, 0)
        if magic != MAGIC:
            raise QemuError("Image is not in qcow2 format")
        if h.version not in (2, 3):
            raise QemuError("Unsupported qcow2 version %d" % h.version)
        if not MIN_CLUSTER_BITS <= h.cluster_bits <= MAX_CLUSTER_BITS:
            raise QemuError("Unsupported cluster size: 2^%d" % h.cluster_bits)
        cs = h.cluster_size
        if h.version == 2:
            h.header_length = V2_SIZE
            h.refcount_order = 4
        else:
            if len(buf) < 104:
                raise QemuError("qcow2 header too short")
            (h.incompatible, h.compatible, h.autoclear, h.refcount_order,
             h.header_length) = V3.unpack_from(buf, V2_SIZE)
            if h.header_length < 104:
                raise QemuError("qcow2 header too short")
            if h.header_length > cs or h.header_length > len(buf):
                raise QemuError("qcow2 header exceeds cluster size")
            if h.header_length >= 105:
                h.compression_type = buf[104]
        if h.refcount_order > 6:
            raise QemuError("Reference count entry width too large; may not exceed 64 bits")
        unknown = h.incompatible & ~(INCOMPAT_SUPPORTED | INCOMPAT_DATA_FILE | INCOMPAT_EXTL2)
        h._parse_extensions(buf)
        if unknown:
            names = []
            table = h._feature_names()
            for bit in range(64):
                if unknown & (1 << bit):
                    names.append(table.get((0, bit), "Unknown incompatible feature: %x" % (1 << bit)))
            raise QemuError("Unsupported qcow2 feature(s): %s" % ", ".join(names))
        if h.incompatible & INCOMPAT_EXTL2 and h.cluster_bits < 14:
            raise QemuError("Extended L2 entries are only supported with cluster sizes of at least 16384 bytes")
        if h.compression_type not in (0, 1):
            raise QemuError("Unknown compression type: %d" % h.compression_type)
        if bool(h.compression_type) != bool(h.incompatible & INCOMPAT_COMPRESSION):
            raise QemuError("Invalid compression type" if h.compression_type else
                            "compression type incompatible feature bit must not be set")
        if h.crypt_method > 2:  # 1: legacy AES, 2: LUKS (pyqemu.block.qcow2.encrypt)
            raise QemuError("Unsupported encryption method: %d" % h.crypt_method)
        if h.refcount_table_clusters == 0 or h.refcount_table_clusters * cs > MAX_REFTABLE_BYTES:
            raise QemuError("Reference count table too large" if h.refcount_table_clusters
                            else "Image does not contain a reference count table")
        if h.refcount_table_offset % cs or h.refcount_table_offset == 0:
            raise QemuError("Reference count table offset invalid")
        if h.l1_size * 8 > MAX_L1_BYTES:
            raise QemuError("Active L1 table too large")
        if h.l1_table_offset % cs:
            raise QemuError("Active L1 table offset invalid")
        if h.size > (1 << 63) - 1 - cs:
            raise QemuError("Image is too big")
        l2_bits = h.cluster_bits - (4 if h.incompatible & INCOMPAT_EXTL2 else 3)
        needed = -(-h.size // (1 << (h.cluster_bits + l2_bits)))
        if h.l1_size < needed:
            raise QemuError("L1 table is too small")
        if h.nb_snapshots > 65536:
            raise QemuError("Too many snapshots")
        if h.backing_file_offset:
            if h.backing_file_size > 1023 or h.backing_file_offset + h.backing_file_size > cs:
                raise QemuError("Backing file name too long")
            h.backing_file = buf[h.backing_file_offset:h.backing_file_offset + h.backing_file_size] \
                .decode("utf-8", "replace")
        return h

    def _parse_extensions(self, buf: bytes) -> None:
        pos = self.header_length
        end = min(len(buf), self.cluster_size)
        if self.backing_file_offset:
            end = min(end, self.backing_file_offset)
        while pos + 8 <= end:
            kind, length = struct.unpack_from(">II", buf, pos)
            pos += 8
            if kind == EXT_END:
                return
            if pos + length > end:
                raise QemuError("Invalid extension length")
            self.extensions.append((kind, bytes(buf[pos:pos + length])))
            pos += (length + 7) & ~7

    def _feature_names(self) -> Dict[Tuple[int, int], str]:
        d = self.ext(EXT_FEATURE_TABLE) or b""
        out = {}
        for i in range(0, len(d) - 47, 48):
            out[(d[i], d[i + 1])] = d[i + 2:i + 48].rstrip(b"\0").decode("utf-8", "replace")
        return out

    # --- writing ------------------------------------------------------------------
    def pack(self) -> bytes:
        """The header, its extensions and the backing file name (fits one cluster)."""
        out = bytearray(V2.pack(MAGIC, self.version, 0, 0, self.cluster_bits, self.size,
                                self.crypt_method, self.l1_size, self.l1_table_offset,
                                self.refcount_table_offset, self.refcount_table_clusters,
                                self.nb_snapshots, self.snapshots_offset))
        if self.version >= 3:
            self.header_length = max(self.header_length, 112)
            out += V3.pack(self.incompatible, self.compatible, self.autoclear, self.refcount_order,
                           self.header_length)
            out += bytes([self.compression_type]) + bytes(self.header_length - 105)
        for kind, data in self.extensions:
            if self.version < 3 and kind == EXT_FEATURE_TABLE:
                continue
            out += struct.pack(">II", kind, len(data)) + data + bytes(-len(data) % 8)
        out += bytes(8)
        if self.backing_file:
            name = self.backing_file.encode()
            struct.pack_into(">QI", out, 8, len(out), len(name))
            out += name
        if len(out) > self.cluster_size:
            raise QemuError("Header extensions do not fit into the first cluster")
        return bytes(out)


def feature_table_ext() -> bytes:
    out = bytearray()
    for kind, bit, name in FEATURE_TABLE:
        out += bytes([kind, bit]) + name.encode().ljust(46, b"\0")
    return bytes(out)
