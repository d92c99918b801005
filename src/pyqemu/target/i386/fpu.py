"""x87 state: control/status words and the FXSAVE image.

Implemented so far: fnstcw/fldcw, fnstsw (m16 and ax), fninit/fnclex, and
the 512-byte FXSAVE/FXRSTOR layout (x87 registers kept as raw 80-bit values,
MXCSR and the XMM registers).  x87 arithmetic is not implemented yet: those
opcodes raise #UD.
"""
from __future__ import annotations

import struct

from pyqemu.tcg.ir import CALL_SIDE_EFFECTS, Helper

M128 = (1 << 128) - 1


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


def _get_fpuc(env) -> int:
    return env.fpuc


def _set_fpuc(env, v: int) -> None:
    env.fpuc = v & 0xffff


def _get_fpus(env) -> int:
    return (env.fpus & ~0x3800) | ((env.fpstt & 7) << 11)


def _fninit(env) -> None:
    env.fpuc = 0x37f
    env.fpus = 0
    env.fpstt = 0
    env.fptags = [1] * 8


def _fnclex(env) -> None:
    env.fpus &= 0x7f00


h_get_fpuc = Helper(_get_fpuc, CALL_SIDE_EFFECTS, 1)
h_set_fpuc = Helper(_set_fpuc, CALL_SIDE_EFFECTS, 0)
h_get_fpus = Helper(_get_fpus, CALL_SIDE_EFFECTS, 1)
h_fninit = Helper(_fninit, CALL_SIDE_EFFECTS, 0)
h_fnclex = Helper(_fnclex, CALL_SIDE_EFFECTS, 0)


def translate_x87(d, c: int) -> bool:
    """x87 escape opcodes d8..df; returns False for what is not implemented."""
    d.modrm()
    b = d.b
    env = d.g.env
    k = d.reg & 7
    if d.ea is not None:
        if c == 0xd9 and k == 7:        # fnstcw m16
            d.st(2, d.addr(), b.call(h_get_fpuc, [env])[0])
            return True
        if c == 0xd9 and k == 5:        # fldcw m16
            b.call(h_set_fpuc, [env, d.ld(2, d.addr())])
            return True
        if c == 0xdd and k == 7:        # fnstsw m16
            d.st(2, d.addr(), b.call(h_get_fpus, [env])[0])
            return True
        return False
    if c == 0xdf and d.mod == 3 and k == 4 and (d.rm & 7) == 0:    # fnstsw ax
        d.sreg(2, 0, b.call(h_get_fpus, [env])[0])
        return True
    if c == 0xdb and k == 4 and (d.rm & 7) == 3:                  # fninit
        b.call(h_fninit, [env])
        return True
    if c == 0xdb and k == 4 and (d.rm & 7) == 2:                  # fnclex
        b.call(h_fnclex, [env])
        return True
    return False
