"""SSE/SSE2 instructions.

XMM registers are 128-bit Python ints in ``env.xmm``; they are not IR globals,
so every SSE instruction is a helper call (flag CALL_SIDE_EFFECTS) whose
memory operand, if any, is loaded by the IR first (precise faults).
Floating point: binary64 arithmetic is Python's; binary32 results are
rounded once from the exact binary64 result (double rounding is harmless for
+ - * / sqrt of binary32 operands).  NaN propagation follows x86 (first
operand's NaN, quietened; the default NaN for invalid operations).
MXCSR (rounding, DAZ, FTZ, exception flags) is honoured by sse_float.py,
which every floating-point helper here goes through.
"""
from __future__ import annotations

import struct
from typing import Callable, Dict

from pyqemu.target.i386 import sse_float as SF
from pyqemu.tcg.ir import CALL_MAY_RAISE, CALL_READS_STATE, CALL_SIDE_EFFECTS, CALL_WRITES_STATE, Helper

M128 = (1 << 128) - 1
M64 = (1 << 64) - 1
_SE = CALL_SIDE_EFFECTS
_pd = struct.Struct("<d")
_pq = struct.Struct("<Q")
_pf = struct.Struct("<f")
_pi = struct.Struct("<I")


def _lanes(v: int, size: int):
    return [(v >> (i * size * 8)) & ((1 << (size * 8)) - 1) for i in range(16 // size)]


def _join(lanes, size: int) -> int:
    r = 0
    for i, x in enumerate(lanes):
        r |= (x & ((1 << (size * 8)) - 1)) << (i * size * 8)
    return r


def _lanewise(size: int, fn: Callable[[int, int], int]) -> Callable[[int, int], int]:
    def f(a: int, b: int) -> int:
        return _join([fn(x, y) for x, y in zip(_lanes(a, size), _lanes(b, size))], size)
    return f


def _sx(v: int, bits: int) -> int:
    s = 1 << (bits - 1)
    return (v ^ s) - s


def _sat(v: int, bits: int, signed: bool) -> int:
    if signed:
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        lo, hi = 0, (1 << bits) - 1
    return min(max(v, lo), hi)


# -- float conversions ------------------------------------------------------------
def f64(bits: int) -> float:
    return _pd.unpack(_pq.pack(bits & M64))[0]


def b64(x: float) -> int:
    return _pq.unpack(_pd.pack(x))[0]


def f32(bits: int) -> float:
    return _pf.unpack(_pi.pack(bits & 0xffffffff))[0]


def b32(x: float) -> int:
    """binary64 -> binary32 bits, rounding to nearest-even (overflow gives infinity)."""
    try:
        return _pi.unpack(_pf.pack(x))[0]
    except OverflowError:
        # struct refuses values that round beyond FLT_MAX; those become infinity
        return 0x7f800000 if x > 0 else 0xff800000


DEFAULT_NAN64 = 0xfff8000000000000
DEFAULT_NAN32 = 0xffc00000


def _fop(bits: int, kind: str) -> Callable[[int, int, list], int]:
    """One binary32/64 operation on bit patterns, under the MXCSR context ``c``."""
    if kind in ("min", "max"):
        def mm(a: int, b: int, c: list) -> int:
            return SF.minmax(kind, a, b, bits, c)
        return mm
    arith = SF.arith

    def f(a: int, b: int, c: list) -> int:
        return arith(kind, a, b, bits, c)
    return f


def _packed(bits: int, fn) -> Callable[[int, int, int], int]:
    size = bits // 8
    m = (1 << bits) - 1

    def f(a: int, b: int, c: list) -> int:
        r = 0
        for i in range(16 // size):
            sh = i * bits
            r |= fn((a >> sh) & m, (b >> sh) & m, c) << sh
        return r
    return f


def _scalar(bits: int, fn) -> Callable[[int, int, int], int]:
    m = (1 << bits) - 1

    def f(a: int, b: int, c: list) -> int:
        return (a & ~m & M128) | fn(a & m, b & m, c)
    return f


# -- SWAR forms of the hot integer operations (whole 128-bit ints, no lane lists) ---
def _rep(size: int, v: int) -> int:
    return sum(v << (i * size * 8) for i in range(16 // size))


def _swar_add(size: int) -> Callable[[int, int], int]:
    H = _rep(size, 1 << (size * 8 - 1))
    L = M128 ^ H

    def f(a: int, b: int) -> int:
        return ((a & L) + (b & L)) ^ ((a ^ b) & H)
    return f


def _swar_sub(size: int) -> Callable[[int, int], int]:
    H = _rep(size, 1 << (size * 8 - 1))
    L = M128 ^ H

    def f(a: int, b: int) -> int:
        return (((a | H) - (b & L)) ^ ((a ^ ~b) & H)) & M128
    return f


def _swar_cmpeq(size: int) -> Callable[[int, int], int]:
    bits = size * 8
    H = _rep(size, 1 << (bits - 1))
    L = M128 ^ H
    ones = (1 << bits) - 1

    def f(a: int, b: int) -> int:
        x = a ^ b
        t = ((x & L) + L) | x          # lane high bit set iff the lane is non-zero
        eq = ~t & H
        return (eq >> (bits - 1)) * ones
    return f


def _bytes_min(a: int, b: int) -> int:
    return int.from_bytes(bytes(map(min, a.to_bytes(16, "little"), b.to_bytes(16, "little"))), "little")


def _bytes_max(a: int, b: int) -> int:
    return int.from_bytes(bytes(map(max, a.to_bytes(16, "little"), b.to_bytes(16, "little"))), "little")


_B01 = _rep(1, 1)


def pmovmskb_value(v: int) -> int:
    m = (v >> 7) & _B01
    lo = ((m & M64) * 0x0102040810204080 >> 56) & 0xff
    hi = (((m >> 64) * 0x0102040810204080) >> 56) & 0xff
    return lo | (hi << 8)


# -- instruction tables -----------------------------------------------------------
_INT_OPS: Dict[int, Callable[[int, int], int]] = {
    0xef: lambda a, b: a ^ b,
    0xeb: lambda a, b: a | b,
    0xdb: lambda a, b: a & b,
    0xdf: lambda a, b: ~a & b & M128,
    0x74: _swar_cmpeq(1),
    0x75: _swar_cmpeq(2),
    0x76: _swar_cmpeq(4),
    0x64: _lanewise(1, lambda x, y: 0xff if _sx(x, 8) > _sx(y, 8) else 0),
    0x65: _lanewise(2, lambda x, y: 0xffff if _sx(x, 16) > _sx(y, 16) else 0),
    0x66: _lanewise(4, lambda x, y: 0xffffffff if _sx(x, 32) > _sx(y, 32) else 0),
    0xda: _bytes_min,
    0xde: _bytes_max,
    0xea: _lanewise(2, lambda x, y: min(_sx(x, 16), _sx(y, 16))),
    0xee: _lanewise(2, lambda x, y: max(_sx(x, 16), _sx(y, 16))),
    0xfc: _swar_add(1),
    0xfd: _swar_add(2),
    0xfe: _swar_add(4),
    0xd4: _swar_add(8),
    0xf8: _swar_sub(1),
    0xf9: _swar_sub(2),
    0xfa: _swar_sub(4),
    0xfb: _swar_sub(8),
    0xd8: _lanewise(1, lambda x, y: max(x - y, 0)),
    0xd9: _lanewise(2, lambda x, y: max(x - y, 0)),
    0xdc: _lanewise(1, lambda x, y: min(x + y, 0xff)),
    0xdd: _lanewise(2, lambda x, y: min(x + y, 0xffff)),
    0xe8: _lanewise(1, lambda x, y: _sat(_sx(x, 8) - _sx(y, 8), 8, True)),
    0xe9: _lanewise(2, lambda x, y: _sat(_sx(x, 16) - _sx(y, 16), 16, True)),
    0xec: _lanewise(1, lambda x, y: _sat(_sx(x, 8) + _sx(y, 8), 8, True)),
    0xed: _lanewise(2, lambda x, y: _sat(_sx(x, 16) + _sx(y, 16), 16, True)),
    0xd5: _lanewise(2, lambda x, y: x * y),
    0xe5: _lanewise(2, lambda x, y: (_sx(x, 16) * _sx(y, 16)) >> 16),
    0xe4: _lanewise(2, lambda x, y: (x * y) >> 16),
    0xe0: _lanewise(1, lambda x, y: (x + y + 1) >> 1),
    0xe3: _lanewise(2, lambda x, y: (x + y + 1) >> 1),
    0xf4: lambda a, b: ((a & 0xffffffff) * (b & 0xffffffff)) |
    ((((a >> 64) & 0xffffffff) * ((b >> 64) & 0xffffffff)) << 64),
    0xf6: lambda a, b: sum(abs(x - y) for x, y in zip(_lanes(a, 1)[:8], _lanes(b, 1)[:8])) |
    (sum(abs(x - y) for x, y in zip(_lanes(a, 1)[8:], _lanes(b, 1)[8:])) << 64),
    0xf5: lambda a, b: _join([_sx(x0, 16) * _sx(y0, 16) + _sx(x1, 16) * _sx(y1, 16)
                              for x0, x1, y0, y1 in zip(_lanes(a, 2)[0::2], _lanes(a, 2)[1::2],
                                                        _lanes(b, 2)[0::2], _lanes(b, 2)[1::2])], 4),
}


def _unpack(size: int, high: bool) -> Callable[[int, int], int]:
    fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}[size]
    n = 8 // size

    def f(a: int, b: int) -> int:
        la = memoryview(a.to_bytes(16, "little")).cast(fmt)
        lb = memoryview(b.to_bytes(16, "little")).cast(fmt)
        out = bytearray(16)
        mo = memoryview(out).cast(fmt)
        src = slice(n, 2 * n) if high else slice(0, n)
        mo[0::2] = la[src]
        mo[1::2] = lb[src]
        return int.from_bytes(out, "little")
    return f


for _c, (_s, _h) in {0x60: (1, False), 0x61: (2, False), 0x62: (4, False), 0x6c: (8, False),
                     0x68: (1, True), 0x69: (2, True), 0x6a: (4, True), 0x6d: (8, True)}.items():
    _INT_OPS[_c] = _unpack(_s, _h)


def _pack(src: int, dst: int, signed: bool) -> Callable[[int, int], int]:
    def f(a: int, b: int) -> int:
        lanes = [_sat(_sx(x, src * 8), dst * 8, signed) for x in _lanes(a, src) + _lanes(b, src)]
        return _join(lanes, dst)
    return f


_INT_OPS[0x63] = _pack(2, 1, True)
_INT_OPS[0x6b] = _pack(4, 2, True)
_INT_OPS[0x67] = _pack(2, 1, False)


def _shift_op(size: int, kind: str) -> Callable[[int, int], int]:
    bits = size * 8

    def f(a: int, b: int) -> int:
        n = b & M64
        if n >= bits:
            if kind == "sra":
                n = bits - 1
            else:
                return 0
        if kind == "srl":
            return _lanewise(size, lambda x, y: x >> n)(a, 0)
        if kind == "sll":
            return _lanewise(size, lambda x, y: x << n)(a, 0)
        return _lanewise(size, lambda x, y: _sx(x, bits) >> n)(a, 0)
    return f


for _c, (_s, _k) in {0xd1: (2, "srl"), 0xd2: (4, "srl"), 0xd3: (8, "srl"), 0xf1: (2, "sll"),
                     0xf2: (4, "sll"), 0xf3: (8, "sll"), 0xe1: (2, "sra"), 0xe2: (4, "sra")}.items():
    _INT_OPS[_c] = _shift_op(_s, _k)

_FLOAT_KIND = {0x58: "add", 0x59: "mul", 0x5c: "sub", 0x5d: "min", 0x5e: "div", 0x5f: "max",
               0x51: "sqrt"}
_LOGIC = {0x54: lambda a, b: a & b, 0x55: lambda a, b: ~a & b & M128,
          0x56: lambda a, b: a | b, 0x57: lambda a, b: a ^ b}

_helpers: Dict[object, Helper] = {}


def _h(key, fn, flags=_SE, nret=0) -> Helper:
    h = _helpers.get(key)
    if h is None:
        h = _helpers[key] = Helper(fn, flags, nret, name="sse_%s" % (key,))
    return h


def _apply(fn):
    def run(env, d: int, v: int) -> None:
        x = env.xmm
        x[d] = fn(x[d], v) & M128
    return run


def _apply_rc(fn):
    """Like _apply for floating-point operations: passes the MXCSR context and
    records the exception flags the operation raised."""
    def run(env, d: int, v: int) -> None:
        x = env.xmm
        c = [env.mxcsr, 0]
        x[d] = fn(x[d], v, c) & M128
        if c[1]:
            env.mxcsr |= c[1]
    return run


_OPF = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
        "div": lambda x, y: x / y}


def _fast_scalar(kind: str, bits: int, general):
    """addsd/subsd/mulsd/divsd (ss): the host's IEEE arithmetic inline when it
    is known to give the exact result and no new MXCSR flag -- normal
    operands and result, round to nearest, no DAZ/FTZ, PE already set --
    else the exact path of sse_float.py."""
    opf = _OPF[kind]
    if bits == 64:
        unpack_f, pack_f, unpack_i, pack_i = _pd.unpack, _pd.pack, _pq.unpack, _pq.pack
        m, shift, emax = M64, 52, 0x7ff
    else:
        unpack_f, pack_f, unpack_i, pack_i = _pf.unpack, _pf.pack, _pi.unpack, _pi.pack
        m, shift, emax = 0xffffffff, 23, 0xff
    keep = M128 ^ m
    slow_modes = 0x6000 | SF.DAZ | SF.FTZ

    def run(env, d: int, v: int) -> None:
        mx = env.mxcsr
        if mx & SF.PE and not mx & slow_modes:
            x = env.xmm
            a = x[d]
            ea = (a >> shift) & emax
            eb = (v >> shift) & emax
            if 0 < ea < emax and 0 < eb < emax:
                try:
                    rb = unpack_i(pack_f(opf(unpack_f(pack_i(a & m))[0],
                                             unpack_f(pack_i(v & m))[0])))[0]
                except OverflowError:       # beyond binary32's range
                    rb = 0
                if 1 < (rb >> shift) & emax < emax:
                    x[d] = (a & keep) | rb
                    return
        general(env, d, v)
    return run


def _get(env, i: int) -> int:
    return env.xmm[i]


def _set(env, i: int, v: int) -> None:
    env.xmm[i] = v & M128


h_get = Helper(_get, CALL_SIDE_EFFECTS, 1, "xmm_get")
h_set = Helper(_set, CALL_SIDE_EFFECTS, 0, "xmm_set")


def _imm_then_src(d, size: int = 16):
    """Read the trailing imm8 first: a RIP-relative operand is relative to the insn end."""
    imm = d.u8()
    return imm, _src(d, size)


def _src(d, size: int = 16):
    """The r/m source operand value (xmm register or memory of ``size`` bytes)."""
    b = d.b
    if d.ea is None:
        v = b.call(h_get, [d.g.env, b.const(d.rm)])[0]
        if size < 16:
            v = b.op3("and", v, b.const((1 << (size * 8)) - 1))
        return v
    return b.ld(d.addr(), {2: 1, 4: 2, 8: 3, 16: 4}[size])


def _op(d, key, fn, size: int = 16) -> None:
    v = _src(d, size)
    d.b.call(_h(key, _apply(fn)), [d.g.env, d.b.const(d.reg), v])


def _store_xmm(d, size: int, shift: int = 0) -> None:
    """Store (part of) xmm[reg] to the r/m operand."""
    b = d.b
    v = b.call(h_get, [d.g.env, b.const(d.reg)])[0]
    if shift:
        v = b.call(_h("shr%d" % shift, lambda x, s=shift: x >> s, 0, 1), [v])[0]
    if d.ea is None:
        if size == 16:
            b.call(h_set, [d.g.env, b.const(d.rm), v])
        else:
            m = (1 << (size * 8)) - 1
            b.call(_h("merge%d" % size, _apply(lambda a, x, m=m: (a & ~m) | (x & m))),
                   [d.g.env, b.const(d.rm), v])
        return
    if size < 16:
        v = b.op3("and", v, b.const((1 << (size * 8)) - 1))
    b.st(v, d.addr(), {4: 2, 8: 3, 16: 4}[size])


def _pmovmskb(env, v: int) -> int:
    return pmovmskb_value(v)


def _movmsk(v: int, size: int) -> int:
    r = 0
    for i in range(16 // size):
        if (v >> ((i + 1) * size * 8 - 1)) & 1:
            r |= 1 << i
    return r


def _pshufd(a: int, imm: int) -> int:
    lanes = _lanes(a, 4)
    return _join([lanes[(imm >> (2 * i)) & 3] for i in range(4)], 4)


def _pshufw(a: int, imm: int, high: bool) -> int:
    lanes = _lanes(a, 2)
    part = lanes[4:] if high else lanes[:4]
    sh = [part[(imm >> (2 * i)) & 3] for i in range(4)]
    return _join(lanes[:4] + sh if high else sh + lanes[4:], 2)


def _shufp(a: int, b: int, imm: int, size: int) -> int:
    la, lb = _lanes(a, size), _lanes(b, size)
    if size == 4:
        return _join([la[imm & 3], la[(imm >> 2) & 3], lb[(imm >> 4) & 3], lb[(imm >> 6) & 3]], 4)
    return _join([la[imm & 1], lb[(imm >> 1) & 1]], 8)


def _ucomi(env, a: int, b: int, bits: int, signalling: bool) -> None:
    c = [env.mxcsr, 0]
    f = SF.ucomi_flags(a & ((1 << bits) - 1), b & ((1 << bits) - 1), bits, c, signalling)
    env.mxcsr |= c[1]
    env.cc_op = 0
    env.cc_src = f


def _cvt_int_to_float(v: int, size: int, bits: int, c: list) -> int:
    return SF.from_int(_sx(v, size * 8), bits, c)


def _cvt_float_to_int(v: int, bits: int, size: int, c: list, truncate: bool) -> int:
    """cvt(t)sd2si/cvt(t)ss2si and the packed forms."""
    return SF.to_int(v & ((1 << bits) - 1), bits, size, c, truncate)


def _cvt2si(env, x: int, bits: int, size: int, truncate: bool) -> int:
    c = [env.mxcsr, 0]
    r = _cvt_float_to_int(x, bits, size, c, truncate)
    env.mxcsr |= c[1]
    return r


def handles(d, c: int) -> bool:
    pfx = 0x66 if d.pfx66 else (0xf3 if d.rep == 1 else (0xf2 if d.rep == 2 else 0))
    lo = c & 0xff
    b = d.b
    env = d.g.env
    if c < 0x100 or c >= 0x200:
        return _handles_ext(d, c, pfx)
    if _mmx_conversions(d, lo, pfx):
        return True
    if pfx in (0xf2, 0xf3, 0x66) and _sse3(d, lo, pfx):
        return True
    if _more_sse2(d, lo, pfx):
        return True
    if pfx == 0 and (0x60 <= lo <= 0x7f or lo >= 0xd0) and lo not in (0xd6,) and _mmx(d, lo):
        return True
    if lo in (0x10, 0x11) or lo in (0x28, 0x29) or lo in (0x6f, 0x7f) and pfx in (0x66, 0xf3) \
            or lo in (0x2b, 0xe7) or lo == 0xd6 and pfx == 0x66:
        d.modrm()
        store = lo in (0x11, 0x29, 0x7f, 0x2b, 0xe7, 0xd6)
        if lo in (0x10, 0x11) and pfx in (0xf3, 0xf2):
            size = 4 if pfx == 0xf3 else 8
            if store:
                _store_xmm(d, size)
            elif d.ea is None:
                _op(d, "movs%d" % size, lambda a, v, m=(1 << (size * 8)) - 1: (a & ~m) | (v & m), size)
            else:
                v = _src(d, size)
                b.call(h_set, [env, b.const(d.reg), v])
            return True
        if lo == 0xd6:
            if d.ea is None:
                v = b.call(h_get, [env, b.const(d.reg)])[0]
                b.call(h_set, [env, b.const(d.rm), b.op3("and", v, b.const(M64))])
            else:
                _store_xmm(d, 8)
            return True
        if store:
            _store_xmm(d, 16)
        else:
            b.call(h_set, [env, b.const(d.reg), _src(d)])
        return True
    if lo in (0x12, 0x13, 0x16, 0x17) and pfx in (0, 0x66):
        d.modrm()
        high = lo in (0x16, 0x17)
        if lo in (0x13, 0x17):
            _store_xmm(d, 8, 64 if high else 0)
            return True
        if d.ea is None:
            if lo == 0x12:      # movhlps
                _op(d, "movhlps", lambda a, v: (a & ~M64 & M128) | (v >> 64))
            else:               # movlhps
                _op(d, "movlhps", lambda a, v: (a & M64) | ((v & M64) << 64))
            return True
        if high:
            _op(d, "movhp", lambda a, v: (a & M64) | ((v & M64) << 64), 8)
        else:
            _op(d, "movlp", lambda a, v: (a & ~M64 & M128) | (v & M64), 8)
        return True
    if lo == 0x7e and pfx == 0xf3:      # movq xmm, xmm/m64
        d.modrm()
        b.call(h_set, [env, b.const(d.reg), _src(d, 8)])
        return True
    if lo in (0x6e, 0x7e) and pfx == 0x66:   # movd/movq between gpr and xmm
        d.modrm()
        size = 8 if d.rex_w else 4
        if lo == 0x6e:
            v = d.ld_rm(size)
            b.call(h_set, [env, b.const(d.reg), v])
        else:
            v = b.call(h_get, [env, b.const(d.reg)])[0]
            v = b.op3("and", v, b.const((1 << (size * 8)) - 1))
            d.st_rm(size, v)
        return True
    if pfx == 0x66 and lo in _INT_OPS:
        d.modrm()
        _op(d, lo, _INT_OPS[lo])
        return True
    if lo == 0xd7 and pfx == 0x66:
        d.modrm()
        v = b.call(h_get, [env, b.const(d.rm)])[0]
        r = b.call(_h("pmovmskb", _pmovmskb, 0, 1), [env, v])[0]
        d.sreg(8 if d.mode == 64 else 4, d.reg, r)
        return True
    if lo == 0x50 and pfx in (0, 0x66):
        d.modrm()
        size = 4 if pfx == 0 else 8
        v = b.call(h_get, [env, b.const(d.rm)])[0]
        r = b.call(_h("movmsk%d" % size, lambda x, s=size: _movmsk(x, s), 0, 1), [v])[0]
        d.sreg(4, d.reg, r)
        return True
    if lo == 0x70 and pfx in (0x66, 0xf2, 0xf3):
        d.modrm()
        imm, v = _imm_then_src(d)
        if pfx == 0x66:
            fn = (lambda a, x, i=imm: _pshufd(x, i))
        else:
            fn = (lambda a, x, i=imm, hi=(pfx == 0xf3): _pshufw(x, i, hi))
        b.call(_h(("pshuf", pfx, imm), _apply(fn)), [env, b.const(d.reg), v])
        return True
    if lo in (0x71, 0x72, 0x73) and pfx == 0x66:
        d.modrm()
        k = d.reg & 7
        n = d.u8()
        size = {0x71: 2, 0x72: 4, 0x73: 8}[lo]
        if lo == 0x73 and k in (3, 7):
            if k == 3:
                fn = (lambda a, v, n=n: (a >> (8 * n)) if n < 16 else 0)
            else:
                fn = (lambda a, v, n=n: (a << (8 * n)) & M128 if n < 16 else 0)
        else:
            kind = {2: "srl", 4: "sra", 6: "sll"}.get(k)
            if kind is None:
                return False
            sh = _shift_op(size, kind)
            fn = (lambda a, v, n=n, sh=sh: sh(a, n))
        b.call(_h(("psh", lo, k, n), _apply(fn)), [env, b.const(d.rm), b.const(0)])
        return True
    if lo in _LOGIC and pfx in (0, 0x66):
        d.modrm()
        _op(d, ("logic", lo), _LOGIC[lo])
        return True
    if lo in _FLOAT_KIND:
        d.modrm()
        kind = _FLOAT_KIND[lo]
        if pfx == 0xf3:
            fn, size = _scalar(32, _fop(32, kind)), 4
        elif pfx == 0xf2:
            fn, size = _scalar(64, _fop(64, kind)), 8
        elif pfx == 0x66:
            fn, size = _packed(64, _fop(64, kind)), 16
        else:
            fn, size = _packed(32, _fop(32, kind)), 16
        v = _src(d, size)
        if pfx in (0xf2, 0xf3) and kind in ("add", "sub", "mul", "div"):
            run = _fast_scalar(kind, 64 if pfx == 0xf2 else 32, _apply_rc(fn))
        else:
            run = _apply_rc(fn)
        b.call(_h(("f", lo, pfx), run), [env, b.const(d.reg), v])
        return True
    if lo in (0x2e, 0x2f) and pfx in (0, 0x66):
        d.modrm()
        bits = 32 if pfx == 0 else 64
        v = _src(d, bits // 8)
        a = b.call(h_get, [env, b.const(d.reg)])[0]
        b.call(_h(("ucomi", bits, lo), lambda e, x, y, bits=bits, sig=(lo == 0x2f):
                  _ucomi(e, x, y, bits, sig),
                  CALL_SIDE_EFFECTS | CALL_WRITES_STATE | CALL_READS_STATE), [env, a, v])
        from pyqemu.target.i386 import cc as C
        d.cc_op = C.CC_OP_EFLAGS
        return True
    if lo == 0x2a and pfx in (0xf2, 0xf3):
        d.modrm()
        size = 8 if d.rex_w else 4
        v = d.ld_rm(size)
        bits = 64 if pfx == 0xf2 else 32
        m = (1 << bits) - 1
        fn = (lambda a, x, c, s=size, bits=bits, m=m:
              (a & ~m & M128) | _cvt_int_to_float(x, s, bits, c))
        b.call(_h(("cvtsi2", size, bits), _apply_rc(fn)), [env, b.const(d.reg), v])
        return True
    if lo in (0x2c, 0x2d) and pfx in (0xf2, 0xf3):
        d.modrm()
        bits = 64 if pfx == 0xf2 else 32
        size = 8 if d.rex_w else 4
        v = _src(d, bits // 8)
        r = b.call(_h(("cvt2si", bits, size, lo),
                      lambda e, x, bits=bits, s=size, t=(lo == 0x2c):
                      _cvt2si(e, x, bits, s, t), _SE, 1),
                   [env, v])[0]
        d.sreg(size, d.reg, r)
        return True
    if lo == 0x5a and pfx in (0xf2, 0xf3):
        d.modrm()
        if pfx == 0xf2:     # cvtsd2ss
            fn = (lambda a, x, c: (a & ~0xffffffff & M128) | _cvt_f64_f32(x & M64, c))
            v = _src(d, 8)
        else:               # cvtss2sd
            fn = (lambda a, x, c: (a & ~M64 & M128) | _cvt_f32_f64(x & 0xffffffff, c))
            v = _src(d, 4)
        b.call(_h(("cvtsd", pfx), _apply_rc(fn)), [env, b.const(d.reg), v])
        return True
    if lo == 0xc6 and pfx in (0, 0x66):
        d.modrm()
        imm, v = _imm_then_src(d)
        size = 4 if pfx == 0 else 8
        b.call(_h(("shufp", size, imm), _apply(lambda a, x, i=imm, s=size: _shufp(a, x, i, s))),
               [env, b.const(d.reg), v])
        return True
    if lo in (0x14, 0x15) and pfx in (0, 0x66):
        d.modrm()
        size = 4 if pfx == 0 else 8
        _op(d, ("unpckp", lo, size), _unpack(size, lo == 0x15))
        return True
    return False


def _cvt_f64_f32(x: int, c: list) -> int:
    return SF.convert(x, 64, 32, c)


def _cvt_f32_f64(x: int, c: list) -> int:
    return SF.convert(x, 32, 64, c)


def _handles_ext(d, c: int, pfx: int) -> bool:
    """0f 38 xx and 0f 3a xx: SSSE3, SSE4.1, SSE4.2 (only with a 66 prefix, no MMX forms)."""
    lo = c & 0xff
    b = d.b
    env = d.g.env
    if c == 0x2f0 or c == 0x2f1:
        if pfx == 0xf2:
            return _crc32(d, c)
        return _movbe(d, c)
    if pfx == 0:
        return _ssse3_mmx(d, c)
    if pfx != 0x66:
        return False
    if _sse41_more(d, c):
        return True
    if c < 0x300:
        fn = _OPS_38.get(lo)
        if fn is None:
            if lo == 0x17:      # ptest
                d.modrm()
                v = _src(d)
                a = b.call(h_get, [env, b.const(d.reg)])[0]
                b.call(_h("ptest", _ptest, CALL_SIDE_EFFECTS | CALL_READS_STATE | CALL_WRITES_STATE),
                       [env, a, v])
                from pyqemu.target.i386 import cc as C
                d.cc_op = C.CC_OP_EFLAGS
                return True
            if lo in _PMOVX:
                d.modrm()
                src_size, dst_size, signed = _PMOVX[lo]
                n = 16 // dst_size
                v = _src(d, src_size * n)
                fn2 = (lambda a, x, s=src_size, t=dst_size, sg=signed, n=n: _join(
                    [(_sx(y, s * 8) if sg else y) for y in _lanes(x, s)[:n]], t))
                b.call(_h(("pmovx", lo), _apply(fn2)), [env, b.const(d.reg), v])
                return True
            if lo in (0x10, 0x14, 0x15):    # pblendvb / blendvps / blendvpd (mask in xmm0)
                d.modrm()
                v = _src(d)
                size = {0x10: 1, 0x14: 4, 0x15: 8}[lo]
                b.call(_h(("blendv", size), lambda e, dd, x, size=size: _blendv(e, dd, x, size), _SE),
                       [env, b.const(d.reg), v])
                return True
            return False
        d.modrm()
        _op(d, ("38", lo), fn)
        return True
    # 0f 3a: all take an imm8 after the operand
    d.modrm()
    if lo == 0x0f:      # palignr
        imm, v = _imm_then_src(d)
        fn = (lambda a, x, n=imm: ((((a << 128) | x) >> (8 * n)) & M128) if n < 32 else 0)
        b.call(_h(("palignr", imm), _apply(fn)), [env, b.const(d.reg), v])
        return True
    if lo in (0x60, 0x61, 0x62, 0x63):
        imm, v = _imm_then_src(d)
        a = b.call(h_get, [env, b.const(d.reg)])[0]
        la = b.const(0)
        lb = b.const(0)
        if lo in (0x60, 0x61):
            la, lb = d.greg(8 if d.rex_w else 4, 0), d.greg(8 if d.rex_w else 4, 2)
        w = 64 if d.rex_w else 32
        b.call(_h(("pcmpstr", lo, imm, w), lambda e, x, y, p, q, lo=lo, imm=imm, w=w:
                  _pcmpstr(e, lo, imm, x, y, p, q, w), CALL_SIDE_EFFECTS | CALL_READS_STATE |
                  CALL_WRITES_STATE), [env, a, v, la, lb])
        from pyqemu.target.i386 import cc as C
        d.cc_op = C.CC_OP_EFLAGS
        return True
    if lo in (0x14, 0x15, 0x16, 0x17):      # pextrb/w/d/q, extractps
        imm = d.u8()
        size = {0x14: 1, 0x15: 2, 0x16: 8 if d.rex_w else 4, 0x17: 4}[lo]
        v = b.call(h_get, [env, b.const(d.reg)])[0]
        n = imm % (16 // size)
        r = b.call(_h(("pextr", size, n), lambda x, s=size, n=n: (x >> (8 * s * n)) &
                      ((1 << (8 * s)) - 1), 0, 1), [v])[0]
        if d.ea is None:
            d.sreg(8 if size == 8 else 4, d.rm, r)
        else:
            d.st(size, d.addr(), r)
        return True
    if lo in (0x20, 0x22):      # pinsrb / pinsrd/q
        imm = d.u8()
        size = 1 if lo == 0x20 else (8 if d.rex_w else 4)
        v = d.ld_rm(size) if d.ea is not None else d.greg(max(size, 4), d.rm)
        n = imm % (16 // size)
        m = (1 << (8 * size)) - 1
        b.call(_h(("pinsr", size, n), _apply(lambda a, x, m=m, sh=8 * size * n:
                                            (a & ~(m << sh)) | ((x & m) << sh))),
               [env, b.const(d.reg), v])
        return True
    if lo in (0x08, 0x09, 0x0a, 0x0b):    # roundps / roundpd / roundss / roundsd
        bits = 32 if lo in (0x08, 0x0a) else 64
        scalar = lo >= 0x0a
        imm, v = _imm_then_src(d, bits // 8 if scalar else 16)
        one = (lambda a, x, c, imm=imm, bits=bits: SF.round_to_integral(x, bits, imm, c))
        fn = _scalar(bits, one) if scalar else _packed(bits, one)
        b.call(_h(("round", lo, imm), _apply_rc(fn)), [env, b.const(d.reg), v])
        return True
    if lo in (0x0c, 0x0d, 0x0e):    # blendps / blendpd / pblendw
        imm, v = _imm_then_src(d)
        size = {0x0c: 4, 0x0d: 8, 0x0e: 2}[lo]
        fn = (lambda a, x, imm=imm, size=size: _join(
            [xs if (imm >> i) & 1 else as_ for i, (as_, xs) in
             enumerate(zip(_lanes(a, size), _lanes(x, size)))], size))
        b.call(_h(("blend", lo, imm), _apply(fn)), [env, b.const(d.reg), v])
        return True
    return False


def _movbe(d, c: int) -> bool:
    size = d.osize
    d.modrm()
    if d.ea is None:
        return False
    b = d.b
    op = {2: "bswap16", 4: "bswap32", 8: "bswap64"}[size]
    if c == 0x2f0:
        d.sreg(size, d.reg, b.op2(op, d.ld(size, d.addr())))
    else:
        d.st(size, d.addr(), b.op2(op, d.greg(size, d.reg)))
    return True


def _crc32(d, c: int) -> bool:
    size = 1 if c == 0x2f0 else d.osize
    d.modrm()
    v = d.ld_rm(size)
    acc = d.greg(4, d.reg)
    r = d.b.call(_h(("crc32", size), lambda a, x, n=size: _crc32c(a, x, n), 0, 1), [acc, v])[0]
    d.sreg(8 if d.rex_w else 4, d.reg, r)
    return True


def _crc32c_table():
    t = []
    for i in range(256):
        r = i
        for _ in range(8):
            r = (r >> 1) ^ (0x82f63b78 if r & 1 else 0)
        t.append(r)
    return t


_CRC_T = _crc32c_table()


def _crc32c(acc: int, v: int, n: int) -> int:
    for i in range(n):
        acc = _CRC_T[(acc ^ (v >> (8 * i))) & 0xff] ^ (acc >> 8)
    return acc & 0xffffffff


def _ptest(env, a: int, v: int) -> None:
    env.cc_op = 0
    env.cc_src = (0x40 if a & v == 0 else 0) | (1 if ~a & v & M128 == 0 else 0)


def _blendv(env, d: int, v: int, size: int) -> None:
    x = env.xmm
    mask = x[0]
    bits = size * 8
    out = []
    for i, (a, y) in enumerate(zip(_lanes(x[d], size), _lanes(v, size))):
        out.append(y if (mask >> (i * bits + bits - 1)) & 1 else a)
    x[d] = _join(out, size)


def _pcmpstr(env, lo: int, imm: int, a: int, bv: int, la: int, lb: int, w: int = 64) -> None:
    """pcmpestri/pcmpestrm/pcmpistri/pcmpistrm (SSE4.2)."""
    words = imm & 1
    signed = (imm >> 1) & 1
    mode = (imm >> 2) & 3
    pol = (imm >> 4) & 3
    size = 2 if words else 1
    n = 16 // size
    A, B = _lanes(a, size), _lanes(bv, size)
    if signed:
        A = [_sx(x, size * 8) for x in A]
        B = [_sx(x, size * 8) for x in B]
    if lo in (0x60, 0x61):      # explicit lengths in eax/edx
        la = abs(_sx(la, w))
        lb = abs(_sx(lb, w))
        na, nb = min(la, n), min(lb, n)
    else:
        na = next((i for i, x in enumerate(A) if x == 0), n)
        nb = next((i for i, x in enumerate(B) if x == 0), n)
    res = 0
    for j in range(n):          # j indexes B (the string), i indexes A (the set/pattern)
        vb = j < nb
        if mode == 0:           # equal any
            bit = vb and any(A[i] == B[j] for i in range(na))
        elif mode == 1:         # ranges
            bit = False
            if vb:
                for i in range(0, na - 1, 2):
                    if A[i] <= B[j] <= A[i + 1]:
                        bit = True
                        break
        elif mode == 2:         # equal each
            va = j < na
            bit = (A[j] == B[j]) if (va and vb) else (va == vb and not va)
        else:                   # equal ordered
            bit = True
            for i in range(na):
                k = j + i
                if k >= n:
                    break
                if k >= nb:
                    bit = False
                    break
                if A[i] != B[k]:
                    bit = False
                    break
        if bit:
            res |= 1 << j
    if pol == 1:
        res ^= (1 << n) - 1
    elif pol == 3:
        res ^= (1 << nb) - 1
    if lo in (0x61, 0x63):      # index in ecx
        if res:
            idx = (res.bit_length() - 1) if imm & 0x40 else ((res & -res).bit_length() - 1)
        else:
            idx = n
        env.regs[1] = idx
    else:                       # mask in xmm0
        if imm & 0x40:
            env.xmm[0] = _join([((1 << (size * 8)) - 1) if (res >> i) & 1 else 0 for i in range(n)], size)
        else:
            env.xmm[0] = res
    f = 0
    if res:
        f |= 1
    if nb < n:
        f |= 0x40
    if na < n:
        f |= 0x80
    if res & 1:
        f |= 0x800
    env.cc_op = 0
    env.cc_src = f


def _pshufb(a: int, b: int) -> int:
    la = a.to_bytes(16, "little")
    out = bytes(0 if x & 0x80 else la[x & 15] for x in b.to_bytes(16, "little"))
    return int.from_bytes(out, "little")


def _hop(size: int, fn):
    def f(a: int, b: int) -> int:
        la, lb = _lanes(a, size), _lanes(b, size)
        out = [fn(x[i], x[i + 1]) for x in (la, lb) for i in range(0, len(x), 2)]
        return _join(out, size)
    return f


def _sign(size: int):
    bits = size * 8

    def f(a: int, b: int) -> int:
        out = []
        for x, y in zip(_lanes(a, size), _lanes(b, size)):
            sy = _sx(y, bits)
            out.append(0 if sy == 0 else (x if sy > 0 else -x))
        return _join(out, size)
    return f


_OPS_38 = {
    0x00: _pshufb,
    0x01: _hop(2, lambda x, y: x + y),
    0x02: _hop(4, lambda x, y: x + y),
    0x03: _hop(2, lambda x, y: _sat(_sx(x, 16) + _sx(y, 16), 16, True)),
    0x05: _hop(2, lambda x, y: x - y),
    0x06: _hop(4, lambda x, y: x - y),
    0x07: _hop(2, lambda x, y: _sat(_sx(x, 16) - _sx(y, 16), 16, True)),
    0x04: lambda a, b: _join([_sat(_lanes(a, 1)[2 * i] * _sx(_lanes(b, 1)[2 * i], 8) +
                                   _lanes(a, 1)[2 * i + 1] * _sx(_lanes(b, 1)[2 * i + 1], 8), 16, True)
                              for i in range(8)], 2),
    0x08: _sign(1), 0x09: _sign(2), 0x0a: _sign(4),
    0x0b: _lanewise(2, lambda x, y: ((_sx(x, 16) * _sx(y, 16) >> 14) + 1) >> 1),
    0x1c: _lanewise(1, lambda x, y: abs(_sx(y, 8))),
    0x1d: _lanewise(2, lambda x, y: abs(_sx(y, 16))),
    0x1e: _lanewise(4, lambda x, y: abs(_sx(y, 32))),
    0x28: lambda a, b: ((_sx(a & 0xffffffff, 32) * _sx(b & 0xffffffff, 32)) & M64) |
    (((_sx((a >> 64) & 0xffffffff, 32) * _sx((b >> 64) & 0xffffffff, 32)) & M64) << 64),
    0x29: _lanewise(8, lambda x, y: M64 if x == y else 0),
    0x2b: _pack(4, 2, False),
    0x37: _lanewise(8, lambda x, y: M64 if _sx(x, 64) > _sx(y, 64) else 0),
    0x38: _lanewise(1, lambda x, y: min(_sx(x, 8), _sx(y, 8))),
    0x39: _lanewise(4, lambda x, y: min(_sx(x, 32), _sx(y, 32))),
    0x3a: _lanewise(2, min),
    0x3b: _lanewise(4, min),
    0x3c: _lanewise(1, lambda x, y: max(_sx(x, 8), _sx(y, 8))),
    0x3d: _lanewise(4, lambda x, y: max(_sx(x, 32), _sx(y, 32))),
    0x3e: _lanewise(2, max),
    0x3f: _lanewise(4, max),
    0x40: _lanewise(4, lambda x, y: x * y),
}

_PMOVX = {0x20: (1, 2, True), 0x21: (1, 4, True), 0x22: (1, 8, True), 0x23: (2, 4, True),
          0x24: (2, 8, True), 0x25: (4, 8, True), 0x30: (1, 2, False), 0x31: (1, 4, False),
          0x32: (1, 8, False), 0x33: (2, 4, False), 0x34: (2, 8, False), 0x35: (4, 8, False)}


# -- SSE3 ---------------------------------------------------------------------------
def _addsub(size: int):
    kind_sub = _fop(size * 8, "sub")
    kind_add = _fop(size * 8, "add")

    def f(a: int, b: int, c: list) -> int:
        bits = size * 8
        m = (1 << bits) - 1
        r = 0
        for i in range(16 // size):
            x, y = (a >> (i * bits)) & m, (b >> (i * bits)) & m
            r |= (kind_sub if i % 2 == 0 else kind_add)(x, y, c) << (i * bits)
        return r
    return f


def _horizontal(size: int, kind: str):
    op = _fop(size * 8, kind)

    def f(a: int, b: int, c: list) -> int:
        bits = size * 8
        m = (1 << bits) - 1
        la = [(a >> (i * bits)) & m for i in range(16 // size)]
        lb = [(b >> (i * bits)) & m for i in range(16 // size)]
        out = [op(x[j], x[j + 1], c) for x in (la, lb) for j in range(0, len(x), 2)]
        return _join(out, size)
    return f


def _sse3(d, lo: int, pfx: int) -> bool:
    b = d.b
    env = d.g.env
    if lo == 0x12 and pfx == 0xf2:      # movddup
        d.modrm()
        _op(d, "movddup", lambda a, v: ((v & M64) << 64) | (v & M64), 8)
    elif lo in (0x12, 0x16) and pfx == 0xf3:    # movsldup / movshdup
        d.modrm()
        odd = lo == 0x16
        _op(d, ("movsdup", odd), lambda a, v, o=odd: _join(
            [_lanes(v, 4)[(i & ~1) + o] for i in range(4)], 4))
    elif lo == 0xf0 and pfx == 0xf2:    # lddqu
        d.modrm()
        if d.ea is None:
            return False
        b.call(h_set, [env, b.const(d.reg), _src(d)])
    elif lo == 0xd0 and pfx in (0x66, 0xf2):
        d.modrm()
        size = 8 if pfx == 0x66 else 4
        v = _src(d)
        b.call(_h(("addsub", size), _apply_rc(_addsub(size))), [env, b.const(d.reg), v])
    elif lo in (0x7c, 0x7d) and pfx in (0x66, 0xf2):
        d.modrm()
        size = 8 if pfx == 0x66 else 4
        kind = "add" if lo == 0x7c else "sub"
        v = _src(d)
        b.call(_h(("hop", size, kind), _apply_rc(_horizontal(size, kind))), [env, b.const(d.reg), v])
    else:
        return False
    return True


# -- compares, packed conversions, pextrw/pinsrw ---------------------------------------
def _cmp_pred(bits: int, pred: int):
    ones = (1 << bits) - 1

    def f(x: int, y: int, c: list) -> int:
        return ones if SF.cmp_pred(pred, x, y, bits, c) else 0
    return f


def _cvt_packed(kind: str):
    def f(a: int, v: int, c: list) -> int:
        if kind == "dq2pd":
            return _join([_cvt_int_to_float(x, 4, 64, c) for x in _lanes(v, 4)[:2]], 8)
        if kind == "ps2pd":
            return _join([_cvt_f32_f64(x, c) for x in _lanes(v, 4)[:2]], 8)
        if kind == "pd2ps":
            return _join([_cvt_f64_f32(x, c) for x in _lanes(v, 8)], 4)
        if kind == "dq2ps":
            return _join([_cvt_int_to_float(x, 4, 32, c) for x in _lanes(v, 4)], 4)
        if kind in ("ps2dq", "tps2dq"):
            return _join([_cvt_float_to_int(x, 32, 4, c, kind == "tps2dq") for x in _lanes(v, 4)], 4)
        return _join([_cvt_float_to_int(x, 64, 4, c, kind == "tpd2dq") for x in _lanes(v, 8)], 4)
    return f


def _more_sse2(d, lo: int, pfx: int) -> bool:
    b = d.b
    env = d.g.env
    if lo == 0xc2 and pfx in (0, 0x66, 0xf2, 0xf3):
        d.modrm()
        size = {0: 16, 0x66: 16, 0xf2: 8, 0xf3: 4}[pfx]
        pred, v = _imm_then_src(d, size)
        bits = 32 if pfx in (0, 0xf3) else 64
        fn = _cmp_pred(bits, pred)
        fn = _scalar(bits, fn) if pfx in (0xf2, 0xf3) else _packed(bits, fn)
        b.call(_h(("cmp", pfx, pred & 7), _apply_rc(fn)), [env, b.const(d.reg), v])
        return True
    conv = {(0x5a, 0): ("ps2pd", 8), (0x5a, 0x66): ("pd2ps", 16), (0x5b, 0): ("dq2ps", 16),
            (0x5b, 0x66): ("ps2dq", 16), (0x5b, 0xf3): ("tps2dq", 16),
            (0xe6, 0xf3): ("dq2pd", 8), (0xe6, 0x66): ("tpd2dq", 16), (0xe6, 0xf2): ("pd2dq", 16)}
    if (lo, pfx) in conv:
        d.modrm()
        kind, size = conv[(lo, pfx)]
        v = _src(d, size)
        b.call(_h(("cvtp", kind), _apply_rc(_cvt_packed(kind))), [env, b.const(d.reg), v])
        return True
    if lo == 0xc5 and pfx == 0x66:      # pextrw r32, xmm, imm8
        d.modrm()
        v = b.call(h_get, [env, b.const(d.rm)])[0]
        n = d.u8() & 7
        r = b.call(_h(("pextrw", n), lambda x, n=n: (x >> (16 * n)) & 0xffff, 0, 1), [v])[0]
        d.sreg(4, d.reg, r)
        return True
    if lo == 0xc4 and pfx == 0x66:      # pinsrw xmm, r32/m16, imm8
        d.modrm()
        n = d.u8() & 7
        v = d.ld_rm(2) if d.ea is not None else d.greg(4, d.rm)
        b.call(_h(("pinsrw", n), _apply(lambda a, x, n=n: (a & ~(0xffff << (16 * n))) |
                                        ((x & 0xffff) << (16 * n)))),
               [env, b.const(d.reg), v])
        return True
    return False


# -- MMX (mm registers are the low 64 bits of the x87 registers) ------------------------
def _mm_get(env, i: int) -> int:
    return env.fpregs[i] & M64


def _mm_set(env, i: int, v: int) -> None:
    env.fpregs[i] = (0xffff << 64) | (v & M64)
    env.fpstt = 0
    env.fptags = [0] * 8


def _emms(env) -> None:
    env.fptags = [1] * 8


h_mm_get = Helper(_mm_get, CALL_SIDE_EFFECTS, 1, "mm_get")
h_mm_set = Helper(_mm_set, CALL_SIDE_EFFECTS, 0, "mm_set")
h_emms = Helper(_emms, CALL_SIDE_EFFECTS, 0, "emms")

_MMX_HIGH_UNPACK = {0x68: 1, 0x69: 2, 0x6a: 4}
_MMX_LOW_UNPACK = {0x60: 1, 0x61: 2, 0x62: 4}
_MMX_PACK = {0x63, 0x67, 0x6b}


def _mmx_fn(lo: int):
    if lo in _MMX_HIGH_UNPACK:
        f = _unpack(_MMX_HIGH_UNPACK[lo], False)
        return lambda a, x: f(a >> 32, x >> 32) & M64
    if lo in _MMX_PACK:
        f = _INT_OPS[lo]
        return lambda a, x: f(a | (x << 64), 0) & M64
    f = _INT_OPS[lo]
    return lambda a, x: f(a, x) & M64


def _mmx(d, lo: int) -> bool:
    b = d.b
    env = d.g.env

    def src(size=8):
        if d.ea is None:
            return b.call(h_mm_get, [env, b.const(d.rm & 7)])[0]
        return d.ld(size, d.addr())

    def apply(key, fn, v):
        a = b.call(h_mm_get, [env, b.const(d.reg & 7)])[0]
        r = b.call(_h(("mmx", key), fn, 0, 1), [a, v])[0]
        b.call(h_mm_set, [env, b.const(d.reg & 7), r])

    if lo == 0x77:
        b.call(h_emms, [env])
        return True
    if lo in (0x6e, 0x7e):
        d.modrm()
        size = 8 if d.rex_w else 4
        if lo == 0x6e:
            b.call(h_mm_set, [env, b.const(d.reg & 7), d.ld_rm(size)])
        else:
            v = b.call(h_mm_get, [env, b.const(d.reg & 7)])[0]
            d.st_rm(size, b.op3("and", v, b.const((1 << (size * 8)) - 1)))
        return True
    if lo in (0x6f, 0x7f, 0xe7):
        d.modrm()
        if lo == 0x6f:
            b.call(h_mm_set, [env, b.const(d.reg & 7), src()])
        else:
            v = b.call(h_mm_get, [env, b.const(d.reg & 7)])[0]
            if d.ea is None:
                b.call(h_mm_set, [env, b.const(d.rm & 7), v])
            else:
                d.st(8, d.addr(), v)
        return True
    if lo in _INT_OPS and lo not in (0x6c, 0x6d):
        d.modrm()
        apply(lo, _mmx_fn(lo), src())
        return True
    if lo == 0x70:
        d.modrm()
        imm = d.u8()
        v = src()
        apply(("pshufw", imm), lambda a, x, i=imm: _join(
            [_lanes(x, 2)[(i >> (2 * k)) & 3] for k in range(4)], 2), v)
        return True
    if lo in (0x71, 0x72, 0x73):
        d.modrm()
        k = d.reg & 7
        n = d.u8()
        size = {0x71: 2, 0x72: 4, 0x73: 8}[lo]
        kind = {2: "srl", 4: "sra", 6: "sll"}.get(k)
        if kind is None or (lo == 0x73 and k == 4):
            return False
        sh = _shift_op(size, kind)
        a = b.call(h_mm_get, [env, b.const(d.rm & 7)])[0]
        r = b.call(_h(("mmxsh", lo, k, n), lambda x, n=n, sh=sh: sh(x, n) & M64, 0, 1), [a])[0]
        b.call(h_mm_set, [env, b.const(d.rm & 7), r])
        return True
    if lo == 0xd7:
        d.modrm()
        v = b.call(h_mm_get, [env, b.const(d.rm & 7)])[0]
        d.sreg(4, d.reg, b.call(_h("pmovmskb", _pmovmskb, 0, 1), [env, v])[0])
        return True
    return False


def _stmxcsr(env) -> int:
    return env.mxcsr


def _ldmxcsr(env, v: int) -> None:
    env.mxcsr = v & 0xffff


def _fxsave(env, addr: int) -> None:
    env.fxsave(addr)


def _fxrstor(env, addr: int) -> None:
    env.fxrstor(addr)


def grp15_mem(d, k: int) -> None:
    from pyqemu.target.i386.translate import Unsupported
    b = d.b
    env = d.g.env
    if k == 3:
        v = b.call(Helper(_stmxcsr, CALL_SIDE_EFFECTS, 1), [env])[0]
        d.st(4, d.addr(), v)
    elif k == 2:
        v = d.ld(4, d.addr())
        b.call(Helper(_ldmxcsr, CALL_SIDE_EFFECTS, 0), [env, v])
    elif k == 0:
        b.call(Helper(_fxsave, CALL_SIDE_EFFECTS | CALL_MAY_RAISE, 0), [env, d.addr()])
    elif k == 1:
        b.call(Helper(_fxrstor, CALL_SIDE_EFFECTS | CALL_MAY_RAISE, 0), [env, d.addr()])
    elif k == 7:
        d.addr()    # clflush
    else:
        raise Unsupported()



# -- MMX forms of SSSE3, the MMX <-> SSE conversions, SSE4.1 completions ----------------
def _pshufb64(a: int, x: int) -> int:
    r = 0
    for i in range(8):
        sel = (x >> (8 * i)) & 0xff
        if not sel & 0x80:
            r |= ((a >> (8 * (sel & 7))) & 0xff) << (8 * i)
    return r


def _mmx_args(d):
    """(mm[reg] value, source value: mm[rm] or m64)."""
    b = d.b
    env = d.g.env
    if d.ea is None:
        v = b.call(h_mm_get, [env, b.const(d.rm & 7)])[0]
    else:
        v = d.ld(8, d.addr())
    return v


def _mmx_result(d, key, fn, v) -> None:
    b = d.b
    env = d.g.env
    a = b.call(h_mm_get, [env, b.const(d.reg & 7)])[0]
    r = b.call(_h(("mmx", key), fn, 0, 1), [a, v])[0]
    b.call(h_mm_set, [env, b.const(d.reg & 7), r])


def _ssse3_mmx(d, c: int) -> bool:
    """0f 38 xx / 0f 3a 0f without a prefix: SSSE3 on mm registers."""
    lo = c & 0xff
    if c < 0x300:
        if lo == 0x00:
            fn = _pshufb64
        elif lo in (0x01, 0x02, 0x03, 0x05, 0x06, 0x07):
            # the horizontal ops pair lanes of a then of b: run the 128-bit
            # form on the concatenation
            f128 = _OPS_38[lo]
            fn = (lambda a, x, f=f128: f(a | (x << 64), 0) & M64)
        elif lo in _OPS_38 and lo in (0x04, 0x08, 0x09, 0x0a, 0x0b, 0x1c, 0x1d, 0x1e):
            f128 = _OPS_38[lo]
            fn = (lambda a, x, f=f128: f(a, x) & M64)
        else:
            return False
        d.modrm()
        _mmx_result(d, ("38", lo), fn, _mmx_args(d))
        return True
    if lo == 0x0f:      # palignr mm, mm/m64, imm8
        d.modrm()
        imm = d.u8()
        v = _mmx_args(d)
        _mmx_result(d, ("palignr", imm), lambda a, x, n=imm:
                    ((((a << 64) | x) >> (8 * n)) & M64) if n < 16 else 0, v)
        return True
    return False


def _mmx_conversions(d, lo: int, pfx: int) -> bool:
    """pinsrw/pextrw on mm, movq2dq/movdq2q, cvtpi2ps/pd, cvt(t)ps2pi, cvt(t)pd2pi."""
    b = d.b
    env = d.g.env
    if lo == 0xc4 and pfx == 0:
        d.modrm()
        n = d.u8() & 3
        v = d.ld_rm(2) if d.ea is not None else d.greg(4, d.rm)
        _mmx_result(d, ("pinsrw", n), lambda a, x, n=n:
                    (a & ~(0xffff << (16 * n)) & M64) | ((x & 0xffff) << (16 * n)), v)
        return True
    if lo == 0xc5 and pfx == 0:
        d.modrm()
        if d.ea is not None:
            return False
        n = d.u8() & 3
        v = b.call(h_mm_get, [env, b.const(d.rm & 7)])[0]
        r = b.call(_h(("pextrw64", n), lambda x, n=n: (x >> (16 * n)) & 0xffff, 0, 1), [v])[0]
        d.sreg(4, d.reg, r)
        return True
    if lo == 0xd6 and pfx in (0xf2, 0xf3):
        d.modrm()
        if d.ea is not None:
            return False
        if pfx == 0xf3:     # movq2dq xmm, mm
            v = b.call(h_mm_get, [env, b.const(d.rm & 7)])[0]
            b.call(h_set, [env, b.const(d.reg), v])
        else:               # movdq2q mm, xmm
            v = b.call(h_get, [env, b.const(d.rm)])[0]
            b.call(h_mm_set, [env, b.const(d.reg & 7), b.op3("and", v, b.const(M64))])
        return True
    if lo == 0x2a and pfx in (0, 0x66):     # cvtpi2ps / cvtpi2pd xmm, mm/m64
        d.modrm()
        v = _mmx_args(d)
        if pfx == 0:
            fn = (lambda a, x, c: (a & ~M64 & M128) | _join(
                [_cvt_int_to_float(y, 4, 32, c) for y in _lanes(x, 4)[:2]], 4))
        else:
            fn = (lambda a, x, c: _join([_cvt_int_to_float(y, 4, 64, c) for y in _lanes(x, 4)[:2]], 8))
        b.call(_h(("cvtpi2p", pfx), _apply_rc(fn)), [env, b.const(d.reg), v])
        return True
    if lo in (0x2c, 0x2d) and pfx in (0, 0x66):     # cvt(t)ps2pi / cvt(t)pd2pi mm, xmm/m
        d.modrm()
        bits = 32 if pfx == 0 else 64
        v = _src(d, 8 if pfx == 0 else 16)
        r = b.call(_h(("cvtp2pi", pfx, lo), lambda e, x, bits=bits, t=(lo == 0x2c):
                      _cvt_pair_to_int(e, x, bits, t), _SE, 1), [env, v])[0]
        b.call(h_mm_set, [env, b.const(d.reg & 7), r])
        return True
    if lo in (0x52, 0x53) and pfx in (0, 0xf3):
        # rcpps/rcpss, rsqrtps/rsqrtss: the hardware's approximation tables
        # are not architectural; like QEMU, the exact value rounded to binary32
        d.modrm()
        v = _src(d, 4 if pfx == 0xf3 else 16)
        one = (lambda a, x, c, lo=lo: _approx(lo, x))
        fn = _scalar(32, one) if pfx == 0xf3 else _packed(32, one)
        b.call(_h(("approx", lo, pfx), _apply(lambda a, x, f=fn: f(a, x, [0x1f80, 0]))),
               [env, b.const(d.reg), v])
        return True
    return False


def _approx(lo: int, x: int) -> int:
    c = [SF.MXCSR_DEFAULT | SF.PE, 0]
    if lo == 0x53:
        return SF.arith("div", 0x3f800000, x, 32, c)
    return SF.arith("div", 0x3f800000, SF.arith("sqrt", 0, x, 32, c), 32, c)


def _cvt_pair_to_int(env, x: int, bits: int, truncate: bool) -> int:
    c = [env.mxcsr, 0]
    r = _join([_cvt_float_to_int(y, bits, 4, c, truncate) for y in _lanes(x, bits // 8)[:2]], 4)
    env.mxcsr |= c[1]
    return r


def _mpsadbw(a: int, x: int, imm: int) -> int:
    ab = _lanes(a, 1)
    xb = _lanes(x, 1)
    ao = (imm >> 2 & 1) * 4
    bo = (imm & 3) * 4
    blk = xb[bo:bo + 4]
    return _join([sum(abs(ab[ao + i + j] - blk[j]) for j in range(4)) for i in range(8)], 2)


def _phminposuw(x: int) -> int:
    words = _lanes(x, 2)
    m = min(words)
    return m | (words.index(m) << 16)


def _insertps(a: int, x: int, imm: int, from_reg: bool) -> int:
    val = (x >> (32 * (imm >> 6))) & 0xffffffff if from_reg else x & 0xffffffff
    sh = 32 * ((imm >> 4) & 3)
    r = (a & ~(0xffffffff << sh) & M128) | (val << sh)
    for i in range(4):
        if imm >> i & 1:
            r &= ~(0xffffffff << (32 * i)) & M128
    return r


def _sse41_more(d, c: int) -> bool:
    """66 0f 38 2a movntdqa, 66 0f 38 41 phminposuw, 66 0f 3a 21 insertps,
    40 dpps, 41 dppd, 42 mpsadbw."""
    lo = c & 0xff
    b = d.b
    env = d.g.env
    if c == 0x22a:
        d.modrm()
        if d.ea is None:
            return False
        b.call(h_set, [env, b.const(d.reg), _src(d)])
        return True
    if c == 0x241:
        d.modrm()
        _op(d, "phminposuw", lambda a, x: _phminposuw(x))
        return True
    if c < 0x300 or lo not in (0x21, 0x40, 0x41, 0x42):
        return False
    d.modrm()
    if lo == 0x21:
        from_reg = d.ea is None
        imm, v = _imm_then_src(d, 16 if from_reg else 4)
        b.call(_h(("insertps", imm, from_reg), _apply(
            lambda a, x, imm=imm, r=from_reg: _insertps(a, x, imm, r))), [env, b.const(d.reg), v])
        return True
    imm, v = _imm_then_src(d)
    if lo == 0x42:
        b.call(_h(("mpsadbw", imm), _apply(lambda a, x, imm=imm: _mpsadbw(a, x, imm))),
               [env, b.const(d.reg), v])
        return True
    bits = 32 if lo == 0x40 else 64
    b.call(_h(("dp", bits, imm), _apply_rc(lambda a, x, c, imm=imm, bits=bits:
                                          SF.dot(a, x, imm, bits, c))), [env, b.const(d.reg), v])
    return True
