"""Format driver ``qcow``: the original QEMU copy-on-write format (version 1).

A 48-byte big-endian header, an optional backing file name, an L1 table
of L2 table offsets, L2 tables of cluster offsets (bit 63: a deflated
cluster, its compressed size in the bits below).  New L2 tables and data
clusters are appended at the cluster-aligned end of the file, as QEMU does.
Legacy AES encryption (``encrypt.format=aes``) encrypts each data cluster's
sectors with AES-128-CBC, the guest sector number as IV (see
:mod:`pyqemu.block.crypto.qcowaes`).
"""
from __future__ import annotations

import struct
import zlib
from typing import Any, Dict, List, Optional

from pyqemu.block.file import FileNode, create_file
from pyqemu.block.node import STATUS_DATA, STATUS_OFFSET_VALID, BlockNode, BlockStatus
from pyqemu.util.error import QemuError
from pyqemu.util.opts import parse_bool

MAGIC = b"QFI\xfb"
# magic, version, backing_file_offset, backing_file_size, mtime, size, cluster_bits,
# l2_bits, padding, crypt_method, l1_table_offset
HEADER = struct.Struct(">4sIQIIQBBHIQ")
COMPRESSED = 1 << 63
SECTOR = 512
CRYPT_NONE, CRYPT_AES = 0, 1

PRINT_ORDER = [("size", None), ("backing_file", None), ("backing_fmt", None),
               ("encryption", None), ("encrypt.format", None), ("encrypt.key-secret", None)]
CREATE_HELP = [
    ("backing_file", "<str>", "File name of a base image"),
    ("backing_fmt", "<str>", "Format of the backing image"),
    ("encrypt.format", "<str>", "Encrypt the image, format choices: 'aes'"),
    ("encrypt.key-secret", "<str>", "ID of the secret that provides the AES encryption key"),
    ("encryption", "<bool (on/off)>", "Encrypt the image with format 'aes'. (Deprecated in "
     "favor of encrypt.format=aes)"),
    ("size", "<size>", "Virtual disk size"),
]


def validate_create_options(options: Dict[str, Any]) -> None:
    """Unknown ``-o`` keys are refused before qemu-img prints its Formatting line."""
    for k in options:
        if k not in ("backing_file", "backing_fmt", "encryption", "encrypt.format",
                     "encrypt.key-secret"):
            raise QemuError("Invalid parameter '%s'" % k)


def create(filename: str, size: int, options: Dict[str, Any]) -> None:
    """``qemu-img create -f qcow``: header, backing name, a zeroed L1 table."""
    validate_create_options(options)
    crypt = CRYPT_NONE
    if parse_bool("encryption", str(options.get("encryption", "off"))) or options.get("encrypt.format"):
        from pyqemu.block.crypto.qcowaes import check_create_options
        create_file(filename, 0)  # as QEMU: the encryption is set up (and may fail) after the file exists
        if str(options.get("encrypt.format", "aes")) != "aes":
            raise QemuError("Unsupported encryption format")
        check_create_options({k[8:]: v for k, v in options.items() if k.startswith("encrypt.")})
        crypt = CRYPT_AES
    size = (size + SECTOR - 1) // SECTOR * SECTOR
    backing = options.get("backing_file")
    name = b""
    header_size = HEADER.size
    if backing and backing != "fat:":
        name = str(backing).encode()
    if backing:
        # 512-byte clusters with a backing file, so that no write needs copy-on-write
        cluster_bits, l2_bits = 9, 12
    else:
        cluster_bits, l2_bits = 12, 9
    header_size += len(name)
    header_size = (header_size + 7) & ~7
    shift = cluster_bits + l2_bits
    l1_size = (size + (1 << shift) - 1) >> shift
    head = HEADER.pack(MAGIC, 1, HEADER.size if name else 0, len(name), 0, size, cluster_bits,
                       l2_bits, 0, crypt, header_size)
    create_file(filename, 0)
    f = FileNode({"filename": filename}, False)
    try:
        f.pwrite(0, head + name)
        f.truncate(header_size + (l1_size * 8 + SECTOR - 1) // SECTOR * SECTOR)
    finally:
        f.close()


def open_format(tree: Dict[str, Any], read_only: bool, file: BlockNode) -> "QcowNode":
    return QcowNode(tree, read_only, file)


class QcowNode(BlockNode):
    driver = "qcow"
    has_metadata = True
    supports_backing = True

    def __init__(self, options: Dict[str, Any], read_only: bool, file: BlockNode) -> None:
        super().__init__(options, read_only)
        self.file = file
        self.filename = file.filename
        (magic, version, bf_off, bf_size, _mtime, size, cbits, l2bits, _pad, crypt,
         l1_off) = HEADER.unpack(file.pread(0, HEADER.size))
        if magic != MAGIC:
            raise QemuError("Image not in qcow format")
        if version != 1:
            raise QemuError("qcow (v1) does not support qcow version %d" % version, errno=95,
                            hint="Try the 'qcow2' driver instead.")
        if size <= 1:
            raise QemuError("Image size is too small (must be at least 2 bytes)")
        if cbits < 9 or cbits > 16:
            raise QemuError("Cluster size must be between 512 and 64k")
        if l2bits < 6 or l2bits > 13:
            raise QemuError("L2 table size must be between 512 and 64k")
        if crypt > CRYPT_AES:
            raise QemuError("invalid encryption method in qcow header")
        self.crypto = None
        self.encrypted = crypt == CRYPT_AES
        if self.encrypted:
            from pyqemu.block.crypto import no_io, tree_option
            if not no_io():  # qemu-img info reads the header without the key
                from pyqemu.block.crypto.qcowaes import open_crypto
                self.crypto = open_crypto(tree_option(options, "encrypt", "key-secret"))
        shift = cbits + l2bits
        if size > (1 << 64) - 1 - (1 << shift):
            raise QemuError("Image too large")
        l1_size = (size + (1 << shift) - 1) >> shift
        if l1_size > 0x7FFFFFFF // 8:
            raise QemuError("Image too large")
        flen = file.length()
        # a table beyond the end of the file would read as zeroes; refuse it rather than
        # allocate what a hostile size asks for
        if l1_off + l1_size * 8 > flen + (1 << 20):
            raise QemuError("Invalid argument", errno=22)
        self.cs = 1 << cbits
        self.cluster_bits = cbits
        self.l2_size = 1 << l2bits
        self.l1_offset = l1_off
        self._size = size
        self.l1: List[int] = list(struct.unpack(">%dQ" % l1_size, file.pread(l1_off, l1_size * 8)))
        self.l2_cache: Dict[int, List[int]] = {}
        self.backing_name: Optional[str] = None
        if bf_off:
            if bf_size > 1023:
                raise QemuError("Backing file name too long")
            self.backing_name = file.pread(bf_off, bf_size).decode("utf-8", "replace")

    def length(self) -> int:
        return self._size

    def cluster_size(self) -> int:
        return self.cs

    def backing_filename(self) -> Optional[str]:
        return self.backing_name

    # --- mapping -------------------------------------------------------------------
    def _l2(self, idx: int) -> Optional[List[int]]:
        if idx >= len(self.l1) or self.l1[idx] == 0:
            return None
        off = self.l1[idx]
        t = self.l2_cache.get(off)
        if t is None:
            t = list(struct.unpack(">%dQ" % self.l2_size, self.file.pread(off, self.l2_size * 8)))
            if len(self.l2_cache) > 64:
                self.l2_cache.clear()
            self.l2_cache[off] = t
        return t

    def _entry(self, cluster: int) -> int:
        t = self._l2(cluster // self.l2_size)
        return 0 if t is None else t[cluster % self.l2_size]

    def _decompress(self, entry: int) -> bytes:
        csize = (entry >> (63 - self.cluster_bits)) & (self.cs - 1)
        coff = entry & ((1 << (63 - self.cluster_bits)) - 1)
        d = zlib.decompressobj(-12)
        try:
            out = d.decompress(self.file.pread(coff, csize), self.cs)
        except zlib.error:
            raise QemuError("Input/output error", errno=5) from None
        if len(out) != self.cs:
            raise QemuError("Input/output error", errno=5)
        return out

    def _backing_read(self, offset: int, length: int) -> bytes:
        b = self.backing
        if b is None or offset >= b.length():
            return bytes(length)
        n = min(length, b.length() - offset)
        return b.pread(offset, n) + bytes(length - n)

    def pread(self, offset: int, length: int) -> bytes:
        self.check_io(offset, length)
        cs = self.cs
        out = []
        while length > 0:
            cluster, within = divmod(offset, cs)
            n = min(length, cs - within)
            e = self._entry(cluster)
            if e == 0:
                out.append(self._backing_read(offset, n))
            elif e & COMPRESSED:
                out.append(self._decompress(e)[within:within + n])
            elif self.encrypted:
                out.append(self._read_encrypted(cluster, e, within, n))
            else:
                out.append(self.file.pread(e + within, n))
            offset += n
            length -= n
        return b"".join(out)

    # --- legacy AES: whole sectors, the guest offset choosing the IVs ---------------
    def _key(self):
        if self.crypto is None:
            raise QemuError("Input/output error: image opened without its key", errno=5)
        return self.crypto

    def _read_encrypted(self, cluster: int, host: int, within: int, n: int) -> bytes:
        a = within & ~(SECTOR - 1)
        b = (within + n + SECTOR - 1) & ~(SECTOR - 1)
        raw = self.file.pread(host + a, b - a).ljust(b - a, b"\0")
        plain = self._key().decrypt(cluster * self.cs + a, raw)
        return plain[within - a:within - a + n]

    def _write_encrypted(self, cluster: int, host: int, within: int, chunk: bytes) -> None:
        a = within & ~(SECTOR - 1)
        b = (within + len(chunk) + SECTOR - 1) & ~(SECTOR - 1)
        if a != within or b != within + len(chunk):
            buf = bytearray(self._read_encrypted(cluster, host, a, b - a))
            buf[within - a:within - a + len(chunk)] = chunk
            chunk = bytes(buf)
        self.file.pwrite(host + a, self._key().encrypt(cluster * self.cs + a, bytes(chunk)))

    def _alloc(self, nbytes: int) -> int:
        end = self.file.length()
        off = (end + self.cs - 1) // self.cs * self.cs
        self.file.truncate(off + nbytes)
        return off

    def pwrite(self, offset: int, data: bytes) -> None:
        if self.read_only:
            raise QemuError("Permission denied", errno=13)
        self.check_io(offset, len(data))
        cs = self.cs
        view = memoryview(data)
        pos = 0
        while pos < len(data):
            cluster, within = divmod(offset + pos, cs)
            n = min(len(data) - pos, cs - within)
            e = self._entry(cluster)
            chunk = view[pos:pos + n]
            if e and not e & COMPRESSED and self.encrypted:
                self._write_encrypted(cluster, e, within, chunk.tobytes())
            elif e and not e & COMPRESSED:
                self.file.pwrite(e + within, chunk.tobytes())
            else:
                if n == cs:
                    buf = chunk.tobytes()
                else:
                    old = self._decompress(e) if e else self._backing_read(cluster * cs, cs)
                    grain = bytearray(old)
                    grain[within:within + n] = chunk
                    buf = bytes(grain)
                self._set_entry(cluster, buf)
            pos += n

    def _set_entry(self, cluster: int, buf: bytes) -> None:
        li, ti = divmod(cluster, self.l2_size)
        t = self._l2(li)
        if t is None:
            l2_off = self._alloc(self.l2_size * 8)
            t = [0] * self.l2_size
            self.l2_cache[l2_off] = t
            self.l1[li] = l2_off
            self.file.pwrite(self.l1_offset + li * 8, struct.pack(">Q", l2_off))
        host = self._alloc(self.cs)
        if self.encrypted:
            buf = self._key().encrypt(cluster * self.cs, buf)
        self.file.pwrite(host, buf)
        t[ti] = host
        self.file.pwrite(self.l1[li] + ti * 8, struct.pack(">Q", host))

    def block_status(self, offset: int, length: int) -> BlockStatus:
        length = max(0, min(length, self._size - offset))
        cs = self.cs
        cluster, within = divmod(offset, cs)
        n = min(length, cs - within)
        e = self._entry(cluster)
        if e == 0:
            while n < length:
                nxt = cluster + 1
                if self._l2(nxt // self.l2_size) is None:
                    # a missing L2 table: its whole span is unallocated
                    span_end = (nxt // self.l2_size + 1) * self.l2_size
                    n = min(length, n + (span_end - nxt) * cs)
                    cluster = span_end - 1
                    continue
                if self._entry(nxt) != 0:
                    break
                cluster = nxt
                n = min(length, n + cs)
            return BlockStatus(0, n)
        if e & COMPRESSED or self.encrypted:  # QEMU shows no host offset of encrypted data
            return BlockStatus(STATUS_DATA, n)
        return BlockStatus(STATUS_DATA | STATUS_OFFSET_VALID, n, e + within, self.file)
