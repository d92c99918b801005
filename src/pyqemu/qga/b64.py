"""Base64 as QEMU's agent accepts it: a strict alphabet, lenient padding."""
from __future__ import annotations

import base64
import binascii
import re

from pyqemu.qga.errors import QgaError

_ALPHABET = re.compile(r"[A-Za-z0-9+/=]*\Z")


def decode(text: str) -> bytes:
    if not _ALPHABET.match(text):
        raise QgaError("Base64 data contains invalid characters")
    body = text.replace("=", "")
    if len(body) % 4 == 1:
        body = body[:-1]
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4))
    except binascii.Error:
        raise QgaError("Base64 data contains invalid characters") from None


def encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
