"""GDB remote serial protocol framing: ``$payload#cs``, acks, escapes, Ctrl-C.

Target independent: this module only turns bytes into packets and back.
"""
from __future__ import annotations

from typing import List, Tuple, Union

MAX_PACKET = 1 << 20  # longer packets are dropped (and nacked), never buffered

Event = Union[Tuple[str, bytes], Tuple[str, None]]


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def escape(data: bytes) -> bytes:
    """Binary data escaping: '#', '$', '}' and '*' become '}' + (byte ^ 0x20)."""
    out = bytearray()
    for b in data:
        if b in (0x23, 0x24, 0x7D, 0x2A):
            out += bytes((0x7D, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def unescape(data: bytes) -> bytes:
    out = bytearray()
    it = iter(data)
    for b in it:
        if b == 0x7D:
            nxt = next(it, None)
            if nxt is None:
                break
            out.append(nxt ^ 0x20)
        else:
            out.append(b)
    return bytes(out)


def frame(payload: bytes) -> bytes:
    """A complete packet for ``payload`` (already escaped where needed)."""
    return b"$" + payload + b"#%02x" % checksum(payload)


class PacketReader:
    """Incremental parser: feed bytes, get events.

    Events are ``("packet", payload)`` for a packet with a good checksum (the
    payload unescaped), ``("bad", None)`` for a bad checksum or an oversized
    packet (the caller answers '-'), ``("ack", None)``, ``("nack", None)`` and
    ``("interrupt", None)`` for Ctrl-C.
    """

    _IDLE, _DATA, _CS1, _CS2 = range(4)

    def __init__(self) -> None:
        self.state = self._IDLE
        self.buf = bytearray()
        self.escaped = False
        self.cs = b""
        self.overflow = False

    def feed(self, data: bytes) -> List[Event]:
        events: List[Event] = []
        for b in data:
            st = self.state
            if st == self._IDLE:
                if b == 0x24:  # '$'
                    self.state = self._DATA
                    self.buf.clear()
                    self.escaped = False
                    self.overflow = False
                elif b == 0x2B:
                    events.append(("ack", None))
                elif b == 0x2D:
                    events.append(("nack", None))
                elif b == 0x03:
                    events.append(("interrupt", None))
            elif st == self._DATA:
                if self.escaped:
                    self.escaped = False
                elif b == 0x7D:
                    self.escaped = True
                elif b == 0x23:  # '#'
                    self.state = self._CS1
                    continue
                if len(self.buf) < MAX_PACKET:
                    self.buf.append(b)
                else:
                    self.overflow = True
            elif st == self._CS1:
                self.cs = bytes((b,))
                self.state = self._CS2
            else:
                self.state = self._IDLE
                raw = bytes(self.buf)
                self.buf.clear()
                try:
                    want = int(self.cs + bytes((b,)), 16)
                except ValueError:
                    want = -1
                if self.overflow or want != checksum(raw):
                    events.append(("bad", None))
                else:
                    events.append(("packet", unescape(raw)))
        return events
