"""qcow2 encryption: ``encrypt.format=luks`` and the legacy ``encrypt.format=aes``.

With LUKS (crypt_method 2) the LUKS header and key material live in a run
of clusters named by the full-disk-encryption header extension, and each
data sector is encrypted with its *host* offset choosing the IV.  The legacy
AES method (1) keys AES-128-CBC with the passphrase itself and uses the
*guest* offset.  Metadata, zero and unallocated clusters are not encrypted;
compressed clusters cannot be written to an encrypted image.

The layer is a subclass of the plain qcow2 node: reads decrypt the data
clusters that the cluster map yields, writes go through whole clusters
(partial ones read, patched and re-encrypted) so that every cluster is
encrypted with the offset QEMU uses.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from pyqemu.block.crypto import no_io, tree_option
from pyqemu.block.node import STATUS_OFFSET_VALID, STATUS_RECURSE, BlockNode, BlockStatus
from pyqemu.block.qcow2.driver import (COMPRESSED_KIND, COPIED, L2_OFFSET_MASK, NORMAL, ZERO_ALLOC,
                                       Qcow2Node)
from pyqemu.block.qcow2.header import EXT_FEATURE_TABLE
from pyqemu.util.error import QemuError

if TYPE_CHECKING:  # the ciphers (and hashlib's OpenSSL) load only for encrypted images
    from pyqemu.block.crypto.cipher import SectorCrypto

EXT_CRYPTO = 0x0537BE77
CRYPT_AES, CRYPT_LUKS = 1, 2
FORMATS = {"aes": CRYPT_AES, "luks": CRYPT_LUKS}


def open_qcow2(tree: Dict[str, Any], read_only: bool, file: BlockNode) -> Qcow2Node:
    """A plain or an encrypted qcow2 node, as the header's crypt_method says."""
    head = file.pread(32, 4) if file.length() >= 36 else b""
    method = struct.unpack(">I", head)[0] if len(head) == 4 else 0
    if method in (CRYPT_AES, CRYPT_LUKS):
        return EncryptedQcow2Node(tree, read_only, file)
    return Qcow2Node(tree, read_only, file)


def _crypto_ext(node: Qcow2Node) -> Optional[tuple]:
    raw = node.header.ext(EXT_CRYPTO)
    if raw is None:
        return None
    if len(raw) != 16:
        raise QemuError("Unable to read CRYPTO header extension")
    return struct.unpack(">QQ", raw)


class EncryptedQcow2Node(Qcow2Node):
    encrypted = True

    def __init__(self, options: Dict[str, Any], read_only: bool, file: BlockNode) -> None:
        super().__init__(options, read_only, file)
        h = self.header
        self.crypt_method = h.crypt_method
        fmt = tree_option(options, "encrypt", "format")
        want = {CRYPT_AES: "aes", CRYPT_LUKS: "luks"}[h.crypt_method]
        if fmt is not None and fmt != want:
            raise QemuError("Header reported '%s' encryption format but options specify '%s'"
                            % (want, fmt))
        if self.data is not self.file:
            raise QemuError("External data files are not supported with encryption by pyqemu")
        self.crypto: Optional[SectorCrypto] = None
        self.luks = None
        key_secret = tree_option(options, "encrypt", "key-secret")
        if h.crypt_method == CRYPT_LUKS:
            from pyqemu.block.crypto import luks
            ext = _crypto_ext(self)
            if ext is None:
                raise QemuError("No encryption layer header extension present")
            off, length = ext
            if off % self.cs or off + length > file.length():
                raise QemuError("Invalid encryption header offset or length")
            self.luks_area = (off, length)
            password = None if no_io() else luks.secret_password(
                None if key_secret is None else str(key_secret), "encrypt.")
            self.luks = luks.LuksHeader.parse(file.pread(off, min(length, luks.HEADER_SIZE)))
            if password is not None:
                self.crypto = self.luks.unlock(password, lambda o, n: file.pread(off + o, n))
        else:
            if _crypto_ext(self) is not None:
                raise QemuError("Crypto header extension only expected with LUKS encryption method")
            self.luks_area = None
            if not no_io():
                from pyqemu.block.crypto.qcowaes import open_crypto
                self.crypto = open_crypto(key_secret)

    def _key(self) -> SectorCrypto:
        if self.crypto is None:
            raise QemuError("Input/output error: image opened without its key", errno=5)
        return self.crypto

    def _iv_offset(self, guest: int, host: int) -> int:
        # QEMU: LUKS uses the physical offset, the legacy AES scheme the guest offset
        return host if self.crypt_method == CRYPT_LUKS else guest

    # --- information ----------------------------------------------------------------
    def get_info(self) -> Dict[str, Any]:
        d = super().get_info()
        enc: Dict[str, Any] = {"format": "aes" if self.crypt_method == CRYPT_AES else "luks"}
        if self.luks is not None:
            enc.update(self.luks.info())
        d["encrypt"] = enc
        return d

    # --- reading ----------------------------------------------------------------------
    def pread(self, offset: int, length: int) -> bytes:
        self.check_io(offset, length)
        parts = []
        for kind, goff, n, host, _entry in self._extents(offset, length):
            if kind != NORMAL:
                parts.append(super().pread(goff, n))
                continue
            a = goff & ~511
            b = -(-(goff + n) // 512) * 512
            hbase = host - (goff - a)
            raw = self.file.pread(hbase, b - a).ljust(b - a, b"\0")
            plain = self._key().decrypt(self._iv_offset(a, hbase), raw)
            parts.append(plain[goff - a:goff - a + n])
        return b"".join(parts)

    def read_plan(self, offset: int, length: int) -> List[Any]:
        return [(None, self.pread(offset, length), length)]

    def block_status(self, offset: int, length: int) -> BlockStatus:
        st = super().block_status(offset, length)
        # QEMU does not show where encrypted data lies in the file
        return BlockStatus(st.flags & ~(STATUS_OFFSET_VALID | STATUS_RECURSE), st.length)

    # --- writing ----------------------------------------------------------------------
    def pwrite(self, offset: int, data: bytes) -> None:
        self._check_writable()
        self.check_io(offset, len(data))
        if not data:
            return
        crypto = self._key()
        cs, cbits = self.cs, self.cluster_bits
        a = offset & ~(cs - 1)
        b = min(-(-(offset + len(data)) // cs) * cs, self._size)
        if a != offset or b != offset + len(data):
            buf = bytearray(self.pread(a, b - a))
            buf[offset - a:offset - a + len(data)] = data
            data = bytes(buf)
        frees: List[int] = []
        run_host, run_parts, run_len = -1, [], 0  # contiguous host write being gathered (up to 4 MiB)
        pos = a
        while pos < b:
            cluster = pos >> cbits
            n = min(cs, b - pos)
            entry = self._entry(cluster)
            kind = self._kind(entry)
            if kind == NORMAL and entry & COPIED:
                host = entry & L2_OFFSET_MASK
            elif kind == ZERO_ALLOC and entry & COPIED:
                host = entry & L2_OFFSET_MASK
                self._set_entry(cluster, host | COPIED)
            else:
                self._l2(cluster >> self.l2_bits, create=True)
                host = self.refcounts.alloc(1)
                if kind in (NORMAL, ZERO_ALLOC, COMPRESSED_KIND):
                    frees.append(entry)
                self._set_entry(cluster, host | COPIED)
            out = crypto.encrypt(self._iv_offset(pos, host), data[pos - a:pos - a + n])
            if run_parts and run_host + run_len == host and run_len < (4 << 20):
                run_parts.append(out)
                run_len += len(out)
            else:
                if run_parts:
                    self.file.pwrite(run_host, b"".join(run_parts))
                run_host, run_parts, run_len = host, [out], len(out)
            pos += n
        if run_parts:
            self.file.pwrite(run_host, b"".join(run_parts))
        if frees:
            self._free_entries(frees)

    def write_plan(self, offset: int, data: Any) -> List[Any]:
        self.pwrite(offset, bytes(data))
        return []

    def write_compressed(self, offset: int, data: bytes, comp: Optional[bytes] = None) -> None:
        raise QemuError("Compression is not supported with encryption by pyqemu", errno=95)


# --- creation --------------------------------------------------------------------------
def pop_encrypt_options(opts: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Take ``encryption``/``encrypt.*`` out of qcow2 create options; None if not encrypting."""
    from pyqemu.util.opts import parse_bool
    enc = {k[8:]: opts.pop(k) for k in list(opts) if k.startswith("encrypt.")}
    legacy = opts.pop("encryption", None)
    if legacy is not None and parse_bool("encryption", str(legacy)):
        if "format" in enc and enc["format"] != "aes":
            raise QemuError("Parameter 'encrypt.format' must be 'aes' with the deprecated 'encryption' option")
        enc.setdefault("format", "aes")
    if not enc:
        return None
    fmt = enc.get("format")
    if fmt is None:
        raise QemuError("Parameter 'encrypt.format' is required")
    if fmt not in FORMATS:
        raise QemuError("Parameter 'format' does not accept value '%s'" % fmt)
    if fmt == "aes":
        from pyqemu.block.crypto.qcowaes import check_create_options
        check_create_options(enc)
    else:
        from pyqemu.block.crypto import luks
        for k in enc:
            if k != "format" and k not in luks.CREATE_KEYS:
                raise QemuError("Parameter 'encrypt.%s' is unexpected" % k)
        o = luks.parse_create_options(enc)
        luks.secret_password(o["key-secret"], "encrypt.")  # before the file is made, as QEMU
    return enc


def set_up_encryption(node: Qcow2Node, enc: Dict[str, Any]) -> None:
    """Make a freshly created (empty) qcow2 image encrypted, as qemu-img create does."""
    h = node.header
    if enc["format"] == "aes":
        h.crypt_method = CRYPT_AES
        node.write_header()
        return
    from pyqemu.block.crypto import luks
    o = luks.parse_create_options(enc)
    password = luks.secret_password(o["key-secret"], "encrypt.")
    header, material, _crypto = luks.create(o, password)
    length = header.payload_offset * 512
    nclusters = -(-length // node.cs)
    off = node.refcounts.alloc(nclusters)
    node.flush_metadata()
    # the whole area written (unused key slots as zeroes), as QEMU does
    area = bytearray(nclusters * node.cs)
    hdr = header.pack()
    area[:len(hdr)] = hdr
    k = header.slots[0].key_offset * 512
    area[k:k + len(material)] = material
    node.file.pwrite(off, bytes(area))
    h.crypt_method = CRYPT_LUKS
    ext = struct.pack(">QQ", off, length)
    kinds = [k for k, _ in h.extensions]
    pos = kinds.index(EXT_FEATURE_TABLE) if EXT_FEATURE_TABLE in kinds else len(kinds)
    h.extensions.insert(pos, (EXT_CRYPTO, ext))
    node.write_header()


def amend_encryption(node: Qcow2Node, enc: Dict[str, Any], force: bool = False) -> None:
    """``qemu-img amend -o encrypt.state=...`` of a LUKS-encrypted qcow2 image."""
    from pyqemu.block.crypto import luks
    for k in enc:
        if k not in luks.AMEND_KEYS:
            raise QemuError("Invalid parameter 'encrypt.%s'" % k)
    if not isinstance(node, EncryptedQcow2Node):
        raise QemuError("Can't amend encryption options - encryption not present")
    if node.luks is None or node.luks_area is None:
        raise QemuError("Only LUKS encryption options can be amended")
    off, _length = node.luks_area
    f = node.file
    luks.amend(node.luks, enc, lambda o, n: f.pread(off + o, n), lambda o, d: f.pwrite(off + o, d), force)
    f.flush()


def check_amend_keys(opts: Dict[str, Any]) -> None:
    """``encrypt.*`` amend options as QEMU checks them before doing anything."""
    from pyqemu.block.crypto import luks
    for k in opts:
        if not k.startswith("encrypt."):
            continue
        name = k[8:]
        if name in luks.AMEND_KEYS:
            continue
        if name == "format" or name in luks.CREATE_KEYS:
            raise QemuError("Invalid parameter '%s'" % k, hint="This option is only supported for image creation")
        raise QemuError("Invalid parameter '%s'" % k)
