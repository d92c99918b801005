"""Lazy x86 condition codes (the cc_op scheme).

Arithmetic records its kind and size in ``cc_op`` and the operands/result in
``cc_dst``/``cc_src``/``cc_src2``; EFLAGS' arithmetic bits are computed only
when something reads them.  ``cc_op = kind * 4 + log2(size)``.

kind        cc_dst   cc_src             cc_src2
EFLAGS      -        the flags          -
ADD         result   second operand     -
ADC         result   second operand     carry in
SUB         result   second operand     first operand
SBB         result   second operand     first operand (carry in = a - src - result)
LOGIC       result   -                  -
INC/DEC     result   carry before       -
SHL         result   value << (n-1)     -
SAR/SHR     result   value >> (n-1)     -
MUL         low half high half/overflow -
"""
from __future__ import annotations

CF, PF, AF, ZF, SF, TF, IF, DF, OF = 1, 4, 0x10, 0x40, 0x80, 0x100, 0x200, 0x400, 0x800
CC_MASK = CF | PF | AF | ZF | SF | OF

K_EFLAGS, K_ADD, K_ADC, K_SUB, K_SBB, K_LOGIC, K_INC, K_DEC, K_SHL, K_SAR, K_MUL, K_BMI = range(12)
CC_OP_EFLAGS = 0
SIZE_LOG = {1: 0, 2: 1, 4: 2, 8: 3}


def cc_op_of(kind: int, size: int) -> int:
    return kind * 4 + SIZE_LOG[size]


_PARITY = bytes((0 if bin(i).count("1") & 1 else PF) for i in range(256))


def compute_eflags(cc_op: int, dst: int, src: int, src2: int) -> int:
    """The six arithmetic flags for the lazy state (a pure function)."""
    kind = cc_op >> 2
    if kind == K_EFLAGS:
        return src & CC_MASK
    bits = 8 << (cc_op & 3)
    m = (1 << bits) - 1
    sign = 1 << (bits - 1)
    dst &= m
    f = _PARITY[dst & 0xff]
    if dst == 0:
        f |= ZF
    if dst & sign:
        f |= SF
    if kind == K_ADD or kind == K_ADC:
        cin = src2 & 1 if kind == K_ADC else 0
        src &= m
        a = (dst - src - cin) & m
        if (dst < src) or (cin and dst == src):
            f |= CF
        if (~(a ^ src) & (a ^ dst)) & sign:
            f |= OF
        f |= (a ^ src ^ dst) & AF
    elif kind == K_SUB or kind == K_SBB:
        src &= m
        a = src2 & m
        cin = (a - src - dst) & m if kind == K_SBB else 0
        if a < src or (cin and a == src):
            f |= CF
        if ((a ^ src) & (a ^ dst)) & sign:
            f |= OF
        f |= (a ^ src ^ dst) & AF
    elif kind == K_LOGIC:
        pass
    elif kind == K_INC:
        f |= src & CF
        if dst == sign:
            f |= OF
        f |= (dst ^ (dst - 1)) & AF
    elif kind == K_DEC:
        f |= src & CF
        if dst == sign - 1:
            f |= OF
        f |= (dst ^ (dst + 1)) & AF
    elif kind == K_SHL:
        if (src >> (bits - 1)) & 1:
            f |= CF
        if ((src >> (bits - 1)) ^ (dst >> (bits - 1))) & 1:
            f |= OF
    elif kind == K_SAR:
        f |= src & CF
        if ((src ^ dst) & sign):
            f |= OF
    elif kind == K_MUL:
        if src:
            f |= CF | OF
    elif kind == K_BMI:
        if src == 0:
            f |= CF
    return f


# Conditions (the low 4 bits of Jcc/SETcc/CMOVcc).
def cond_from_flags(cc: int, f: int) -> int:
    b = cc >> 1
    if b == 0:
        r = f & OF
    elif b == 1:
        r = f & CF
    elif b == 2:
        r = f & ZF
    elif b == 3:
        r = f & (CF | ZF)
    elif b == 4:
        r = f & SF
    elif b == 5:
        r = f & PF
    elif b == 6:
        r = (f & SF != 0) != (f & OF != 0)
    else:
        r = (f & ZF) or ((f & SF != 0) != (f & OF != 0))
    r = 1 if r else 0
    return r ^ (cc & 1)


def eval_cond(cc: int, cc_op: int, dst: int, src: int, src2: int) -> int:
    return cond_from_flags(cc, compute_eflags(cc_op, dst, src, src2))
