"""Exact rounding of the x87/SSE soft-float core against known IEEE results."""
from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from pyqemu.target.i386 import softfloat as sf


def d2b(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def b2d(b: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", b))[0]


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=200, deadline=None)
@given(finite, finite)
def test_double_ops_round_like_the_host(x, y):
    # With 53-bit precision control, one rounding of the exact result must equal
    # the host's IEEE binary64 result (barring subnormal double rounding).
    a, b = sf.from_ieee_to80(d2b(x), sf.F64), sf.from_ieee_to80(d2b(y), sf.F64)
    for op, want in (("add", x + y), ("sub", x - y), ("mul", x * y)):
        r, _ = sf.arith80(op, a, b, sf.RC_NEAREST, 53)
        got = b2d(sf.from80_to_ieee(r, sf.F64)[0])
        if abs(want) > 1e-300 or want == 0:
            assert got == want or (got != got and want != want), (op, x, y)
    if y != 0:
        r, _ = sf.arith80("div", a, b, sf.RC_NEAREST, 53)
        want = x / y
        if abs(want) > 1e-300:
            assert b2d(sf.from80_to_ieee(r, sf.F64)[0]) == want


def test_directed_rounding_of_one_third():
    one, three = sf.int_to80(1), sf.int_to80(3)
    down, _ = sf.arith80("div", one, three, sf.RC_DOWN, 64)
    up, _ = sf.arith80("div", one, three, sf.RC_UP, 64)
    assert up - down == 1                  # adjacent extended values
    assert down == 0x3ffdaaaaaaaaaaaaaaaa


def test_overflow_underflow_and_specials():
    big = sf.from_ieee_to80(d2b(1e308), sf.F64)
    r, f = sf.arith80("mul", big, big, sf.RC_NEAREST, 53)
    bits, f2 = sf.from80_to_ieee(r, sf.F64)
    assert b2d(bits) == float("inf") and f2 & sf.FE_OVERFLOW
    bits, _ = sf.from80_to_ieee(r, sf.F64, sf.RC_ZERO)
    assert b2d(bits) == 1.7976931348623157e308
    tiny = sf.from_ieee_to80(d2b(5e-324), sf.F64)
    half = sf.from_ieee_to80(d2b(0.5), sf.F64)
    r, _ = sf.arith80("mul", tiny, half, sf.RC_NEAREST, 64)
    assert sf.from80_to_ieee(r, sf.F64)[0] == 0          # ties to even: 0
    r, f = sf.arith80("div", sf.int_to80(0), sf.int_to80(0), 0, 64)
    assert r == sf.EXT_QNAN_DEFAULT and f & sf.FE_INVALID
    assert sf.from80_to_ieee(r, sf.F64)[0] == 0xfff8000000000000
    assert sf.to_int(sf.from_ieee_to80(d2b(-2.5), sf.F64), sf.RC_NEAREST, 32)[0] == (-2) & 0xffffffff
    assert sf.to_int(sf.from_ieee_to80(d2b(-2.5), sf.F64), sf.RC_DOWN, 32)[0] == (-3) & 0xffffffff
    assert sf.to_int(sf.from_ieee_to80(d2b(3e9), sf.F64), 0, 32)[0] == 0x80000000


def test_sqrt_is_correctly_rounded():
    r, _ = sf.sqrt80(sf.int_to80(2), sf.RC_NEAREST, 64)
    assert r == 0x3fffb504f333f9de6484


@settings(max_examples=100, deadline=None)
@given(st.integers(0, (1 << 128) - 1), st.integers(0, (1 << 128) - 1))
def test_sse_swar_ops_match_lane_by_lane(a, b):
    from pyqemu.target.i386 import sse
    for size in (1, 2, 4, 8):
        m = (1 << (8 * size)) - 1
        la, lb = sse._lanes(a, size), sse._lanes(b, size)
        assert sse._swar_add(size)(a, b) == sse._join([x + y for x, y in zip(la, lb)], size)
        assert sse._swar_sub(size)(a, b) == sse._join([x - y for x, y in zip(la, lb)], size)
        if size < 8:
            assert sse._swar_cmpeq(size)(a, b) == sse._join([m if x == y else 0 for x, y in zip(la, lb)], size)
            assert sse._swar_cmpeq(size)(a, a) == (1 << 128) - 1
        assert sse._unpack(size, False)(a, b) == sse._join(
            [v for p in zip(la[:8 // size], lb[:8 // size]) for v in p], size)
        assert sse._unpack(size, True)(a, b) == sse._join(
            [v for p in zip(la[8 // size:], lb[8 // size:]) for v in p], size)
    bytes_a = sse._lanes(a, 1)
    assert sse.pmovmskb_value(a) == sum(1 << i for i, x in enumerate(bytes_a) if x & 0x80)
    assert sse._bytes_min(a, b) == sse._join([min(x, y) for x, y in zip(bytes_a, sse._lanes(b, 1))], 1)
