"""Runtime helpers called from translated x86 code (integer part).

Helpers that change CPU state get the CPU object; they raise GuestException
for guest exceptions and GuestFault (from GuestMemory) for bad accesses.
"""
from __future__ import annotations

import time

from pyqemu.exec.cpu_loop import GuestException
from pyqemu.exec.guest_memory import PAGE_SIZE
from pyqemu.target.i386.cc import CC_MASK, CC_OP_EFLAGS, DF, compute_eflags
from pyqemu.target.i386.cpu import EXCP_DIVIDE, EXCP_GPF, EXCP_INVALID_OPCODE

M64 = (1 << 64) - 1


def raise_exception(excp: int) -> None:
    raise GuestException(excp)


def raise_exception_next(excp: int, next_pc: int) -> None:
    raise GuestException(excp, next_pc)


def _sx(v: int, bits: int) -> int:
    s = 1 << (bits - 1)
    return ((v & ((1 << bits) - 1)) ^ s) - s


def divu(hi: int, lo: int, d: int, size: int):
    """Unsigned divide of hi:lo by d (operands ``size`` bytes) -> (quot, rem)."""
    bits = size * 8
    if d == 0:
        raise GuestException(EXCP_DIVIDE)
    n = (hi << bits) | lo
    q, r = divmod(n, d)
    if q >> bits:
        raise GuestException(EXCP_DIVIDE)
    return q, r


def divs(hi: int, lo: int, d: int, size: int):
    bits = size * 8
    d = _sx(d, bits)
    if d == 0:
        raise GuestException(EXCP_DIVIDE)
    n = _sx((hi << bits) | lo, bits * 2)
    q = abs(n) // abs(d)
    if (n < 0) != (d < 0):
        q = -q
    r = n - q * d
    if q >= (1 << (bits - 1)) or q < -(1 << (bits - 1)):
        raise GuestException(EXCP_DIVIDE)
    m = (1 << bits) - 1
    return q & m, r & m


def cpuid(env, leaf: int, sub: int):
    return env.cpuid(leaf & 0xffffffff, sub & 0xffffffff)


def rdtsc(env):
    t = (time.perf_counter_ns() + env.tsc_offset) & M64
    return t & 0xffffffff, t >> 32


def get_eflags(env) -> int:
    return env.get_eflags()


def set_eflags(env, value: int, mask: int) -> None:
    old = env.get_eflags()
    env.set_eflags((old & ~mask) | (value & mask))


def compute_cc(cc_op: int, dst: int, src: int, src2: int) -> int:
    return compute_eflags(cc_op, dst, src, src2)


def ud(env) -> None:
    raise GuestException(EXCP_INVALID_OPCODE)


def gpf(env) -> None:
    raise GuestException(EXCP_GPF)


def atomic_op(mem, addr: int, size: int, kind: int, val: int) -> int:
    """Locked read-modify-write; returns the old value.  kind: 0 add 1 or 4 and 5 sub 6 xor 8 xchg."""
    with mem.lock:
        old = mem.load(addr, size)
        m = (1 << (size * 8)) - 1
        if kind == 0:
            new = old + val
        elif kind == 1:
            new = old | val
        elif kind == 4:
            new = old & val
        elif kind == 5:
            new = old - val
        elif kind == 6:
            new = old ^ val
        else:
            new = val
        mem.store(addr, new & m, size)
        return old


def atomic_cmpxchg(mem, addr: int, size: int, expected: int, new: int) -> int:
    with mem.lock:
        old = mem.load(addr, size)
        if old == expected:
            mem.store(addr, new, size)
        else:
            # A locked cmpxchg always writes (the old value back), so it faults on read-only pages.
            mem.store(addr, old, size)
        return old


# -- string instructions ------------------------------------------------------

def _step(env, size: int) -> int:
    return -size if env.eflags & DF else size


def string_op(env, kind: int, size: int, rep: int, amask: int, seg_base: int, asize: int,
              es_base: int = 0) -> None:
    """movs/stos/lods/scas/cmps/ins/outs with optional rep prefix (rep: 0 none, 1 rep/repe, 2 repne).

    Registers are updated per iteration so a fault leaves the exact state x86
    defines (rcx/rsi/rdi of the faulting iteration).  ``seg_base`` is the source
    segment's base (DS or the override), ``es_base`` the destination's.
    """
    regs = env.regs
    mem = env.mem
    step = _step(env, size)
    cmask = amask
    wrap = M64 if env.mode == 64 else 0xffffffff
    m = (1 << (size * 8)) - 1

    def setr(i: int, v: int) -> None:
        if asize == 8:
            regs[i] = v & M64
        elif asize == 4:
            regs[i] = v & 0xffffffff
        else:
            regs[i] = (regs[i] & ~0xffff) | (v & 0xffff)

    if rep and (regs[1] & cmask) == 0:
        return
    while True:
        si = regs[6] & amask
        di0 = regs[7] & amask
        di = (es_base + di0) & wrap
        if kind == 0:       # movs
            count = regs[1] & cmask if rep else 1
            src = (seg_base + si) & wrap
            # A block read then write equals the element-wise copy unless the
            # copy runs into its own not-yet-read source (the memset-like trick).
            if count > 1 and (step > 0 and (di <= src or di >= src + size * count) or
                              step < 0 and (di >= src or di + size <= src - size * (count - 1))):
                if step > 0:
                    n = min(count, (PAGE_SIZE - (src & 0xfff)) // size,
                            (PAGE_SIZE - (di & 0xfff)) // size,
                            (amask + 1 - si) // size, (amask + 1 - di0) // size)
                    lo_src, lo_dst = src, di
                else:
                    n = min(count, (src & 0xfff) // size + 1, (di & 0xfff) // size + 1,
                            si // size + 1, di0 // size + 1)
                    lo_src, lo_dst = src - (n - 1) * size, di - (n - 1) * size
                if n > 1:
                    mem.write(lo_dst, mem.read(lo_src, n * size))
                    setr(6, si + n * step)
                    setr(7, di0 + n * step)
                    setr(1, (regs[1] & cmask) - n)
                    if not regs[1] & cmask:
                        return
                    continue
            v = mem.load((seg_base + si) & wrap, size)
            mem.store(di, v, size)
            setr(6, si + step)
            setr(7, di0 + step)
        elif kind == 1:     # stos
            v = regs[0] & m
            count = regs[1] & cmask if rep else 1
            if step > 0 and count > 1:
                n = min(count, (PAGE_SIZE - (di & 0xfff)) // size, (amask + 1 - di0) // size)
                if n > 1:
                    mem.write(di, v.to_bytes(size, "little") * n)
                    setr(7, di0 + n * size)
                    setr(1, (regs[1] & cmask) - n)
                    if not regs[1] & cmask:
                        return
                    continue
            mem.store(di, v, size)
            setr(7, di0 + step)
        elif kind == 2:     # lods
            v = mem.load((seg_base + si) & wrap, size)
            if size >= 4:
                regs[0] = v
            else:
                regs[0] = (regs[0] & ~m) | v
            setr(6, si + step)
        elif kind == 3:     # scas
            v = mem.load(di, size)
            a = regs[0] & m
            _set_sub_flags(env, a, v, size)
            setr(7, di0 + step)
        else:               # cmps
            a = mem.load((seg_base + si) & wrap, size)
            v = mem.load(di, size)
            _set_sub_flags(env, a, v, size)
            setr(6, si + step)
            setr(7, di0 + step)
        if not rep:
            return
        setr(1, (regs[1] & cmask) - 1)
        if not regs[1] & cmask:
            return
        if kind >= 3:
            zf = env.cc_dst == 0
            if (rep == 1 and not zf) or (rep == 2 and zf):
                return


def _set_sub_flags(env, a: int, b: int, size: int) -> None:
    from pyqemu.target.i386.cc import K_SUB, cc_op_of
    m = (1 << (size * 8)) - 1
    env.cc_op = cc_op_of(K_SUB, size)
    env.cc_dst = (a - b) & m
    env.cc_src = b
    env.cc_src2 = a


def materialize_flags(env) -> None:
    f = compute_eflags(env.cc_op, env.cc_dst, env.cc_src, env.cc_src2)
    env.cc_op = CC_OP_EFLAGS
    env.cc_src = f & CC_MASK


def cmpxchg_n(env, addr: int, size: int, lock: int) -> None:
    """cmpxchg8b (size 8, edx:eax / ecx:ebx) and cmpxchg16b (size 16)."""
    regs = env.regs
    mem = env.mem
    half = size * 4
    hm = (1 << half) - 1
    if size == 16 and addr & 15:
        raise GuestException(EXCP_GPF)
    exp = ((regs[2] & hm) << half) | (regs[0] & hm)
    new = ((regs[1] & hm) << half) | (regs[3] & hm)
    with mem.lock:
        old = mem.load(addr, size)
        if old == exp:
            mem.store(addr, new, size)
        else:
            mem.store(addr, old, size)
    f = compute_eflags(env.cc_op, env.cc_dst, env.cc_src, env.cc_src2)
    if old == exp:
        f |= 0x40
    else:
        f &= ~0x40
        regs[0] = old & hm
        regs[2] = (old >> half) & hm
    env.cc_op = CC_OP_EFLAGS
    env.cc_src = f


def rcl_rcr(env, val: int, count: int, size: int, right: int) -> int:
    bits = size * 8
    count &= 0x3f if size == 8 else 0x1f
    count %= bits + 1
    f = compute_eflags(env.cc_op, env.cc_dst, env.cc_src, env.cc_src2)
    if count == 0:
        return val
    cf = f & 1
    m = (1 << bits) - 1
    wide = (cf << bits) | val  # bits+1 wide value, CF on top
    w = bits + 1
    if right:
        wide = ((wide >> count) | (wide << (w - count))) & ((1 << w) - 1)
    else:
        wide = ((wide << count) | (wide >> (w - count))) & ((1 << w) - 1)
    res = wide & m
    ncf = (wide >> bits) & 1
    f = (f & ~0x801) | ncf
    if right:
        of = ((res >> (bits - 1)) ^ (res >> (bits - 2))) & 1
    else:
        of = ((res >> (bits - 1)) & 1) ^ ncf
    f |= of << 11
    env.cc_op = CC_OP_EFLAGS
    env.cc_src = f
    return res


def shld_shrd(env, dst: int, src: int, count: int, size: int, right: int) -> int:
    bits = size * 8
    count &= 0x3f if size == 8 else 0x1f
    if count == 0:
        return dst
    m = (1 << bits) - 1
    f = compute_eflags(env.cc_op, env.cc_dst, env.cc_src, env.cc_src2)
    if right:
        wide = (src << bits) | dst
        res = (wide >> count) & m
        cf = (wide >> (count - 1)) & 1
    else:
        wide = (dst << bits) | src
        res = (wide << count >> bits) & m
        cf = (wide << (count - 1) >> (2 * bits - 1)) & 1
    from pyqemu.target.i386.cc import PF, SF, ZF, _PARITY
    f &= ~(0x8c5 | 0x10)
    f |= cf | _PARITY[res & 0xff]
    if res == 0:
        f |= ZF
    if res >> (bits - 1):
        f |= SF
    if ((res ^ dst) >> (bits - 1)) & 1:
        f |= 0x800
    del PF
    env.cc_op = CC_OP_EFLAGS
    env.cc_src = f
    return res


def bcd_adjust(env, kind: int, imm: int) -> None:
    """daa/das/aaa/aas/aam/aad (32-bit mode only)."""
    regs = env.regs
    f = compute_eflags(env.cc_op, env.cc_dst, env.cc_src, env.cc_src2)
    al = regs[0] & 0xff
    ah = (regs[0] >> 8) & 0xff
    cf, af = f & 1, f & 0x10
    from pyqemu.target.i386.cc import _PARITY
    if kind == 0 or kind == 1:      # daa / das
        old_al, old_cf = al, cf
        cf = 0
        if (al & 0xf) > 9 or af:
            al = (al + 6) & 0xff if kind == 0 else (al - 6) & 0xff
            cf = old_cf or (old_al + 6 > 0xff if kind == 0 else old_al < 6)
            af = 0x10
        else:
            af = 0
        if old_al > 0x99 or old_cf:
            al = (al + 0x60) & 0xff if kind == 0 else (al - 0x60) & 0xff
            cf = 1
        f = (f & 0x800) | (1 if cf else 0) | af | _PARITY[al] | (0x40 if al == 0 else 0) | (al & 0x80)
        regs[0] = (regs[0] & ~0xff) | al
    elif kind == 2 or kind == 3:    # aaa / aas
        if (al & 0xf) > 9 or af:
            if kind == 2:
                ax = (regs[0] & 0xffff) + 0x106
            else:
                ax = (regs[0] & 0xffff) - 6
                ax = (ax & 0xff) | ((((ax >> 8) - 1) & 0xff) << 8)
            f = (f & ~0x11) | 0x11
            regs[0] = (regs[0] & ~0xffff) | (ax & 0xff0f)
        else:
            f &= ~0x11
            regs[0] = (regs[0] & ~0xffff) | (regs[0] & 0xff0f)
    elif kind == 4:                 # aam
        if imm == 0:
            raise GuestException(EXCP_DIVIDE)
        ah, al = al // imm, al % imm
        regs[0] = (regs[0] & ~0xffff) | (ah << 8) | al
        f = (f & ~0xc4) | _PARITY[al] | (0x40 if al == 0 else 0) | (al & 0x80)
    else:                           # aad
        al = (al + ah * imm) & 0xff
        regs[0] = (regs[0] & ~0xffff) | al
        f = (f & ~0xc4) | _PARITY[al] | (0x40 if al == 0 else 0) | (al & 0x80)
    env.cc_op = CC_OP_EFLAGS
    env.cc_src = f & CC_MASK
