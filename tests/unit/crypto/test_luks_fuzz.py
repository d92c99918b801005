"""Hostile LUKS headers: a clear QemuError or a parsed header, never a traceback or a huge read."""
from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyqemu.block.crypto import luks
from pyqemu.util.error import QemuError


def _valid_header() -> bytes:
    h = luks.LuksHeader()
    h.cipher_name, h.cipher_mode_spec, h.hash_spec = "aes", "xts-plain64", "sha256"
    h.payload_offset, h.key_bytes, h.mk_iters, h.uuid = 4040, 64, 1000, "u"
    h.slots = [luks.Slot(luks.SLOT_ENABLED if i == 0 else luks.SLOT_DISABLED, 1000, bytes(32), 8 + 504 * i,
                         luks.STRIPES) for i in range(8)]
    return h.pack()


GOOD = _valid_header()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), max_size=12),
       st.integers(0, len(GOOD)))
def test_mutated_headers(muts, cut):
    buf = bytearray(GOOD)
    for off, val in muts:
        buf[off] = val
    reads = []

    def read(off: int, n: int) -> bytes:
        assert n <= 64 * luks.STRIPES  # key material of the largest real key, never more
        reads.append(n)
        return bytes(n)

    try:
        h = luks.LuksHeader.parse(bytes(buf[:cut]))
    except QemuError:
        return
    assert h.key_bytes in (16, 24, 32, 48, 64)
    # unlocking with a bounded iteration count must fail cleanly (wrong key material)
    for s in h.slots:
        s.iterations = min(s.iterations, 2)
    h.mk_iters = min(h.mk_iters, 2) or 1
    try:
        h.unlock(b"pw", read)
    except QemuError:
        pass


def test_huge_key_bytes_are_refused_before_any_read():
    buf = bytearray(GOOD)
    struct.pack_into(">I", buf, 108, 0x7FFFFFFF)  # key_bytes
    try:
        luks.LuksHeader.parse(bytes(buf))
    except QemuError as e:
        assert "overlapping" in e.msg or "not supported" in e.msg
    else:
        raise AssertionError("accepted a 2 GiB key")
