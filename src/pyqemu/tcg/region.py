"""Regions: a hot loop of several blocks compiled into one Python function.

The execution loop calls one block function per guest block, and that call
site sees hundreds of different functions: CPython pays a dispatch per block
and on PyPy each one is a call the JIT does not follow (see docs/tcg.md,
"Performance notes" and "Fourth round").
A loop that spans several blocks (a loop body with an ``if``, a loop whose
condition is tested in its own block) is therefore compiled once it is hot
into one function: the member blocks (the loop's, and the other blocks
reachable from its head on the same page, up to MAX_MEMBERS) become branches
of an internal ``while`` loop keyed by the guest pc, a ``goto_tb`` to a
member continues that loop, every other exit returns to the execution loop.  CPU-state
globals stay in locals for the whole region.

What the execution loop sees is unchanged: the function is installed as the
``fn`` of the loop's head TB; exits of the head block itself return their
``goto_tb`` index (so the head's chaining stays valid), exits of the other
members return 2 (look up ``cpu.rip``).  The guest instruction count is kept
exact, including on exceptions.  At most ``LOOP_LIMIT`` transitions happen
per call, so interrupts are still polled, and a write to the code of any
member (self-modifying code) stops the region at its next block boundary and
gives the head TB back its own single-block code.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

from pyqemu.tcg.backend_py import LOOP_LIMIT, PyCodegen, _Unstructured
from pyqemu.tcg.ir import Block

MAX_MEMBERS = 16


class _Combined(Block):
    """All members' ops, so that PyCodegen collects globals and effects of the whole region."""

    def __init__(self, blocks: List[Block]) -> None:
        super().__init__(blocks[0].pc)
        for b in blocks:
            self.ops.extend(b.ops)


class RegionCodegen(PyCodegen):
    def __init__(self, blocks: List[Block], mem, restore: Callable) -> None:
        super().__init__(_Combined(blocks), mem, restore)
        self.members = blocks
        self.entry = blocks[0]
        self.member_pcs = {b.pc: b for b in blocks}
        self.cur = blocks[0]

    def stmt(self, op, ind: str, k: int) -> None:
        opc = op.opc
        if opc == "goto_tb":
            n, dest = op.params
            if dest in self.member_pcs:
                L = self.lines
                L.append("%sif _it < %d and _V[0]:" % (ind, LOOP_LIMIT))
                L.append("%s    _it += 1" % ind)
                L.append("%s    _n += %d" % (ind, self.cur.ninsns))
                L.append("%s    _pc = %d" % (ind, dest))
                L.append("%s    continue" % ind)
            self.exit(ind, str(n) if self.cur is self.entry else "2")
        elif opc == "lookup_and_goto_ptr":
            self.exit(ind, "2")
        else:
            super().stmt(op, ind, k)

    def count_so_far(self, ind: str) -> None:
        # the blocks done so far in this call, before a helper that may read the count
        self.lines.append("%senv.insn_count += _n" % ind)
        self.lines.append("%s_n = 0" % ind)

    def exit(self, ind: str, value: str) -> None:
        self.writeback(ind)
        # the execution loop counts the head block once per call
        self.lines.append("%senv.insn_count += _n + %d" % (ind, self.cur.ninsns - self.entry.ninsns))
        self.lines.append("%sreturn %s" % (ind, value))

    def generate(self) -> str:
        self.analyze()
        self.has_self_loop = False     # a goto_tb to a member is a region transition
        L = self.lines
        L.append("def tb(env):")
        if self.signed:
            L.append("    _nl = [0]")
        containers = sorted({t.container for t in self.globals if t.container})
        for c in containers:
            L.append("    _c_%s = env.%s" % (c, c))
        self.reload("    ")
        L.append("    _pc = %d" % self.entry.pc)
        L.append("    _it = 0")
        L.append("    _n = 0")
        L.append("    _ip = 0")
        L.append("    try:")
        L.append("        while True:")
        self.state_machine = False
        for i, b in enumerate(self.members):
            self.cur = self.block = b
            self.labelpos = {op.params[0]: k for k, op in enumerate(b.ops)
                             if op.opc == "set_label"}
            L.append("            %s _pc == %d:" % ("if" if i == 0 else "elif", b.pc))
            # a member is entered from the others: nothing known about globals there
            self.known = {}
            self.structured(0, len(b.ops), " " * 16)
        L.append("            raise RuntimeError('region: no block at 0x%x' % _pc)")
        self.known = {}
        L.append("    except BaseException:")
        self.writeback("        ")
        L.append("        env.insn_count += _n")
        L.append("        _restore(env, _I[_ip])")
        L.append("        raise")
        return "\n".join(L) + "\n"


def _static_dests(block: Block) -> List[int]:
    return [op.params[1] for op in block.ops if op.opc == "goto_tb"]


def find_loop(head, pc_map: Dict[int, object]) -> List:
    """The TBs of a region headed by ``head`` (head first), or [] when no loop leads back to it.

    Members are translated, valid TBs that still have their IR, found through
    the static ``goto_tb`` destinations within MAX_MEMBERS blocks of the head;
    at least one of them must lead back to the head.  Like QEMU's direct
    jumps, a region stays on the guest page of its head: a change of the
    page mapping (system mode) ends a block through ``exit_tb``, which leaves
    the region, so a region never carries on across pages that may map
    elsewhere.
    """
    seen = {head.pc: head}
    order = [head]
    k = 0
    while k < len(order) and len(order) < MAX_MEMBERS:
        tb = order[k]
        k += 1
        for dest in _static_dests(tb.block):
            if dest in seen or len(order) >= MAX_MEMBERS or dest >> 12 != head.pc >> 12:
                continue
            t = pc_map.get(dest)
            if t is None or not t.valid or t.block is None or t.flags != head.flags:
                continue
            seen[dest] = t
            order.append(t)
    # There must be a loop back to the head.  The blocks that are not on it
    # (the paths out of the loop, a loop body's rare branches) are kept too:
    # each transition that stays inside the function is one the execution
    # loop does not dispatch (on PyPy a residual call plus the block's loads
    # and write-backs of guest registers, see docs/tcg.md, "Fourth round").
    back = {head.pc}
    changed = True
    while changed:
        changed = False
        for tb in order:
            if tb.pc not in back and any(d in back for d in _static_dests(tb.block)):
                back.add(tb.pc)
                changed = True
    if len(back) < 2:
        return []
    return order


def compile_region(members: List, mem, restore: Callable) -> Optional[Callable]:
    """Compile ``members`` (TBs, head first) into one function, or None if a block does not nest."""
    blocks = [tb.block for tb in members]
    while len(blocks) >= 2:
        gen = RegionCodegen(blocks, mem, restore)
        try:
            src = gen.generate()
        except _Unstructured:
            # drop the member whose control flow needs the state machine
            bad = gen.cur
            if bad is blocks[0]:
                return None
            blocks = [b for b in blocks if b is not bad]
            continue
        valid = [True]
        gen.ns["_V"] = valid
        fn, src = gen.finish(src, "<region 0x%x>" % blocks[0].pc)
        fn.region_valid = valid
        fn.region_pcs = [b.pc for b in blocks]
        fn.region_src = src
        return fn
    return None
