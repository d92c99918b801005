"""The x87 FPU: state helpers, instruction translation and the FXSAVE image.

Registers are raw 80-bit integers in ``env.fpregs`` (physical order), with
``env.fpstt`` the top of stack, ``env.fptags`` (1 = empty), ``env.fpus`` the
status word (without TOP) and ``env.fpuc`` the control word.  Arithmetic is
exact with one rounding honouring the control word's rounding and precision
fields (``softfloat.py``); loads and stores of every memory format (16/32/64
bit integers, binary32/64, 80-bit, 18-digit BCD) are exact too.
Transcendental instructions (fsin, fcos, fsincos, fptan, fpatan, f2xm1,
fyl2x, fyl2xp1) are evaluated to about 45 digits (``transcend.py``) and
rounded once; special operands (zero, infinities, NaN, out of range) take
the binary64 path below.
"""
from __future__ import annotations

import math
import struct

from pyqemu.target.i386 import softfloat as sf
from pyqemu.tcg.ir import CALL_READS_STATE, CALL_SIDE_EFFECTS, CALL_WRITES_STATE, Helper

M128 = (1 << 128) - 1
C0, C1, C2, C3 = 0x100, 0x200, 0x400, 0x4000
ONE = 0x3fff8000000000000000
CONSTS = [ONE, 0x4000d49a784bcd1b8afe, 0x3fffb8aa3b295c17f0bc, 0x4000c90fdaa22168c235,
          0x3ffd9a209a84fbcff799, 0x3ffeb17217f7d1cf79ac, 0]


def fxsave_image(env) -> bytes:
    img = bytearray(512)
    ftw = 0
    for i in range(8):
        if not env.fptags[i]:
            ftw |= 1 << i
    fsw = (env.fpus & ~0x3800) | ((env.fpstt & 7) << 11)
    struct.pack_into("<HHBxHQQII", img, 0, env.fpuc, fsw, ftw, 0, 0, 0, env.mxcsr, 0xffff)
    for i in range(8):
        reg = env.fpregs[(env.fpstt + i) & 7]
        img[32 + 16 * i:32 + 16 * i + 10] = (reg & ((1 << 80) - 1)).to_bytes(10, "little")
    nx = 16 if env.mode == 64 else 8
    for i in range(nx):
        img[160 + 16 * i:176 + 16 * i] = (env.xmm[i] & M128).to_bytes(16, "little")
    return bytes(img)


def fxrstor_image(env, img: bytes) -> None:
    fcw, fsw, ftw = struct.unpack_from("<HHB", img, 0)
    env.fpuc = fcw
    env.fpstt = (fsw >> 11) & 7
    env.fpus = fsw & ~0x3800
    env.mxcsr = struct.unpack_from("<I", img, 24)[0] & 0xffff
    for i in range(8):
        env.fptags[i] = 0 if ftw & (1 << i) else 1
    for i in range(8):
        env.fpregs[(env.fpstt + i) & 7] = int.from_bytes(img[32 + 16 * i:42 + 16 * i], "little")
    nx = 16 if env.mode == 64 else 8
    for i in range(nx):
        env.xmm[i] = int.from_bytes(img[160 + 16 * i:176 + 16 * i], "little")


# -- state primitives -------------------------------------------------------------------
def _rc(env) -> int:
    return (env.fpuc >> 10) & 3


def _prec(env) -> int:
    return {0: 24, 1: 64, 2: 53, 3: 64}[(env.fpuc >> 8) & 3]


def _flag(env, f: int) -> None:
    if f:
        env.fpus |= f
        if f & ~env.fpuc & 0x3f:
            env.fpus |= 0x8080     # ES and B: an unmasked exception is pending


def st(env, i: int) -> int:
    return env.fpregs[(env.fpstt + i) & 7]


def set_st(env, i: int, v: int) -> None:
    k = (env.fpstt + i) & 7
    env.fpregs[k] = v
    env.fptags[k] = 0


def push(env, v: int) -> None:
    env.fpstt = (env.fpstt - 1) & 7
    if not env.fptags[env.fpstt]:
        env.fpus |= 0x41 | C1      # stack overflow
        v = sf.EXT_QNAN_DEFAULT
    env.fpregs[env.fpstt] = v
    env.fptags[env.fpstt] = 0


def pop(env) -> None:
    env.fptags[env.fpstt] = 1
    env.fpstt = (env.fpstt + 1) & 7


def _check_empty(env, *idx: int) -> None:
    for i in idx:
        if env.fptags[(env.fpstt + i) & 7]:
            env.fpus = (env.fpus & ~C1) | 0x41      # stack underflow: IE|SF


# -- loads and stores ---------------------------------------------------------------------
def load_value(kind: int, v: int) -> int:
    """Memory operand -> 80-bit. kind: 0 m32fp 1 m64fp 2 m80 3 m16int 4 m32int 5 m64int 6 bcd."""
    if kind == 0:
        return sf.from_ieee_to80(v, sf.F32)
    if kind == 1:
        return sf.from_ieee_to80(v, sf.F64)
    if kind == 2:
        return v & sf.M80
    if kind in (3, 4, 5):
        bits = {3: 16, 4: 32, 5: 64}[kind]
        s = 1 << (bits - 1)
        return sf.int_to80(((v & ((1 << bits) - 1)) ^ s) - s)
    n = 0
    for i in range(8, -1, -1):
        byte = (v >> (8 * i)) & 0xff
        n = n * 100 + (byte >> 4) * 10 + (byte & 15)
    if (v >> 79) & 1:
        return sf.int_to80(-n) if n else 1 << 79
    return sf.int_to80(n)


def store_value(env, kind: int, trunc: int = 0) -> int:
    v = st(env, 0)
    _check_empty(env, 0)
    rc = 3 if trunc else _rc(env)
    if kind == 0:
        r, f = sf.from80_to_ieee(v, sf.F32, rc)
    elif kind == 1:
        r, f = sf.from80_to_ieee(v, sf.F64, rc)
    elif kind == 2:
        r, f = v, 0
    elif kind in (3, 4, 5):
        r, f = sf.to_int(v, rc, {3: 16, 4: 32, 5: 64}[kind])
    else:
        n, f = sf.to_int(v, rc, 80)
        neg = n >> 79 & 1 and n != 1 << 79
        if f & sf.FE_INVALID or abs(_sx(n, 80)) >= 10 ** 18:
            return 0xffffc000000000000000, _flag(env, sf.FE_INVALID)
        n = abs(_sx(n, 80))
        r = 0
        for i in range(9):
            r |= ((n % 10) | ((n // 10 % 10) << 4)) << (8 * i)
            n //= 100
        if neg:
            r |= 1 << 79
    _flag(env, f)
    return r


def _sx(v: int, bits: int) -> int:
    s = 1 << (bits - 1)
    return ((v & ((1 << bits) - 1)) ^ s) - s


def fld_mem(env, kind: int, v: int) -> None:
    push(env, load_value(kind, v))


def fst_mem(env, kind: int, trunc: int) -> int:
    return store_value(env, kind, trunc)


def fpop(env) -> None:
    pop(env)


# -- arithmetic ---------------------------------------------------------------------------
_OPS = ["add", "mul", "com", "comp", "sub", "subr", "div", "divr"]


def _arith(env, opi: int, a: int, b: int) -> int:
    name = _OPS[opi]
    if name == "subr":
        a, b, name = b, a, "sub"
    elif name == "divr":
        a, b, name = b, a, "div"
    r, f = sf.arith80(name, a, b, _rc(env), _prec(env))
    if sf.unpack80(a).kind == "fin" and sf.unpack80(a).m >> 63 == 0 or \
            sf.unpack80(b).kind == "fin" and sf.unpack80(b).m >> 63 == 0:
        f |= sf.FE_DENORMAL
    _flag(env, f)
    return r


def _compare(env, a: int, b: int, unordered_ok: bool) -> int:
    c = sf.compare80(a, b)
    if c == 2:
        va, vb = sf.unpack80(a), sf.unpack80(b)
        snan = any(v.kind == "nan" and not (v.m >> 62) & 1 for v in (va, vb))
        if snan or not unordered_ok:
            _flag(env, sf.FE_INVALID)
    return c


def farith_mem(env, opi: int, kind: int, v: int) -> None:
    """st0 = st0 op mem."""
    _check_empty(env, 0)
    b = load_value(kind, v)
    if opi in (2, 3):
        _set_cc_from_compare(env, _compare(env, st(env, 0), b, False))
        if opi == 3:
            pop(env)
        return
    set_st(env, 0, _arith(env, opi, st(env, 0), b))


def farith_reg(env, opi: int, i: int, to_sti: int, dopop: int) -> None:
    _check_empty(env, 0, i)
    if opi in (2, 3):
        _set_cc_from_compare(env, _compare(env, st(env, 0), st(env, i), False))
        if opi == 3:
            pop(env)
        return
    if to_sti:
        set_st(env, i, _arith(env, opi, st(env, i), st(env, 0)))
    else:
        set_st(env, 0, _arith(env, opi, st(env, 0), st(env, i)))
    if dopop:
        pop(env)


def _set_cc_from_compare(env, c: int) -> None:
    bits = {-1: C0, 0: C3, 1: 0, 2: C0 | C2 | C3}[c]
    env.fpus = (env.fpus & ~(C0 | C1 | C2 | C3)) | bits


def fucom(env, i: int, npop: int, unordered_ok: int) -> None:
    _check_empty(env, 0, i)
    _set_cc_from_compare(env, _compare(env, st(env, 0), st(env, i), bool(unordered_ok)))
    for _ in range(npop):
        pop(env)


def fcomi(env, i: int, dopop: int, unordered_ok: int) -> None:
    """fcomi/fucomi: ZF, PF, CF from the comparison (OF, SF, AF cleared)."""
    _check_empty(env, 0, i)
    c = _compare(env, st(env, 0), st(env, i), bool(unordered_ok))
    f = {-1: 1, 0: 0x40, 1: 0, 2: 0x45}[c]
    env.cc_op = 0
    env.cc_src = f
    env.fpus &= ~C1
    if dopop:
        pop(env)


def ftst(env) -> None:
    _check_empty(env, 0)
    _set_cc_from_compare(env, _compare(env, st(env, 0), 0, False))


def fxam(env) -> None:
    k = env.fpstt
    v = sf.unpack80(env.fpregs[k])
    sign = C1 if (env.fpregs[k] >> 79) & 1 else 0
    if env.fptags[k]:
        c = C3 | C0
    elif v.kind == "nan":
        c = C0 if v.m >> 63 else 0
    elif v.kind == "inf":
        c = C2 | C0
    elif v.kind == "zero":
        c = C3
    elif (env.fpregs[k] >> 64) & 0x7fff == 0:
        c = C3 | C2
    elif not v.m >> 63:
        c = 0       # unnormal: unsupported
    else:
        c = C2
    env.fpus = (env.fpus & ~(C0 | C1 | C2 | C3)) | c | sign


def fmisc(env, code: int) -> None:
    """d9 e0..ff register-less instructions (code = low byte)."""
    s0 = st(env, 0)
    rc, prec = _rc(env), _prec(env)
    if code == 0xe0:
        set_st(env, 0, s0 ^ (1 << 79))
    elif code == 0xe1:
        set_st(env, 0, s0 & ~(1 << 79))
    elif code == 0xe4:
        ftst(env)
    elif code == 0xe5:
        fxam(env)
    elif 0xe8 <= code <= 0xee:
        push(env, CONSTS[code - 0xe8])
    elif code == 0xf6:
        env.fpstt = (env.fpstt - 1) & 7
    elif code == 0xf7:
        env.fpstt = (env.fpstt + 1) & 7
    elif code == 0xfa:
        r, f = sf.sqrt80(s0, rc, prec)
        _flag(env, f)
        set_st(env, 0, r)
    elif code == 0xfc:
        r, f = sf.round_to_int80(s0, rc)
        _flag(env, f)
        set_st(env, 0, r)
    elif code == 0xfd:
        _fscale(env)
    elif code == 0xf4:
        _fxtract(env)
    elif code in (0xf5, 0xf8):
        _fprem(env, code == 0xf5)
    else:
        _transcendental(env, code)


def _fscale(env) -> None:
    a = sf.unpack80(st(env, 0))
    n, _ = sf.to_int(sf.round_to_int80(st(env, 1), 3)[0], 3, 64)
    n = _sx(n, 64)
    if a.kind != "fin":
        return
    n = max(min(n, 1 << 20), -(1 << 20))
    r, f = sf.val_to80(sf.Val("fin", a.sign, a.m, a.e + n), _rc(env), 64)
    _flag(env, f)
    set_st(env, 0, r)


def _fxtract(env) -> None:
    a = sf.unpack80(st(env, 0))
    if a.kind != "fin":
        if a.kind == "zero":
            _flag(env, sf.FE_DIVZERO)
            set_st(env, 0, sf.pack80(1, 0x7fff, 1 << 63))
            push(env, a.sign << 79)
        return
    n = a.m.bit_length()
    exp = a.e + n - 1
    set_st(env, 0, sf.int_to80(exp))
    push(env, sf.val_to80(sf.Val("fin", a.sign, a.m, 1 - n))[0])


def _fprem(env, ieee: bool) -> None:
    a, b = sf.unpack80(st(env, 0)), sf.unpack80(st(env, 1))
    if a.kind in ("nan", "inf") or b.kind in ("nan", "zero"):
        if a.kind == "nan" or b.kind == "nan":
            set_st(env, 0, sf.arith80("add", st(env, 0), st(env, 1), 0, 64)[0])
        else:
            _flag(env, sf.FE_INVALID)
            set_st(env, 0, sf.EXT_QNAN_DEFAULT)
        return
    if a.kind == "zero" or b.kind == "inf":
        env.fpus &= ~(C0 | C1 | C2 | C3)
        return
    e = min(a.e, b.e)
    x, y = a.m << (a.e - e), b.m << (b.e - e)
    if ieee:
        q = (2 * x + y) // (2 * y)
        if 2 * x == (2 * q - 1) * y and q & 1:
            q -= 1
    else:
        q = x // y
    r = x - q * y
    sign = a.sign
    if r < 0:
        sign ^= 1
        r = -r
    if r == 0:
        res = sign << 79
    else:
        res = sf.val_to80(sf.Val("fin", sign, r, e))[0]
    set_st(env, 0, res)
    qb = q & 7
    cc = (C0 if qb & 4 else 0) | (C3 if qb & 2 else 0) | (C1 if qb & 1 else 0)
    env.fpus = (env.fpus & ~(C0 | C1 | C2 | C3)) | cc


def _finite(*raws: int) -> bool:
    return all(sf.unpack80(r).kind in ("fin", "zero") for r in raws)


def _transcendental(env, code: int) -> None:
    from pyqemu.target.i386 import transcend as T
    rc, prec = _rc(env), _prec(env)
    s0 = st(env, 0)
    v0 = sf.unpack80(s0)
    # finite, in-range operands: computed to full extended precision
    if code == 0xf0 and v0.kind == "fin" and v0.e + v0.m.bit_length() <= 1:
        r, f = T.f2xm1(s0, rc, prec)
        _flag(env, f)
        set_st(env, 0, r)
        return
    if code in (0xf1, 0xf9, 0xf3) and _finite(s0, st(env, 1)):
        s1 = st(env, 1)
        ok = True
        if code == 0xf1:
            ok = v0.kind == "fin" and not v0.sign
            fn = T.fyl2x
        elif code == 0xf9:
            ok = v0.kind == "fin" and abs(sf.to_float(s0)) < 0.3
            fn = T.fyl2xp1
        else:
            ok = not (v0.kind == "zero" and sf.unpack80(s1).kind == "zero")
            fn = T.fpatan
        if ok and sf.unpack80(s1).kind == "fin" or (ok and code == 0xf3):
            r, f = fn(s0, s1, rc, prec)
            _flag(env, f)
            pop(env)
            set_st(env, 0, r)
            return
    if code in (0xfe, 0xff, 0xfb, 0xf2) and v0.kind == "fin" and v0.e + v0.m.bit_length() <= 63:
        (sn, f1), (cs, f2) = T.fsin_fcos(s0, rc, prec)
        _flag(env, f1 | f2)
        env.fpus &= ~C2
        if code == 0xfe:
            set_st(env, 0, sn)
        elif code == 0xff:
            set_st(env, 0, cs)
        elif code == 0xfb:
            set_st(env, 0, sn)
            push(env, cs)
        else:
            t, f = T.ftan(s0, rc, prec)
            set_st(env, 0, t)
            push(env, ONE)
        return
    x = sf.to_float(s0)
    try:
        if code == 0xf0:
            set_st(env, 0, sf.from_float(2.0 ** x - 1.0 if abs(x) > 1e-5 else math.expm1(x * math.log(2))))
        elif code == 0xf1:
            y = sf.to_float(st(env, 1))
            pop(env)
            set_st(env, 0, sf.from_float(y * math.log2(x)))
        elif code == 0xf9:
            y = sf.to_float(st(env, 1))
            pop(env)
            set_st(env, 0, sf.from_float(y * math.log1p(x) / math.log(2)))
        elif code == 0xf2:
            set_st(env, 0, sf.from_float(math.tan(x)))
            push(env, ONE)
            env.fpus &= ~C2
        elif code == 0xf3:
            y = sf.to_float(st(env, 1))
            pop(env)
            set_st(env, 0, sf.from_float(math.atan2(y, x)))
        elif code == 0xfb:
            set_st(env, 0, sf.from_float(math.sin(x)))
            push(env, sf.from_float(math.cos(x)))
            env.fpus &= ~C2
        elif code == 0xfe:
            set_st(env, 0, sf.from_float(math.sin(x)))
            env.fpus &= ~C2
        elif code == 0xff:
            set_st(env, 0, sf.from_float(math.cos(x)))
            env.fpus &= ~C2
        else:
            raise ValueError(code)
    except (ValueError, OverflowError, ZeroDivisionError):
        if code in (0xf1, 0xf9) and x == 0:
            _flag(env, sf.FE_DIVZERO)
            set_st(env, 0, sf.pack80(1, 0x7fff, 1 << 63))
        else:
            _flag(env, sf.FE_INVALID)
            set_st(env, 0, sf.EXT_QNAN_DEFAULT)


def fxch(env, i: int) -> None:
    a, b = (env.fpstt) & 7, (env.fpstt + i) & 7
    env.fpregs[a], env.fpregs[b] = env.fpregs[b], env.fpregs[a]
    env.fptags[a], env.fptags[b] = env.fptags[b], env.fptags[a]


def fld_st(env, i: int) -> None:
    push(env, st(env, i))


def fst_st(env, i: int, dopop: int) -> None:
    set_st(env, i, st(env, 0))
    if dopop:
        pop(env)


def ffree(env, i: int, dopop: int) -> None:
    env.fptags[(env.fpstt + i) & 7] = 1
    if dopop:
        pop(env)


def fcmov(env, i: int, cond: int) -> None:
    if cond:
        set_st(env, 0, st(env, i))


def get_fpuc(env) -> int:
    return env.fpuc


def set_fpuc(env, v: int) -> None:
    env.fpuc = v & 0xffff


def get_fpus(env) -> int:
    return (env.fpus & ~0x3800) | ((env.fpstt & 7) << 11)


def fninit(env) -> None:
    env.fpuc = 0x37f
    env.fpus = 0
    env.fpstt = 0
    env.fptags = [1] * 8


def fnclex(env) -> None:
    env.fpus &= 0x7f00


def _tag_word(env) -> int:
    tw = 0
    for k in range(8):
        if env.fptags[k]:
            t = 3
        else:
            v = sf.unpack80(env.fpregs[k])
            ex = (env.fpregs[k] >> 64) & 0x7fff
            t = 1 if v.kind == "zero" else (2 if v.kind in ("nan", "inf") or ex == 0 or
                                            not v.m >> 63 else 0)
        tw |= t << (2 * k)
    return tw


def fnstenv(env, addr: int) -> None:
    data = struct.pack("<7I", env.fpuc | 0xffff0000, get_fpus(env) | 0xffff0000,
                       _tag_word(env) | 0xffff0000, 0, 0, 0, 0xffff0000)
    env.mem.write(addr, data)
    env.fpuc |= 0x3f


def fldenv(env, addr: int) -> None:
    fcw, fsw, ftw = struct.unpack("<3I", env.mem.read(addr, 12))
    env.fpuc = fcw & 0xffff
    env.fpstt = (fsw >> 11) & 7
    env.fpus = fsw & 0xc7ff
    for k in range(8):
        env.fptags[k] = 1 if ((ftw >> (2 * k)) & 3) == 3 else 0


def fnsave(env, addr: int) -> None:
    regs = b"".join((st(env, i) & sf.M80).to_bytes(10, "little") for i in range(8))
    fpuc = env.fpuc
    fnstenv(env, addr)
    env.fpuc = fpuc
    env.mem.write(addr + 28, regs)
    fninit(env)


def frstor(env, addr: int) -> None:
    data = env.mem.read(addr, 108)
    fldenv(env, addr)
    for i in range(8):
        env.fpregs[(env.fpstt + i) & 7] = int.from_bytes(data[28 + 10 * i:38 + 10 * i], "little")


_SE = CALL_SIDE_EFFECTS
_FL = CALL_SIDE_EFFECTS | CALL_READS_STATE | CALL_WRITES_STATE
_MR = CALL_SIDE_EFFECTS | 4   # may raise (guest memory)


def _H(fn, nret=0, flags=_SE):
    return Helper(fn, flags, nret)


h_fld_mem = _H(fld_mem)
h_fst_mem = _H(fst_mem, 1)
h_fpop = _H(fpop)
h_farith_mem = _H(farith_mem)
h_farith_reg = _H(farith_reg)
h_fucom = _H(fucom)
h_fcomi = _H(fcomi, 0, _FL)
h_fmisc = _H(fmisc)
h_fxch = _H(fxch)
h_fld_st = _H(fld_st)
h_fst_st = _H(fst_st)
h_ffree = _H(ffree)
h_fcmov = _H(fcmov)
h_get_fpuc = _H(get_fpuc, 1)
h_set_fpuc = _H(set_fpuc)
h_get_fpus = _H(get_fpus, 1)
h_fninit = _H(fninit)
h_fnclex = _H(fnclex)
h_fnstenv = _H(fnstenv, 0, _MR)
h_fldenv = _H(fldenv, 0, _MR)
h_fnsave = _H(fnsave, 0, _MR)
h_frstor = _H(frstor, 0, _MR)

# (opcode, reg) -> (kind, action) for memory forms; kind as in load_value
_MEM_LOAD = {(0xd9, 0): 0, (0xdd, 0): 1, (0xdb, 5): 2, (0xdf, 0): 3, (0xdb, 0): 4,
             (0xdf, 5): 5, (0xdf, 4): 6}
# (opcode, reg) -> (kind, pop, truncate)
_MEM_STORE = {(0xd9, 2): (0, 0, 0), (0xd9, 3): (0, 1, 0), (0xdd, 2): (1, 0, 0),
              (0xdd, 3): (1, 1, 0), (0xdb, 7): (2, 1, 0), (0xdf, 2): (3, 0, 0),
              (0xdf, 3): (3, 1, 0), (0xdb, 2): (4, 0, 0), (0xdb, 3): (4, 1, 0),
              (0xdf, 7): (5, 1, 0), (0xdf, 1): (3, 1, 1), (0xdb, 1): (4, 1, 1),
              (0xdd, 1): (5, 1, 1), (0xdf, 6): (6, 1, 0)}
_SIZES = {0: 4, 1: 8, 2: 10, 3: 2, 4: 4, 5: 8, 6: 10}


def _ldsized(d, size: int, addr):
    b = d.b
    if size == 10:
        lo = d.ld(8, addr)
        hi = d.ld(2, b.op3("add", addr, b.const(8)))
        return b.op3("or", lo, b.call(_H(lambda x: x << 64, 1, 0), [hi])[0])
    return d.ld(size, addr)


def _stsized(d, size: int, addr, val) -> None:
    b = d.b
    if size == 10:
        # write the high part first so that a fault on either page leaves memory unchanged
        hi = b.call(_H(lambda x: (x >> 64) & 0xffff, 1, 0), [val])[0]
        d.st(2, b.op3("add", addr, b.const(8)), hi)
        d.st(8, addr, b.op3("and", val, b.const((1 << 64) - 1)))
        return
    d.st(size, addr, val)


def translate_x87(d, c: int) -> bool:
    """x87 escape opcodes d8..df; returns False for encodings that are not x87 instructions."""
    d.modrm()
    b = d.b
    env = d.g.env
    k = d.reg & 7
    K = b.const
    if d.ea is not None:
        addr = d.addr()
        if c in (0xd8, 0xdc, 0xda, 0xde):
            kind = {0xd8: 0, 0xdc: 1, 0xda: 4, 0xde: 3}[c]
            v = d.ld(_SIZES[kind], addr)
            b.call(h_farith_mem, [env, K(k), K(kind), v])
            return True
        if (c, k) in _MEM_LOAD:
            kind = _MEM_LOAD[(c, k)]
            v = _ldsized(d, _SIZES[kind], addr)
            b.call(h_fld_mem, [env, K(kind), v])
            return True
        if (c, k) in _MEM_STORE:
            kind, dopop, trunc = _MEM_STORE[(c, k)]
            v = b.call(h_fst_mem, [env, K(kind), K(trunc)])[0]
            _stsized(d, _SIZES[kind], addr, v)
            if dopop:
                b.call(h_fpop, [env])
            return True
        if c == 0xd9 and k == 7:
            d.st(2, addr, b.call(h_get_fpuc, [env])[0])
        elif c == 0xd9 and k == 5:
            b.call(h_set_fpuc, [env, d.ld(2, addr)])
        elif c == 0xdd and k == 7:
            d.st(2, addr, b.call(h_get_fpus, [env])[0])
        elif c == 0xd9 and k == 6:
            b.call(h_fnstenv, [env, addr])
        elif c == 0xd9 and k == 4:
            b.call(h_fldenv, [env, addr])
        elif c == 0xdd and k == 6:
            b.call(h_fnsave, [env, addr])
        elif c == 0xdd and k == 4:
            b.call(h_frstor, [env, addr])
        else:
            return False
        return True
    i = d.rm & 7
    code = 0xc0 | (k << 3) | i
    if c == 0xd8:
        b.call(h_farith_reg, [env, K(k), K(i), K(0), K(0)])
    elif c in (0xdc, 0xde):
        if c == 0xde and k == 3:
            if i != 1:
                return False
            b.call(h_farith_reg, [env, K(3), K(1), K(0), K(0)])   # fcompp
            b.call(h_fpop, [env])
            return True
        # with st(i) as destination, sub/subr and div/divr swap meaning
        opi = {4: 5, 5: 4, 6: 7, 7: 6}.get(k, k)
        if k in (2, 3):
            opi = k
        b.call(h_farith_reg, [env, K(opi), K(i), K(1), K(1 if c == 0xde else 0)])
    elif c == 0xd9:
        if k == 0:
            b.call(h_fld_st, [env, K(i)])
        elif k == 1:
            b.call(h_fxch, [env, K(i)])
        elif code == 0xd0:
            pass
        elif k >= 4 and code not in (0xe2, 0xe3, 0xe6, 0xe7, 0xef):
            b.call(h_fmisc, [env, K(code)])
        else:
            return False
    elif c == 0xdd:
        if k == 0:
            b.call(h_ffree, [env, K(i), K(0)])
        elif k in (2, 3):
            b.call(h_fst_st, [env, K(i), K(k == 3)])
        elif k in (4, 5):
            b.call(h_fucom, [env, K(i), K(k == 5), K(1)])
        else:
            return False
    elif c == 0xda:
        if k < 4:
            cc = {0: 2, 1: 4, 2: 6, 3: 10}[k]     # B, E, BE, P
            b.call(h_fcmov, [env, K(i), d.cond_value(cc)])
        elif code == 0xe9:
            b.call(h_fucom, [env, K(1), K(2), K(1)])
        else:
            return False
    elif c == 0xdb:
        if k < 4:
            cc = {0: 3, 1: 5, 2: 7, 3: 11}[k]     # NB, NE, NBE, NP
            b.call(h_fcmov, [env, K(i), d.cond_value(cc)])
        elif code == 0xe2:
            b.call(h_fnclex, [env])
        elif code == 0xe3:
            b.call(h_fninit, [env])
        elif code in (0xe0, 0xe1, 0xe4):
            pass
        elif k in (5, 6):
            b.call(h_fcomi, [env, K(i), K(0), K(k == 5)])
            _flags_changed(d)
        else:
            return False
    elif c == 0xdf:
        if code == 0xe0:
            d.sreg(2, 0, b.call(h_get_fpus, [env])[0])
        elif k in (5, 6):
            b.call(h_fcomi, [env, K(i), K(1), K(k == 5)])
            _flags_changed(d)
        elif k == 0:
            b.call(h_ffree, [env, K(i), K(1)])
        else:
            return False
    else:
        return False
    return True


def _flags_changed(d) -> None:
    from pyqemu.target.i386 import cc as C
    d.cc_op = C.CC_OP_EFLAGS
