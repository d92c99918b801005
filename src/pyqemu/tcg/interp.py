"""Interpreter tier: runs a block's optimized IR without generating Python source.

Most translated blocks run only a handful of times (glibc start-up, ifunc
resolvers, exit code), so turning each into Python source and calling
``compile()`` costs far more than it saves.  Here a block is pre-decoded into
a list of small closures, one per IR op, working on a list ``R`` of slots
(``R[0]`` is the CPU object, then one slot per temp, constant and global).
Each closure returns the index of the next op; a negative value leaves.

The semantics are those of the Python backend (``backend_py``), op for op:
globals are copied into slots on entry and written back at every exit, before
helpers that read CPU state and when an exception leaves the block (then the
``restore`` callback gets the ``insn_start`` data of the faulting
instruction); helpers that write CPU state are followed by a reload; memory
goes through ``mem.rpages.get`` / ``mem.wpages.get`` with the same page-local
fast path and ``mem.load`` / ``mem.store`` for everything else; a ``goto_tb``
back to the block's own start loops at most ``LOOP_LIMIT`` times.
"""
from __future__ import annotations

import struct
from typing import Callable, Dict, List, Tuple

from pyqemu.tcg.ir import (sdiv as _sdiv, srem as _srem, CALL_READS_STATE, CALL_WRITES_STATE, MO_BE, MO_SIGN, MO_SIZE,
                           Block, Op, Temp)

# A goto_tb to the block's own start returns _SELF - n; every other exit value
# v (exit_tb values reach 0x10000 and more) returns -1 - v, far above _SELF.
_SELF = -(1 << 60)

_Q2 = struct.Struct("<QQ")
_STRUCTS = {}
for _size, _ch in ((1, "b"), (2, "h"), (4, "i"), (8, "q")):
    for _be in (False, True):
        _STRUCTS[(_size, _be)] = struct.Struct((">" if _be else "<") + _ch.upper())



# Pure ops: the result expression over A, B, C, E (the input slots) and the
# constants m (width mask), s (sign bit), w, w1 (w - 1), p0, p1 (op params),
# k (the extension mask).  Each becomes a closure factory once, at import.
_EXPRS = {
    "mov": "A",
    "add": "(A + B) & m",
    "sub": "(A - B) & m",
    "mul": "(A * B) & m",
    "and": "A & B",
    "or": "A | B",
    "xor": "A ^ B",
    "andc": "A & ~B & m",
    "neg": "-A & m",
    "not": "A ^ m",
    "shl": "(A << (B & w1)) & m",
    "shr": "A >> (B & w1)",
    "sar": "(((A ^ s) - s) >> (B & w1)) & m",
    "rotl": "((A << (B & w1)) | (A >> (w - (B & w1)))) & m",
    "rotr": "((A << ((w - (B & w1)) & w1)) | (A >> (w - ((w - (B & w1)) & w1)))) & m",
    "exts": "(((A & k) ^ p0) - p0) & m",
    "extu": "A & k",
    "extract": "(A >> p0) & k",
    "sextract": "((((A >> p0) & k) ^ p1) - p1) & m",
    "deposit": "(A & p1) | ((B << p0) & k)",
    "ctpop": "bin(A).count('1')",
    "clz": "(w - A.bit_length()) if A else B",
    "ctz": "((A & -A).bit_length() - 1) if A else B",
    "bswap": "int.from_bytes((A & k).to_bytes(p0, 'little'), 'big')",
    "divu": "A // B",
    "remu": "A % B",
    "div": "_sdiv((A ^ s) - s, (B ^ s) - s) & m",
    "rem": "_srem((A ^ s) - s, (B ^ s) - s) & m",
}
_CONDS = {"eq": "A == B", "ne": "A != B", "ltu": "A < B", "geu": "A >= B",
          "leu": "A <= B", "gtu": "A > B", "lt": "(A ^ s) < (B ^ s)",
          "ge": "(A ^ s) >= (B ^ s)", "le": "(A ^ s) <= (B ^ s)", "gt": "(A ^ s) > (B ^ s)",
          "always": "True", "never": "False"}
for _c, _e in list(_CONDS.items()):
    _EXPRS["setcond_" + _c] = "1 if %s else 0" % _e
    _EXPRS["movcond_" + _c] = "C if %s else E" % _e


def _make_factories() -> Tuple[Dict[str, Callable], Dict[str, Callable]]:
    ops: Dict[str, Callable] = {}
    branches: Dict[str, Callable] = {}
    src = []
    for name, e in _EXPRS.items():
        e = e.replace("A", "R[a]").replace("B", "R[b]").replace("C", "R[c]").replace("E", "R[e]")
        src.append("def op_%s(d, a, b, c, e, m, s, w, w1, k, p0, p1, nxt):\n"
                   "    def f(R):\n        R[d] = %s\n        return nxt\n    return f\n"
                   % (name, e))
    for name, e in _CONDS.items():
        e = e.replace("A", "R[a]").replace("B", "R[b]")
        src.append("def br_%s(a, b, s, tgt, nxt):\n"
                   "    def f(R):\n        return tgt if %s else nxt\n    return f\n" % (name, e))
    ns: Dict[str, object] = {"_sdiv": _sdiv, "_srem": _srem}
    exec(compile("".join(src), "<pyqemu.tcg.interp>", "exec"), ns)
    for name in _EXPRS:
        ops[name] = ns["op_" + name]
    for name in _CONDS:
        branches[name] = ns["br_" + name]
    return ops, branches


_OPS, _BRANCHES = _make_factories()


# -- memory ---------------------------------------------------------------------

def _ld(d, a, size, signed, be, m, rget, LD, nxt):
    if size > 8:
        u128 = _Q2.unpack_from

        def f(R):
            x = R[a]
            p = rget(x >> 12)
            if p is not None and (x & 4095) <= 4096 - size:
                lo, hi = u128(p, x & 4095)
                R[d] = lo | (hi << 64)
            else:
                R[d] = LD(x, size)
            return nxt
        return f
    st = _STRUCTS[(size, be)]
    unpack = st.unpack_from
    lim = 4096 - size
    if not signed and not be:
        def f(R):
            x = R[a]
            p = rget(x >> 12)
            if p is not None and (x & 4095) <= lim:
                R[d] = unpack(p, x & 4095)[0]
            else:
                R[d] = LD(x, size)
            return nxt
        return f
    s = 1 << (size * 8 - 1)

    def f(R):
        x = R[a]
        p = rget(x >> 12)
        if p is not None and (x & 4095) <= lim:
            v = unpack(p, x & 4095)[0]
        else:
            v = LD(x, size)
            if be:
                v = int.from_bytes(v.to_bytes(size, "little"), "big")
        if signed:
            v = ((v ^ s) - s) & m
        R[d] = v
        return nxt
    return f


def _st(v, a, size, be, width, wget, ST, nxt):
    vm = (1 << (size * 8)) - 1 if size * 8 < width else -1
    if size > 8:
        p128 = _Q2.pack_into
        M = (1 << 64) - 1

        def f(R):
            x = R[a]
            val = R[v]
            if vm != -1:
                val &= vm
            p = wget(x >> 12)
            if p is not None and (x & 4095) <= 4096 - size:
                p128(p, x & 4095, val & M, (val >> 64) & M)
            else:
                ST(x, val, size)
            return nxt
        return f
    pack = _STRUCTS[(size, be)].pack_into
    lim = 4096 - size

    def f(R):
        x = R[a]
        val = R[v] & vm
        p = wget(x >> 12)
        if p is not None and (x & 4095) <= lim:
            pack(p, x & 4095, val)
        else:
            if be:
                val = int.from_bytes(val.to_bytes(size, "little"), "big")
            ST(x, val, size)
        return nxt
    return f


# -- helper calls ---------------------------------------------------------------

def _call(fn, outs, args, before, after, nxt):
    """``before``/``after``: the write-back / reload closures around the call, or None."""
    nargs = len(args)
    if before is None and after is None and len(outs) == 1 and nargs <= 3:
        d = outs[0]
        if nargs == 1:
            a, = args

            def f(R):
                R[d] = fn(R[a])
                return nxt
            return f
        if nargs == 2:
            a, b = args

            def f(R):
                R[d] = fn(R[a], R[b])
                return nxt
            return f
        if nargs == 3:
            a, b, c = args

            def f(R):
                R[d] = fn(R[a], R[b], R[c])
                return nxt
            return f

    if len(outs) <= 1 and nargs == 1:
        a, = args
        d = outs[0] if outs else 0   # slot 0 holds the CPU object: a dummy target

        def f(R):
            if before is not None:
                before(R)
            r = fn(R[a])
            if outs:
                R[d] = r
            if after is not None:
                after(R)
            return nxt
        return f
    if len(outs) <= 1 and nargs == 2:
        a, b = args
        d = outs[0] if outs else 0

        def f(R):
            if before is not None:
                before(R)
            r = fn(R[a], R[b])
            if outs:
                R[d] = r
            if after is not None:
                after(R)
            return nxt
        return f

    def f(R):
        if before is not None:
            before(R)
        r = fn(*[R[i] for i in args])
        if outs:
            if len(outs) == 1:
                R[outs[0]] = r
            else:
                for i, x in zip(outs, r):
                    R[i] = x
        if after is not None:
            after(R)
        return nxt
    return f


def _mul2(lo, hi, a, b, w, signed, nxt):
    m = (1 << w) - 1
    s = 1 << (w - 1)

    def f(R):
        if signed:
            x = ((R[a] ^ s) - s) * ((R[b] ^ s) - s)
        else:
            x = R[a] * R[b]
        R[lo] = x & m
        R[hi] = (x >> w) & m
        return nxt
    return f


def _jump(tgt):
    def f(R):
        return tgt
    return f


def _off_end(R):
    raise RuntimeError("fell off the end of a block")


# -- globals ----------------------------------------------------------------------

def _state_movers(gl: List[Tuple[int, Temp]]):
    """(load, store) closures moving the given globals between the CPU and the slots."""
    attrs = [(s, t.name) for s, t in gl if not t.container]
    conts: Dict[str, List[Tuple[int, int]]] = {}
    for s, t in gl:
        if t.container:
            conts.setdefault(t.container, []).append((s, t.index))
    cl = list(conts.items())

    def load(R):
        env = R[0]
        for s, n in attrs:
            R[s] = getattr(env, n)
        for cn, items in cl:
            c = getattr(env, cn)
            for s, i in items:
                R[s] = c[i]

    def store(R):
        env = R[0]
        for s, n in attrs:
            setattr(env, n, R[s])
        for cn, items in cl:
            c = getattr(env, cn)
            for s, i in items:
                c[i] = R[s]
    return load, store


def build(block: Block, mem, restore: Callable, loop_limit: int,
          hot_loop: int = 0, on_hot_loop: Callable = None) -> Callable:
    """A function ``fn(env) -> exit`` that interprets ``block`` (see module docstring).

    A block that loops to its own start can run thousands of iterations in
    one call: after ``hot_loop`` iterations (0 = never) ``on_hot_loop()`` may
    return a replacement function, which then continues from the block's
    start with the state written back, exactly where the loop would have
    continued.
    """
    ops = block.ops
    pc = block.pc
    # Slots: 0 is the CPU object, then one per temp, constant and global in
    # order of first use; tmpl holds the constants' values.
    slots: Dict[Temp, int] = {}
    tmpl: List[object] = [None]
    gl: Dict[str, Tuple[int, Temp]] = {}
    written_names = set()
    any_writes = False
    self_loop = False
    labels: Dict[object, int] = {}
    n = 0          # code index of the next op (insn_start and set_label make no code)
    for op in ops:
        opc = op.opc
        for t in op.ins:
            if t not in slots:
                slots[t] = len(tmpl)
                kind = t.kind
                if kind == "const":
                    tmpl.append(t.value)
                else:
                    tmpl.append(0)
                    if kind == "global":
                        gl[t.name] = (slots[t], t)
        for t in op.outs:
            if t not in slots:
                slots[t] = len(tmpl)
                tmpl.append(0)
            if t.kind == "global":
                gl[t.name] = (slots[t], t)
                written_names.add(t.name)
        if opc == "insn_start":
            continue
        if opc == "set_label":
            labels[op.params[0]] = n
            continue
        n += 1
        if opc == "call":
            if op.params[0].flags & CALL_WRITES_STATE:
                any_writes = True
        elif opc == "goto_tb":
            if op.params[1] == pc:
                self_loop = True
    all_gl = list(gl.values())
    written = all_gl if any_writes else [x for x in all_gl if x[1].name in written_names]
    load, store = _state_movers(all_gl)
    if written is not all_gl:
        store = _state_movers(written)[1]

    rget, wget = mem.rpages.get, mem.wpages.get
    LD, ST = mem.load, mem.store
    mov = _OPS["mov"]
    code: List[Callable] = []
    insn_of: List[int] = []
    insn_data: List[Tuple] = []
    ip = 0
    for op in ops:
        opc = op.opc
        if opc == "mov":
            # half of all ops: their closure is made here without _op's dispatch
            nxt = len(code) + 1
            code.append(mov(slots[op.outs[0]], slots[op.ins[0]], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                            nxt))
        elif opc == "insn_start":
            ip = len(insn_data)
            insn_data.append(op.params)
            continue
        elif opc == "set_label":
            continue
        else:
            nxt = len(code) + 1
            code.append(_op(op, slots.__getitem__, labels, nxt, pc, self_loop, rget, wget, LD,
                            ST, store, load))
        insn_of.append(ip)
    code.append(_off_end)
    insn_of.append(ip)
    if not insn_data:
        insn_data.append((pc,))
    ninsns = block.ninsns

    def run(env):
        R = tmpl[:]
        R[0] = env
        load(R)
        i = 0
        it = 0
        switch = None
        try:
            while True:
                while i >= 0:
                    i = code[i](R)
                if i <= _SELF:
                    if it < loop_limit:
                        it += 1
                        if it == hot_loop and on_hot_loop is not None:
                            switch = on_hot_loop()
                            if switch is not None:
                                break
                        i = 0
                        continue
                    v = _SELF - i
                else:
                    v = -1 - i
                break
        except BaseException:
            store(R)
            restore(env, insn_data[insn_of[i]])
            raise
        store(R)
        if self_loop:
            env.insn_count += it * ninsns
        if switch is not None:
            return switch(env)
        return v
    return run


def _op(op: Op, slot, labels, nxt: int, pc: int, self_loop: bool, rget, wget, LD, ST,
        store, load) -> Callable:
    opc = op.opc
    w = op.width
    if opc == "goto_tb":
        n, dest = op.params
        return _jump((_SELF - n) if dest == pc and self_loop else -1 - n)
    if opc == "exit_tb":
        return _jump(-1 - op.params[0])
    if opc == "lookup_and_goto_ptr":
        return _jump(-3)
    if opc == "br":
        return _jump(labels[op.params[0]])
    if opc == "brcond":
        cond, label = op.params
        return _BRANCHES[cond](slot(op.ins[0]), slot(op.ins[1]), 1 << (w - 1), labels[label], nxt)
    if opc == "qemu_ld":
        memop = op.params[0]
        return _ld(slot(op.outs[0]), slot(op.ins[0]), 1 << (memop & MO_SIZE),
                   bool(memop & MO_SIGN), bool(memop & MO_BE), (1 << w) - 1, rget, LD, nxt)
    if opc == "qemu_st":
        memop = op.params[0]
        return _st(slot(op.ins[0]), slot(op.ins[1]), 1 << (memop & MO_SIZE), bool(memop & MO_BE),
                   w, wget, ST, nxt)
    if opc == "call":
        h = op.params[0]
        return _call(h.fn, [slot(t) for t in op.outs], [slot(t) for t in op.ins],
                     store if h.flags & CALL_READS_STATE else None,
                     load if h.flags & CALL_WRITES_STATE else None, nxt)
    if opc in ("mulu2", "muls2"):
        return _mul2(slot(op.outs[0]), slot(op.outs[1]), slot(op.ins[0]), slot(op.ins[1]), w,
                     opc == "muls2", nxt)
    ins = op.ins
    a = slot(ins[0]) if ins else 0
    b = slot(ins[1]) if len(ins) > 1 else 0
    c = slot(ins[2]) if len(ins) > 2 else 0
    e = slot(ins[3]) if len(ins) > 3 else 0
    m = (1 << w) - 1
    s = 1 << (w - 1) if w else 0
    k = p0 = p1 = 0
    name = opc
    if opc in ("ext8s", "ext16s", "ext32s"):
        bits = int(opc[3:-1])
        name, k, p0 = "exts", (1 << bits) - 1, 1 << (bits - 1)
    elif opc in ("ext8u", "ext16u", "ext32u"):
        name, k = "extu", (1 << int(opc[3:-1])) - 1
    elif opc == "extract":
        p0, k = op.params[0], (1 << op.params[1]) - 1
    elif opc == "sextract":
        p0, k, p1 = op.params[0], (1 << op.params[1]) - 1, 1 << (op.params[1] - 1)
    elif opc == "deposit":
        ofs, ln = op.params
        k = ((1 << ln) - 1) << ofs
        p0, p1 = ofs, m & ~k
    elif opc in ("bswap16", "bswap32", "bswap64"):
        p0 = int(opc[5:]) // 8
        name, k = "bswap", (1 << (8 * p0)) - 1
    elif opc in ("setcond", "movcond"):
        name = opc + "_" + op.params[0]
    f = _OPS.get(name)
    if f is None:
        raise NotImplementedError("interpreter: op %s" % opc)
    return f(slot(op.outs[0]), a, b, c, e, m, s, w, w - 1, k, p0, p1, nxt)
