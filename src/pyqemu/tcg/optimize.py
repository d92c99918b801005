"""IR optimizer: constant folding, copy propagation and dead-code removal.

Globals are live at every block exit and at every op that may raise a guest
exception (so the CPU state is exact when the exception is taken); between
those points a global written twice loses its first write, which is how
condition-code computations overwritten by the next instruction disappear.
"""
from __future__ import annotations

import threading
from typing import Callable, Dict, List, Optional, Set

from pyqemu.tcg.ir import (CALL_MAY_RAISE, CALL_READS_STATE, CALL_WRITES_STATE, EXIT_OPS,
                           SIDE_EFFECT_OPS, Block, Op, Temp)


def _sx(v: int, w: int) -> int:
    s = 1 << (w - 1)
    return (v ^ s) - s


def eval_cond(cond: str, a: int, b: int, w: int) -> bool:
    if cond == "eq":
        return a == b
    if cond == "ne":
        return a != b
    if cond == "ltu":
        return a < b
    if cond == "geu":
        return a >= b
    if cond == "leu":
        return a <= b
    if cond == "gtu":
        return a > b
    if cond == "always":
        return True
    if cond == "never":
        return False
    a, b = _sx(a, w), _sx(b, w)
    return {"lt": a < b, "ge": a >= b, "le": a <= b, "gt": a > b}[cond]


def fold(opc: str, w: int, v: List[int], params: tuple) -> Optional[int]:
    """Value of a pure op on constant inputs, or None when not foldable here."""
    m = (1 << w) - 1
    if opc == "mov":
        r = v[0]
    elif opc == "add":
        r = v[0] + v[1]
    elif opc == "sub":
        r = v[0] - v[1]
    elif opc == "mul":
        r = v[0] * v[1]
    elif opc == "and":
        r = v[0] & v[1]
    elif opc == "or":
        r = v[0] | v[1]
    elif opc == "xor":
        r = v[0] ^ v[1]
    elif opc == "andc":
        r = v[0] & ~v[1]
    elif opc == "neg":
        r = -v[0]
    elif opc == "not":
        r = ~v[0]
    elif opc == "shl":
        r = v[0] << (v[1] & (w - 1))
    elif opc == "shr":
        r = v[0] >> (v[1] & (w - 1))
    elif opc == "sar":
        r = _sx(v[0], w) >> (v[1] & (w - 1))
    elif opc in ("ext8s", "ext16s", "ext32s"):
        r = _sx(v[0] & ((1 << int(opc[3:-1])) - 1), int(opc[3:-1]))
    elif opc in ("ext8u", "ext16u", "ext32u"):
        r = v[0] & ((1 << int(opc[3:-1])) - 1)
    elif opc == "setcond":
        r = int(eval_cond(params[0], v[0], v[1], w))
    elif opc == "extract":
        r = (v[0] >> params[0]) & ((1 << params[1]) - 1)
    elif opc == "sextract":
        r = _sx((v[0] >> params[0]) & ((1 << params[1]) - 1), params[1])
    elif opc == "deposit":
        fm = ((1 << params[1]) - 1) << params[0]
        r = (v[0] & ~fm) | ((v[1] << params[0]) & fm)
    else:
        return None
    return r & m


def _const(value: int, width: int) -> Temp:
    return Temp(0, width, "const", value=value)


def optimize(block: Block, make_const: Optional[Callable[[int, int], Temp]] = None) -> None:
    """Optimize ``block`` in place; ``make_const(value, width)`` makes const temps."""
    _propagate(block, make_const or _const)
    _dead_code(block)
    block.optimized = True


# Blocks of several guest threads may get hot at once (tcg.tier, region).
_lock = threading.Lock()


def ensure_optimized(block: Block) -> None:
    """Optimize ``block`` unless that was done already (cold blocks are not optimized)."""
    if not block.optimized:
        with _lock:
            if not block.optimized:
                optimize(block)


_EXT_BITS = {"ext8u": 8, "ext16u": 16, "ext32u": 32}


def _result_bits(op: Op, bits) -> int:
    """Upper bound on the significant bits of a pure op's result (QEMU's z_mask, simplified)."""
    opc = op.opc
    w = op.width
    ins = op.ins
    if opc == "mov":
        r = bits(ins[0])
    elif opc in _EXT_BITS:
        r = min(_EXT_BITS[opc], bits(ins[0]))
    elif opc == "and":
        r = min(bits(ins[0]), bits(ins[1]))
    elif opc in ("or", "xor"):
        r = max(bits(ins[0]), bits(ins[1]))
    elif opc == "shr" and ins[1].is_const:
        r = max(bits(ins[0]) - (ins[1].value & (w - 1)), 0)
    elif opc in ("setcond",):
        r = 1
    elif opc == "extract":
        r = op.params[1]
    elif opc == "qemu_ld":
        r = 64 if op.params[0] & 8 else 8 << (op.params[0] & 7)
    elif opc == "add":
        r = max(bits(ins[0]), bits(ins[1])) + 1
    elif opc == "mul":
        r = bits(ins[0]) + bits(ins[1])
    elif opc in ("ctpop", "clz", "ctz"):
        r = 7
    else:
        r = w
    if opc in ("mov", "and", "or", "xor", "shr"):
        return r        # the backend does not mask these: no cap at the op width
    return min(r, w)


# ops fold() evaluates
_FOLDABLE = frozenset(("mov", "add", "sub", "mul", "and", "or", "xor", "andc", "neg", "not",
                       "shl", "shr", "sar", "ext8s", "ext16s", "ext32s", "ext8u", "ext16u",
                       "ext32u", "setcond", "extract", "sextract", "deposit"))


def _propagate(block: Block, make_const) -> None:
    copies: Dict[Temp, Temp] = {}
    known: Dict[Temp, int] = {}
    out: List[Op] = []
    append = out.append

    def bits(t: Temp) -> int:
        if t.kind == "const":
            return t.value.bit_length()
        # Globals hold values of their width; helper results may be wider
        # (128-bit XMM or 80-bit x87 values travel in temps).
        return known.get(t, t.width if t.kind == "global" else 1 << 20)

    # copy source -> temps that may be copies of it; entries can be stale
    # (checked against ``copies`` on use), which keeps kill() O(copies of t)
    # instead of a scan of the whole map for every output.
    rev: Dict[Temp, List[Temp]] = {}

    def kill(t: Temp) -> None:
        copies.pop(t, None)
        known.pop(t, None)
        ks = rev.pop(t, None)
        if ks:
            for k in ks:
                if copies.get(k) is t:
                    del copies[k]

    for op in block.ops:
        opc = op.opc
        if opc == "insn_start":
            append(op)
            continue
        if opc == "set_label":
            copies.clear()
            known.clear()
            rev.clear()
            append(op)
            continue
        ins = op.ins
        if copies and ins:
            ins = op.ins = [copies.get(t, t) for t in ins]
        if opc == "brcond":
            a, b = ins
            if a.kind == "const" and b.kind == "const":
                cond, label = op.params
                if eval_cond(cond, a.value, b.value, op.width):
                    append(Op("br", 0, [], [], (label,)))
                else:
                    label.refs -= 1
                continue
            append(op)
            continue
        outs = op.outs
        if opc == "call":
            if op.params[0].flags & CALL_WRITES_STATE:
                for k in [k for k, v in copies.items() if v.kind == "global" or k.kind == "global"]:
                    del copies[k]
                for k in [k for k in known if k.kind == "global"]:
                    del known[k]
            for t in outs:
                kill(t)
            append(op)
            continue
        # A zero-extension or mask of a value known to fit is a copy.
        if opc in _EXT_BITS:
            if bits(ins[0]) <= _EXT_BITS[opc]:
                op = Op("mov", op.width, outs, [ins[0]])
                opc = "mov"
        elif opc == "and":
            c = ins[1]
            if c.kind == "const":
                v = c.value
                if v & (v + 1) == 0 and bits(ins[0]) <= v.bit_length():
                    op = Op("mov", op.width, outs, [ins[0]])
                    opc = "mov"
        for t in outs:
            kill(t)
        if opc in _FOLDABLE and len(outs) == 1:
            for t in op.ins:
                if t.kind != "const":
                    break
            else:
                r = fold(opc, op.width, [t.value for t in op.ins], op.params)
                if r is not None:
                    op = Op("mov", op.width, outs, [make_const(r, op.width)])
                    opc = "mov"
        elif opc == "movcond":
            a, b = op.ins[0], op.ins[1]
            if a.kind == "const" and b.kind == "const":
                pick = op.ins[2] if eval_cond(op.params[0], a.value, b.value,
                                              op.width) else op.ins[3]
                op = Op("mov", op.width, outs, [pick])
                opc = "mov"
        if opc == "mov":
            d, s = outs[0], op.ins[0]
            known[d] = bits(s)
            if d is s:
                continue
            # Only temps are replaced by copies; a global keeps its own storage.
            if d.kind == "temp":
                copies[d] = s
                ks = rev.get(s)
                if ks is None:
                    rev[s] = [d]
                else:
                    ks.append(d)
        elif len(outs) == 1:
            known[outs[0]] = _result_bits(op, bits)
        append(op)
    block.ops = out


def _dead_code(block: Block) -> None:
    ops = block.ops
    live: Set[Temp] = set()
    live_at: Dict[object, Set[Temp]] = {}
    gs = set()
    for op in ops:
        for t in op.outs:
            if t.kind == "global":
                gs.add(t)
        for t in op.ins:
            if t.kind == "global":
                gs.add(t)
    all_globals = frozenset(gs)
    keep: List[Op] = []
    unreachable = False
    for op in reversed(ops):
        opc = op.opc
        if opc == "insn_start":
            if not unreachable:
                keep.append(op)
            continue
        if opc == "set_label":
            label = op.params[0]
            if label.refs <= 0:
                continue
            unreachable = False
            live_at[label] = set(live)
            keep.append(op)
            continue
        if unreachable:
            # Straight-line code after an exit or br with no label: never runs.
            if opc in ("brcond", "br"):
                op.params[-1].refs -= 1
            continue
        if opc in EXIT_OPS:
            live = set(all_globals)
            keep.append(op)
            continue
        if opc == "br":
            live = set(live_at.get(op.params[0], all_globals))
            keep.append(op)
            continue
        outs = op.outs
        if opc == "brcond":
            live |= live_at.get(op.params[1], all_globals)
        elif opc not in SIDE_EFFECT_OPS:
            if len(outs) == 1:
                if outs[0] not in live:
                    continue
            elif not any(t in live for t in outs):
                continue
            if opc in ("mulu2", "muls2") and outs[1] not in live:
                # the low half of a product does not depend on signedness
                op = Op("mul", op.width, [outs[0]], op.ins)
                outs = op.outs
        elif opc == "call":
            flags = op.params[0].flags
            if not flags and not any(t in live for t in outs):
                continue
            if flags & (CALL_MAY_RAISE | CALL_READS_STATE | CALL_WRITES_STATE):
                for t in outs:
                    live.discard(t)
                live |= all_globals
                outs = ()
        elif opc == "qemu_ld" or opc == "qemu_st":
            for t in outs:
                live.discard(t)
            live |= all_globals
            outs = ()
        for t in outs:
            live.discard(t)
        for t in op.ins:
            if t.kind != "const":
                live.add(t)
        keep.append(op)
    keep.reverse()
    # Exits followed by code reached only by falling through are handled above;
    # drop code between an exit and the next label (it can never run).
    result: List[Op] = []
    dead = False
    for op in keep:
        opc = op.opc
        if opc == "set_label":
            dead = False
        if dead:
            if opc == "brcond" or opc == "br":
                op.params[-1].refs -= 1
            continue
        result.append(op)
        if opc in EXIT_OPS or opc == "br":
            dead = True
    block.ops = [op for op in result if op.opc != "set_label" or op.params[0].refs > 0]
