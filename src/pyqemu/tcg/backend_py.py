"""Python backend: IR -> Python source -> code object.

One translation block becomes one function ``tb(env)`` returning the exit
index (0/1 for ``goto_tb`` exits, 2 for ``lookup_and_goto_ptr``, the
``exit_tb`` value otherwise).  Globals are copied into locals on entry and
written back at every exit and before any op that needs them in the CPU state.
A ``goto_tb`` back to the block's own start becomes a ``continue`` of a loop
around the body, bounded by ``LOOP_LIMIT`` so that the execution loop still
polls interrupts.  Guest exceptions (``GuestFault`` from memory, exceptions
raised by helpers) are caught once per block, globals are written back and
the frontend's ``restore`` callback gets the ``insn_start`` data of the
faulting instruction.

Signed 64-bit values.  The IR's values are non-negative ints below 2**width,
and so is everything outside the generated code (CPU state, helpers, memory
slow paths).  Inside a block, 64-bit values may instead be held as signed
ints in [-2**63, 2**63) (two's complement): on PyPy an int above
``sys.maxsize`` is a heap-allocated bigint and every operation on it, or with
a constant such as 0xffffffffffffffff, costs some 30 times a machine-int
operation; and once an int is a bigint every result computed from it stays
one, whatever its value.  In the signed form user addresses and kernel
addresses (0xffff8880..., small negatives) are machine ints, masks become
small constants, and a wrap is a range test whose rare path normalizes
(``_tos``).  Each local gets one representation for the whole block
(``_plan``/``_reps``): "small" (known non-negative below 2**63: valid both
ways), "signed" or "raw" (the IR's own form: 32-bit values, helper results
that may be wider than 64 bits (XMM, x87) or not ints at all (the CPU
object), and anything computed from them by ops whose result on such values
is not their low 64 bits).  Conversions are emitted where a value crosses
from one to the other: at block entry and exit for globals, around helper
calls, at memory slow paths.  ``signed64()`` says whether blocks use the
signed form (PYQEMU_TCG_SIGNED64=0/1 overrides the default).
"""
from __future__ import annotations

import os
import struct
import sys
import types
from typing import Callable, Dict, List, Optional, Set, Tuple

from pyqemu.tcg.ir import (sdiv as _sdiv, srem as _srem, CALL_MAY_RAISE, CALL_READS_STATE, CALL_WRITES_STATE, MO_BE,
                           MO_SIGN, MO_SIZE, Block, Op, Temp)
from pyqemu.util import log

LOOP_LIMIT = 2000

_STRUCTS = {}
for _size, _ch in ((1, "b"), (2, "h"), (4, "i"), (8, "q")):
    for _signed in (False, True):
        for _be in (False, True):
            _fmt = (">" if _be else "<") + (_ch if _signed else _ch.upper())
            _STRUCTS[(_size, _signed, _be)] = struct.Struct(_fmt)

_COND = {"eq": "==", "ne": "!=", "ltu": "<", "geu": ">=", "leu": "<=", "gtu": ">",
         "lt": "<", "ge": ">=", "le": "<=", "gt": ">"}
_NEG = {"eq": "ne", "ne": "eq", "lt": "ge", "ge": "lt", "le": "gt", "gt": "le",
        "ltu": "geu", "geu": "ltu", "leu": "gtu", "gtu": "leu",
        "always": "never", "never": "always"}


_Q2 = struct.Struct("<QQ")
_PACK_Q = struct.Struct("<Q").pack
_UNPACK_SQ = struct.Struct("<q").unpack


def _tos(x: int) -> int:
    """The low 64 bits of ``x`` as a signed int, built from bytes so that on PyPy
    it is a machine int (arithmetic on a bigint gives a bigint, whatever its value)."""
    return _UNPACK_SQ(_PACK_Q(x & 0xffffffffffffffff))[0]


_M31 = 0x7fffffff


def _mulu64(a: int, b: int) -> Tuple[int, int]:
    """Unsigned 64x64->128 product of two values in the signed form: (low, high), signed form.

    The exact product is a bigint on PyPy (and so is everything computed from
    it); here it is assembled from 31-bit limbs whose partial products and
    column sums all stay below 2**63, i.e. machine ints."""
    a0, a1, a2 = a & _M31, (a >> 31) & _M31, (a >> 62) & 3
    b0, b1, b2 = b & _M31, (b >> 31) & _M31, (b >> 62) & 3
    c = a0 * b0
    r0 = c & _M31
    c = a0 * b1 + a1 * b0 + (c >> 31)
    r1 = c & _M31
    c = a0 * b2 + a1 * b1 + a2 * b0 + (c >> 31)
    r2 = c & _M31
    c = a1 * b2 + a2 * b1 + (c >> 31)
    r3 = c & _M31
    r4 = a2 * b2 + (c >> 31)
    lo = r0 | (r1 << 31) | ((r2 & 1) << 62)
    if r2 & 2:
        lo = lo - 0x7fffffffffffffff - 1
    hi = (r2 >> 2) | (r3 << 29) | ((r4 & 7) << 60)
    if r4 & 8:
        hi = hi - 0x7fffffffffffffff - 1
    return lo, hi


def _wsub(x: int, y: int) -> int:
    """x - y wrapped to 64 bits, signed form in and out, without leaving machine ints."""
    if (x < 0) == (y < 0):
        return x - y
    if x >= 0:
        d = x - 0x4000000000000000 - 0x4000000000000000 - y
        return d + 0x4000000000000000 + 0x4000000000000000 if d < 0 else d - 0x4000000000000000 - 0x4000000000000000
    d = x + 0x4000000000000000 + 0x4000000000000000 - y
    return d + 0x4000000000000000 + 0x4000000000000000 if d < 0 else d - 0x4000000000000000 - 0x4000000000000000


def _muls64(a: int, b: int) -> Tuple[int, int]:
    """Signed 64x64->128 product, signed form in and out (see _mulu64)."""
    lo, hi = _mulu64(a, b)
    if a < 0:
        hi = _wsub(hi, b)
    if b < 0:
        hi = _wsub(hi, a)
    return lo, hi


# representations of a local, ordered so that max() is their join
_NONE, SMALL, SIGNED, RAW = 0, 1, 2, 3
_MAXS = "0x7fffffffffffffff"
_MINS = "-0x8000000000000000"
_TWO64 = "0x10000000000000000"
_SMALL_LIMIT = 1 << 63

# 64-bit ops whose result is a function of their inputs' low 64 bits only:
# computed in the signed form even from raw inputs (truncated first)
_TRUNC = frozenset(("add", "sub", "mul", "neg", "andc", "shl", "ext8s", "ext16s", "ext32s",
                    "ext8u", "ext16u", "ext32u", "extract", "sextract", "deposit",
                    "bswap16", "bswap32", "bswap64"))
# ops whose result (any width) is always below 2**32 (masked by the code of the raw form)
_MASKED32 = frozenset(("add", "sub", "mul", "neg", "andc", "shl", "sar", "rotl", "rotr",
                       "ext8s", "ext16s", "ext32s", "ext8u", "ext16u", "ext32u", "setcond",
                       "extract", "sextract", "deposit", "ctpop", "bswap16", "bswap32",
                       "bswap64", "div", "rem", "mulu2", "muls2"))
# shifts and rotates: only the first input is a value, the count is masked anyway
_SHIFTS = frozenset(("shl", "shr", "sar", "rotl", "rotr"))

_settings: Dict[str, bool] = {}


def signed64() -> bool:
    """Whether new blocks hold 64-bit values in the signed form (see module docstring)."""
    if "signed" not in _settings:
        v = os.environ.get("PYQEMU_TCG_SIGNED64", "").strip()
        _settings["signed"] = v == "1" if v in ("0", "1") else _SIGNED_DEFAULT
    return _settings["signed"]


def set_signed64(on: Optional[bool]) -> None:
    """Force the form for blocks generated from now on; None: back to the default."""
    if on is None:
        _settings.pop("signed", None)
    else:
        _settings["signed"] = on


_SIGNED_DEFAULT = sys.implementation.name == "pypy"
_MODULE_GLOBALS = sys.implementation.name == "pypy"


def _lit(v: int) -> str:
    if v < 0:
        return "(-%s)" % _lit(-v)
    return hex(v) if v > 9 else str(v)


class _Unstructured(Exception):
    pass


class PyCodegen:
    """Generates the Python source of one block (see module docstring)."""

    def __init__(self, block: Block, mem, restore: Callable, signed: Optional[bool] = None) -> None:
        self.block = block
        self.mem = mem
        self.restore = restore
        self.signed = signed64() if signed is None else signed
        self.ns: Dict[str, object] = {}
        self.lines: List[str] = []
        self.helpers: Dict[object, str] = {}
        self.insn_data: List[Tuple] = []
        self.pending_ip = 0
        self.rep: Dict[Temp, int] = {}
        self._missing = RAW
        # signed globals whose local is known here to be non-negative (-1) or
        # a constant (its unsigned value): written back without a conversion
        self.known: Dict[Temp, int] = {}

    def analyze(self) -> None:
        """Globals and effects of the block (only needed when it is compiled to Python)."""
        block = self.block
        self.has_self_loop = any(op.opc == "goto_tb" and op.params[1] == block.pc
                                 for op in block.ops)
        self.may_raise = any(op.opc in ("qemu_ld", "qemu_st") or
                             op.opc == "call" and op.params[0].flags & CALL_MAY_RAISE
                             for op in block.ops)
        gl: Dict[str, Temp] = {}
        written: Set[str] = set()
        for op in block.ops:
            for t in op.ins + op.outs:
                if t.kind == "global":
                    gl[t.name] = t
            for t in op.outs:
                if t.kind == "global":
                    written.add(t.name)
            if op.opc == "call" and op.params[0].flags & CALL_WRITES_STATE:
                written.add("*")
        self.globals = list(gl.values())
        self.written = [t for t in self.globals if t.name in written or "*" in written]
        # A helper reading the CPU state may read the instruction count (the
        # virtual clock under -icount, rdtsc): the iterations of a self-loop
        # done so far are added to it before such a call (_c: those counted).
        self.count_early = self.has_self_loop and any(
            op.opc == "call" and op.params[0].flags & CALL_READS_STATE for op in block.ops)
        self.read = {t for op in block.ops for t in op.ins if t.kind == "global"}
        if os.environ.get("PYQEMU_TCG_SIGNED64") == "loops":
            self.signed = self.has_self_loop or type(self).__name__ == "RegionCodegen"
        self._reps()

    # -- representations (module docstring, "Signed 64-bit values") --------
    def rep_of(self, t: Temp) -> int:
        if t.kind == "const":
            return SMALL if t.value < _SMALL_LIMIT else SIGNED
        return self.rep.get(t, self._missing)

    def _reps(self) -> None:
        self.rep = rep = {}
        if not self.signed:
            return
        ops = self.block.ops
        # A 64-bit global is signed when a 64-bit op other than a helper call
        # computes with it; one only passed along (the CPU object) stays raw.
        touched = set()
        for op in ops:
            if op.width != 64 or op.opc == "call":
                continue
            for t in op.outs:
                touched.add(t)
            if op.opc != "mov":
                touched.update(op.ins)
        for t in self.globals:
            rep[t] = SIGNED if t.width == 64 and t in touched else RAW
        # every local holds the join of what its definitions produce
        self._missing = _NONE
        changed = True
        while changed:
            changed = False
            for op in ops:
                if not op.outs:
                    continue
                for t, r in zip(op.outs, self._plan(op)[1]):
                    if r > rep.get(t, _NONE):
                        rep[t] = r
                        changed = True
        self._missing = RAW

    def _plan(self, op: Op) -> Tuple[int, List[int]]:
        """(form the op computes in, representation of each output as computed)."""
        opc = op.opc
        n = len(op.outs)
        if not self.signed or opc == "call":
            return RAW, [RAW] * n
        reps = [self.rep_of(t) for t in op.ins]
        if opc == "qemu_ld":
            memop = op.params[0]
            size = 1 << (memop & MO_SIZE)
            if op.width != 64:
                return RAW, [SMALL if size <= 4 else RAW]
            if size > 8:
                return RAW, [RAW]
            return SIGNED, [SIGNED if size == 8 or memop & MO_SIGN else SMALL]
        if op.width != 64:
            # the raw form; its result is small when masked or computed from small values
            if opc in _MASKED32 or opc == "and" and SMALL in reps:
                return RAW, [SMALL] * n
            vals = reps[2:] if opc == "movcond" else reps
            small = opc != "clz" and all(r <= SMALL for r in vals)
            return RAW, [SMALL if small else RAW] * n
        if opc in _TRUNC:
            if opc in ("ext8u", "ext16u", "ext32u", "bswap16", "bswap32") or \
                    opc == "extract" and op.params[1] < 64:
                return SIGNED, [SMALL]
            return SIGNED, [SIGNED]
        if opc == "mov":
            return (RAW if reps[0] == RAW else SIGNED), [reps[0]]
        vals = reps[:1] if opc in _SHIFTS else reps[2:] if opc == "movcond" else reps
        raw = RAW in vals
        if opc == "and":
            if SMALL in reps:
                return (RAW if raw else SIGNED), [SMALL]
            return (RAW, [RAW]) if raw else (SIGNED, [SIGNED])
        if opc in ("or", "xor"):
            if raw:
                return RAW, [RAW]
            return SIGNED, [SMALL if all(r <= SMALL for r in reps) else SIGNED]
        if opc in ("setcond", "ctpop"):
            return (RAW if raw else SIGNED), [SMALL]
        if raw:
            # from a raw value (maybe wider than 64 bits) the IR's own form, exactly
            if opc == "ctz":
                return RAW, [SMALL if reps[1] <= SMALL else RAW]
            return RAW, [RAW] * n
        if opc == "shr":
            c = op.ins[1]
            if c.kind == "const" and c.value & 63:
                return SIGNED, [SMALL]
            return SIGNED, [max(SMALL, reps[0])]
        if opc in ("ctz", "clz"):
            return SIGNED, [max(SMALL, reps[1])]
        if opc == "movcond":
            return SIGNED, [max(SMALL, reps[2], reps[3])]
        if opc in ("divu", "remu") and all(r <= SMALL for r in reps):
            return SIGNED, [SMALL]
        return SIGNED, [SIGNED] * n

    # -- names and expressions --------------------------------------------
    def v(self, t: Temp) -> str:
        if t.kind == "const":
            return _lit(t.value)
        if t.kind == "global":
            return "g_" + t.name
        return "t%d" % t.idx

    def val(self, t: Temp, want: int) -> str:
        """``t`` as an expression in representation ``want`` (SIGNED or RAW)."""
        if t.kind == "const":
            v = t.value
            if want == SIGNED and _SMALL_LIMIT <= v < (1 << 64):
                v -= 1 << 64
            return _lit(v)
        name = self.v(t)
        r = self.rep_of(t)
        if want == RAW and r == SIGNED:
            return "(%s if %s >= 0 else %s + %s)" % (name, name, name, _TWO64)
        if want == SIGNED and r == RAW:
            return "(%s if %s <= %s else _tos(%s))" % (name, name, _MAXS, name)
        return name

    def _gload(self, t: Temp) -> List[str]:
        name = self.v(t)
        if t.container:
            line = "%s = _c_%s[%d]" % (name, t.container, t.index)
        else:
            line = "%s = env.%s" % (name, t.name)
        if self.rep_of(t) == SIGNED and t in self.read:
            # A global the block only writes keeps its raw value until then:
            # writing back a non-negative value needs no conversion.
            # A value below 2**63 may still be a PyPy bigint (computed with a
            # 64-bit mask by a helper or the interpreter tier; such ints stay
            # bigints): a round trip through _nl, an int-strategy list, makes it
            # a machine int, and costs nothing for one that is already (the
            # JIT keeps the list virtual).  _nl is the call's own: threads run
            # the same block.
            return [line, "if %s > %s: %s = _tos(%s)" % (name, _MAXS, name, name),
                    "else: _nl[0] = %s; %s = _nl[0]" % (name, name)]
        return [line]

    def _gstore(self, t: Temp) -> str:
        k = self.known.get(t)
        if k is None:
            val = self.val(t, RAW)
            if val.startswith("("):
                val = val[1:-1]
        else:
            val = self.v(t) if k < 0 else _lit(k)
        if t.container:
            return "_c_%s[%d] = %s" % (t.container, t.index, val)
        return "env.%s = %s" % (t.name, val)

    def writeback(self, ind: str, which=None) -> None:
        for t in (self.written if which is None else which):
            self.lines.append(ind + self._gstore(t))

    def reload(self, ind: str) -> None:
        for t in self.globals:
            for line in self._gload(t):
                self.lines.append(ind + line)
        # globals left unconverted hold the CPU state's own (non-negative) values
        self.known = {t: -1 for t in self.globals if self.rep_of(t) == SIGNED and t not in self.read}

    def _note_defs(self, op: Op) -> None:
        """Track what the globals ``op`` writes are known to hold (see ``known``)."""
        known = self.known
        nat = None
        for i, t in enumerate(op.outs):
            if t.kind != "global":
                continue
            known.pop(t, None)
            if self.rep_of(t) != SIGNED:
                continue
            src = op.ins[0] if op.opc == "mov" else None
            if src is not None and src.kind == "const":
                known[t] = src.value
            elif src is not None and src in known:
                known[t] = known[src]
            else:
                if nat is None:
                    nat = self._plan(op)[1]
                if nat[i] == SMALL:
                    known[t] = -1

    @staticmethod
    def _meet(a: Dict[Temp, int], b: Dict[Temp, int]) -> Dict[Temp, int]:
        """What is known after either of two paths."""
        out = {}
        for t, x in a.items():
            y = b.get(t)
            if y is None:
                continue
            if x == y:
                out[t] = x
            elif x < _SMALL_LIMIT and y < _SMALL_LIMIT:
                out[t] = -1
        return out

    def _ukey(self, t: Temp) -> str:
        """An int ordered as ``t``'s unsigned 64-bit value, from the signed form."""
        if t.kind == "const":
            return _lit(t.value - _SMALL_LIMIT)
        return "(%s ^ %s)" % (self.val(t, SIGNED), _MINS)

    def cond(self, cond: str, ta: Temp, tb: Temp, w: int) -> str:
        if cond == "always":
            return "True"
        if cond == "never":
            return "False"
        ra, rb = self.rep_of(ta), self.rep_of(tb)
        if self.signed and w == 64 and ra != RAW and rb != RAW:
            if cond in ("ltu", "geu", "leu", "gtu") and (ra == SIGNED or rb == SIGNED):
                return "%s %s %s" % (self._ukey(ta), _COND[cond], self._ukey(tb))
            return "%s %s %s" % (self.val(ta, SIGNED), _COND[cond], self.val(tb, SIGNED))
        a, b = self.val(ta, RAW), self.val(tb, RAW)
        if cond in ("lt", "ge", "le", "gt"):
            s = hex(1 << (w - 1))
            return "(%s ^ %s) %s (%s ^ %s)" % (a, s, _COND[cond], b, s)
        return "%s %s %s" % (a, _COND[cond], b)

    def helper(self, fn) -> str:
        name = self.helpers.get(fn)
        if name is None:
            name = "_h%d" % len(self.helpers)
            self.helpers[fn] = name
            self.ns[name] = fn
        return name

    def expr(self, op: Op) -> str:
        """Python expression for the single output of a pure op, in the IR's raw form."""
        opc, w = op.opc, op.width
        m = hex((1 << w) - 1)
        a = self.val(op.ins[0], RAW) if op.ins else ""
        b = self.val(op.ins[1], RAW) if len(op.ins) > 1 else ""
        if opc == "mov":
            return a
        if opc in ("add", "sub", "mul"):
            return "(%s %s %s) & %s" % (a, {"add": "+", "sub": "-", "mul": "*"}[opc], b, m)
        if opc == "and":
            return "%s & %s" % (a, b)
        if opc == "or":
            return "%s | %s" % (a, b)
        if opc == "xor":
            return "%s ^ %s" % (a, b)
        if opc == "andc":
            return "%s & ~%s & %s" % (a, b, m)
        if opc == "neg":
            return "-%s & %s" % (a, m)
        if opc == "not":
            return "%s ^ %s" % (a, m)
        if opc == "shl":
            return "(%s << (%s & %d)) & %s" % (a, b, w - 1, m)
        if opc == "shr":
            return "%s >> (%s & %d)" % (a, b, w - 1)
        if opc == "sar":
            s = hex(1 << (w - 1))
            return "(((%s ^ %s) - %s) >> (%s & %d)) & %s" % (a, s, s, b, w - 1, m)
        if opc in ("rotl", "rotr"):
            n = "(%s & %d)" % (b, w - 1)
            if opc == "rotr":
                n = "((%d - %s) & %d)" % (w, n, w - 1)
            return "((%s << %s) | (%s >> (%d - %s))) & %s" % (a, n, a, w, n, m)
        if opc in ("ext8s", "ext16s", "ext32s"):
            bits = int(opc[3:-1])
            s = hex(1 << (bits - 1))
            return "(((%s & %s) ^ %s) - %s) & %s" % (a, hex((1 << bits) - 1), s, s, m)
        if opc in ("ext8u", "ext16u", "ext32u"):
            return "%s & %s" % (a, hex((1 << int(opc[3:-1])) - 1))
        if opc == "setcond":
            return "1 if %s else 0" % self.cond(op.params[0], op.ins[0], op.ins[1], w)
        if opc == "movcond":
            return "%s if %s else %s" % (self.val(op.ins[2], RAW),
                                         self.cond(op.params[0], op.ins[0], op.ins[1], w),
                                         self.val(op.ins[3], RAW))
        if opc == "extract":
            ofs, ln = op.params
            return "(%s >> %d) & %s" % (a, ofs, hex((1 << ln) - 1))
        if opc == "sextract":
            ofs, ln = op.params
            s = hex(1 << (ln - 1))
            return "((((%s >> %d) & %s) ^ %s) - %s) & %s" % (a, ofs, hex((1 << ln) - 1), s, s, m)
        if opc == "deposit":
            ofs, ln = op.params
            fm = ((1 << ln) - 1) << ofs
            return "(%s & %s) | ((%s << %d) & %s)" % (a, hex(((1 << w) - 1) & ~fm), b, ofs, hex(fm))
        if opc == "ctpop":
            return "bin(%s).count('1')" % a
        if opc == "clz":
            return "(%d - %s.bit_length()) if %s else %s" % (w, a, a, b)
        if opc == "ctz":
            return "((%s & -%s).bit_length() - 1) if %s else %s" % (a, a, a, b)
        if opc in ("bswap16", "bswap32", "bswap64"):
            n = int(opc[5:]) // 8
            return "int.from_bytes((%s & %s).to_bytes(%d, 'little'), 'big')" % (
                a, hex((1 << (8 * n)) - 1), n)
        if opc in ("divu", "remu"):
            return "%s %s %s" % (a, "//" if opc == "divu" else "%", b)
        if opc in ("div", "rem"):
            s = hex(1 << (w - 1))
            sa, sb = "((%s ^ %s) - %s)" % (a, s, s), "((%s ^ %s) - %s)" % (b, s, s)
            fn = "_sdiv" if opc == "div" else "_srem"
            return "%s(%s, %s) & %s" % (fn, sa, sb, m)
        raise NotImplementedError("python backend: op %s" % opc)

    def _range(self, t: Temp) -> Tuple[int, int]:
        """Bounds of ``t``'s value in the signed form."""
        if t.kind == "const":
            v = t.value
            v = v - (1 << 64) if _SMALL_LIMIT <= v < (1 << 64) else v
            return v, v
        if self.rep_of(t) == SMALL:
            return 0, _SMALL_LIMIT - 1
        return -_SMALL_LIMIT, _SMALL_LIMIT - 1

    def _wrap(self, op: Op) -> Tuple[bool, bool]:
        """Whether the exact result of add/sub/mul/neg may be above / below the signed range."""
        lo_a, hi_a = self._range(op.ins[0])
        if op.opc == "neg":
            lo, hi = -hi_a, -lo_a
        else:
            lo_b, hi_b = self._range(op.ins[1])
            if op.opc == "add":
                lo, hi = lo_a + lo_b, hi_a + hi_b
            elif op.opc == "sub":
                lo, hi = lo_a - hi_b, hi_a - lo_b
            else:
                p = (lo_a * lo_b, lo_a * hi_b, hi_a * lo_b, hi_a * hi_b)
                lo, hi = min(p), max(p)
        return hi >= _SMALL_LIMIT, lo < -_SMALL_LIMIT

    def expr_signed(self, op: Op) -> Tuple[str, object]:
        """(expression, wrap) of a 64-bit op in the signed form; wrap says whether the
        result may leave [-2**63, 2**63): False, True, or (above, below) when known."""
        opc = op.opc
        ins = op.ins
        a = self.val(ins[0], SIGNED) if ins else ""
        b = self.val(ins[1], SIGNED) if len(ins) > 1 else ""
        if opc in ("add", "sub"):
            if ins[1].kind == "const" and b.startswith("(-"):
                # x + (-8) reads better as x - 8
                return "%s %s %s" % (a, "-" if opc == "add" else "+", b[2:-1]), self._wrap(op)
            return "%s %s %s" % (a, "+" if opc == "add" else "-", b), self._wrap(op)
        if opc == "mul":
            return "%s * %s" % (a, b), self._wrap(op)
        if opc == "and":
            return "%s & %s" % (a, b), False
        if opc == "or":
            return "%s | %s" % (a, b), False
        if opc == "xor":
            return "%s ^ %s" % (a, b), False
        if opc == "andc":
            return "%s & ~%s" % (a, b), False
        if opc == "neg":
            return "-%s" % a, self._wrap(op)
        if opc == "not":
            return "~%s" % a, False
        if opc in _SHIFTS:
            const = ins[1].kind == "const"
            n = str(ins[1].value & 63) if const else "(%s & 63)" % b
            if opc == "shl":
                return "%s << %s" % (a, n), True
            if opc == "sar":
                return "%s >> %s" % (a, n), False
            if opc == "shr":
                if const:
                    k = ins[1].value & 63
                    return (a, False) if k == 0 else ("(%s >> %d) & %s" % (a, k, hex((1 << (64 - k)) - 1)),
                                                      False)
                return "((%s >> %s) & (%s >> (%s - 1)) if %s else %s)" % (a, n, _MAXS, n, n, a), False
            if opc == "rotr":
                n = str((64 - ins[1].value) & 63) if const else "((64 - %s) & 63)" % n
            if n == "0":
                return a, False
            if const:
                k = int(n)
                return "(%s << %d) | ((%s >> %d) & %s)" % (a, k, a, 64 - k, hex((1 << k) - 1)), True
            return "(%s << %s) | ((%s >> (64 - %s)) & ((1 << %s) - 1))" % (a, n, a, n, n), True
        if opc in ("ext8s", "ext16s", "ext32s"):
            bits = int(opc[3:-1])
            s = hex(1 << (bits - 1))
            return "((%s & %s) ^ %s) - %s" % (a, hex((1 << bits) - 1), s, s), False
        if opc in ("ext8u", "ext16u", "ext32u"):
            return "%s & %s" % (a, hex((1 << int(opc[3:-1])) - 1)), False
        if opc == "setcond":
            return "1 if %s else 0" % self.cond(op.params[0], ins[0], ins[1], 64), False
        if opc == "extract":
            ofs, ln = op.params
            if ln >= 64:
                return a, False
            return "(%s >> %d) & %s" % (a, ofs, hex((1 << ln) - 1)), False
        if opc == "sextract":
            ofs, ln = op.params
            if ln >= 64:
                return a, False
            s = hex(1 << (ln - 1))
            return "(((%s >> %d) & %s) ^ %s) - %s" % (a, ofs, hex((1 << ln) - 1), s, s), False
        if opc == "deposit":
            ofs, ln = op.params
            if ln >= 64:
                return b, False
            fm = ((1 << ln) - 1) << ofs
            keep = (((1 << 64) - 1) & ~fm ^ (1 << 63)) - (1 << 63)
            lm = hex((1 << ln) - 1)
            if ofs + ln < 64:
                return "(%s & %s) | ((%s & %s) << %d)" % (a, _lit(keep), b, lm, ofs), False
            # the field reaches bit 63: its top bit becomes the sign
            s = hex(1 << (ln - 1))
            return "(%s & %s) | ((((%s & %s) ^ %s) - %s) << %d)" % (a, _lit(keep), b, lm, s, s, ofs), False
        if opc == "ctpop":
            return "(bin(%s).count('1') if %s >= 0 else 64 - bin(~%s).count('1'))" % (a, a, a), False
        if opc == "clz":
            return "(64 - %s.bit_length() if %s > 0 else (0 if %s else %s))" % (a, a, a, b), False
        if opc == "ctz":
            return "(((%s & -%s).bit_length() - 1) if %s else %s)" % (a, a, a, b), False
        if opc == "bswap16":
            return "int.from_bytes((%s & 0xffff).to_bytes(2, 'little'), 'big')" % a, False
        if opc == "bswap32":
            return "int.from_bytes((%s & 0xffffffff).to_bytes(4, 'little'), 'big')" % a, False
        if opc == "bswap64":
            return "int.from_bytes((%s).to_bytes(8, 'little', signed=True), 'big', signed=True)" % a, False
        if opc == "div":
            return "_sdiv(%s, %s)" % (a, b), True          # MIN / -1
        if opc == "rem":
            return "_srem(%s, %s)" % (a, b), False
        if opc in ("divu", "remu"):
            e = "%s %s %s" % (self.val(ins[0], RAW), "//" if opc == "divu" else "%", self.val(ins[1], RAW))
            if self.rep_of(ins[0]) <= SMALL and self.rep_of(ins[1]) <= SMALL:
                return e, False
            return "_tos(%s)" % e, False
        raise NotImplementedError("python backend: op %s" % opc)

    def _to_rep(self, ind: str, name: str, have: int, want: int) -> None:
        """Convert local ``name`` in place from representation ``have`` to ``want``."""
        if have == SIGNED and want == RAW:
            self.lines.append("%sif %s < 0: %s += %s" % (ind, name, name, _TWO64))

    def pure(self, op: Op, ind: str) -> None:
        out = op.outs[0]
        name = self.v(out)
        target = self.rep_of(out)
        L = self.lines
        if op.opc == "mov" or op.opc == "movcond" and self.signed and op.width == 64:
            want = RAW if target == RAW else SIGNED
            if op.opc == "mov":
                L.append("%s%s = %s" % (ind, name, self.val(op.ins[0], want)))
            else:
                L.append("%s%s = %s if %s else %s" % (
                    ind, name, self.val(op.ins[2], want),
                    self.cond(op.params[0], op.ins[0], op.ins[1], 64), self.val(op.ins[3], want)))
            return
        mode, nat = self._plan(op)
        if mode == RAW:
            L.append("%s%s = %s" % (ind, name, self.expr(op)))
            return
        e, wrap = self.expr_signed(op)
        L.append("%s%s = %s" % (ind, name, e))
        above, below = (wrap, wrap) if isinstance(wrap, bool) else wrap
        # the test costs bytecodes on every run (PyPy often interprets blocks): one side when it can
        if above and below:
            L.append("%sif not %s <= %s <= %s: %s = _tos(%s)" % (ind, _MINS, name, _MAXS, name, name))
        elif above:
            L.append("%sif %s > %s: %s = _tos(%s)" % (ind, name, _MAXS, name, name))
        elif below:
            L.append("%sif %s < %s: %s = _tos(%s)" % (ind, name, _MINS, name, name))
        self._to_rep(ind, name, nat[0], target)

    # -- statements ----------------------------------------------------------
    def stmt(self, op: Op, ind: str, k: int) -> None:
        self._stmt(op, ind, k)
        if op.outs:
            self._note_defs(op)

    def _stmt(self, op: Op, ind: str, k: int) -> None:
        L = self.lines
        opc = op.opc
        if opc == "insn_start":
            # _ip is only stored right before an op that may raise (see _mark_ip)
            self.pending_ip = len(self.insn_data)
            self.insn_data.append(op.params)
        elif opc == "qemu_ld":
            self._mark_ip(ind)
            self.load(op, ind)
        elif opc == "qemu_st":
            self._mark_ip(ind)
            self.store(op, ind)
        elif opc == "call":
            h = op.params[0]
            if h.flags & CALL_MAY_RAISE:
                self._mark_ip(ind)
            if h.flags & CALL_READS_STATE:
                self.writeback(ind)
                self.count_so_far(ind)
            args = ", ".join(self.val(t, RAW) for t in op.ins)
            call = "%s(%s)" % (self.helper(h.fn), args)
            if not op.outs:
                L.append(ind + call)
            elif len(op.outs) == 1:
                L.append("%s%s = %s" % (ind, self.v(op.outs[0]), call))
            else:
                L.append("%s%s = %s" % (ind, ", ".join(self.v(t) for t in op.outs), call))
            if h.flags & CALL_WRITES_STATE:
                self.reload(ind)
        elif opc in ("mulu2", "muls2"):
            self.mul2(op, ind)
        elif opc == "goto_tb":
            n, dest = op.params
            if dest == self.block.pc and self.has_self_loop:
                L.append("%sif _it < %d:" % (ind, LOOP_LIMIT))
                L.append("%s    _it += 1" % ind)
                if self.state_machine:
                    L.append("%s    _L = 0" % ind)
                L.append("%s    continue" % ind)
            self.exit(ind, str(n))
        elif opc == "exit_tb":
            self.exit(ind, str(op.params[0]))
        elif opc == "lookup_and_goto_ptr":
            self.exit(ind, "2")
        else:
            self.pure(op, ind)

    def mul2(self, op: Op, ind: str) -> None:
        L = self.lines
        w = op.width
        lo, hi = self.v(op.outs[0]), self.v(op.outs[1])
        mode = self._plan(op)[0]
        if mode == RAW:
            a, b = self.val(op.ins[0], RAW), self.val(op.ins[1], RAW)
            if op.opc == "muls2":
                s = hex(1 << (w - 1))
                a = "((%s ^ %s) - %s)" % (a, s, s)
                b = "((%s ^ %s) - %s)" % (b, s, s)
            L.append("%s_x = %s * %s" % (ind, a, b))
            L.append("%s%s = _x & %s" % (ind, lo, hex((1 << w) - 1)))
            L.append("%s%s = (_x >> %d) & %s" % (ind, hi, w, hex((1 << w) - 1)))
            return
        # never the 128-bit product itself: a bigint on PyPy (see _mulu64)
        fn = "_muls64" if op.opc == "muls2" else "_mulu64"
        self.ns[fn] = _muls64 if op.opc == "muls2" else _mulu64
        L.append("%s%s, %s = %s(%s, %s)" % (ind, lo, hi, fn, self.val(op.ins[0], SIGNED),
                                            self.val(op.ins[1], SIGNED)))
        for t, name in ((op.outs[0], lo), (op.outs[1], hi)):
            self._to_rep(ind, name, SIGNED, self.rep_of(t))

    def _mark_ip(self, ind: str) -> None:
        # In structured code a branch may skip an earlier store of _ip, so the
        # value is stored at every may-raise op (cheap, and always correct).
        self.lines.append("%s_ip = %d" % (ind, self.pending_ip))

    def count_so_far(self, ind: str) -> None:
        """Before a helper that reads the CPU state: the count up to this iteration's start."""
        if self.count_early:
            self.lines.append("%senv.insn_count += (_it - _c) * %d" % (ind, self.block.ninsns))
            self.lines.append("%s_c = _it" % ind)

    def exit(self, ind: str, value: str) -> None:
        self.writeback(ind)
        if self.count_early:
            self.lines.append("%senv.insn_count += (_it - _c) * %d" % (ind, self.block.ninsns))
        elif self.has_self_loop:
            self.lines.append("%senv.insn_count += _it * %d" % (ind, self.block.ninsns))
        self.lines.append("%sreturn %s" % (ind, value))

    def _struct(self, size: int, signed: bool, be: bool, kind: str) -> str:
        name = "_%s%d%s%s" % (kind, size, "s" if signed else "", "b" if be else "")
        if name not in self.ns:
            s = _STRUCTS[(size, signed, be)]
            self.ns[name] = s.unpack_from if kind == "u" else s.pack_into
        return name

    def _address(self, t: Temp) -> Tuple[str, str, str]:
        """(address, its page number, its unsigned value) for a memory access."""
        if self.rep_of(t) == SIGNED:
            a = self.val(t, SIGNED)
            # the fast tables are keyed by the unsigned page number
            return a, "(%s >> 12) & 0xfffffffffffff" % a, self.val(t, RAW)
        a = self.val(t, RAW)
        return a, "%s >> 12" % a, a

    def load(self, op: Op, ind: str) -> None:
        memop = op.params[0]
        size = 1 << (memop & MO_SIZE)
        signed, be = bool(memop & MO_SIGN), bool(memop & MO_BE)
        d = self.v(op.outs[0])
        a, page, ua = self._address(op.ins[0])
        L = self.lines
        m = hex((1 << op.width) - 1)
        if size > 8:
            # 128-bit: two 64-bit halves from the page when it does not cross
            self.ns["_u128"] = _Q2.unpack_from
            L.append("%s_p = _R(%s)" % (ind, page))
            L.append("%sif _p is not None and (%s & 4095) <= %d:" % (ind, a, 4096 - size))
            L.append("%s    _lo, _hi = _u128(_p, %s & 4095)" % (ind, a))
            L.append("%s    %s = _lo | (_hi << 64)" % (ind, d))
            L.append("%selse:" % ind)
            L.append("%s    %s = _LD(%s, %d)" % (ind, d, ua, size))
            return
        mode, nat = self._plan(op)
        # the signed form reads 8-byte values as signed (struct 'q'): never a bigint
        sfast = signed or mode == SIGNED and size == 8
        fn = self._struct(size, sfast, be, "u")
        L.append("%s_p = _R(%s)" % (ind, page))
        if size == 1:
            L.append("%sif _p is not None:" % ind)
        else:
            L.append("%sif _p is not None and (%s & 4095) <= %d:" % (ind, a, 4096 - size))
        val = "%s(_p, %s & 4095)[0]" % (fn, a)
        if signed and mode == RAW:
            val += " & " + m
        L.append("%s    %s = %s" % (ind, d, val))
        L.append("%selse:" % ind)
        slow = "_LD(%s, %d)" % (ua, size)
        if mode == SIGNED and size == 8:
            if be:
                slow = "int.from_bytes(%s.to_bytes(8, 'little'), 'big', signed=True)" % slow
            else:
                slow = "_tos(%s)" % slow
        else:
            if be:
                slow = "int.from_bytes(%s.to_bytes(%d, 'little'), 'big')" % (slow, size)
            if signed:
                s = hex(1 << (size * 8 - 1))
                slow = "((%s ^ %s) - %s)" % (slow, s, s)
                if mode == RAW:
                    slow += " & " + m
        L.append("%s    %s = %s" % (ind, d, slow))
        self._to_rep(ind, d, nat[0], self.rep_of(op.outs[0]))

    def store(self, op: Op, ind: str) -> None:
        memop = op.params[0]
        size = 1 << (memop & MO_SIZE)
        be = bool(memop & MO_BE)
        vt = op.ins[0]
        a, page, ua = self._address(op.ins[1])
        L = self.lines
        if size > 8:
            val = self.val(vt, RAW)
            self.ns["_p128"] = _Q2.pack_into
            L.append("%s_p = _W(%s)" % (ind, page))
            L.append("%sif _p is not None and (%s & 4095) <= %d:" % (ind, a, 4096 - size))
            L.append("%s    _p128(_p, %s & 4095, %s & 0xffffffffffffffff, (%s >> 64) & 0xffffffffffffffff)"
                     % (ind, a, val, val))
            L.append("%selse:" % ind)
            L.append("%s    _ST(%s, %s, %d)" % (ind, ua, val, size))
            return
        sval = self.rep_of(vt) == SIGNED
        if size == 8 and sval:
            # a signed 64-bit value is written as such (struct 'q'), same bytes
            fn = self._struct(8, True, be, "p")
            val = self.val(vt, SIGNED)
            slow = self.val(vt, RAW)
        else:
            fn = self._struct(size, False, be, "p")
            if size * 8 < op.width:
                # the low bytes are the same in either form
                val = "%s & %s" % (self.val(vt, SIGNED if sval else RAW), hex((1 << (size * 8)) - 1))
            else:
                val = self.val(vt, RAW)
            slow = val
        L.append("%s_p = _W(%s)" % (ind, page))
        if size == 1:
            L.append("%sif _p is not None:" % ind)
        else:
            L.append("%sif _p is not None and (%s & 4095) <= %d:" % (ind, a, 4096 - size))
        L.append("%s    %s(_p, %s & 4095, %s)" % (ind, fn, a, val))
        L.append("%selse:" % ind)
        if be:
            slow = "int.from_bytes((%s).to_bytes(%d, 'little'), 'big')" % (slow, size)
        L.append("%s    _ST(%s, %s, %d)" % (ind, ua, slow, size))

    # -- control flow ------------------------------------------------------------
    def structured(self, i: int, j: int, ind: str) -> None:
        ops, pos = self.block.ops, self.labelpos
        k = i
        start = len(self.lines)
        while k < j:
            op = ops[k]
            opc = op.opc
            if opc == "brcond":
                q = pos[op.params[1]]
                if not k < q <= j:
                    raise _Unstructured()
                test = self.cond(_NEG[op.params[0]], op.ins[0], op.ins[1], op.width)
                last = ops[q - 1] if q - 1 > k else None
                before = dict(self.known)
                if last is not None and last.opc == "br" and op.params[1].refs == 1 and \
                        q < pos[last.params[0]] <= j:
                    q2 = pos[last.params[0]]
                    self.lines.append("%sif %s:" % (ind, test))
                    self.structured(k + 1, q - 1, ind + "    ")
                    first, self.known = self.known, before
                    self.lines.append("%selse:" % ind)
                    self.structured(q + 1, q2, ind + "    ")
                    self.known = self._meet(first, self.known)
                    k = q2
                    continue
                self.lines.append("%sif %s:" % (ind, test))
                self.structured(k + 1, q, ind + "    ")
                self.known = self._meet(before, self.known)
                k = q
                continue
            if opc == "br":
                q = pos[op.params[0]]
                if not k < q <= j or any(ops[x].opc == "set_label" for x in range(k + 1, q)):
                    raise _Unstructured()
                k = q
                continue
            if opc != "set_label":
                self.stmt(op, ind, k)
            k += 1
        if len(self.lines) == start:
            self.lines.append(ind + "pass")

    def state_machine_body(self, ind: str) -> None:
        ops = self.block.ops
        self.lines.append("%s_L = 0" % ind)
        self.lines.append("%swhile True:" % ind)
        ind2 = ind + "    "
        seg = 0
        self.lines.append("%sif _L == 0:" % ind2)
        ind3 = ind2 + "    "
        self.lines.append(ind3 + "pass")
        self.known = {}
        for k, op in enumerate(ops):
            if op.opc == "set_label":
                self.known = {}
                seg = op.params[0].id
                self.lines.append("%s_L = %d" % (ind3, seg))
                self.lines.append("%sif _L == %d:" % (ind2, seg))
                self.lines.append(ind3 + "pass")
            elif op.opc == "brcond":
                test = self.cond(op.params[0], op.ins[0], op.ins[1], op.width)
                self.lines.append("%sif %s:" % (ind3, test))
                self.lines.append("%s    _L = %d" % (ind3, op.params[1].id))
                self.lines.append("%s    continue" % ind3)
            elif op.opc == "br":
                self.lines.append("%s_L = %d" % (ind3, op.params[0].id))
                self.lines.append("%scontinue" % ind3)
            else:
                self.stmt(op, ind3, k)
        self.lines.append("%sraise RuntimeError('fell off the end of a block')" % ind2)

    def generate(self) -> str:
        self.analyze()
        self.labelpos = {op.params[0]: k for k, op in enumerate(self.block.ops)
                         if op.opc == "set_label"}
        L = self.lines
        L.append("def tb(env):")
        if self.signed:
            L.append("    _nl = [0]")
        containers = sorted({t.container for t in self.globals if t.container})
        for c in containers:
            L.append("    _c_%s = env.%s" % (c, c))
        self.reload("    ")
        if self.has_self_loop:
            L.append("    _it = 0")
        if self.count_early:
            L.append("    _c = 0")
        if self.may_raise:
            L.append("    _ip = 0")
            L.append("    try:")
            ind = "        "
        else:
            ind = "    "
        body_start = len(L)
        self.state_machine = False
        entry_known = dict(self.known)
        try:
            if self.has_self_loop:
                # the loop's start is also reached from its end: nothing known there
                self.known = {}
                L.append(ind + "while True:")
                self.structured(0, len(self.block.ops), ind + "    ")
            else:
                self.structured(0, len(self.block.ops), ind)
        except _Unstructured:
            del L[body_start:]
            self.insn_data = []
            self.state_machine = True
            self.known = entry_known
            self.state_machine_body(ind)
        if self.may_raise:
            self.known = {}
            L.append("    except BaseException:")
            self.writeback("        ")
            if self.count_early:
                # a block left by an exception counts none of its iterations (as the interpreter)
                L.append("        env.insn_count -= _c * %d" % self.block.ninsns)
            L.append("        _restore(env, _I[_ip])")
            L.append("        raise")
        return "\n".join(L) + "\n"

    def compile(self, name: str = "<tb>") -> Tuple[Callable, str]:
        """The block's function and its Python source ("" while it is interpreted).

        Cold blocks are interpreted and compiled once hot (``tier``); with
        ``-d out_asm`` every block is compiled at once so its source is logged.
        """
        from pyqemu.tcg import tier
        threshold = tier.hot_threshold()
        if threshold == 0 or log.enabled("out_asm"):
            return self.compile_python(name)
        return tier.tiered(self, name, threshold, LOOP_LIMIT), ""

    def compile_python(self, name: str = "<tb>") -> Tuple[Callable, str]:
        """Generate the block's Python source and compile it now."""
        return self.finish(self.generate(), name)

    def finish(self, src: str, name: str) -> Tuple[Callable, str]:
        """Compile generated source ``src`` into the block's function."""
        ns = self.ns
        mem = self.mem
        ns.update(_R=mem.rpages.get, _W=mem.wpages.get, _LD=mem.load, _ST=mem.store,
                  _restore=self.restore, _I=self.insn_data, _sdiv=_sdiv, _srem=_srem)
        if self.signed:
            ns["_tos"] = _tos
        if _MODULE_GLOBALS:
            # PyPy: the names are globals of a module of their own.  The JIT
            # treats a module's globals as constants (a plain dict's are looked
            # up on every use; default arguments are copied into every call's
            # frame and, inside a loop's trace, are variables: each struct
            # call re-checks its format string).
            mod = types.ModuleType(name)
            mod.__dict__.update(ns)
            exec(compile(src, name, "exec"), mod.__dict__)
            return mod.__dict__["tb"], src
        # CPython: everything the body uses from the namespace becomes a default
        # argument, i.e. a local (LOAD_FAST).
        names = sorted(k for k in ns if k.startswith("_") and not k.startswith("__"))
        src = src.replace("def tb(env):", "def tb(env, %s):" % ", ".join("%s=%s" % (k, k) for k in names), 1)
        exec(compile(src, name, "exec"), ns)
        return ns["tb"], src
