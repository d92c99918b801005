"""The legacy encryption of qcow and qcow2 (``encrypt.format=aes``).

The passphrase, truncated or zero-padded to 16 bytes, is the AES-128 key
itself (no key derivation: this scheme is weak, and QEMU keeps it only so
that old images can be read and converted).  Sectors are encrypted in CBC
mode with plain64 IVs; the sector number is the guest sector.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from pyqemu.block.crypto.cipher import Cipher, IVGen, SectorCrypto
from pyqemu.block.crypto.luks import secret_password
from pyqemu.util.error import QemuError


def crypto_from_password(password: bytes) -> SectorCrypto:
    key = password[:16].ljust(16, b"\0")
    return SectorCrypto(Cipher("aes-128", "cbc", key), IVGen("plain64", "aes-128", None, key, 16), 512)


def open_crypto(key_secret: Optional[Any]) -> SectorCrypto:
    return crypto_from_password(secret_password(None if key_secret is None else str(key_secret), "encrypt."))


def check_create_options(enc: Dict[str, Any]) -> None:
    """``encrypt.*`` keys other than format and key-secret are not options of the aes format."""
    for k in enc:
        if k not in ("format", "key-secret"):
            raise QemuError("Parameter 'encrypt.%s' is unexpected" % k)
    if not enc.get("key-secret"):
        raise QemuError("Parameter 'encrypt.key-secret' is required for cipher")
    secret_password(str(enc["key-secret"]), "encrypt.")
