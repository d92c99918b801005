"""SSE floating point with MXCSR: rounding control, DAZ, FTZ and the six
exception flags, set exactly as the hardware sets them.

Every function takes ``c``, a two-element list ``[mxcsr, flags]``: the
MXCSR in force, and the exception flags the operation raises, which the
caller ORs into MXCSR (one list per instruction, so threads never share it).

The order of checks follows the hardware (measured against the host CPU):
a signalling NaN operand gives IE and a quiet NaN result, a quiet NaN gives
no flag (min/max and the ordered compares are "signalling": IE for any NaN);
then invalid operations (IE), division by zero (ZE); otherwise DE for a
denormal operand (unless DAZ, which turns denormal operands into zeros); the
rounded result then gives PE, UE (tiny before rounding and inexact) and OE.
FTZ turns tiny results into zero with UE and PE.  Unmasked exceptions are
not delivered (#XM is not implemented): results are the masked ones.

Results are computed exactly on (sign, mantissa, exponent) integers and
rounded once (softfloat.round_fmt).  The common case -- normal operands, a
normal result, round to nearest, PE already set -- takes the host's IEEE
arithmetic instead, which gives the same bits.
"""
from __future__ import annotations

import math
import struct
from typing import List, Optional, Tuple

from pyqemu.target.i386 import softfloat as sf

IE, DE, ZE, OE, UE, PE = 1, 2, 4, 8, 16, 32
DAZ = 0x40
FTZ = 0x8000
MXCSR_DEFAULT = 0x1f80

FMT = {32: sf.F32, 64: sf.F64}
QBIT = {32: 1 << 22, 64: 1 << 51}
EXPM = {32: 0xff << 23, 64: 0x7ff << 52}
FRAC = {32: (1 << 23) - 1, 64: (1 << 52) - 1}
SIGN = {32: 1 << 31, 64: 1 << 63}
DEFAULT_NAN = {32: 0xffc00000, 64: 0xfff8000000000000}
INF = {32: 0x7f800000, 64: 0x7ff0000000000000}

_pd = struct.Struct("<d")
_pq = struct.Struct("<Q")
_pf = struct.Struct("<f")
_pi = struct.Struct("<I")
_M64 = (1 << 64) - 1
# MXCSR bits that force the exact path: RC (13-14), DAZ, FTZ
_SLOW_MODES = 0x6000 | DAZ | FTZ


def new_ctx(mxcsr: int) -> List[int]:
    return [mxcsr, 0]


def is_nan(v: int, bits: int) -> bool:
    return (v & EXPM[bits]) == EXPM[bits] and (v & FRAC[bits]) != 0


def is_snan(v: int, bits: int) -> bool:
    return is_nan(v, bits) and not v & QBIT[bits]


def is_denormal(v: int, bits: int) -> bool:
    return (v & EXPM[bits]) == 0 and (v & FRAC[bits]) != 0


def _normal(v: int, bits: int) -> bool:
    """Normal and not the smallest binade (a result there may have been tiny
    before rounding, which the exact path must judge)."""
    e = (v & EXPM[bits]) >> (23 if bits == 32 else 52)
    return 1 < e < (0xff if bits == 32 else 0x7ff)


def _host(v: int, bits: int) -> float:
    if bits == 64:
        return _pd.unpack(_pq.pack(v))[0]
    return _pf.unpack(_pi.pack(v))[0]


def _bits64(x: float) -> int:
    return _pq.unpack(_pd.pack(x))[0]


def daz(v: int, bits: int, c: List[int]) -> int:
    """The operand as the instruction sees it: a denormal is zero under DAZ."""
    if c[0] & DAZ and is_denormal(v, bits):
        return v & SIGN[bits]
    return v


def _round(sign: int, m: int, e: int, sticky: bool, bits: int, c: List[int]) -> int:
    fmt = FMT[bits]
    biased, mant, fl = sf.round_fmt(sign, m, e, sticky, fmt, (c[0] >> 13) & 3)
    if c[0] & FTZ and ((biased == 0 and mant) or fl & UE):
        c[1] |= UE | PE
        return sign * SIGN[bits]
    c[1] |= fl
    return sf.pack_ieee(sign, biased, mant, fmt)


def _nan_result(a: int, b: int, bits: int, c: List[int], signalling: bool = False) -> int:
    if is_snan(a, bits) or is_snan(b, bits) or signalling:
        c[1] |= IE
    return (a if is_nan(a, bits) else b) | QBIT[bits]


def arith(kind: str, a: int, b: int, bits: int, c: List[int]) -> int:
    """a + b, a - b, a * b, a / b or sqrt(b) (binary32/64 bit patterns)."""
    mx = c[0]
    if not mx & _SLOW_MODES and mx & PE and _normal(b, bits) and (kind == "sqrt" or _normal(a, bits)):
        y = _host(b, bits)
        if kind == "sqrt":
            r = math.sqrt(y) if y > 0 else 0.0
        else:
            x = _host(a, bits)
            r = x + y if kind == "add" else x - y if kind == "sub" else \
                x * y if kind == "mul" else x / y
        if r > 0 or r < 0:
            if bits == 64:
                out = _bits64(r)
                if _normal(out, 64):
                    return out
            else:
                try:
                    out = _pi.unpack(_pf.pack(r))[0]
                except OverflowError:
                    out = 0
                if _normal(out, 32):
                    return out
    return _arith_exact(kind, a, b, bits, c)


def _arith_exact(kind: str, a: int, b: int, bits: int, c: List[int]) -> int:
    fmt = FMT[bits]
    if kind == "sqrt":
        if is_nan(b, bits):
            return _nan_result(b, b, bits, c)
    elif is_nan(a, bits) or is_nan(b, bits):
        return _nan_result(a, b, bits, c)
    den = False
    if c[0] & DAZ:
        a, b = daz(a, bits, c), daz(b, bits, c)
    else:
        den = (kind != "sqrt" and is_denormal(a, bits)) or is_denormal(b, bits)
    rc = (c[0] >> 13) & 3
    vb = sf.unpack_ieee(b, fmt)
    if kind == "sqrt":
        if vb.kind == "zero":
            return b
        if vb.sign:
            c[1] |= IE
            return DEFAULT_NAN[bits]
        if den:
            c[1] |= DE
        if vb.kind == "inf":
            return b
        m, e = vb.m, vb.e
        if e & 1:
            m <<= 1
            e -= 1
        sh = 2 * (fmt[0] + 4)
        r = math.isqrt(m << sh)
        return _round(0, r, (e - sh) // 2, r * r != m << sh, bits, c)
    va = sf.unpack_ieee(a, fmt)
    if kind in ("add", "sub"):
        bs = vb.sign ^ (kind == "sub")
        if va.kind == "inf" or vb.kind == "inf":
            if va.kind == "inf" and vb.kind == "inf" and va.sign != bs:
                c[1] |= IE
                return DEFAULT_NAN[bits]
            if den:
                c[1] |= DE
            return INF[bits] | (SIGN[bits] if (va.sign if va.kind == "inf" else bs) else 0)
        if den:
            c[1] |= DE
        if va.kind == "zero" and vb.kind == "zero":
            s = va.sign if va.sign == bs else (1 if rc == sf.RC_DOWN else 0)
            return s * SIGN[bits]
        if va.kind == "zero":
            return _round(bs, vb.m, vb.e, False, bits, c)
        if vb.kind == "zero":
            return _round(va.sign, va.m, va.e, False, bits, c)
        e = min(va.e, vb.e)
        s = (-1 if va.sign else 1) * (va.m << (va.e - e)) + (-1 if bs else 1) * (vb.m << (vb.e - e))
        if s == 0:
            return SIGN[bits] if rc == sf.RC_DOWN else 0
        return _round(1 if s < 0 else 0, abs(s), e, False, bits, c)
    sign = va.sign ^ vb.sign
    sbit = SIGN[bits] if sign else 0
    if kind == "mul":
        if (va.kind == "inf" and vb.kind == "zero") or (va.kind == "zero" and vb.kind == "inf"):
            c[1] |= IE
            return DEFAULT_NAN[bits]
        if den:
            c[1] |= DE
        if va.kind == "inf" or vb.kind == "inf":
            return INF[bits] | sbit
        if va.kind == "zero" or vb.kind == "zero":
            return sbit
        return _round(sign, va.m * vb.m, va.e + vb.e, False, bits, c)
    # div
    if (va.kind == "inf" and vb.kind == "inf") or (va.kind == "zero" and vb.kind == "zero"):
        c[1] |= IE
        return DEFAULT_NAN[bits]
    if vb.kind == "zero":
        if va.kind != "inf":
            c[1] |= ZE
        return INF[bits] | sbit
    if den:
        c[1] |= DE
    if va.kind == "inf":
        return INF[bits] | sbit
    if va.kind == "zero" or vb.kind == "inf":
        return sbit
    sh = fmt[0] + 4 + vb.m.bit_length()
    q, r = divmod(va.m << sh, vb.m)
    return _round(sign, q, va.e - vb.e - sh, r != 0, bits, c)


def _key(v: int, bits: int) -> Tuple[int, int]:
    """Total order of non-NaN values as integers (zeros compare equal)."""
    mag = v & ~SIGN[bits]
    return (-mag if v & SIGN[bits] else mag), 0


def compare(a: int, b: int, bits: int, c: List[int], signalling: bool) -> int:
    """-1, 0, 1 or 2 (unordered); flags IE (SNaN, or any NaN if signalling), DE."""
    if is_nan(a, bits) or is_nan(b, bits):
        if signalling or is_snan(a, bits) or is_snan(b, bits):
            c[1] |= IE
        return 2
    if c[0] & DAZ:
        a, b = daz(a, bits, c), daz(b, bits, c)
    elif is_denormal(a, bits) or is_denormal(b, bits):
        c[1] |= DE
    x, y = _key(a, bits)[0], _key(b, bits)[0]
    return (x > y) - (x < y)


def minmax(kind: str, a: int, b: int, bits: int, c: List[int]) -> int:
    """minps/maxps rules: any NaN or two zeros give the second operand."""
    if is_nan(a, bits) or is_nan(b, bits):
        c[1] |= IE
        return daz(b, bits, c)
    r = compare(a, b, bits, c, True)
    a, b = daz(a, bits, c), daz(b, bits, c)
    if r == 0:
        return b
    if kind == "min":
        return a if r < 0 else b
    return a if r > 0 else b


_CMP_SIGNALLING = (False, True, True, False, False, True, True, False)


def cmp_pred(pred: int, a: int, b: int, bits: int, c: List[int]) -> bool:
    """cmpps/cmpss predicate 0..7 (eq lt le unord neq nlt nle ord)."""
    p = pred & 7
    r = compare(a, b, bits, c, _CMP_SIGNALLING[p])
    if r == 2:
        return p in (3, 4, 5, 6)
    return (r == 0, r < 0, r <= 0, False, r != 0, not r < 0, not r <= 0, True)[p]


def ucomi_flags(a: int, b: int, bits: int, c: List[int], signalling: bool) -> int:
    """ZF/PF/CF for ucomis/comis."""
    r = compare(a, b, bits, c, signalling)
    return {2: 0x45, -1: 0x01, 0: 0x40, 1: 0}[r]


def convert(x: int, src: int, dst: int, c: List[int]) -> int:
    """cvtss2sd / cvtsd2ss (and the packed forms)."""
    if is_nan(x, src):
        if is_snan(x, src):
            c[1] |= IE
        sign = 1 if x & SIGN[src] else 0
        frac = x & FRAC[src]
        frac = frac << 29 if dst == 64 else frac >> 29
        return sign * SIGN[dst] | EXPM[dst] | QBIT[dst] | frac
    if c[0] & DAZ:
        x = daz(x, src, c)
    elif is_denormal(x, src):
        c[1] |= DE
    v = sf.unpack_ieee(x, FMT[src])
    sign = SIGN[dst] if v.sign else 0
    if v.kind == "zero":
        return sign
    if v.kind == "inf":
        return INF[dst] | sign
    return _round(v.sign, v.m, v.e, False, dst, c)


def from_int(n: int, bits: int, c: List[int]) -> int:
    """cvtsi2ss/sd, cvtdq2ps/pd, cvtpi2ps/pd: a signed integer, rounded per MXCSR.RC."""
    if n == 0:
        return 0
    sign = 1 if n < 0 else 0
    biased, mant, fl = sf.round_fmt(sign, abs(n), 0, False, FMT[bits], (c[0] >> 13) & 3)
    c[1] |= fl & PE
    return sf.pack_ieee(sign, biased, mant, FMT[bits])


def to_int(x: int, bits: int, size: int, c: List[int], truncate: bool) -> int:
    """cvt(t)ss2si, cvt(t)ps2dq ...: the integer indefinite with IE for NaN or
    out-of-range values, PE when inexact.  (DE is not raised here.)"""
    indef = 1 << (size * 8 - 1)
    if (x & EXPM[bits]) == EXPM[bits]:
        c[1] |= IE
        return indef
    if c[0] & DAZ:
        x = daz(x, bits, c)
    v = sf.unpack_ieee(x, FMT[bits])
    if v.kind == "zero":
        return 0
    rc = sf.RC_ZERO if truncate else (c[0] >> 13) & 3
    n, inexact = _round_int(v, rc)
    if n >= indef or n < -indef:
        c[1] |= IE
        return indef
    if inexact:
        c[1] |= PE
    return n & ((1 << (size * 8)) - 1)


def _round_int(v: "sf.Val", rc: int) -> Tuple[int, bool]:
    if v.e >= 0:
        n = v.m << v.e
        return (-n if v.sign else n), False
    sh = -v.e
    q = v.m >> sh
    rem = v.m - (q << sh)
    half = 1 << (sh - 1)
    if rc == sf.RC_NEAREST:
        up = rem > half or (rem == half and q & 1)
    elif rc == sf.RC_DOWN:
        up = rem and v.sign
    elif rc == sf.RC_UP:
        up = rem and not v.sign
    else:
        up = False
    q += bool(up)
    return (-q if v.sign else q), bool(rem)


def round_to_integral(x: int, bits: int, imm: int, c: List[int]) -> int:
    """roundps/pd/ss/sd: imm bits 0-1 the mode (bit 2: MXCSR.RC instead),
    bit 3 suppresses PE."""
    if is_nan(x, bits):
        if is_snan(x, bits):
            c[1] |= IE
        return x | QBIT[bits]
    if c[0] & DAZ:
        x = daz(x, bits, c)
    v = sf.unpack_ieee(x, FMT[bits])
    if v.kind != "fin":
        return x
    rc = (c[0] >> 13) & 3 if imm & 4 else imm & 3
    n, inexact = _round_int(v, rc)
    if inexact and not imm & 8:
        c[1] |= PE
    if n == 0:
        return x & SIGN[bits]
    biased, mant, _ = sf.round_fmt(1 if n < 0 else 0, abs(n), 0, False, FMT[bits], 0)
    return sf.pack_ieee(1 if n < 0 else 0, biased, mant, FMT[bits])


def dot(a: int, b: int, imm: int, bits: int, c: List[int]) -> int:
    """dpps/dppd: products of the lanes selected by imm[7:4], summed pairwise
    (each step rounded), the sum stored in the lanes imm[3:0] selects."""
    n = 128 // bits
    m = (1 << bits) - 1
    prods = []
    for i in range(n):
        if imm >> (4 + i) & 1:
            prods.append(arith("mul", (a >> (bits * i)) & m, (b >> (bits * i)) & m, bits, c))
        else:
            prods.append(0)
    if n == 4:
        s = arith("add", arith("add", prods[0], prods[1], bits, c),
                  arith("add", prods[2], prods[3], bits, c), bits, c)
    else:
        s = arith("add", prods[0], prods[1], bits, c)
    r = 0
    for i in range(n):
        if imm >> i & 1:
            r |= s << (bits * i)
    return r


def nan_or_none(a: int, b: int, bits: int, c: List[int]) -> Optional[int]:
    """The NaN result of a two-operand operation, if an operand is NaN."""
    if is_nan(a, bits) or is_nan(b, bits):
        return _nan_result(a, b, bits, c)
    return None
