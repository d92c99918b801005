"""x87 transcendental instructions computed to about 45 significant digits.

The exact 80-bit operands are converted to ``decimal.Decimal`` at high
precision, the function is evaluated there (exp/ln from ``decimal``, sin,
cos and atan by argument reduction and Taylor series) and the result is
rounded once to extended precision with the control word's rounding and
precision, which matches a real x87 to the last bit in nearly every case.
"""
from __future__ import annotations

import decimal
from fractions import Fraction
from typing import Tuple

from pyqemu.target.i386 import softfloat as sf

_CTX = decimal.Context(prec=60, Emax=10 ** 6, Emin=-10 ** 6)
_PI = decimal.Decimal("3.14159265358979323846264338327950288419716939937510582097494459230781640628620899863")


def to_dec(raw: int) -> decimal.Decimal:
    v = sf.unpack80(raw)
    if v.kind == "zero":
        return decimal.Decimal(0)
    d = _CTX.multiply(decimal.Decimal(v.m), _CTX.power(decimal.Decimal(2), v.e))
    return -d if v.sign else d


def from_dec(x: decimal.Decimal, rc: int, prec: int) -> Tuple[int, int]:
    if x == 0:
        return (1 << 79) if x.is_signed() else 0, 0
    fr = Fraction(x)
    sign = 1 if fr < 0 else 0
    n, d = abs(fr.numerator), fr.denominator
    # scale so that the quotient has about prec + 70 bits
    k = (prec + 70) - (n.bit_length() - d.bit_length())
    q, r = divmod(n << k, d) if k >= 0 else divmod(n, d << -k)
    biased, mant, flags = sf.round_fmt(sign, q, -k, r != 0, sf.F80, rc, prec)
    return sf.pack80(sign, biased, mant << (64 - prec)), flags | sf.FE_INEXACT


def _atan(x: decimal.Decimal) -> decimal.Decimal:
    c = _CTX
    neg = x < 0
    x = abs(x)
    inv = x > 1
    if inv:
        x = c.divide(1, x)
    # halve the argument: atan(x) = 2 atan(x / (1 + sqrt(1 + x^2)))
    doublings = 0
    while x > decimal.Decimal("0.1"):
        x = c.divide(x, c.add(1, c.sqrt(c.add(1, c.multiply(x, x)))))
        doublings += 1
    x2 = c.multiply(x, x)
    term, total, k = x, x, 1
    while True:
        term = c.multiply(term, -x2)
        add = c.divide(term, 2 * k + 1)
        if abs(add) < decimal.Decimal(10) ** -58 * (abs(total) + 1):
            break
        total = c.add(total, add)
        k += 1
    total = c.multiply(total, 2 ** doublings)
    if inv:
        total = c.subtract(c.divide(_PI, 2), total)
    return -total if neg else total


def _sin_cos(x: decimal.Decimal) -> Tuple[decimal.Decimal, decimal.Decimal]:
    c = _CTX
    # reduce modulo 2*pi (exact enough for the |x| < 2**63 that fsin accepts)
    two_pi = c.multiply(_PI, 2)
    x = c.remainder_near(x, two_pi)
    x2 = c.multiply(x, x)
    s, term, k = x, x, 1
    while True:
        term = c.divide(c.multiply(term, -x2), (2 * k) * (2 * k + 1))
        if abs(term) < decimal.Decimal(10) ** -58:
            break
        s = c.add(s, term)
        k += 1
    co, term, k = decimal.Decimal(1), decimal.Decimal(1), 1
    while True:
        term = c.divide(c.multiply(term, -x2), (2 * k - 1) * (2 * k))
        if abs(term) < decimal.Decimal(10) ** -58:
            break
        co = c.add(co, term)
        k += 1
    return s, co


def f2xm1(x: int, rc: int, prec: int) -> Tuple[int, int]:
    d = to_dec(x)
    if d == 0:
        return x, 0
    r = _CTX.subtract(_CTX.exp(_CTX.multiply(d, _CTX.ln(decimal.Decimal(2)))), 1)
    return from_dec(r, rc, prec)


def fyl2x(x: int, y: int, rc: int, prec: int) -> Tuple[int, int]:
    """y * log2(x) for finite x > 0."""
    dx, dy = to_dec(x), to_dec(y)
    r = _CTX.multiply(dy, _CTX.divide(_CTX.ln(dx), _CTX.ln(decimal.Decimal(2))))
    return from_dec(r, rc, prec)


def fyl2xp1(x: int, y: int, rc: int, prec: int) -> Tuple[int, int]:
    dx, dy = to_dec(x), to_dec(y)
    r = _CTX.multiply(dy, _CTX.divide(_CTX.ln(_CTX.add(1, dx)), _CTX.ln(decimal.Decimal(2))))
    return from_dec(r, rc, prec)


def fpatan(x: int, y: int, rc: int, prec: int) -> Tuple[int, int]:
    """atan2(y, x) for finite, not both zero."""
    dx, dy = to_dec(x), to_dec(y)
    c = _CTX
    if dx == 0:
        r = c.divide(_PI, 2)
        r = -r if dy < 0 or (dy == 0 and dy.is_signed()) else r
    else:
        r = _atan(c.divide(dy, dx))
        if dx < 0:
            r = c.add(r, _PI) if not (dy < 0 or (dy == 0 and dy.is_signed())) else c.subtract(r, _PI)
    return from_dec(r, rc, prec)


def fsin_fcos(x: int, rc: int, prec: int) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    s, co = _sin_cos(to_dec(x))
    return from_dec(s, rc, prec), from_dec(co, rc, prec)


def ftan(x: int, rc: int, prec: int) -> Tuple[int, int]:
    s, co = _sin_cos(to_dec(x))
    return from_dec(_CTX.divide(s, co), rc, prec)
