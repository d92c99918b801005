"""Format driver ``luks``: a LUKS v1 volume whose payload is the guest disk.

The header and key material occupy the first ``payload offset`` bytes of
the file; guest byte ``x`` is stored encrypted at ``payload offset + x``,
sector ``x // 512`` choosing the IV.  Opening needs the passphrase of a
``secret`` object named by ``key-secret`` (except inside
:func:`pyqemu.block.crypto.header_only`, which ``qemu-img info`` uses).
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

from pyqemu.block.crypto import luks as luks_format
from pyqemu.block.crypto import no_io
from pyqemu.block.crypto.cipher import SectorCrypto
from pyqemu.block.node import STATUS_DATA, BlockNode, BlockStatus
from pyqemu.util.error import QemuError
from pyqemu.util.opts import parse_bool

SECTOR = 512

PRINT_ORDER = [("size", None), ("key-secret", None), ("cipher-alg", None), ("cipher-mode", None),
               ("ivgen-alg", None), ("ivgen-hash-alg", None), ("hash-alg", None), ("iter-time", None),
               ("preallocation", None)]
CREATE_HELP = [
    ("cipher-alg", "<str>", "Name of encryption cipher algorithm"),
    ("cipher-mode", "<str>", "Name of encryption cipher mode"),
    ("extent_size_hint", "<size>", "Extent size hint for the image file, 0 to disable"),
    ("hash-alg", "<str>", "Name of encryption hash algorithm"),
    ("iter-time", "<num>", "Time to spend in PBKDF in milliseconds"),
    ("ivgen-alg", "<str>", "Name of IV generator algorithm"),
    ("ivgen-hash-alg", "<str>", "Name of IV generator hash algorithm"),
    ("key-secret", "<str>", "ID of the secret that provides the keyslot passphrase"),
    ("nocow", "<bool (on/off)>", "Turn off copy-on-write (valid only on btrfs)"),
    ("preallocation", "<str>", "Preallocation mode (allowed values: off, falloc, full)"),
    ("size", "<size>", "Virtual disk size"),
]
_CREATE_KEYS = luks_format.CREATE_KEYS + ("preallocation", "nocow", "extent_size_hint")


def validate_create_options(options: Dict[str, Any]) -> None:
    for k in options:
        if k not in _CREATE_KEYS:
            raise QemuError("Invalid parameter '%s'" % k)


def create(filename: str, size: int, options: Dict[str, Any]) -> None:
    """``qemu-img create -f luks``: header, slot 0 and a sparse payload of ``size`` bytes."""
    validate_create_options(options)
    prealloc = str(options.get("preallocation", "off"))
    if prealloc not in ("off", "metadata", "falloc", "full"):
        raise QemuError("invalid parameter value: %s" % prealloc)
    if prealloc == "metadata":  # LUKS has no metadata to preallocate: QEMU treats it as off
        prealloc = "off"
    if "nocow" in options:
        parse_bool("nocow", str(options["nocow"]))
    o = luks_format.parse_create_options(options)
    from pyqemu.block.file import FileNode, create_file
    create_file(filename, 0)
    try:
        password = luks_format.secret_password(o["key-secret"], "")
        header, material, _crypto = luks_format.create(o, password)
        payload = header.payload_offset * SECTOR
        f = FileNode({"filename": filename}, False)
        try:
            f.truncate(payload + size, prealloc)
            f.pwrite(0, header.pack())
            f.pwrite(header.slots[0].key_offset * SECTOR, material)
            f.flush()
        finally:
            f.close()
    except BaseException:
        # as QEMU: a failed creation leaves no half-made image behind
        try:
            os.unlink(filename)
        except OSError:
            pass
        raise


def open_format(tree: Dict[str, Any], read_only: bool, file: BlockNode) -> "LuksNode":
    return LuksNode(tree, read_only, file)


class LuksNode(BlockNode):
    driver = "luks"
    has_metadata = True
    encrypted = True
    # unwritten payload decrypts to noise: a new image does not read as zeroes
    has_zero_init = False

    def __init__(self, options: Dict[str, Any], read_only: bool, file: BlockNode) -> None:
        super().__init__(options, read_only)
        self.file = file
        self.filename = file.filename
        key_secret = options.get("key-secret")
        password = None
        if not no_io():
            password = luks_format.secret_password(key_secret, "")
        head = file.pread(0, min(luks_format.HEADER_SIZE, max(0, file.length())))
        self.header = luks_format.LuksHeader.parse(head)
        self.payload = self.header.payload_offset * SECTOR
        self.crypto: Optional[SectorCrypto] = None
        if password is not None:
            self.crypto = self.header.unlock(password, file.pread)
        if self.payload > file.length():
            raise QemuError("Could not refresh total sector count: Input/output error", errno=5)

    def length(self) -> int:
        # QEMU sees the file as whole sectors (its length rounded up), minus the header
        return max(0, -(-self.file.length() // SECTOR) * SECTOR - self.payload)

    def get_info(self) -> Dict[str, Any]:
        return self.header.info()

    def _need_key(self) -> SectorCrypto:
        if self.crypto is None:
            raise QemuError("Input/output error: image opened without its key", errno=5)
        return self.crypto

    def pread(self, offset: int, length: int) -> bytes:
        self.check_io(offset, length)
        if length == 0:
            return b""
        crypto = self._need_key()
        start = offset - offset % SECTOR
        end = -(-(offset + length) // SECTOR) * SECTOR
        raw = self.file.pread(self.payload + start, end - start)
        if len(raw) < end - start:
            raw += bytes(end - start - len(raw))
        plain = crypto.decrypt(start, raw)
        return plain[offset - start:offset - start + length]

    def pwrite(self, offset: int, data: bytes) -> None:
        if self.read_only:
            raise QemuError("Permission denied", errno=13)
        self.check_io(offset, len(data))
        if not data:
            return
        crypto = self._need_key()
        start = offset - offset % SECTOR
        end = -(-(offset + len(data)) // SECTOR) * SECTOR
        if start != offset or end != offset + len(data):
            # read-modify-write of the partial sectors at either end
            buf = bytearray(self.pread(start, end - start))
            buf[offset - start:offset - start + len(data)] = data
            data = bytes(buf)
        chunk = 1 << 20
        for pos in range(0, len(data), chunk):
            piece = data[pos:pos + chunk]
            self.file.pwrite(self.payload + start + pos, crypto.encrypt(start + pos, piece))

    def truncate(self, size: int, prealloc: str = "off", exact: bool = False) -> None:
        if self.read_only:
            raise QemuError("Permission denied", errno=13)
        self.file.truncate(self.payload + size, prealloc, exact)

    def block_status(self, offset: int, length: int) -> BlockStatus:
        n = max(0, min(length, self.length() - offset))
        # QEMU's crypto driver has no block status: all data, no host offset to show
        return BlockStatus(STATUS_DATA, n)


def amend(node: "LuksNode", opts: Dict[str, Any], force: bool = False) -> None:
    """``qemu-img amend`` of a luks image: add or erase key slots."""
    for k in opts:
        if k in ("key-secret", "cipher-alg", "cipher-mode", "ivgen-alg", "ivgen-hash-alg", "hash-alg"):
            raise QemuError("Invalid parameter '%s'" % k, hint="This option is only supported for image creation")
        if k not in luks_format.AMEND_KEYS:
            raise QemuError("Invalid parameter '%s'" % k)
    if node.read_only:
        raise QemuError("Permission denied", errno=13)
    f = node.file
    luks_format.amend(node.header, opts, f.pread, f.pwrite, force)
    f.flush()
