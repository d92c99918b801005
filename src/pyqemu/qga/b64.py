"""Base64 as QEMU's agent accepts it: a strict alphabet, lenient padding."""
from __future__ import annotations

import base64
import re

from pyqemu.qga.errors import QgaError

_ALPHABET = re.compile(r"[A-Za-z0-9+/=]*\Z")
_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_RANK = {c: i for i, c in enumerate(_DIGITS)}
_RANK["="] = 0


def decode(text: str) -> bytes:
    if not _ALPHABET.match(text):
        raise QgaError("Base64 data contains invalid characters")
    # GLib's decoder, which QEMU's agent uses: every group of four characters
    # ('=' counting as a zero digit) gives one byte, plus a second unless the
    # group's third character is '=', plus a third unless its fourth is '='.
    # A trailing partial group is dropped.
    n = len(text) - len(text) % 4
    last = text[n - 4:n]
    if "=" not in text[:n - 4] and (last.find("=") < 0 or last.rstrip("=").find("=") < 0
                                    and last[:2].find("=") < 0):
        # Ordinary base64 (padding only at the end): the C decoder agrees.
        return base64.b64decode(text[:n])
    out = bytearray()
    for i in range(0, n, 4):
        v = 0
        for ch in text[i:i + 4]:
            v = (v << 6) | _RANK[ch]
        out.append(v >> 16)
        if text[i + 2] != "=":
            out.append((v >> 8) & 0xFF)
        if text[i + 3] != "=":
            out.append(v & 0xFF)
    return bytes(out)


def encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
