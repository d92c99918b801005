"""Backends without a host resource: null and ringbuf/memory."""
from __future__ import annotations

import base64
import binascii
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


def decode_data(data: str, fmt: str) -> bytes:
    """ringbuf-write's ``data`` in ``format`` utf8 or base64."""
    if fmt == "base64":
        try:
            return base64.b64decode(data, validate=False)
        except (binascii.Error, ValueError):
            raise QemuError("Invalid base64 data") from None
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
