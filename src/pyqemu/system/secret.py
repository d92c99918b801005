"""The ``secret`` object: a password or key given inline or in a file.

Other code (block encryption, TLS) looks secrets up by id with
:func:`secret_bytes`.  Secrets encrypted with another secret (``keyid`` and
``iv``, AES-256-CBC) need the optional ``cryptography`` package.
"""
from __future__ import annotations

import base64
import binascii

from pyqemu.qom.object import Object, PropDef, UserCreatable, objects_root, register_type
from pyqemu.util.error import QemuError


@register_type
class Secret(Object, UserCreatable):
    TYPE_NAME = "secret"
    ABSTRACT = False
    PROPERTIES = (
        PropDef("data", "string", None),
        PropDef("file", "string", None),
        PropDef("format", "QCryptoSecretFormat", "raw", enum=("raw", "base64")),
        PropDef("keyid", "string", None),
        PropDef("iv", "string", None),
    )

    def __init__(self) -> None:
        super().__init__()
        self.value = b""

    def complete(self) -> None:
        if self.data is not None and self.file is not None:
            raise QemuError("'data' and 'file' are mutually exclusive")
        if self.data is not None:
            raw = self.data.encode("utf-8")
        elif self.file is not None:
            try:
                with open(self.file, "rb") as f:
                    raw = f.read()
            except OSError as e:
                raise QemuError("Unable to read %s: %s" % (self.file, e.strerror))
        else:
            raise QemuError("Either 'file' or 'data' must be provided")
        if self.keyid is not None:
            raw = self._decrypt(raw)
        elif self.iv is not None:
            raise QemuError("'iv' property is only valid with 'keyid'")
        if self.format == "base64" and self.keyid is None:
            try:
                raw = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise QemuError("Invalid base64 data in secret") from None
        self.value = raw

    def _decrypt(self, raw: bytes) -> bytes:
        if self.iv is None:
            raise QemuError("'iv' is required when 'keyid' is provided")
        key = secret_bytes(self.keyid)
        if len(key) != 32:
            raise QemuError("Secret key must be 32 bytes in length")
        try:
            iv = base64.b64decode(self.iv, validate=True)
            data = base64.b64decode(raw, validate=True) if self.format == "base64" else raw
        except (binascii.Error, ValueError):
            raise QemuError("Invalid base64 data in secret") from None
        if len(iv) != 16:
            raise QemuError("IV is required to be 16 bytes not %d bytes" % len(iv))
        try:
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        except ImportError:
            raise QemuError("encrypted secrets need the 'cryptography' package "
                            "(pip install pyqemu[crypto])") from None
        dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        out = dec.update(data) + dec.finalize()
        pad = out[-1] if out else 0
        if pad < 1 or pad > 16 or out[-pad:] != bytes([pad]) * pad:
            raise QemuError("Incorrect number of padding bytes (%d) found on decrypted data" % pad)
        return out[:-pad]


def secret_bytes(id: str) -> bytes:
    obj = objects_root().child(id)
    if obj is None:
        raise QemuError("No secret with id '%s'" % id)
    if not isinstance(obj, Secret):
        raise QemuError("Object '%s' is not a secret" % id)
    return obj.value
