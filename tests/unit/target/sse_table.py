"""Table-driven SSE..SSE4.2 check against the host CPU.

Builds one C program that runs every register and memory form of the
MMX/SSE/SSE2/SSE3/SSSE3/SSE4.1/SSE4.2 instructions of the disassembler's
opcode tables (the complete list of what CPUID advertises for ``-cpu max``)
on fixed inputs, several immediates and MXCSR settings, and prints the whole
register state after each one: xmm0-7, mm0-7, rax/rcx/rdx, the arithmetic
flags, MXCSR and the memory operand.  Run natively and under the emulator,
the outputs must be equal line by line; an instruction the emulator lacks
prints ``ILL`` (a SIGILL handler moves on to the next one).
"""
from __future__ import annotations

import random
import struct
from typing import List, Tuple

from pyqemu.target.i386 import disas as D

# Not advertised by any pyqemu CPU model, so not tested here.
SKIP = {"aesimc", "aesenc", "aesenclast", "aesdec", "aesdeclast", "aeskeygenassist",
        "pclmulqdq"}
# Forms that touch memory the test does not provide (rdi-addressed stores)
# or change control state in ways that need their own tests.
SKIP_OPS = {0xF7}      # maskmovq / maskmovdqu

IMMS = {
    "cmp": [0, 1, 2, 3, 4, 5, 6, 7, 9, 0x1f],
    "round": [0, 1, 2, 3, 4, 8, 0xc],
    "pcmp": [0x00, 0x04, 0x08, 0x0c, 0x10, 0x18, 0x1a, 0x3a, 0x40, 0x44, 0x49, 0x6c],
    "dp": [0xff, 0x31, 0xf1, 0x7f, 0x3c, 0xa5],
    "insertps": [0x00, 0x4e, 0xd9, 0x2f, 0x30],
    "mpsadbw": [0, 1, 2, 3, 4, 5, 6, 7],
}
DEFAULT_IMMS = [0x00, 0x1b, 0xe5, 0x7f]


def _imms(name: str) -> List[int]:
    if name.startswith("cmp"):
        return IMMS["cmp"]
    if name.startswith("round"):
        return IMMS["round"]
    if name.startswith("pcmp") and "str" in name:
        return IMMS["pcmp"]
    if name in ("dpps", "dppd"):
        return IMMS["dp"]
    return IMMS.get(name, DEFAULT_IMMS)


def instructions() -> List[Tuple[str, bytes, bool, List[int]]]:
    """(name, encoding without ModRM/imm, has_imm, allowed modrm kinds)."""
    out = []
    pfx_bytes = {"": b"", "66": b"\x66", "f3": b"\xf3", "f2": b"\xf2"}
    for op, forms in sorted(D._SSE_TABLE.items()):
        if op in SKIP_OPS:
            continue
        for key, (name, spec) in sorted(forms.items()):
            if name == "shift":
                for sub, sname in sorted(D._SHIFT_IMM[op].items()):
                    if sname.endswith("dq") and key != "66":
                        continue
                    out.append((sname, pfx_bytes[key] + bytes([0x0F, op]), True,
                                [0xC2 | (sub << 3)]))
                continue
            has_imm = "I" in spec
            kinds = _kinds(spec)
            for n in name.split("|"):
                nm = n.replace("*", "")
                out.append((nm + ("/" + key if key else ""), pfx_bytes[key] + bytes([0x0F, op]),
                            has_imm, kinds if "|" not in name else
                            ([0x0B] if n == name.split("|")[0] else [0xCA])))
    for op, name in sorted(D._T38_MMX.items()):
        out.append((name + "/mmx", bytes([0x0F, 0x38, op]), False, [0xCA, 0x0B]))
        out.append((name, bytes([0x66, 0x0F, 0x38, op]), False, [0xCA, 0x0B]))
    for op, name in sorted(D._T38_66.items()):
        if name in SKIP:
            continue
        kinds = [0x0B] if name == "movntdqa" else [0xCA, 0x0B]
        out.append((name, bytes([0x66, 0x0F, 0x38, op]), False, kinds))
    out.append(("crc32b", bytes([0xF2, 0x0F, 0x38, 0xF0]), False, [0xCA, 0x0B]))
    out.append(("crc32l", bytes([0xF2, 0x0F, 0x38, 0xF1]), False, [0xCA, 0x0B]))
    out.append(("crc32q", bytes([0xF2, 0x48, 0x0F, 0x38, 0xF1]), False, [0xCA, 0x0B]))
    out.append(("palignr/mmx", bytes([0x0F, 0x3A, 0x0F]), True, [0xCA, 0x0B]))
    for op, (name, spec) in sorted(D._T3A_66.items()):
        if name in SKIP:
            continue
        out.append((name, bytes([0x66, 0x0F, 0x3A, op]), True, _kinds(spec)))
        if name in ("pextr", "pinsr"):
            out.append((name + "q", bytes([0x66, 0x48, 0x0F, 0x3A, op]), True, _kinds(spec)))
    return out


def _kinds(spec: str) -> List[int]:
    ops = spec.split(",")
    if "M" in ops:
        return [0x0B]
    if any(o in ("U", "N") for o in ops):
        return [0xCA]
    return [0xCA, 0x0B]


# -- inputs ---------------------------------------------------------------------------
_F32 = [0x3fc00000, 0xc0100000, 0x7f7fffff, 0x00800000, 0x00000001, 0x00400000,
        0x7fc00001, 0x7f800001, 0x7f800000, 0xff800000, 0x3eaaaaab, 0x4b800001,
        0x80000000, 0x00000000, 0x3f800000, 0xcf000000, 0x4f000000, 0x5f000000,
        0x3f000000, 0x40490fdb, 0x0080000f, 0x80400000]
_F64 = [0x3ff8000000000000, 0xc002000000000000, 0x7fefffffffffffff, 0x0010000000000000,
        0x0000000000000001, 0x0008000000000000, 0x7ff8000000000001, 0x7ff0000000000001,
        0x7ff0000000000000, 0xfff0000000000000, 0x3fd5555555555555, 0x4340000000000001,
        0x8000000000000000, 0x0000000000000000, 0x3ff0000000000000, 0xc1e0000000000000,
        0x41e0000000000000, 0x43e0000000000000, 0x3fe0000000000000, 0x36a0000000000000,
        0x47efffffe0000000, 0x3810000000000000]


def input_sets() -> List[bytes]:
    """Register/memory contents (the 256-byte state block) for each run."""
    rnd = random.Random(20261124)
    sets = []
    for kind in ("f32", "f64", "rand", "small", "str"):
        xmm = []
        for i in range(8):
            if kind == "f32":
                lanes = [rnd.choice(_F32) for _ in range(4)]
                xmm.append(struct.pack("<4I", *lanes))
            elif kind == "f64":
                xmm.append(struct.pack("<2Q", rnd.choice(_F64), rnd.choice(_F64)))
            elif kind == "rand":
                xmm.append(bytes(rnd.randrange(256) for _ in range(16)))
            elif kind == "small":
                xmm.append(struct.pack("<8h", *[rnd.randrange(-300, 300) for _ in range(8)]))
            else:
                text = bytes(rnd.choice(b"abcAB \0") for _ in range(16))
                xmm.append(text)
        mm = [bytes(rnd.randrange(256) for _ in range(8)) for _ in range(8)]
        gpr = struct.pack("<3Q", rnd.choice([5, 16, 3, 0x11]), rnd.randrange(1 << 64),
                          rnd.choice([7, 12, 16, 0xfffffff9]))
        block = b"".join(xmm) + b"".join(mm) + gpr
        block = block.ljust(0xF0, b"\0") + xmm[2]
        sets.append(block)
    return sets


# 0x1fa0: PE already set, which lets the host-arithmetic fast path run
MXCSRS = [0x1f80, 0x1fa0, 0xbfc0, 0x7f80]

_PROLOGUE = r"""
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
static sigjmp_buf jb;
static void onill(int s) { (void)s; siglongjmp(jb, 1); }
static unsigned char st_in[256] __attribute__((aligned(16)));
static unsigned char st_out[256] __attribute__((aligned(16)));
"""

# rdi = input block, rsi = output block (a copy of the input; its memory
# operand at 0xf0 is what (%rbx) addresses).
_LOAD = "".join("movdqu %d(%%rdi), %%xmm%d\\n" % (16 * i, i) for i in range(8)) + \
    "".join("movq %d(%%rdi), %%mm%d\\n" % (0x80 + 8 * i, i) for i in range(8)) + \
    "mov 0xc0(%rdi), %rax\\nmov 0xc8(%rdi), %rcx\\nmov 0xd0(%rdi), %rdx\\n" + \
    "ldmxcsr 0xe0(%rdi)\\nlea 0xf0(%rsi), %rbx\\n"
_STORE = "".join("movdqu %%xmm%d, %d(%%rsi)\\n" % (i, 16 * i) for i in range(8)) + \
    "".join("movq %%mm%d, %d(%%rsi)\\n" % (i, 0x80 + 8 * i) for i in range(8)) + \
    "mov %rax, 0xc0(%rsi)\\nmov %rcx, 0xc8(%rsi)\\nmov %rdx, 0xd0(%rsi)\\n" + \
    "pushfq\\npop %rax\\nand $0x8d5, %rax\\nmov %rax, 0xd8(%rsi)\\n" + \
    "stmxcsr 0xe0(%rsi)\\nldmxcsr 0xe4(%rdi)\\nemms\\n"


def cases() -> List[Tuple[str, bytes]]:
    out = []
    for name, enc, has_imm, kinds in instructions():
        for modrm in kinds:
            form = "reg" if modrm >= 0xC0 else "mem"
            for imm in (_imms(name.split("/")[0]) if has_imm else [None]):
                code = enc + bytes([modrm]) + (bytes([imm]) if imm is not None else b"")
                label = "%s %s%s" % (name, form, "" if imm is None else " $0x%x" % imm)
                out.append((label, code))
    return out


def c_source() -> str:
    tests = cases()
    parts = [_PROLOGUE]
    for i, (_label, code) in enumerate(tests):
        body = ".byte " + ",".join("0x%02x" % c for c in code) + "\\n"
        parts.append('__asm__(".text\\n.globl t%d\\nt%d:\\npush %%rbx\\n%s%s%spop %%rbx\\nret\\n");\n'
                     % (i, i, _LOAD, body, _STORE))
        parts.append("void t%d(const void *, void *);\n" % i)
    parts.append("static void (*const tests[])(const void *, void *) = {%s};\n"
                 % ",".join("t%d" % i for i in range(len(tests))))
    sets = input_sets()
    parts.append("static const unsigned char sets[%d][256] = {%s};\n" % (
        len(sets), ",".join("{" + ",".join(str(c) for c in s.ljust(256, b"\0")) + "}"
                            for s in sets)))
    parts.append("static const uint32_t mxcsrs[] = {%s};\n" % ",".join(hex(m) for m in MXCSRS))
    parts.append(r"""
int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = onill;
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGILL, &sa, 0);
    for (unsigned t = 0; t < sizeof tests / sizeof tests[0]; t++)
        for (unsigned s = 0; s < sizeof sets / sizeof sets[0]; s++)
            for (unsigned m = 0; m < sizeof mxcsrs / sizeof mxcsrs[0]; m++) {
                memcpy(st_in, sets[s], 256);
                memcpy(st_in + 0xe0, &mxcsrs[m], 4);
                uint32_t dflt = 0x1f80;
                memcpy(st_in + 0xe4, &dflt, 4);
                memcpy(st_out, st_in, 256);
                unsigned char rec[4 + 256];
                uint16_t id[2] = {(uint16_t)t, (uint16_t)(s * 16 + m)};
                memcpy(rec, id, 4);
                if (sigsetjmp(jb, 1) == 0) {
                    tests[t](st_in, st_out);
                    memcpy(rec + 4, st_out, 256);
                } else {
                    __asm__ volatile("emms\n ldmxcsr %0" :: "m"(dflt));
                    memset(rec + 4, 0xff, 256);     /* SIGILL */
                }
                fwrite(rec, 1, sizeof rec, stdout);
            }
    return 0;
}
""")
    return "".join(parts)


FIELDS = [("xmm%d" % i, 16 * i, 16) for i in range(8)] + \
    [("mm%d" % i, 0x80 + 8 * i, 8) for i in range(8)] + \
    [("rax", 0xc0, 8), ("rcx", 0xc8, 8), ("rdx", 0xd0, 8), ("flags", 0xd8, 8),
     ("mxcsr", 0xe0, 4), ("mem", 0xf0, 16)]


def records(out: bytes) -> List[Tuple[int, int, int, bytes]]:
    """(case index, input set, MXCSR index, 256-byte state or b"" for SIGILL)."""
    recs = []
    for off in range(0, len(out) - len(out) % 260, 260):
        t, sm = struct.unpack_from("<HH", out, off)
        state = out[off + 4:off + 260]
        recs.append((t, sm >> 4, sm & 15, b"" if state == b"\xff" * 256 else state))
    return recs


def differences(native: bytes, emulated: bytes, mask_mxcsr_flags: bool = False) -> List[str]:
    """Human-readable list of differing records (instruction, inputs, fields)."""
    labels = [label for label, _ in cases()]
    out = []
    a, b = records(native), records(emulated)
    if len(a) != len(b):
        out.append("record count %d != %d" % (len(a), len(b)))
    for (t, s, m, ra), (t2, s2, m2, rb) in zip(a, b):
        where = "%s [set %d, mxcsr %#x]" % (labels[t], s, MXCSRS[m])
        if (t, s, m) != (t2, s2, m2):
            out.append("out of step at " + where)
            break
        if ra == rb:
            continue
        if not rb:
            out.append(where + ": ILL")
            continue
        bad = []
        for fname, off, size in FIELDS:
            fa, fb = ra[off:off + size], rb[off:off + size]
            if fname == "mxcsr" and mask_mxcsr_flags:
                fa = bytes([fa[0] & 0xC0]) + fa[1:]
                fb = bytes([fb[0] & 0xC0]) + fb[1:]
            if fa != fb:
                bad.append("%s %s!=%s" % (fname, fa[::-1].hex(), fb[::-1].hex()))
        if bad:
            out.append(where + ": " + ", ".join(bad))
    return out
