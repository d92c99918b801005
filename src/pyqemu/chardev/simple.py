"""Backends without a host resource: null and ringbuf/memory."""
from __future__ import annotations

import base64
from typing import Any, Dict

from pyqemu.chardev.char import CHR_EVENT_OPENED, Chardev
from pyqemu.util.error import QemuError


class NullChardev(Chardev):
    """``null``: swallows output, never has input."""

    typename = "null"

    def open(self) -> Dict[str, Any]:
        self.be_event(CHR_EVENT_OPENED)
        return {}


class RingbufChardev(Chardev):
    """``ringbuf`` (alias ``memory``): keeps the last ``size`` bytes written to it.

    The frontend's output and ``ringbuf-write`` both append to the buffer (as
    in QEMU, the frontend never receives input from it); ``ringbuf-read``
    takes the oldest bytes.
    """

    typename = "ringbuf"

    def open(self) -> Dict[str, Any]:
        size = self.data.get("size", 65536)
        if not isinstance(size, int) or size <= 0 or size & (size - 1):
            raise QemuError("size of ringbuf chardev must be power of two")
        self.size = size
        self.buf = bytearray()
        self.be_event(CHR_EVENT_OPENED)
        return {}

    def _write(self, data: bytes) -> int:
        self.buf += data
        if len(self.buf) > self.size:
            del self.buf[:len(self.buf) - self.size]
        return len(data)

    def ringbuf_write(self, data: bytes) -> None:
        self._write(data)

    def ringbuf_read(self, size: int) -> bytes:
        n = min(size, len(self.buf))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


class MemoryChardev(RingbufChardev):
    typename = "memory"


_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_RANK = {c: i for i, c in enumerate(_B64_ALPHABET)}
_B64_RANK["="] = 0
_B64_VALID = set(_B64_ALPHABET + "=\n")


def base64_decode_lenient(text: str) -> bytes:
    """Base64 as QEMU decodes it (glib's decoder): only the alphabet, '=' and newline
    are accepted; '=' counts as a zero digit, and a group's last bytes are dropped
    only when '=' stands in their place; an incomplete final group is ignored."""
    if "\0" in text:
        raise QemuError("Base64 data contains embedded NUL characters")
    if any(c not in _B64_VALID for c in text):
        raise QemuError("Base64 data contains invalid characters")
    out = bytearray()
    v = n = 0
    last0 = last1 = ""
    for c in text:
        rank = _B64_RANK.get(c)
        if rank is None:
            continue  # newline
        last1, last0 = last0, c
        v = ((v << 6) | rank) & 0xFFFFFF
        n += 1
        if n == 4:
            out.append(v >> 16)
            if last1 != "=":
                out.append((v >> 8) & 0xFF)
            if last0 != "=":
                out.append(v & 0xFF)
            n = 0
    return bytes(out)


def decode_data(data: str, fmt: str) -> bytes:
    """ringbuf-write's ``data`` in ``format`` utf8 or base64."""
    if fmt == "base64":
        return base64_decode_lenient(data)
    if fmt != "utf8":
        raise QemuError("Parameter 'format' does not accept value '%s'" % fmt)
    return data.encode("utf-8", "surrogateescape")


def encode_data(raw: bytes, fmt: str) -> str:
    if fmt == "base64":
        return base64.b64encode(raw).decode("ascii")
    if fmt != "utf8":
        raise QemuError("Parameter 'format' does not accept value '%s'" % fmt)
    # QEMU hands the bytes back as a C string; invalid UTF-8 becomes U+FFFD in JSON.
    return raw.decode("utf-8", "replace")
