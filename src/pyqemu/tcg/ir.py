"""The translator's intermediate representation (TCG-shaped, guest-independent).

A frontend builds one :class:`Block` per translation block through the
``gen_*`` methods of :class:`Builder`.  Values live in :class:`Temp` objects:
``const`` temps hold an integer, ``global`` temps name a piece of CPU state
(an attribute of the CPU object or an element of a list attribute), ``temp``
temps are block-local.  Every op has a width (32 or 64); results are kept as
non-negative Python ints below 2**width.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

I32 = 32
I64 = 64

# memop bits for qemu_ld/qemu_st
MO_8, MO_16, MO_32, MO_64, MO_128 = 0, 1, 2, 3, 4
MO_SIZE = 7
MO_SIGN = 8
MO_BE = 16

# conditions for setcond/brcond/movcond
COND_EQ, COND_NE = "eq", "ne"
COND_LT, COND_GE, COND_LE, COND_GT = "lt", "ge", "le", "gt"
COND_LTU, COND_GEU, COND_LEU, COND_GTU = "ltu", "geu", "leu", "gtu"
COND_ALWAYS, COND_NEVER = "always", "never"
INVERT = {"eq": "ne", "ne": "eq", "lt": "ge", "ge": "lt", "le": "gt", "gt": "le",
          "ltu": "geu", "geu": "ltu", "leu": "gtu", "gtu": "leu",
          "always": "never", "never": "always"}

# helper call flags
CALL_NO_SIDE_EFFECTS = 0   # pure function of its arguments
CALL_READS_STATE = 1       # reads CPU state: globals are written back first
CALL_WRITES_STATE = 2      # changes CPU state: globals are reloaded after
CALL_MAY_RAISE = 4         # may raise a guest exception
CALL_SIDE_EFFECTS = 8      # changes state that is not a global (must not be removed)

# Ops that may leave the block through a guest exception: globals must be in
# the CPU state when they run (precise exceptions).
MAY_RAISE_OPS = frozenset(("qemu_ld", "qemu_st"))
# Ops with effects other than writing their outputs.
SIDE_EFFECT_OPS = frozenset(("qemu_st", "call", "insn_start", "goto_tb", "exit_tb",
                             "lookup_and_goto_ptr", "br", "brcond", "set_label",
                             "qemu_ld"))
# Ops ending the block's control flow.
EXIT_OPS = frozenset(("goto_tb", "exit_tb", "lookup_and_goto_ptr"))


class Temp:
    __slots__ = ("idx", "width", "kind", "value", "name", "container", "index")

    def __init__(self, idx: int, width: int, kind: str, value: int = 0, name: str = "",
                 container: Optional[str] = None, index: int = 0) -> None:
        self.idx = idx
        self.width = width
        self.kind = kind          # "const", "global" or "temp"
        self.value = value
        self.name = name
        self.container = container
        self.index = index

    @property
    def is_const(self) -> bool:
        return self.kind == "const"

    def __repr__(self) -> str:
        if self.kind == "const":
            return "$0x%x" % self.value
        if self.kind == "global":
            return self.name
        return "tmp%d" % self.idx


class Label:
    __slots__ = ("id", "refs")

    def __init__(self, id: int) -> None:
        self.id = id
        self.refs = 0

    def __repr__(self) -> str:
        return "$L%d" % self.id


class Helper:
    """A Python function called from translated code."""

    __slots__ = ("fn", "name", "flags", "nret")

    def __init__(self, fn: Callable, flags: int = CALL_NO_SIDE_EFFECTS, nret: int = 1,
                 name: str = "") -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.flags = flags
        self.nret = nret


class Op:
    """One IR op: ``outs`` are written temps, ``ins`` read temps, ``params`` the rest."""

    __slots__ = ("opc", "width", "outs", "ins", "params")

    def __init__(self, opc: str, width: int, outs: List[Temp], ins: List[Temp],
                 params: Tuple = ()) -> None:
        self.opc = opc
        self.width = width
        self.outs = outs
        self.ins = ins
        self.params = params

    def __repr__(self) -> str:
        parts = [repr(t) for t in self.outs] + [repr(t) for t in self.ins]
        for p in self.params:
            if isinstance(p, Helper):
                parts.insert(0, p.name)
            elif isinstance(p, int):
                parts.append("$0x%x" % p if p >= 0 else str(p))
            else:
                parts.append(repr(p))
        name = self.opc if self.opc in ("insn_start", "set_label", "br", "call",
                                        "goto_tb", "exit_tb", "lookup_and_goto_ptr") \
            else "%s_i%d" % (self.opc, self.width)
        return " %s %s" % (name, ",".join(parts))


class GlobalSet:
    """The CPU-state globals a frontend declares once (shared by all its blocks)."""

    def __init__(self) -> None:
        self.globals: List[Temp] = []
        self.by_name: Dict[str, Temp] = {}

    def add(self, name: str, width: int, container: Optional[str] = None,
            index: int = 0) -> Temp:
        t = Temp(-1 - len(self.globals), width, "global", name=name,
                 container=container, index=index)
        self.globals.append(t)
        self.by_name[name] = t
        return t


class Block:
    """The ops of one translation block plus the facts the backend needs."""

    def __init__(self, pc: int) -> None:
        self.pc = pc
        self.ops: List[Op] = []
        self.ntemps = 0
        self.nlabels = 0
        self.ninsns = 0
        # set by tcg.optimize: a cold block is interpreted unoptimized and
        # only optimized once it is compiled (tcg.tier)
        self.optimized = False

    def dump(self) -> str:
        return "\n".join(repr(op) for op in self.ops) + "\n"


class Builder:
    """Emits ops into a :class:`Block`; the frontend's only way to produce code."""

    def __init__(self, block: Block) -> None:
        self.block = block
        self.ops = block.ops
        self._consts: Dict[Tuple[int, int], Temp] = {}

    # temps and labels
    def temp(self, width: int = I64) -> Temp:
        b = self.block
        b.ntemps += 1
        return Temp(b.ntemps, width, "temp")

    def const(self, value: int, width: int = I64) -> Temp:
        value &= (1 << width) - 1
        key = (value, width)
        t = self._consts.get(key)
        if t is None:
            t = Temp(0, width, "const", value)
            self._consts[key] = t
        return t

    def label(self) -> Label:
        b = self.block
        b.nlabels += 1
        return Label(b.nlabels)

    def emit(self, opc: str, width: int, outs: List[Temp], ins: List[Temp],
             params: Tuple = ()) -> None:
        self.ops.append(Op(opc, width, outs, ins, params))

    # convenience: each returns its output temp (new unless ``dst`` given).
    # The most used ones make their temp and op inline: the decoder calls
    # them a few times per guest instruction, and cold code is mostly that.
    def op2(self, opc: str, a: Temp, width: int = I64, dst: Optional[Temp] = None) -> Temp:
        if dst is None:
            b = self.block
            n = b.ntemps = b.ntemps + 1
            dst = Temp(n, width, "temp")
        self.ops.append(Op(opc, width, [dst], [a]))
        return dst

    def op3(self, opc: str, a: Temp, b: Temp, width: int = I64,
            dst: Optional[Temp] = None) -> Temp:
        if dst is None:
            blk = self.block
            n = blk.ntemps = blk.ntemps + 1
            dst = Temp(n, width, "temp")
        self.ops.append(Op(opc, width, [dst], [a, b]))
        return dst

    def mov(self, dst: Temp, src: Temp, width: int = I64) -> None:
        self.ops.append(Op("mov", width, [dst], [src]))

    def movi(self, dst: Temp, value: int, width: int = I64) -> None:
        self.ops.append(Op("mov", width, [dst], [self.const(value, width)]))

    def setcond(self, cond: str, a: Temp, b: Temp, width: int = I64,
                dst: Optional[Temp] = None) -> Temp:
        d = dst if dst is not None else self.temp(width)
        self.emit("setcond", width, [d], [a, b], (cond,))
        return d

    def movcond(self, cond: str, c1: Temp, c2: Temp, v1: Temp, v2: Temp, width: int = I64,
                dst: Optional[Temp] = None) -> Temp:
        d = dst if dst is not None else self.temp(width)
        self.emit("movcond", width, [d], [c1, c2, v1, v2], (cond,))
        return d

    def brcond(self, cond: str, a: Temp, b: Temp, label: Label, width: int = I64) -> None:
        label.refs += 1
        self.emit("brcond", width, [], [a, b], (cond, label))

    def br(self, label: Label) -> None:
        label.refs += 1
        self.emit("br", 0, [], [], (label,))

    def set_label(self, label: Label) -> None:
        self.emit("set_label", 0, [], [], (label,))

    def extract(self, a: Temp, ofs: int, length: int, width: int = I64, signed: bool = False,
                dst: Optional[Temp] = None) -> Temp:
        d = dst if dst is not None else self.temp(width)
        self.emit("sextract" if signed else "extract", width, [d], [a], (ofs, length))
        return d

    def deposit(self, a: Temp, b: Temp, ofs: int, length: int, width: int = I64,
                dst: Optional[Temp] = None) -> Temp:
        d = dst if dst is not None else self.temp(width)
        self.emit("deposit", width, [d], [a, b], (ofs, length))
        return d

    def ld(self, addr: Temp, memop: int, width: int = I64, mmu_idx: int = 0,
           dst: Optional[Temp] = None) -> Temp:
        if dst is None:
            b = self.block
            n = b.ntemps = b.ntemps + 1
            dst = Temp(n, width, "temp")
        self.ops.append(Op("qemu_ld", width, [dst], [addr], (memop, mmu_idx)))
        return dst

    def st(self, val: Temp, addr: Temp, memop: int, width: int = I64, mmu_idx: int = 0) -> None:
        self.ops.append(Op("qemu_st", width, [], [val, addr], (memop, mmu_idx)))

    def call(self, helper: Helper, args: List[Temp], width: int = I64) -> List[Temp]:
        rets = [self.temp(width) for _ in range(helper.nret)]
        self.emit("call", width, rets, list(args), (helper,))
        return rets

    def insn_start(self, pc: int, *extra: int) -> None:
        self.block.ninsns += 1
        self.ops.append(Op("insn_start", 0, [], [], (pc,) + extra))

    def goto_tb(self, n: int, dest: int) -> None:
        """Leave through chainable exit ``n`` (0/1) towards guest address ``dest``."""
        self.emit("goto_tb", 0, [], [], (n, dest))

    def exit_tb(self, value: int) -> None:
        """Leave to the execution loop returning ``value`` (>= 2)."""
        self.emit("exit_tb", 0, [], [], (value,))

    def lookup_and_goto_ptr(self) -> None:
        self.emit("lookup_and_goto_ptr", 0, [], [], ())


def sdiv(a: int, b: int) -> int:
    """The IR's signed division: the quotient truncated toward zero, as x86 IDIV."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def srem(a: int, b: int) -> int:
    """The IR's signed remainder: the sign of the dividend, as x86 IDIV."""
    r = abs(a) % abs(b)
    return -r if a < 0 else r
