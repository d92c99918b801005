"""Exact IEEE rounding for binary32/binary64 and x87 80-bit extended values.

Finite values are handled as exact (sign, m, e) triples meaning
(-1)**sign * m * 2**e with Python ints; operations are exact (division and
square root carry a sticky bit) and :func:`round_fmt` rounds once to the
destination format with the requested rounding mode, producing subnormals,
infinities and the IEEE exception flags.
"""
from __future__ import annotations

import math
from typing import Tuple

RC_NEAREST, RC_DOWN, RC_UP, RC_ZERO = 0, 1, 2, 3

# exception flag bits (x87 status word / MXCSR share these positions)
FE_INVALID, FE_DENORMAL, FE_DIVZERO, FE_OVERFLOW, FE_UNDERFLOW, FE_INEXACT = 1, 2, 4, 8, 16, 32

# (precision incl. leading bit, bias, max biased exponent of finite values, exponent field bits)
F32 = (24, 127, 254, 8)
F64 = (53, 1023, 2046, 11)
F80 = (64, 16383, 32766, 15)

M80 = (1 << 80) - 1
EXT_QNAN_DEFAULT = (1 << 79) | (0x7fff << 64) | (3 << 62)    # -nan, the x87 "indefinite"


class Val:
    """A decoded value: kind is 'zero', 'fin', 'inf' or 'nan'."""

    __slots__ = ("kind", "sign", "m", "e", "raw_nan")

    def __init__(self, kind: str, sign: int, m: int = 0, e: int = 0, raw_nan: int = 0) -> None:
        self.kind = kind
        self.sign = sign
        self.m = m
        self.e = e
        self.raw_nan = raw_nan


def round_fmt(sign: int, m: int, e: int, sticky: bool, fmt, rc: int,
              prec: int = 0) -> Tuple[int, int, int]:
    """Round (-1)^sign * (m + sticky) * 2^e to ``fmt``; returns (biased exp, mantissa, flags).

    The mantissa includes the leading bit (bit ``p - 1``); biased exponent 0 is
    a subnormal, ``max + 1`` infinity.  ``prec`` narrows the precision (x87 PC).
    """
    p, bias, maxb, _ = fmt
    if prec:
        p = prec
    flags = 0
    if m == 0:
        return 0, 0, (FE_INEXACT | FE_UNDERFLOW) if sticky else 0
    n = m.bit_length()
    biased = e + n - 1 + bias
    keep = p
    sub = biased < 1
    if sub:
        keep = p - (1 - biased)
        biased = 1
    shift = n - keep
    if keep < 0:
        # far below the smallest subnormal: everything is sticky
        inexact = True
        up = (rc == RC_DOWN and sign) or (rc == RC_UP and not sign)
        r = 1 if up else 0
    elif shift <= 0:
        r = m << -shift
        inexact = sticky
        up = False
        if sticky:
            up = (rc == RC_DOWN and sign) or (rc == RC_UP and not sign)
        r += up
    else:
        r = m >> shift
        rem = m - (r << shift)
        half = 1 << (shift - 1)
        inexact = bool(rem) or sticky
        if rc == RC_NEAREST:
            up = rem > half or (rem == half and (sticky or (r & 1)))
        elif rc == RC_DOWN:
            up = inexact and sign
        elif rc == RC_UP:
            up = inexact and not sign
        else:
            up = False
        r += bool(up)
    if sub:
        if r >> (p - 1):
            biased = 1      # rounded up to the smallest normal
        else:
            biased = 0
        if inexact:
            flags |= FE_UNDERFLOW
    elif r >> p:
        r >>= 1
        biased += 1
    if inexact:
        flags |= FE_INEXACT
    if biased > maxb:
        flags |= FE_OVERFLOW | FE_INEXACT
        if rc == RC_ZERO or (rc == RC_DOWN and not sign) or (rc == RC_UP and sign):
            return maxb, (1 << p) - 1, flags
        return maxb + 1, 1 << (p - 1), flags
    return biased, r, flags


# -- pack / unpack ------------------------------------------------------------------
def unpack_ieee(bits: int, fmt) -> Val:
    p, bias, maxb, ebits = fmt
    fb = p - 1
    sign = (bits >> (fb + ebits)) & 1
    ex = (bits >> fb) & ((1 << ebits) - 1)
    frac = bits & ((1 << fb) - 1)
    if ex == (1 << ebits) - 1:
        if frac:
            return Val("nan", sign, frac, 0, bits)
        return Val("inf", sign)
    if ex == 0:
        if frac == 0:
            return Val("zero", sign)
        return Val("fin", sign, frac, 1 - bias - fb)
    return Val("fin", sign, frac | (1 << fb), ex - bias - fb)


def pack_ieee(sign: int, biased: int, mant: int, fmt) -> int:
    p, bias, maxb, ebits = fmt
    fb = p - 1
    if biased == maxb + 1:
        mant = 0
    return (sign << (fb + ebits)) | (biased << fb) | (mant & ((1 << fb) - 1))


def unpack80(raw: int) -> Val:
    sign = (raw >> 79) & 1
    ex = (raw >> 64) & 0x7fff
    mant = raw & ((1 << 64) - 1)
    if ex == 0x7fff:
        if (mant << 1) & ((1 << 64) - 1):
            return Val("nan", sign, mant, 0, raw)
        return Val("inf", sign)
    if mant == 0:
        return Val("zero", sign)
    if ex == 0:
        return Val("fin", sign, mant, 1 - 16383 - 63)
    return Val("fin", sign, mant, ex - 16383 - 63)


def pack80(sign: int, biased: int, mant64: int) -> int:
    return (sign << 79) | (biased << 64) | mant64


def val_to80(v: Val, rc: int = 0, prec: int = 64) -> Tuple[int, int]:
    """Round a value to extended precision (with x87 precision control)."""
    if v.kind == "zero":
        return v.sign << 79, 0
    if v.kind == "inf":
        return pack80(v.sign, 0x7fff, 1 << 63), 0
    if v.kind == "nan":
        return v.raw_nan if v.raw_nan else EXT_QNAN_DEFAULT, 0
    biased, mant, flags = round_fmt(v.sign, v.m, v.e, False, F80, rc, prec)
    mant <<= 64 - (prec or 64)
    return pack80(v.sign, biased, mant), flags


def from_ieee_to80(bits: int, fmt) -> int:
    v = unpack_ieee(bits, fmt)
    if v.kind == "nan":
        p = fmt[0]
        frac = v.m
        return pack80(v.sign, 0x7fff, (1 << 63) | (1 << 62) | (frac << (64 - p)))
    return val_to80(v)[0]


def from80_to_ieee(raw: int, fmt, rc: int = 0) -> Tuple[int, int]:
    v = unpack80(raw)
    p = fmt[0]
    if v.kind == "zero":
        return pack_ieee(v.sign, 0, 0, fmt), 0
    if v.kind == "inf":
        return pack_ieee(v.sign, fmt[2] + 1, 0, fmt), 0
    if v.kind == "nan":
        frac = ((v.m >> (64 - p)) | (1 << (p - 2))) & ((1 << (p - 1)) - 1)
        return pack_ieee(v.sign, fmt[2] + 1, 0, fmt) | frac, 0 if v.m >> 62 & 1 else FE_INVALID
    biased, mant, flags = round_fmt(v.sign, v.m, v.e, False, fmt, rc)
    return pack_ieee(v.sign, biased, mant, fmt), flags


def int_to80(n: int) -> int:
    if n == 0:
        return 0
    return val_to80(Val("fin", 1 if n < 0 else 0, abs(n), 0))[0]


def to_int(raw: int, rc: int, bits: int) -> Tuple[int, int]:
    """x87 value -> integer of ``bits`` (the integer indefinite on overflow/NaN)."""
    v = unpack80(raw)
    indef = 1 << (bits - 1)
    if v.kind == "zero":
        return 0, 0
    if v.kind != "fin":
        return indef, FE_INVALID
    n, inexact = _round_int(v, rc)
    if n >= (1 << (bits - 1)) or n < -(1 << (bits - 1)):
        return indef, FE_INVALID
    return n & ((1 << bits) - 1), FE_INEXACT if inexact else 0


def _round_int(v: Val, rc: int) -> Tuple[int, bool]:
    if v.e >= 0:
        n = v.m << v.e
        return (-n if v.sign else n), False
    sh = -v.e
    q = v.m >> sh
    rem = v.m - (q << sh)
    half = 1 << (sh - 1)
    if rc == RC_NEAREST:
        up = rem > half or (rem == half and q & 1)
    elif rc == RC_DOWN:
        up = rem and v.sign
    elif rc == RC_UP:
        up = rem and not v.sign
    else:
        up = False
    q += bool(up)
    return (-q if v.sign else q), bool(rem)


def round_to_int80(raw: int, rc: int) -> Tuple[int, int]:
    v = unpack80(raw)
    if v.kind != "fin":
        return raw, 0
    n, inexact = _round_int(v, rc)
    if n == 0:
        return v.sign << 79, FE_INEXACT if inexact else 0
    return int_to80(n), FE_INEXACT if inexact else 0


# -- arithmetic -------------------------------------------------------------------------
def _quiet80(v: Val) -> int:
    return v.raw_nan | (1 << 62)


def _nan_result(a: Val, b: Val) -> Tuple[int, int]:
    flags = 0
    for v in (a, b):
        if v.kind == "nan" and not (v.m >> 62) & 1:
            flags = FE_INVALID
    if a.kind == "nan" and b.kind == "nan":
        # the larger significand wins (x87 rule)
        pick = a if (a.m & ((1 << 62) - 1)) >= (b.m & ((1 << 62) - 1)) else b
        return _quiet80(pick), flags
    return _quiet80(a if a.kind == "nan" else b), flags


def arith80(op: str, ra: int, rb: int, rc: int, prec: int) -> Tuple[int, int]:
    """``a op b`` on 80-bit values with rounding control and precision control."""
    a, b = unpack80(ra), unpack80(rb)
    if a.kind == "nan" or b.kind == "nan":
        return _nan_result(a, b)
    if op in ("add", "sub"):
        bs = b.sign ^ (op == "sub")
        if a.kind == "inf" or b.kind == "inf":
            if a.kind == "inf" and b.kind == "inf" and a.sign != bs:
                return EXT_QNAN_DEFAULT, FE_INVALID
            return pack80(a.sign if a.kind == "inf" else bs, 0x7fff, 1 << 63), 0
        if a.kind == "zero" and b.kind == "zero":
            s = a.sign if a.sign == bs else (1 if rc == RC_DOWN else 0)
            return s << 79, 0
        if a.kind == "zero":
            return val_to80(Val("fin", bs, b.m, b.e), rc, prec)
        if b.kind == "zero":
            return val_to80(a, rc, prec)
        e = min(a.e, b.e)
        x = (a.m << (a.e - e)) * (-1 if a.sign else 1)
        y = (b.m << (b.e - e)) * (-1 if bs else 1)
        s = x + y
        if s == 0:
            return (1 if rc == RC_DOWN else 0) << 79, 0
        biased, mant, fl = round_fmt(1 if s < 0 else 0, abs(s), e, False, F80, rc, prec)
        return pack80(1 if s < 0 else 0, biased, mant << (64 - prec)), fl
    sign = a.sign ^ b.sign
    if op == "mul":
        if (a.kind == "inf" and b.kind == "zero") or (a.kind == "zero" and b.kind == "inf"):
            return EXT_QNAN_DEFAULT, FE_INVALID
        if a.kind == "inf" or b.kind == "inf":
            return pack80(sign, 0x7fff, 1 << 63), 0
        if a.kind == "zero" or b.kind == "zero":
            return sign << 79, 0
        biased, mant, fl = round_fmt(sign, a.m * b.m, a.e + b.e, False, F80, rc, prec)
        return pack80(sign, biased, mant << (64 - prec)), fl
    if op == "div":
        if (a.kind == "inf" and b.kind == "inf") or (a.kind == "zero" and b.kind == "zero"):
            return EXT_QNAN_DEFAULT, FE_INVALID
        if a.kind == "inf" or b.kind == "zero":
            return pack80(sign, 0x7fff, 1 << 63), (FE_DIVZERO if b.kind == "zero" else 0)
        if a.kind == "zero" or b.kind == "inf":
            return sign << 79, 0
        sh = 70 + b.m.bit_length()
        q, r = divmod(a.m << sh, b.m)
        biased, mant, fl = round_fmt(sign, q, a.e - b.e - sh, r != 0, F80, rc, prec)
        return pack80(sign, biased, mant << (64 - prec)), fl
    raise ValueError(op)


def sqrt80(ra: int, rc: int, prec: int) -> Tuple[int, int]:
    a = unpack80(ra)
    if a.kind == "nan":
        return _nan_result(a, a)
    if a.kind == "zero":
        return ra, 0
    if a.sign:
        return EXT_QNAN_DEFAULT, FE_INVALID
    if a.kind == "inf":
        return ra, 0
    m, e = a.m, a.e
    if e & 1:
        m <<= 1
        e -= 1
    sh = 140
    m <<= sh
    e -= sh
    r = math.isqrt(m)
    sticky = r * r != m
    biased, mant, fl = round_fmt(0, r, e // 2, sticky, F80, rc, prec)
    return pack80(0, biased, mant << (64 - prec)), fl


def compare80(ra: int, rb: int) -> int:
    """-1, 0, 1, or 2 for unordered."""
    a, b = unpack80(ra), unpack80(rb)
    if a.kind == "nan" or b.kind == "nan":
        return 2
    x, y = _to_fraction(a), _to_fraction(b)
    return (x > y) - (x < y)


def _to_fraction(v: Val):
    from fractions import Fraction
    if v.kind == "zero":
        return Fraction(0)
    if v.kind == "inf":
        return Fraction(10) ** 5000 * (-1 if v.sign else 1)
    f = Fraction(v.m) * (Fraction(2) ** v.e)
    return -f if v.sign else f


def to_float(raw: int) -> float:
    """Nearest binary64 (for transcendental functions computed in double)."""
    bits, _ = from80_to_ieee(raw, F64)
    import struct
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def from_float(x: float) -> int:
    import struct
    return from_ieee_to80(struct.unpack("<Q", struct.pack("<d", x))[0], F64)
