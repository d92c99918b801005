"""x86 disassembler producing the text QEMU 7.2 prints for ``-d in_asm`` and
the monitor's ``x /Ni``.

Debian's QEMU 7.2 disassembles x86 with capstone in AT&T syntax, so that is
the dialect here: operands source first, ``%`` registers, ``$`` immediates,
size suffixes on integer mnemonics, ``0x`` hex above 9.  Where capstone
deviates from GNU as (``fstpnce``, ``cmpltps``, a few operand spellings) the
text follows capstone, because users compare our logs with QEMU's.

Coverage: the integer ISA, x87, MMX, SSE to SSE4.2, BMI1/2, and the system
instructions.  Bytes that are not one of those print as ``.byte 0xNN`` one
byte at a time, as QEMU does for what capstone cannot decode.

The decoder is table-driven: each opcode maps to a mnemonic template and
operand specifiers in Intel order (destination first, as the manuals list
them); the printer reverses them.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Tuple

__all__ = ["decode", "disas_lines", "disassemble", "format_insn", "in_asm_block",
           "lookup_symbol", "register_symbols"]

_R8 = ["al", "cl", "dl", "bl", "ah", "ch", "dh", "bh"]
_R8X = ["al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil",
        "r8b", "r9b", "r10b", "r11b", "r12b", "r13b", "r14b", "r15b"]
_R16 = ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di",
        "r8w", "r9w", "r10w", "r11w", "r12w", "r13w", "r14w", "r15w"]
_R32 = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi",
        "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d"]
_R64 = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]
_SEG = ["es", "cs", "ss", "ds", "fs", "gs", "?", "?"]
_SUFFIX = {1: "b", 2: "w", 4: "l", 8: "q"}
_CC = ["o", "no", "b", "ae", "e", "ne", "be", "a",
       "s", "ns", "p", "np", "l", "ge", "le", "g"]
_ALU = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"]
_SHIFT = ["rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar"]
_MODRM16 = [("bx", "si"), ("bx", "di"), ("bp", "si"), ("bp", "di"),
            ("si", None), ("di", None), ("bp", None), ("bx", None)]
_SSE_CMP = ["eq", "lt", "le", "unord", "neq", "nlt", "nle", "ord"]
_SEG_PREFIX = {0x26: 0, 0x2E: 1, 0x36: 2, 0x3E: 3, 0x64: 4, 0x65: 5}


class _Bad(Exception):
    """The bytes are not an instruction this decoder knows."""


def _hex(v: int) -> str:
    return "0x%x" % v if v > 9 else "%d" % v


def _signed(v: int) -> str:
    if v < 0:
        return "-" + _hex(-v)
    return _hex(v)


def _sext(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


class _Insn:
    """Decoding state of one instruction."""

    def __init__(self, code: bytes, pc: int, mode: int) -> None:
        self.code = code
        self.pos = 0
        self.pc = pc
        self.mode = mode
        self.rex = 0
        self.opsize_prefix = False
        self.adsize_prefix = False
        self.rep = 0          # 0xf2 / 0xf3 / 0, the last one seen
        self.lock = False
        self.hle = 0          # f2/f3 before a lock prefix (xacquire/xrelease)
        self.seg: Optional[int] = None
        self.modrm: Optional[int] = None
        self.mem: Optional[str] = None
        self.op2_pos = 0

    # -- fetching -------------------------------------------------------------
    def u8(self) -> int:
        if self.pos >= len(self.code) or self.pos >= 15:
            raise _Bad()
        v = self.code[self.pos]
        self.pos += 1
        return v

    def uimm(self, n: int) -> int:
        v = 0
        for i in range(n):
            v |= self.u8() << (8 * i)
        return v

    def simm(self, n: int) -> int:
        return _sext(self.uimm(n), 8 * n)

    # -- sizes ----------------------------------------------------------------
    @property
    def rex_w(self) -> bool:
        return bool(self.rex & 8)

    def opsize(self) -> int:
        if self.rex_w:
            return 8
        if self.mode == 16:
            return 4 if self.opsize_prefix else 2
        return 2 if self.opsize_prefix else 4

    def adsize(self) -> int:
        if self.mode == 64:
            return 4 if self.adsize_prefix else 8
        if self.mode == 32:
            return 2 if self.adsize_prefix else 4
        return 4 if self.adsize_prefix else 2

    def stack_size(self) -> int:
        """Operand size of push/pop/call/ret-like instructions."""
        if self.mode == 64:
            return 2 if self.opsize_prefix and not self.rex_w else 8
        return self.opsize()

    # -- registers ------------------------------------------------------------
    def reg(self, n: int, size: int) -> str:
        if size == 1:
            return "%" + (_R8X[n] if self.rex or n >= 8 else _R8[n])
        return "%" + {2: _R16, 4: _R32, 8: _R64}[size][n]

    # -- ModRM ----------------------------------------------------------------
    def read_modrm(self) -> int:
        if self.modrm is None:
            self.modrm = self.u8()
            if self.modrm < 0xC0:
                self.mem = self._decode_mem(self.modrm)
        return self.modrm

    @property
    def mod(self) -> int:
        return self.read_modrm() >> 6

    @property
    def reg_field(self) -> int:
        return (self.read_modrm() >> 3) & 7 | (8 if self.rex & 4 else 0)

    @property
    def rm_field(self) -> int:
        return self.read_modrm() & 7 | (8 if self.rex & 1 else 0)

    def _segpfx(self) -> str:
        return "%" + _SEG[self.seg] + ":" if self.seg is not None else ""

    def _decode_mem(self, modrm: int) -> str:
        mod, rm = modrm >> 6, modrm & 7
        if self.adsize() == 2:
            if mod == 0 and rm == 6:
                return self._segpfx() + _hex(self.uimm(2))
            base, index = _MODRM16[rm]
            disp = self.simm(1) if mod == 1 else self.simm(2) if mod == 2 else 0
            inner = "%" + base + (", %" + index if index else "")
            return self._segpfx() + (_signed(disp) if disp else "") + "(" + inner + ")"
        regs = _R64 if self.adsize() == 8 else _R32
        base: Optional[str] = None
        index: Optional[str] = None
        scale = 1
        rip = False
        if rm == 4:
            sib = self.u8()
            scale = 1 << (sib >> 6)
            idx = (sib >> 3) & 7 | (8 if self.rex & 2 else 0)
            if idx != 4:
                index = regs[idx]
            b = sib & 7
            if b == 5 and mod == 0:
                disp = self.simm(4)
            else:
                base = regs[b | (8 if self.rex & 1 else 0)]
        elif rm == 5 and mod == 0:
            disp = self.simm(4)
            if self.mode == 64:
                rip = True
                base = "rip" if self.adsize() == 8 else "eip"
        else:
            base = regs[rm | (8 if self.rex & 1 else 0)]
        if mod == 1:
            disp = self.simm(1)
        elif mod == 2:
            disp = self.simm(4)
        elif base is not None and not rip:
            disp = 0
        if base is None and index is None:
            mask = (1 << (8 * self.adsize())) - 1
            return self._segpfx() + _hex(disp & mask)
        inner = "%" + base if base else ""
        if index is not None:
            inner += ", %" + index + (", " + str(scale) if scale > 1 or base is None else "")
        elif base is None:
            inner += ", "
        return self._segpfx() + (_signed(disp) if disp else "") + "(" + inner + ")"

    def rm(self, size: int) -> str:
        self.read_modrm()
        if self.mem is not None:
            return self.mem
        return self.reg(self.rm_field, size)


# Operand specifier letters, Intel order in the tables.  Sizes: b byte,
# w word, d dword, q qword, v operand size, z operand size capped at 4,
# y 4 or 8 by REX.W, s stack size.
def _operand(ins: _Insn, spec: str, ctx: dict) -> str:
    osz = ctx["osz"]
    k = spec[0]
    if k == "%":          # fixed register, e.g. %al, %cl, %dx, %eAX
        name = spec[1:]
        if name == "A":
            return ins.reg(0, osz)
        if name == "$1":
            return name
        return "%" + name
    sz = spec[1:] if len(spec) > 1 else ""
    size = {"b": 1, "w": 2, "d": 4, "q": 8, "v": osz, "z": min(osz, 4),
            "y": 8 if ins.rex_w else 4, "s": ins.stack_size(), "": osz}[sz]
    if k == "E":
        return ins.rm(size)
    if k == "G":
        return ins.reg(ins.reg_field, size)
    if k == "M":
        ins.read_modrm()
        if ins.mem is None:
            raise _Bad()
        return ins.mem
    if k == "R":          # register-only ModRM operand
        ins.read_modrm()
        if ins.mem is not None:
            raise _Bad()
        return ins.reg(ins.rm_field, size)
    if k == "I":
        if sz == "z":
            n = min(osz, 4)
            v = ins.uimm(n)
            if osz == 8:
                if ctx.get("logic"):
                    return "$" + _hex(_sext(v, 32) & ((1 << 64) - 1))
                return "$" + _signed(_sext(v, 32))
            return "$" + _hex(v)
        n = size
        return "$" + _hex(ins.uimm(n))
    if k == "i":          # byte immediate sign-extended to the operand size
        if ctx.get("logic"):
            return "$" + _hex(ins.simm(1) & ((1 << (8 * osz)) - 1))
        return "$" + _signed(ins.simm(1))
    if k == "J":
        disp = ins.simm(1) if sz == "b" else ins.simm(2 if ctx.get("j16") else 4)
        target = ins.pc + ins.pos + disp
        bits = 16 if ctx.get("j16") else {16: 16, 32: 32, 64: 64}[ins.mode]
        if ins.mode == 64 and not ctx.get("j16"):
            bits = 64
        return _hex(target & ((1 << bits) - 1))
    raise AssertionError(spec)


def _fmt(ins: _Insn, mnem: str, specs: List[str], osz: int, sfx: bool = True,
         **ctx) -> Tuple[str, str]:
    ctx["osz"] = osz
    ops = [_operand(ins, s, ctx) for s in specs]
    if sfx:
        mnem += _SUFFIX[osz]
    return mnem, ", ".join(reversed(ops))


# ---------------------------------------------------------------------------
# one-byte opcodes
# ---------------------------------------------------------------------------

def _string_ops(ins: _Insn, op: int) -> Tuple[str, str]:
    size = 1 if op & 1 == 0 else ins.opsize()
    a = ins.adsize()
    regs = {2: _R16, 4: _R32, 8: _R64}[a]
    src = ins._segpfx() + "(%" + regs[6] + ")"
    es = "" if ins.mode == 64 else "%es:"
    dst = es + "(%" + regs[7] + ")"
    acc = ins.reg(0, size)
    base = {0xA4: "movs", 0xA6: "cmps", 0xAA: "stos", 0xAC: "lods", 0xAE: "scas",
            0x6C: "ins", 0x6E: "outs"}[op & ~1]
    mnem = base + _SUFFIX[size]
    if base == "movs":
        ops = src + ", " + dst
    elif base == "cmps":
        ops = dst + ", " + src
    elif base == "stos":
        ops = acc + ", " + dst
    elif base == "lods":
        ops = src + ", " + acc
    elif base == "scas":
        ops = dst + ", " + acc
    elif base == "ins":
        ops = "%dx, " + dst
    else:
        ops = src + ", %dx"
    if ins.rep:
        if base in ("cmps", "scas"):
            mnem = ("repne " if ins.rep == 0xF2 else "repe ") + mnem
        elif ins.rep == 0xF3:
            mnem = "rep " + mnem
        elif base == "ins":
            mnem = "repne " + mnem
    return mnem, ops


def _one_byte(ins: _Insn, op: int) -> Tuple[str, str]:
    m64 = ins.mode == 64
    osz = ins.opsize()
    if op < 0x40 and op & 7 < 6:
        name = _ALU[op >> 3]
        form = op & 7
        if form == 0:
            return _fmt(ins, name, ["Eb", "Gb"], 1)
        if form == 1:
            return _fmt(ins, name, ["Ev", "Gv"], osz)
        if form == 2:
            return _fmt(ins, name, ["Gb", "Eb"], 1)
        if form == 3:
            return _fmt(ins, name, ["Gv", "Ev"], osz)
        if form == 4:
            return _fmt(ins, name, ["%al", "Ib"], 1)
        return _fmt(ins, name, ["%A", "Iz"], osz, logic=name in ("and", "or", "xor"))
    if op in (0x06, 0x07, 0x0E, 0x16, 0x17, 0x1E, 0x1F):
        if m64:
            raise _Bad()
        name = "push" if op & 1 == 0 else "pop"
        return name + _SUFFIX[osz], "%" + _SEG[op >> 3]
    if op in (0x27, 0x2F, 0x37, 0x3F):
        if m64:
            raise _Bad()
        return {0x27: "daa", 0x2F: "das", 0x37: "aaa", 0x3F: "aas"}[op], ""
    if 0x40 <= op < 0x50:          # inc/dec (REX is handled by the caller)
        return ("inc" if op < 0x48 else "dec") + _SUFFIX[osz], ins.reg(op & 7, osz)
    if 0x50 <= op < 0x60:
        ssz = ins.stack_size()
        return (("push" if op < 0x58 else "pop") + _SUFFIX[ssz],
                ins.reg(op & 7 | (8 if ins.rex & 1 else 0), ssz))
    if op in (0x60, 0x61):
        if m64:
            raise _Bad()
        return ("pusha" if op == 0x60 else "popa") + _SUFFIX[osz], ""
    if op == 0x62:
        if m64:
            raise _Bad()
        return _fmt(ins, "bound", ["Gv", "M"], osz, sfx=False)
    if op == 0x63:
        if m64:
            return "movslq", ins.rm(4) + ", " + ins.reg(ins.reg_field, 8)
        return _fmt(ins, "arpl", ["Ew", "Gw"], 2, sfx=False)
    if op == 0x68:
        return _fmt(ins, "push", ["Iz"], ins.stack_size())
    if op == 0x6A:
        return _fmt(ins, "push", ["i"], ins.stack_size())
    if op == 0x69:
        return _fmt(ins, "imul", ["Gv", "Ev", "Iz"], osz)
    if op == 0x6B:
        return _fmt(ins, "imul", ["Gv", "Ev", "i"], osz)
    if op in (0x6D, 0x6F) and osz == 8:
        osz = ins.opsize_prefix and 2 or 4
        mnem, ops = _string_ops(ins, op)
        return mnem[:-1] + "l", ops
    if 0x6C <= op <= 0x6F or 0xA4 <= op <= 0xA7 or 0xAA <= op <= 0xAF:
        return _string_ops(ins, op)
    if 0x70 <= op < 0x80:
        return _fmt(ins, "j" + _CC[op & 15], ["Jb"], osz, sfx=False)
    if 0x80 <= op <= 0x83:
        name = _ALU[(ins.read_modrm() >> 3) & 7]
        if op == 0x80 or op == 0x82:
            if op == 0x82 and m64:
                raise _Bad()
            return _fmt(ins, name, ["Eb", "Ib"], 1)
        logic = name in ("and", "or", "xor")
        if op == 0x81:
            return _fmt(ins, name, ["Ev", "Iz"], osz, logic=logic)
        return _fmt(ins, name, ["Ev", "i"], osz, logic=logic)
    if op in (0x84, 0x85):
        s = 1 if op == 0x84 else osz
        return _fmt(ins, "test", ["Eb" if s == 1 else "Ev", "Gb" if s == 1 else "Gv"], s)
    if op in (0x86, 0x87):
        s = 1 if op == 0x86 else osz
        return _fmt(ins, "xchg", ["Eb" if s == 1 else "Ev", "Gb" if s == 1 else "Gv"], s)
    if 0x88 <= op <= 0x8B:
        s = 1 if op & 1 == 0 else osz
        e, g = ("Eb", "Gb") if s == 1 else ("Ev", "Gv")
        return _fmt(ins, "mov", [e, g] if op < 0x8A else [g, e], s)
    if op == 0x8C:
        sreg = (ins.read_modrm() >> 3) & 7
        if sreg > 5:
            raise _Bad()
        s = 2 if ins.mem is not None else osz
        return "mov" + _SUFFIX[s], "%" + _SEG[sreg] + ", " + ins.rm(s)
    if op == 0x8E:
        sreg = (ins.read_modrm() >> 3) & 7
        if sreg > 5 or sreg == 1:
            raise _Bad()
        s = 2 if ins.mem is not None else osz
        return "mov" + _SUFFIX[s], ins.rm(s) + ", %" + _SEG[sreg]
    if op == 0x8D:
        return _fmt(ins, "lea", ["Gv", "M"], osz)
    if op == 0x8F:
        if (ins.read_modrm() >> 3) & 7:
            raise _Bad()
        return _fmt(ins, "pop", ["Es"], ins.stack_size())
    if op == 0x90:
        if ins.rex & 1:
            return "xchg" + _SUFFIX[osz], ins.reg(8, osz) + ", " + ins.reg(0, osz)
        return ("pause" if ins.rep == 0xF3 else "nop"), ""
    if 0x91 <= op <= 0x97:
        r = op & 7 | (8 if ins.rex & 1 else 0)
        return "xchg" + _SUFFIX[osz], ins.reg(r, osz) + ", " + ins.reg(0, osz)
    if op in (0x98, 0x99) and ins.mode == 16:
        return ("cwtl" if op == 0x98 else "cltd"), ""
    if op == 0x98:
        return {2: "cbtw", 4: "cwtl", 8: "cltq"}[osz], ""
    if op == 0x99:
        return {2: "cwtd", 4: "cltd", 8: "cqto"}[osz], ""
    if op in (0x9A, 0xEA):
        if m64:
            raise _Bad()
        off = ins.uimm(min(osz, 4))
        sel = ins.uimm(2)
        name = "lcall" if op == 0x9A else "ljmp"
        return name + _SUFFIX[osz], "$" + "0x%x" % sel + ":$" + "0x%x" % off
    if op == 0x9B:
        return "wait", ""
    if op in (0x9C, 0x9D):
        return ("pushf" if op == 0x9C else "popf") + _SUFFIX[ins.stack_size()], ""
    if op == 0x9E:
        return "sahf", ""
    if op == 0x9F:
        return "lahf", ""
    if 0xA0 <= op <= 0xA3:
        s = 1 if op & 1 == 0 else osz
        addr = ins.uimm(ins.adsize())
        mem = ins._segpfx() + _hex(addr)
        acc = ins.reg(0, s)
        name = ("movabs" if m64 else "mov") + _SUFFIX[s]
        return name, (mem + ", " + acc) if op < 0xA2 else (acc + ", " + mem)
    if op in (0xA8, 0xA9):
        s = 1 if op == 0xA8 else osz
        return _fmt(ins, "test", ["%A" if s > 1 else "%al", "Ib" if s == 1 else "Iz"], s)
    if 0xB0 <= op < 0xB8:
        r = op & 7 | (8 if ins.rex & 1 else 0)
        return "movb", "$" + _hex(ins.uimm(1)) + ", " + ins.reg(r, 1)
    if 0xB8 <= op < 0xC0:
        r = op & 7 | (8 if ins.rex & 1 else 0)
        if osz == 8:
            return "movabsq", "$" + _hex(ins.uimm(8)) + ", " + ins.reg(r, 8)
        return "mov" + _SUFFIX[osz], "$" + _hex(ins.uimm(osz)) + ", " + ins.reg(r, osz)
    if op in (0xC0, 0xC1, 0xD0, 0xD1, 0xD2, 0xD3):
        s = 1 if op & 1 == 0 else osz
        name = _SHIFT[(ins.read_modrm() >> 3) & 7]
        e = "Eb" if s == 1 else "Ev"
        if op <= 0xC1:
            return _fmt(ins, name, [e, "Ib"], s)
        if op <= 0xD1:
            mnem, ops = _fmt(ins, name, [e, "%$1"], s)
            if op == 0xD1 and mnem == "roll" and ins.mem is None:
                mnem = "rol"        # capstone prints this one form without suffix
            return mnem, ops
        return _fmt(ins, name, [e, "%cl"], s)
    if op in (0xC2, 0xC3):
        name = "ret" + _SUFFIX[ins.stack_size()]
        return name, ("$" + _hex(ins.uimm(2)) if op == 0xC2 else "")
    if op in (0xC4, 0xC5):
        if m64:
            raise _Bad()
        if ins.mod == 3:
            raise _Bad()
        return _fmt(ins, "les" if op == 0xC4 else "lds", ["Gv", "M"], osz)
    if op == 0xC6:
        modrm = ins.read_modrm()
        if modrm == 0xF8:
            return "xabort", "$" + _signed(ins.simm(1))
        if (modrm >> 3) & 7:
            raise _Bad()
        return _fmt(ins, "mov", ["Eb", "Ib"], 1)
    if op == 0xC7:
        modrm = ins.read_modrm()
        if modrm == 0xF8:
            return _fmt(ins, "xbegin", ["Jz"], osz, sfx=False, j16=osz == 2)
        if (modrm >> 3) & 7:
            raise _Bad()
        return _fmt(ins, "mov", ["Ev", "Iz"], osz)
    if op == 0xC8:
        a = ins.simm(2)
        b = ins.simm(1)
        return "enter", "$" + _signed(a) + ", $" + _signed(b)
    if op == 0xC9:
        return "leave", ""
    if op in (0xCA, 0xCB):
        name = "lret" + _SUFFIX[osz]
        return name, ("$" + _hex(ins.uimm(2)) if op == 0xCA else "")
    if op == 0xCC:
        return "int3", ""
    if op == 0xCD:
        return "int", "$" + _hex(ins.uimm(1))
    if op == 0xCE:
        if m64:
            raise _Bad()
        return "into", ""
    if op == 0xCF:
        return "iret" + _SUFFIX[osz], ""
    if op in (0xD4, 0xD5):
        if m64:
            raise _Bad()
        imm = ins.uimm(1)
        name = "aam" if op == 0xD4 else "aad"
        return name, ("" if imm == 10 else "$" + _hex(imm))
    if op == 0xD6:
        if m64:
            raise _Bad()
        return "salc", ""
    if op == 0xD7:
        return "xlatb", ""
    if 0xD8 <= op <= 0xDF:
        return _x87(ins, op)
    if 0xE0 <= op <= 0xE3:
        name = ["loopne", "loope", "loop", ""][op - 0xE0]
        if op == 0xE3:
            name = {2: "jcxz", 4: "jecxz", 8: "jrcxz"}[ins.adsize()]
        return _fmt(ins, name, ["Jb"], osz, sfx=False)
    if op in (0xE4, 0xE5, 0xE6, 0xE7, 0xEC, 0xED, 0xEE, 0xEF):
        s = 1 if op & 1 == 0 else min(osz, 4)
        port = "%dx" if op >= 0xEC else "$" + _hex(ins.uimm(1))
        acc = ins.reg(0, s)
        if op & 2:
            return "out" + _SUFFIX[s], acc + ", " + port
        return "in" + _SUFFIX[s], port + ", " + acc
    if op == 0xE8:
        name = "call" + _SUFFIX[ins.stack_size()] if ins.mode != 16 or ins.opsize_prefix \
            else "callw"
        return _fmt(ins, name, ["Jz"], osz, sfx=False, j16=ins.opsize() == 2)
    if op == 0xE9:
        return _fmt(ins, "jmp", ["Jz"], osz, sfx=False, j16=ins.opsize() == 2)
    if op == 0xEB:
        return _fmt(ins, "jmp", ["Jb"], osz, sfx=False)
    if op == 0xF1:
        return "int1", ""
    if op == 0xF4:
        return "hlt", ""
    if op == 0xF5:
        return "cmc", ""
    if op in (0xF6, 0xF7):
        s = 1 if op == 0xF6 else osz
        sub = (ins.read_modrm() >> 3) & 7
        e = "Eb" if s == 1 else "Ev"
        if sub < 2:
            return _fmt(ins, "test", [e, "Ib" if s == 1 else "Iz"], s)
        name = ["", "", "not", "neg", "mul", "imul", "div", "idiv"][sub]
        return _fmt(ins, name, [e], s)
    if 0xF8 <= op <= 0xFD:
        return ["clc", "stc", "cli", "sti", "cld", "std"][op - 0xF8], ""
    if op == 0xFE:
        sub = (ins.read_modrm() >> 3) & 7
        if sub > 1:
            raise _Bad()
        return _fmt(ins, "inc" if sub == 0 else "dec", ["Eb"], 1)
    if op == 0xFF:
        sub = (ins.read_modrm() >> 3) & 7
        if sub < 2:
            return _fmt(ins, "inc" if sub == 0 else "dec", ["Ev"], osz)
        if sub in (2, 4):
            ssz = ins.stack_size() if m64 else osz
            name = ("call" if sub == 2 else "jmp") + _SUFFIX[ssz]
            return name, "*" + ins.rm(ssz)
        if sub in (3, 5):
            if ins.mem is None:
                raise _Bad()
            return ("lcall" if sub == 3 else "ljmp") + _SUFFIX[osz], "*" + ins.mem
        if sub == 6:
            return _fmt(ins, "push", ["Es"], ins.stack_size())
        raise _Bad()
    raise _Bad()


# ---------------------------------------------------------------------------
# x87
# ---------------------------------------------------------------------------

_X87_MEM = {
    0xD8: ["fadds", "fmuls", "fcoms", "fcomps", "fsubs", "fsubrs", "fdivs", "fdivrs"],
    0xD9: ["flds", None, "fsts", "fstps", "fldenv", "fldcw", "fnstenv", "fnstcw"],
    0xDA: ["fiaddl", "fimull", "ficoml", "ficompl", "fisubl", "fisubrl", "fidivl", "fidivrl"],
    0xDB: ["fildl", "fisttpl", "fistl", "fistpl", None, "fldt", None, "fstpt"],
    0xDC: ["faddl", "fmull", "fcoml", "fcompl", "fsubl", "fsubrl", "fdivl", "fdivrl"],
    0xDD: ["fldl", "fisttpll", "fstl", "fstpl", "frstor", None, "fnsave", "fnstsw"],
    0xDE: ["fiadds", "fimuls", "ficoms", "ficomps", "fisubs", "fisubrs", "fidivs", "fidivrs"],
    0xDF: ["filds", "fisttps", "fists", "fistps", "fbld", "fildll", "fbstp", "fistpll"],
}
_ARITH = ["fadd", "fmul", "fcom", "fcomp", "fsub", "fsubr", "fdiv", "fdivr"]
_D9_FIXED = {0xD0: "fnop", 0xE0: "fchs", 0xE1: "fabs", 0xE4: "ftst", 0xE5: "fxam",
             0xE8: "fld1", 0xE9: "fldl2t", 0xEA: "fldl2e", 0xEB: "fldpi",
             0xEC: "fldlg2", 0xED: "fldln2", 0xEE: "fldz",
             0xF0: "f2xm1", 0xF1: "fyl2x", 0xF2: "fptan", 0xF3: "fpatan",
             0xF4: "fxtract", 0xF5: "fprem1", 0xF6: "fdecstp", 0xF7: "fincstp",
             0xF8: "fprem", 0xF9: "fyl2xp1", 0xFA: "fsqrt", 0xFB: "fsincos",
             0xFC: "frndint", 0xFD: "fscale", 0xFE: "fsin", 0xFF: "fcos"}


def _x87(ins: _Insn, op: int) -> Tuple[str, str]:
    modrm = ins.read_modrm()
    sub = (modrm >> 3) & 7
    if ins.mem is not None:
        name = _X87_MEM[op][sub]
        if name is None:
            raise _Bad()
        return name, ins.mem
    i = modrm & 7
    st = "%%st(%d)" % i
    st_st0 = st + ", %st(0)"
    st0_st = "%st(0), " + st
    if op == 0xD8:
        return _ARITH[sub], st
    if op == 0xD9:
        if sub == 0:
            return "fld", st
        if sub == 1:
            return "fxch", st
        if sub == 3:
            return "fstpnce", st_st0
        name = _D9_FIXED.get(modrm)
        if name is None:
            raise _Bad()
        return name, ""
    if op == 0xDA:
        if sub < 4:
            return ["fcmovb", "fcmove", "fcmovbe", "fcmovu"][sub], st_st0
        if modrm == 0xE9:
            return "fucompp", ""
        raise _Bad()
    if op == 0xDB:
        if sub < 4:
            return ["fcmovnb", "fcmovne", "fcmovnbe", "fcmovnu"][sub], st_st0
        if sub == 5:
            return "fucomi", st
        if sub == 6:
            return "fcomi", st
        if modrm == 0xE2:
            return "fnclex", ""
        if modrm == 0xE3:
            return "fninit", ""
        raise _Bad()
    if op == 0xDC:
        if sub in (2, 3):
            return _ARITH[sub], st_st0
        return _ARITH[sub], st0_st
    if op == 0xDD:
        if sub == 0:
            return "ffree", st
        if sub == 1:
            return "fxch", st_st0
        if sub in (2, 3, 4, 5):
            return ["fst", "fstp", "fucom", "fucomp"][sub - 2], st
        raise _Bad()
    if op == 0xDE:
        if sub == 2:
            return "fcomp", st_st0
        if sub == 3:
            if modrm == 0xD9:
                return "fcompp", ""
            raise _Bad()
        return ["faddp", "fmulp", "", "", "fsubp", "fsubrp", "fdivp", "fdivrp"][sub], st
    # 0xDF
    if sub == 0:
        return "ffreep", st
    if sub == 1:
        return "fxch", st_st0
    if sub in (2, 3):
        return "fstp", st0_st
    if sub == 4:
        if modrm == 0xE0:
            return "fnstsw", "%ax"
        raise _Bad()
    if sub == 5:
        return "fucomip", st
    if sub == 6:
        return "fcomip", st
    raise _Bad()


# ---------------------------------------------------------------------------
# two-byte (0f xx) integer and system opcodes
# ---------------------------------------------------------------------------

def _two_byte(ins: _Insn, op: int) -> Tuple[str, str]:
    osz = ins.opsize()
    m64 = ins.mode == 64
    if op in _SSE_TABLE or op in (0x38, 0x3A):
        r = _sse(ins, op)
        if r is not None:
            return r
    if op == 0x00:
        sub = (ins.read_modrm() >> 3) & 7
        if sub > 5:
            raise _Bad()
        name = ["sldt", "str", "lldt", "ltr", "verr", "verw"][sub]
        if sub >= 4:
            return name, ins.rm(2)
        if sub < 2 and ins.mem is None:
            return name + _SUFFIX[osz], ins.rm(osz)
        return name + "w", ins.rm(2)
    if op == 0x01:
        return _group7(ins)
    if op in (0x02, 0x03):
        name = "lar" if op == 2 else "lsl"
        src = ins.rm(2) if ins.mod != 3 else ins.rm(osz)
        return name + _SUFFIX[osz], src + ", " + ins.reg(ins.reg_field, osz)
    fixed = {0x05: "syscall", 0x06: "clts", 0x08: "invd", 0x09: "wbinvd", 0x0B: "ud2",
             0x30: "wrmsr", 0x31: "rdtsc", 0x32: "rdmsr", 0x33: "rdpmc", 0x34: "sysenter",
             0x35: "sysexit", 0x37: "getsec", 0xA2: "cpuid", 0xAA: "rsm", 0x77: "emms",
             0xFF: "ud0", 0xB9: "ud2b", 0x0E: "femms"}
    if op in fixed:
        if op == 0x35 and ins.rex_w:
            return "sysexitq", ""
        return fixed[op], ""
    if op == 0x07:
        return "sysret" + ("q" if ins.rex_w else "l"), ""
    if op == 0x0D:
        sub = (ins.read_modrm() >> 3) & 7
        if ins.mem is None or sub not in (1, 2):
            raise _Bad()
        return ("prefetchw" if sub == 1 else "prefetchwt1"), ins.mem
    if op == 0x18:
        sub = (ins.read_modrm() >> 3) & 7
        if sub > 3:
            # reserved hint space: capstone shows these as nops
            return "nop" + ("l" if osz == 8 else _SUFFIX[osz]), ins.rm(osz)
        if ins.mem is None:
            raise _Bad()
        return ["prefetchnta", "prefetcht0", "prefetcht1", "prefetcht2"][sub], ins.mem
    if 0x19 <= op <= 0x1F:
        modrm = ins.read_modrm()
        if op == 0x1E and ins.rep == 0xF3 and modrm in (0xFA, 0xFB):
            return ("endbr64" if modrm == 0xFA else "endbr32"), ""
        ins.read_modrm()
        if ins.mem is None:
            if op != 0x19:
                raise _Bad()
            return "nop", ins.reg(ins.reg_field, osz) + ", " + ins.rm(osz)
        return "nop" + ("l" if osz == 8 else _SUFFIX[osz]), ins.mem
    if 0x20 <= op <= 0x23:
        modrm = ins.modrm = ins.u8()
        n = ((modrm >> 3) & 7) | (8 if ins.rex & 4 else 0)
        gsz = 8 if m64 else 4
        gpr = "%" + (_R64 if m64 else _R32)[modrm & 7 | (8 if ins.rex & 1 else 0)]
        special = "%" + ("cr" if op in (0x20, 0x22) else "dr") + str(n)
        if op in (0x20, 0x21):
            return "mov" + _SUFFIX[gsz], special + ", " + gpr
        return "mov" + _SUFFIX[gsz], gpr + ", " + special
    if 0x40 <= op < 0x50:
        return _fmt(ins, "cmov" + _CC[op & 15], ["Gv", "Ev"], osz)
    if 0x80 <= op < 0x90:
        return _fmt(ins, "j" + _CC[op & 15], ["Jz"], osz, sfx=False, j16=osz == 2)
    if 0x90 <= op < 0xA0:
        ins.read_modrm()
        return "set" + _CC[op & 15], ins.rm(1)
    if op in (0xA0, 0xA1, 0xA8, 0xA9):
        name = "push" if op & 1 == 0 else "pop"
        return name + _SUFFIX[ins.stack_size()], "%" + ("fs" if op < 0xA8 else "gs")
    if op in (0xA3, 0xAB, 0xB3, 0xBB):
        name = {0xA3: "bt", 0xAB: "bts", 0xB3: "btr", 0xBB: "btc"}[op]
        return _fmt(ins, name, ["Ev", "Gv"], osz)
    if op in (0xA4, 0xA5, 0xAC, 0xAD):
        name = "shld" if op < 0xA8 else "shrd"
        return _fmt(ins, name, ["Ev", "Gv", "Ib" if op & 1 == 0 else "%cl"], osz)
    if op == 0xAE:
        return _group15(ins)
    if op == 0xAF:
        return _fmt(ins, "imul", ["Gv", "Ev"], osz)
    if op in (0xB0, 0xB1):
        s = 1 if op == 0xB0 else osz
        return _fmt(ins, "cmpxchg", ["Eb", "Gb"] if s == 1 else ["Ev", "Gv"], s)
    if op in (0xC0, 0xC1):
        s = 1 if op == 0xC0 else osz
        return _fmt(ins, "xadd", ["Eb", "Gb"] if s == 1 else ["Ev", "Gv"], s)
    if op in (0xB2, 0xB4, 0xB5):
        if ins.mod == 3:
            raise _Bad()
        return _fmt(ins, {0xB2: "lss", 0xB4: "lfs", 0xB5: "lgs"}[op], ["Gv", "M"], osz)
    if op in (0xB6, 0xB7, 0xBE, 0xBF):
        src = 1 if op & 1 == 0 else 2
        name = ("movz" if op < 0xB8 else "movs") + _SUFFIX[src] + _SUFFIX[osz]
        if src == 2 and osz == 2:
            name = name[:-1] + "l"
        return name, ins.rm(src) + ", " + ins.reg(ins.reg_field, osz)
    if op == 0xB8:
        if ins.rep != 0xF3:
            raise _Bad()
        return _fmt(ins, "popcnt", ["Gv", "Ev"], osz)
    if op == 0xBA:
        sub = (ins.read_modrm() >> 3) & 7
        if sub < 4:
            raise _Bad()
        return _fmt(ins, ["bt", "bts", "btr", "btc"][sub - 4], ["Ev", "Ib"], osz)
    if op in (0xBC, 0xBD):
        if ins.rep == 0xF3:
            name = "tzcnt" if op == 0xBC else "lzcnt"
        else:
            name = "bsf" if op == 0xBC else "bsr"
        return _fmt(ins, name, ["Gv", "Ev"], osz)
    if op == 0xC3:
        if ins.mod == 3:
            raise _Bad()
        s = 8 if ins.rex_w else 4
        return "movnti" + _SUFFIX[s], ins.reg(ins.reg_field, s) + ", " + ins.mem
    if op == 0xC7:
        return _group9(ins)
    if 0xC8 <= op <= 0xCF:
        r = op & 7 | (8 if ins.rex & 1 else 0)
        return "bswap" + ("q" if ins.rex_w else "l"), ins.reg(r, osz)
    raise _Bad()


def _group7(ins: _Insn) -> Tuple[str, str]:
    modrm = ins.read_modrm()
    sub = (modrm >> 3) & 7
    osz = ins.opsize()
    if ins.mem is not None:
        if sub < 4:
            name = ["sgdt", "sidt", "lgdt", "lidt"][sub]
            sfx = "q" if ins.mode == 64 else _SUFFIX[osz]
            return name + sfx, ins.mem
        if sub == 4:
            return "smsww", ins.mem
        if sub == 6:
            return "lmsww", ins.mem
        if sub == 7:
            return "invlpg", ins.mem
        raise _Bad()
    fixed = {0xC1: "vmcall", 0xC2: "vmlaunch", 0xC3: "vmresume", 0xC4: "vmxoff",
             0xC8: "monitor", 0xC9: "mwait", 0xCA: "clac", 0xCB: "stac", 0xCF: "encls",
             0xD0: "xgetbv", 0xD1: "xsetbv", 0xD4: "vmfunc", 0xD5: "xend", 0xD6: "xtest",
             0xD7: "enclu", 0xD9: "vmmcall", 0xDC: "stgi", 0xDD: "clgi",
             0xDE: "skinit", 0xEE: "rdpkru", 0xEF: "wrpkru", 0xF8: "swapgs",
             0xF9: "rdtscp", 0xFA: "monitorx", 0xFB: "mwaitx", 0xFC: "clzero"}
    if modrm in fixed:
        return fixed[modrm], ""
    ax = "%rax" if ins.mode == 64 else "%eax"
    if modrm in (0xD8, 0xDA, 0xDB):
        return {0xD8: "vmrun", 0xDA: "vmload", 0xDB: "vmsave"}[modrm], ax
    if modrm == 0xDF:
        return "invlpga", "%ecx, " + ax
    if sub == 4:
        return "smsw" + _SUFFIX[osz], ins.reg(ins.rm_field, osz)
    if sub == 6:
        return "lmsww", ins.reg(ins.rm_field, 2)
    raise _Bad()


def _group9(ins: _Insn) -> Tuple[str, str]:
    modrm = ins.read_modrm()
    sub = (modrm >> 3) & 7
    if ins.mem is not None:
        if sub == 1:
            return ("cmpxchg16b" if ins.rex_w else "cmpxchg8b"), ins.mem
        if sub == 4:
            return "xsavec" + ("64" if ins.rex_w else ""), ins.mem
        if sub == 3:
            return "xrstors" + ("64" if ins.rex_w else ""), ins.mem
        if sub == 5:
            return "xsaves" + ("64" if ins.rex_w else ""), ins.mem
        if sub == 6 and ins.opsize_prefix is False and not ins.rep:
            return "vmptrld", ins.mem
        if sub == 7 and not ins.rep:
            return "vmptrst", ins.mem
        raise _Bad()
    if sub in (6, 7):
        osz = ins.opsize()
        if sub == 7 and ins.rep == 0xF3:
            return "rdpid", ins.reg(ins.rm_field, 8 if ins.mode == 64 else 4)
        return ("rdrand" if sub == 6 else "rdseed") + _SUFFIX[osz], ins.reg(ins.rm_field, osz)
    raise _Bad()


def _group15(ins: _Insn) -> Tuple[str, str]:
    modrm = ins.read_modrm()
    sub = (modrm >> 3) & 7
    w64 = "64" if ins.rex_w else ""
    if ins.mem is not None:
        if ins.rep == 0xF3 or ins.opsize_prefix:
            if ins.opsize_prefix and sub == 6:
                return "clwb", ins.mem
            if ins.opsize_prefix and sub == 7:
                return "clflushopt", ins.mem
            raise _Bad()
        names = ["fxsave", "fxrstor", "ldmxcsr", "stmxcsr", "xsave", "xrstor",
                 "xsaveopt", "clflush"]
        name = names[sub]
        if sub in (0, 1, 4, 5, 6):
            name += w64
        return name, ins.mem
    if ins.rep == 0xF3 and sub < 4 and ins.mode == 64:
        name = ["rdfsbase", "rdgsbase", "wrfsbase", "wrgsbase"][sub]
        s = 8 if ins.rex_w else 4
        return name + _SUFFIX[s], ins.reg(ins.rm_field, s)
    if sub == 5:
        return "lfence", ""
    if sub == 6:
        return "mfence", ""
    if sub == 7:
        return "sfence", ""
    raise _Bad()


# ---------------------------------------------------------------------------
# MMX / SSE: operand kinds V (xmm reg), W (xmm/mem), P (mm reg), Q (mm/mem),
# and the table selects by the mandatory prefix: "" none, "66", "f3", "f2".
# ---------------------------------------------------------------------------

# Entries: opcode -> {prefix: (mnemonic, operands)}; the operand string uses
# the letters below with the Intel order; "mmx" entries go to P/Q without a
# prefix and V/W with 66.
def _mmx_pair(name: str) -> dict:
    return {"": (name, "P,Q"), "66": (name, "V,W")}


_SSE_TABLE: dict = {
    0x10: {"": ("movups", "V,W"), "66": ("movupd", "V,W"), "f3": ("movss", "V,W"),
           "f2": ("movsd", "V,W")},
    0x11: {"": ("movups", "W,V"), "66": ("movupd", "W,V"), "f3": ("movss", "W,V"),
           "f2": ("movsd", "W,V")},
    0x12: {"": ("movlps|movhlps", "V,W"), "66": ("movlpd", "V,M"), "f3": ("movsldup", "V,W"),
           "f2": ("movddup", "V,W")},
    0x13: {"": ("movlps", "M,V"), "66": ("movlpd", "M,V")},
    0x14: {"": ("unpcklps", "V,W"), "66": ("unpcklpd", "V,W")},
    0x15: {"": ("unpckhps", "V,W"), "66": ("unpckhpd", "V,W")},
    0x16: {"": ("movhps|movlhps", "V,W"), "66": ("movhpd", "V,M"), "f3": ("movshdup", "V,W")},
    0x17: {"": ("movhps", "M,V"), "66": ("movhpd", "M,V")},
    0x28: {"": ("movaps", "V,W"), "66": ("movapd", "V,W")},
    0x29: {"": ("movaps", "W,V"), "66": ("movapd", "W,V")},
    0x2A: {"": ("cvtpi2ps", "V,Q"), "66": ("cvtpi2pd", "V,Q"), "f3": ("cvtsi2ss", "V,Ey"),
           "f2": ("cvtsi2sd", "V,Ey")},
    0x2B: {"": ("movntps", "M,V"), "66": ("movntpd", "M,V")},
    0x2C: {"": ("cvttps2pi", "P,W"), "66": ("cvttpd2pi", "P,W"), "f3": ("cvttss2si", "Gy,W"),
           "f2": ("cvttsd2si", "Gy,W")},
    0x2D: {"": ("cvtps2pi", "P,W"), "66": ("cvtpd2pi", "P,W"), "f3": ("cvtss2si", "Gy,W"),
           "f2": ("cvtsd2si", "Gy,W")},
    0x2E: {"": ("ucomiss", "V,W"), "66": ("ucomisd", "V,W")},
    0x2F: {"": ("comiss", "V,W"), "66": ("comisd", "V,W")},
    0x50: {"": ("movmskps", "Gd,U"), "66": ("movmskpd", "Gd,U")},
    0x51: {"": ("sqrtps", "V,W"), "66": ("sqrtpd", "V,W"), "f3": ("sqrtss", "V,W"),
           "f2": ("sqrtsd", "V,W")},
    0x52: {"": ("rsqrtps", "V,W"), "f3": ("rsqrtss", "V,W")},
    0x53: {"": ("rcpps", "V,W"), "f3": ("rcpss", "V,W")},
    0x54: {"": ("andps", "V,W"), "66": ("andpd", "V,W")},
    0x55: {"": ("andnps", "V,W"), "66": ("andnpd", "V,W")},
    0x56: {"": ("orps", "V,W"), "66": ("orpd", "V,W")},
    0x57: {"": ("xorps", "V,W"), "66": ("xorpd", "V,W")},
    0x5A: {"": ("cvtps2pd", "V,W"), "66": ("cvtpd2ps", "V,W"), "f3": ("cvtss2sd", "V,W"),
           "f2": ("cvtsd2ss", "V,W")},
    0x5B: {"": ("cvtdq2ps", "V,W"), "66": ("cvtps2dq", "V,W"), "f3": ("cvttps2dq", "V,W")},
    0x6E: {"": ("movd", "P,Ey"), "66": ("movd", "V,Ey")},
    0x6F: {"": ("movq", "P,Q"), "66": ("movdqa", "V,W"), "f3": ("movdqu", "V,W")},
    0x70: {"": ("pshufw", "P,Q,Ib"), "66": ("pshufd", "V,W,Ib"), "f3": ("pshufhw", "V,W,Ib"),
           "f2": ("pshuflw", "V,W,Ib")},
    0x7C: {"66": ("haddpd", "V,W"), "f2": ("haddps", "V,W")},
    0x7D: {"66": ("hsubpd", "V,W"), "f2": ("hsubps", "V,W")},
    0x7E: {"": ("movd", "Ey,P"), "66": ("movd", "Ey,V"), "f3": ("movq", "V,W")},
    0x7F: {"": ("movq", "Q,P"), "66": ("movdqa", "W,V"), "f3": ("movdqu", "W,V")},
    0xC2: {"": ("cmp*ps", "V,W,Ib"), "66": ("cmp*pd", "V,W,Ib"), "f3": ("cmp*ss", "V,W,Ib"),
           "f2": ("cmp*sd", "V,W,Ib")},
    0xC4: {"": ("pinsrw", "P,Ed,Ib"), "66": ("pinsrw", "V,Ed,Ib")},
    0xC5: {"": ("pextrw", "Gd,N,Ib"), "66": ("pextrw", "Gd,U,Ib")},
    0xC6: {"": ("shufps", "V,W,Ib"), "66": ("shufpd", "V,W,Ib")},
    0xD0: {"66": ("addsubpd", "V,W"), "f2": ("addsubps", "V,W")},
    0xD6: {"66": ("movq", "W,V"), "f3": ("movq2dq", "V,N"), "f2": ("movdq2q", "P,U")},
    0xD7: {"": ("pmovmskb", "Gd,N"), "66": ("pmovmskb", "Gd,U")},
    0xE6: {"66": ("cvttpd2dq", "V,W"), "f3": ("cvtdq2pd", "V,W"), "f2": ("cvtpd2dq", "V,W")},
    0xE7: {"": ("movntq", "M,P"), "66": ("movntdq", "M,V")},
    0xF0: {"f2": ("lddqu", "V,M")},
    0xF7: {"": ("maskmovq", "P,N"), "66": ("maskmovdqu", "V,U")},
}
for _op, _name in {
        0x58: "add", 0x59: "mul", 0x5C: "sub", 0x5D: "min", 0x5E: "div", 0x5F: "max"}.items():
    _SSE_TABLE[_op] = {"": (_name + "ps", "V,W"), "66": (_name + "pd", "V,W"),
                       "f3": (_name + "ss", "V,W"), "f2": (_name + "sd", "V,W")}
for _op, _name in {
        0x60: "punpcklbw", 0x61: "punpcklwd", 0x62: "punpckldq", 0x63: "packsswb",
        0x64: "pcmpgtb", 0x65: "pcmpgtw", 0x66: "pcmpgtd", 0x67: "packuswb",
        0x68: "punpckhbw", 0x69: "punpckhwd", 0x6A: "punpckhdq", 0x6B: "packssdw",
        0x74: "pcmpeqb", 0x75: "pcmpeqw", 0x76: "pcmpeqd",
        0xD1: "psrlw", 0xD2: "psrld", 0xD3: "psrlq", 0xD4: "paddq", 0xD5: "pmullw",
        0xD8: "psubusb", 0xD9: "psubusw", 0xDA: "pminub", 0xDB: "pand", 0xDC: "paddusb",
        0xDD: "paddusw", 0xDE: "pmaxub", 0xDF: "pandn", 0xE0: "pavgb", 0xE1: "psraw",
        0xE2: "psrad", 0xE3: "pavgw", 0xE4: "pmulhuw", 0xE5: "pmulhw", 0xE8: "psubsb",
        0xE9: "psubsw", 0xEA: "pminsw", 0xEB: "por", 0xEC: "paddsb", 0xED: "paddsw",
        0xEE: "pmaxsw", 0xEF: "pxor", 0xF1: "psllw", 0xF2: "pslld", 0xF3: "psllq",
        0xF4: "pmuludq", 0xF5: "pmaddwd", 0xF6: "psadbw", 0xF8: "psubb", 0xF9: "psubw",
        0xFA: "psubd", 0xFB: "psubq", 0xFC: "paddb", 0xFD: "paddw", 0xFE: "paddd"}.items():
    _SSE_TABLE[_op] = _mmx_pair(_name)
_SSE_TABLE[0x6C] = {"66": ("punpcklqdq", "V,W")}
_SSE_TABLE[0x6D] = {"66": ("punpckhqdq", "V,W")}
for _op in (0x71, 0x72, 0x73):
    _SSE_TABLE[_op] = {"": ("shift", ""), "66": ("shift", "")}

_SHIFT_IMM = {
    0x71: {2: "psrlw", 4: "psraw", 6: "psllw"},
    0x72: {2: "psrld", 4: "psrad", 6: "pslld"},
    0x73: {2: "psrlq", 3: "psrldq", 6: "psllq", 7: "pslldq"},
}

# 0f 38 xx: SSSE3 / SSE4.1 / SSE4.2 (all MMX-or-66 unless noted)
_T38_MMX = {0x00: "pshufb", 0x01: "phaddw", 0x02: "phaddd", 0x03: "phaddsw",
            0x04: "pmaddubsw", 0x05: "phsubw", 0x06: "phsubd", 0x07: "phsubsw",
            0x08: "psignb", 0x09: "psignw", 0x0A: "psignd", 0x0B: "pmulhrsw",
            0x1C: "pabsb", 0x1D: "pabsw", 0x1E: "pabsd"}
_T38_66 = {0x10: "pblendvb", 0x14: "blendvps", 0x15: "blendvpd", 0x17: "ptest",
           0x20: "pmovsxbw", 0x21: "pmovsxbd", 0x22: "pmovsxbq", 0x23: "pmovsxwd",
           0x24: "pmovsxwq", 0x25: "pmovsxdq", 0x28: "pmuldq", 0x29: "pcmpeqq",
           0x2A: "movntdqa", 0x2B: "packusdw", 0x30: "pmovzxbw", 0x31: "pmovzxbd",
           0x32: "pmovzxbq", 0x33: "pmovzxwd", 0x34: "pmovzxwq", 0x35: "pmovzxdq",
           0x37: "pcmpgtq", 0x38: "pminsb", 0x39: "pminsd", 0x3A: "pminuw", 0x3B: "pminud",
           0x3C: "pmaxsb", 0x3D: "pmaxsd", 0x3E: "pmaxuw", 0x3F: "pmaxud", 0x40: "pmulld",
           0x41: "phminposuw", 0xDB: "aesimc", 0xDC: "aesenc", 0xDD: "aesenclast",
           0xDE: "aesdec", 0xDF: "aesdeclast"}
_T3A_66 = {0x08: ("roundps", "V,W,Ib"), 0x09: ("roundpd", "V,W,Ib"),
           0x0A: ("roundss", "V,W,Ib"), 0x0B: ("roundsd", "V,W,Ib"),
           0x0C: ("blendps", "V,W,Ib"), 0x0D: ("blendpd", "V,W,Ib"),
           0x0E: ("pblendw", "V,W,Ib"), 0x14: ("pextrb", "Ed,V,Ib"),
           0x15: ("pextrw", "Ed,V,Ib"), 0x16: ("pextr", "Ey,V,Ib"),
           0x17: ("extractps", "Ed,V,Ib"), 0x20: ("pinsrb", "V,Ed,Ib"),
           0x21: ("insertps", "V,W,Ib"), 0x22: ("pinsr", "V,Ey,Ib"),
           0x40: ("dpps", "V,W,Ib"), 0x41: ("dppd", "V,W,Ib"), 0x42: ("mpsadbw", "V,W,Ib"),
           0x44: ("pclmulqdq", "V,W,Ib"), 0x60: ("pcmpestrm", "V,W,Ib"),
           0x61: ("pcmpestri", "V,W,Ib"), 0x62: ("pcmpistrm", "V,W,Ib"),
           0x63: ("pcmpistri", "V,W,Ib"), 0xDF: ("aeskeygenassist", "V,W,Ib")}


def _prefix_key(ins: _Insn) -> str:
    # The last of f2/f3 wins over 66 as the mandatory prefix, as on hardware.
    # Capstone ignores mandatory prefixes in 16-bit code.
    if ins.mode == 16:
        return ""
    if ins.rep == 0xF3:
        return "f3"
    if ins.rep == 0xF2:
        return "f2"
    return "66" if ins.opsize_prefix else ""


def _sse_operands(ins: _Insn, spec: str) -> Tuple[List[str], Optional[int]]:
    ops: List[str] = []
    imm: Optional[int] = None
    for s in spec.split(","):
        k = s[0]
        if k == "V":
            ops.append("%%xmm%d" % ins.reg_field)
        elif k == "P":
            ops.append("%%mm%d" % ((ins.read_modrm() >> 3) & 7))
        elif k in "WU":
            ins.read_modrm()
            if ins.mem is not None:
                if k == "U":
                    raise _Bad()
                ops.append(ins.mem)
            else:
                ops.append("%%xmm%d" % ins.rm_field)
        elif k in "QN":
            ins.read_modrm()
            if ins.mem is not None:
                if k == "N":
                    raise _Bad()
                ops.append(ins.mem)
            else:
                ops.append("%%mm%d" % (ins.read_modrm() & 7))
        elif k == "M":
            ins.read_modrm()
            if ins.mem is None:
                raise _Bad()
            ops.append(ins.mem)
        elif k == "E":
            size = 8 if s[1] == "y" and ins.rex_w else 4
            ops.append(ins.rm(size))
        elif k == "G":
            size = 8 if s[1] == "y" and ins.rex_w else 4
            ops.append(ins.reg(ins.reg_field, size))
        elif k == "I":
            imm = ins.uimm(1)
            ops.append("$" + _hex(imm))
    return ops, imm


def _sse(ins: _Insn, op: int) -> Optional[Tuple[str, str]]:
    key = _prefix_key(ins)
    if op == 0x38:
        return _three_byte_38(ins, key)
    if op == 0x3A:
        return _three_byte_3a(ins, key)
    table = _SSE_TABLE[op]
    entry = table.get(key)
    if entry is None:
        # An f2/f3 that selects nothing here is ignored, as capstone does.
        key = "66" if ins.opsize_prefix else ""
        entry = table.get(key)
        if entry is None:
            raise _Bad()
    name, spec = entry
    if op in (0x71, 0x72, 0x73):
        modrm = ins.read_modrm()
        if ins.mem is not None:
            raise _Bad()
        sname = _SHIFT_IMM[op].get((modrm >> 3) & 7)
        if sname is None or (sname.endswith("dq") and key != "66"):
            raise _Bad()
        reg = ("%%xmm%d" % ins.rm_field) if key == "66" else ("%%mm%d" % (modrm & 7))
        return sname, "$" + _hex(ins.uimm(1)) + ", " + reg
    if "|" in name:
        ins.read_modrm()
        name = name.split("|")[0 if ins.mem is not None else 1]
    ops, imm = _sse_operands(ins, spec)
    if name in ("cvtsi2ss", "cvtsi2sd"):
        name += "q" if ins.rex_w else "l"
    if "*" in name:
        assert imm is not None
        if imm < 8:
            name = name.replace("*", _SSE_CMP[imm])
            ops = ops[:-1]
        else:
            name = name.replace("*", "")
    return name, ", ".join(reversed(ops))


def _three_byte_38(ins: _Insn, key: str) -> Tuple[str, str]:
    op = ins.u8()
    if op in (0xF0, 0xF1):
        if key == "f2":
            src = 1 if op == 0xF0 else (8 if ins.rex_w else 2 if ins.opsize_prefix else 4)
            dst = 8 if ins.rex_w else 4
            return "crc32" + _SUFFIX[src], ins.rm(src) + ", " + ins.reg(ins.reg_field, dst)
        if key in ("", "66"):
            osz = ins.opsize()
            ins.read_modrm()
            if ins.mem is None:
                raise _Bad()
            g = ins.reg(ins.reg_field, osz)
            name = "movbe" + _SUFFIX[osz]
            return name, (ins.mem + ", " + g) if op == 0xF0 else (g + ", " + ins.mem)
        raise _Bad()
    if op in _T38_MMX and key in ("", "66"):
        ops, _ = _sse_operands(ins, "V,W" if key == "66" else "P,Q")
        return _T38_MMX[op], ", ".join(reversed(ops))
    if op in _T38_66 and key == "66":
        name = _T38_66[op]
        ops, _ = _sse_operands(ins, "V,M" if op == 0x2A else "V,W")
        if op in (0x10, 0x14, 0x15):
            ops.append("%xmm0")
        return name, ", ".join(reversed(ops))
    raise _Bad()


def _three_byte_3a(ins: _Insn, key: str) -> Tuple[str, str]:
    op = ins.u8()
    if op == 0x0F and key in ("", "66"):
        ops, _ = _sse_operands(ins, "V,W,Ib" if key == "66" else "P,Q,Ib")
        return "palignr", ", ".join(reversed(ops))
    if op in _T3A_66 and key == "66":
        name, spec = _T3A_66[op]
        if name in ("pextr", "pinsr"):
            name += "q" if ins.rex_w else "d"
        ops, _ = _sse_operands(ins, spec)
        return name, ", ".join(reversed(ops))
    raise _Bad()


# ---------------------------------------------------------------------------
# VEX: only the BMI1/BMI2 general-purpose instructions
# ---------------------------------------------------------------------------

def _vex(ins: _Insn, first: int) -> Tuple[str, str]:
    b1 = ins.u8()
    if first == 0xC5:
        r = not (b1 & 0x80)
        x = b = False
        mmmmm = 1
        w = False
        vvvv = (~b1 >> 3) & 15
        pp = b1 & 3
    else:
        r = not (b1 & 0x80)
        x = not (b1 & 0x40)
        b = not (b1 & 0x20)
        mmmmm = b1 & 0x1F
        b2 = ins.u8()
        w = bool(b2 & 0x80)
        vvvv = (~b2 >> 3) & 15
        pp = b2 & 3
        if b2 & 4:
            raise _Bad()
    if ins.mode != 64:
        vvvv &= 7
    ins.rex = (8 if w else 0) | (4 if r else 0) | (2 if x else 0) | (1 if b else 0) | 0x40
    if ins.mode != 64:
        ins.rex &= 8
    op = ins.u8()
    size = 8 if w and ins.mode == 64 else 4
    vreg = ins.reg(vvvv, size)
    if mmmmm == 2:
        if op == 0xF2 and pp == 0:
            return "andn" + _SUFFIX[size], ins.rm(size) + ", " + vreg + ", " + \
                ins.reg(ins.reg_field, size)
        if op == 0xF3 and pp == 0:
            sub = (ins.read_modrm() >> 3) & 7
            names = {1: "blsr", 2: "blsmsk", 3: "blsi"}
            if sub not in names:
                raise _Bad()
            return names[sub] + _SUFFIX[size], ins.rm(size) + ", " + vreg
        if op == 0xF5:
            names = {0: "bzhi", 3: "pdep", 2: "pext"}
            if pp not in names:
                raise _Bad()
            if pp == 0:
                return "bzhi" + _SUFFIX[size], vreg + ", " + ins.rm(size) + ", " + \
                    ins.reg(ins.reg_field, size)
            return names[pp] + _SUFFIX[size], ins.rm(size) + ", " + vreg + ", " + \
                ins.reg(ins.reg_field, size)
        if op == 0xF6 and pp == 3:
            return "mulx" + _SUFFIX[size], ins.rm(size) + ", " + vreg + ", " + \
                ins.reg(ins.reg_field, size)
        if op == 0xF7:
            names = {0: "bextr", 1: "shlx", 2: "sarx", 3: "shrx"}
            return names[pp] + _SUFFIX[size], vreg + ", " + ins.rm(size) + ", " + \
                ins.reg(ins.reg_field, size)
    if mmmmm == 3 and op == 0xF0 and pp == 3:
        src = ins.rm(size)
        return "rorx" + _SUFFIX[size], "$" + _hex(ins.uimm(1)) + ", " + src + ", " + \
            ins.reg(ins.reg_field, size)
    raise _Bad()


# ---------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------

def _decode(ins: _Insn) -> Tuple[str, str]:
    m64 = ins.mode == 64
    while True:
        b = ins.u8()
        if b in _SEG_PREFIX:
            ins.seg = _SEG_PREFIX[b]
        elif b == 0x66:
            ins.opsize_prefix = True
        elif b == 0x67:
            ins.adsize_prefix = True
        elif b == 0xF0:
            ins.lock = True
            ins.hle = ins.rep
        elif b in (0xF2, 0xF3):
            ins.rep = b
            ins.lock = False
        elif m64 and 0x40 <= b < 0x50:
            ins.rex = b
            b = ins.u8()
            if b in _SEG_PREFIX or b in (0x66, 0x67, 0xF0, 0xF2, 0xF3) or 0x40 <= b < 0x50:
                # A REX that is not last is ignored.
                ins.rex = 0
                ins.pos -= 1
                continue
            break
        else:
            break
        if m64:
            ins.rex = 0
    if b == 0x0F:
        ins.op2_pos = ins.pos
        mnem, ops = _two_byte(ins, ins.u8())
    elif b in (0xC4, 0xC5) and (m64 or (ins.code[ins.pos:ins.pos + 1] or b"\0")[0] >= 0xC0):
        mnem, ops = _vex(ins, b)
    else:
        mnem, ops = _one_byte(ins, b)
    if ins.lock:
        if not _lockable(b, ins):
            raise _Bad()
        mnem = "lock " + mnem
        if ins.hle:
            mnem = ("xacquire " if ins.hle == 0xF2 else "xrelease ") + mnem
    elif ins.rep == 0xF2 and _is_branch(b, ins):
        mnem = "bnd " + mnem
    return mnem, ops


def _lockable(op: int, ins: _Insn) -> bool:
    if ins.mem is None:
        return False
    sub = (ins.modrm >> 3) & 7 if ins.modrm is not None else 0
    if op == 0x0F:
        op2 = ins.code[ins.op2_pos]
        return op2 in (0xAB, 0xB3, 0xBB, 0xB0, 0xB1, 0xC0, 0xC1) or \
            (op2 == 0xBA and sub >= 5) or (op2 == 0xC7 and sub == 1)
    if op < 0x40:
        return op & 7 < 4
    if 0x80 <= op <= 0x83:
        return sub != 7
    if op in (0x86, 0x87):
        return True
    if op in (0xF6, 0xF7):
        return sub in (2, 3)
    if op in (0xFE, 0xFF):
        return sub < 2
    return False


def _is_branch(op: int, ins: _Insn) -> bool:
    if op in (0xE8, 0xE9, 0xEB, 0xC2, 0xC3, 0xCA, 0xCB) or 0x70 <= op < 0x80:
        return True
    return op == 0xFF and ins.modrm is not None and (ins.modrm >> 3) & 7 in (2, 4)


def decode(code: bytes, pc: int, mode: int) -> Optional[Tuple[int, str, str]]:
    """Decode one instruction at the start of ``code`` (guest address ``pc``,
    ``mode`` 16, 32 or 64).  Returns (length, mnemonic, operands) or None if
    the bytes are not an instruction known to the disassembler."""
    ins = _Insn(code, pc, mode)
    try:
        mnem, ops = _decode(ins)
    except _Bad:
        return None
    return ins.pos, mnem, ops


def format_insn(pc: int, raw: bytes, mnem: str, ops: str) -> str:
    """One instruction as QEMU prints it: address, up to 8 bytes of
    encoding padded to a column, mnemonic and operands; longer encodings
    continue on lines of their own."""
    first = raw[:8]
    text = "0x%08x:  %s%s %-8s %s\n" % (
        pc, "".join("%02x " % c for c in first), " " * (3 * (8 - len(first))), mnem, ops)
    for i in range(8, len(raw), 8):
        text += "0x%08x:  %s\n" % (pc + i, " ".join("%02x" % c for c in raw[i:i + 8]))
    return text


def _one(code: bytes, pc: int, mode: int) -> Tuple[int, str]:
    r = decode(code, pc, mode)
    if r is None:
        return 1, format_insn(pc, code[:1], ".byte", "0x%02x" % code[0])
    n, mnem, ops = r
    return n, format_insn(pc, code[:n], mnem, ops)


def disas_lines(code: bytes, pc: int, mode: int) -> str:
    """Disassemble a whole buffer (a translation block) the way ``-d in_asm``
    shows it."""
    out = []
    off = 0
    while off < len(code):
        n, text = _one(code[off:off + 16], pc + off, mode)
        out.append(text)
        off += n
    return "".join(out)


def disassemble(read_bytes: Callable[[int, int], bytes], pc: int, count: int,
                mode: int) -> str:
    """``count`` instructions from ``pc`` for the monitor's ``x /Ni``.

    ``read_bytes(addr, n)`` returns the ``n`` bytes at ``addr`` or raises when
    they cannot all be read.  Memory is read as QEMU's monitor reads it: a
    64-byte window refilled before each instruction with at most the bytes up
    to the next 1 KiB boundary; a refill that fails ends the listing with
    ``0x<pc>: unable to read memory`` even if the instruction is already in
    the window (so ``x /3i 0xfffffff0`` shows one instruction, as in QEMU)."""
    out = []
    buf = b""
    mask = (1 << 64) - 1
    while count > 0:
        have = len(buf)
        end = (pc + have + 1 + 1023) & ~1023
        want = min(64 - have, end - pc)
        if want > 0:
            try:
                chunk = bytes(read_bytes((pc + have) & mask, want))
            except Exception:   # the caller's memory layer decides what is unreadable
                chunk = b""
            if len(chunk) != want:
                out.append("0x%08x: unable to read memory\n" % pc)
                break
            buf += chunk
        n, text = _one(buf, pc, mode)
        out.append(text)
        buf = buf[n:]
        pc = (pc + n) & mask
        count -= 1
    return "".join(out)


# Symbol lookups of the loaded images (user mode registers them), searched
# most recently registered first, as QEMU searches its symbol tables.
_symbol_lookups: List[Callable[[int], str]] = []


def register_symbols(lookup: Callable[[int], str]) -> None:
    """Add a lookup ``addr -> name or ""`` for the ``IN:`` line of in_asm."""
    _symbol_lookups.insert(0, lookup)


def lookup_symbol(addr: int) -> str:
    for lookup in _symbol_lookups:
        name = lookup(addr)
        if name:
            return name
    return ""


def in_asm_block(pc: int, code: bytes, mode: int, symbol: Optional[str] = None) -> str:
    """The ``-d in_asm`` record of one translation block: a rule, ``IN:``
    with the symbol the block starts in (if known), its instructions and an
    empty line."""
    if symbol is None:
        symbol = lookup_symbol(pc)
    return "----------------\nIN: %s\n%s\n" % (symbol, disas_lines(code, pc, mode))
