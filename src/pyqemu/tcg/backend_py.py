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
"""
from __future__ import annotations

import struct
from typing import Callable, Dict, List, Set, Tuple

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


_Q2 = struct.Struct("<QQ")


class _Unstructured(Exception):
    pass


class PyCodegen:
    """Generates the Python source of one block (see module docstring)."""

    def __init__(self, block: Block, mem, restore: Callable) -> None:
        self.block = block
        self.mem = mem
        self.restore = restore
        self.ns: Dict[str, object] = {}
        self.lines: List[str] = []
        self.helpers: Dict[object, str] = {}
        self.insn_data: List[Tuple] = []
        self.pending_ip = 0

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

    # -- names and expressions --------------------------------------------
    def v(self, t: Temp) -> str:
        if t.kind == "const":
            return hex(t.value) if t.value > 9 else str(t.value)
        if t.kind == "global":
            return "g_" + t.name
        return "t%d" % t.idx

    def _gload(self, t: Temp) -> str:
        if t.container:
            return "%s = _c_%s[%d]" % (self.v(t), t.container, t.index)
        return "%s = env.%s" % (self.v(t), t.name)

    def _gstore(self, t: Temp) -> str:
        if t.container:
            return "_c_%s[%d] = %s" % (t.container, t.index, self.v(t))
        return "env.%s = %s" % (t.name, self.v(t))

    def writeback(self, ind: str, which=None) -> None:
        for t in (self.written if which is None else which):
            self.lines.append(ind + self._gstore(t))

    def reload(self, ind: str) -> None:
        for t in self.globals:
            self.lines.append(ind + self._gload(t))

    def cond(self, cond: str, a: str, b: str, w: int) -> str:
        if cond == "always":
            return "True"
        if cond == "never":
            return "False"
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
        """Python expression for the single output of a pure op."""
        opc, w = op.opc, op.width
        m = hex((1 << w) - 1)
        a = self.v(op.ins[0]) if op.ins else ""
        b = self.v(op.ins[1]) if len(op.ins) > 1 else ""
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
            return "1 if %s else 0" % self.cond(op.params[0], a, b, w)
        if opc == "movcond":
            return "%s if %s else %s" % (self.v(op.ins[2]), self.cond(op.params[0], a, b, w),
                                         self.v(op.ins[3]))
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

    # -- statements ----------------------------------------------------------
    def stmt(self, op: Op, ind: str, k: int) -> None:
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
            args = ", ".join(self.v(t) for t in op.ins)
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
            w = op.width
            a, b = self.v(op.ins[0]), self.v(op.ins[1])
            if opc == "muls2":
                s = hex(1 << (w - 1))
                a = "((%s ^ %s) - %s)" % (a, s, s)
                b = "((%s ^ %s) - %s)" % (b, s, s)
            L.append("%s_x = %s * %s" % (ind, a, b))
            L.append("%s%s = _x & %s" % (ind, self.v(op.outs[0]), hex((1 << w) - 1)))
            L.append("%s%s = (_x >> %d) & %s" % (ind, self.v(op.outs[1]), w, hex((1 << w) - 1)))
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
            L.append("%s%s = %s" % (ind, self.v(op.outs[0]), self.expr(op)))

    def _mark_ip(self, ind: str) -> None:
        # In structured code a branch may skip an earlier store of _ip, so the
        # value is stored at every may-raise op (cheap, and always correct).
        self.lines.append("%s_ip = %d" % (ind, self.pending_ip))

    def exit(self, ind: str, value: str) -> None:
        self.writeback(ind)
        if self.has_self_loop:
            self.lines.append("%senv.insn_count += _it * %d" % (ind, self.block.ninsns))
        self.lines.append("%sreturn %s" % (ind, value))

    def _struct(self, size: int, signed: bool, be: bool, kind: str) -> str:
        name = "_%s%d%s%s" % (kind, size, "s" if signed else "", "b" if be else "")
        if name not in self.ns:
            s = _STRUCTS[(size, signed, be)]
            self.ns[name] = s.unpack_from if kind == "u" else s.pack_into
        return name

    def load(self, op: Op, ind: str) -> None:
        memop = op.params[0]
        size = 1 << (memop & MO_SIZE)
        signed, be = bool(memop & MO_SIGN), bool(memop & MO_BE)
        d, a = self.v(op.outs[0]), self.v(op.ins[0])
        L = self.lines
        m = hex((1 << op.width) - 1)
        if size > 8:
            # 128-bit: two 64-bit halves from the page when it does not cross
            self.ns["_u128"] = _Q2.unpack_from
            L.append("%s_p = _R(%s >> 12)" % (ind, a))
            L.append("%sif _p is not None and (%s & 4095) <= %d:" % (ind, a, 4096 - size))
            L.append("%s    _lo, _hi = _u128(_p, %s & 4095)" % (ind, a))
            L.append("%s    %s = _lo | (_hi << 64)" % (ind, d))
            L.append("%selse:" % ind)
            L.append("%s    %s = _LD(%s, %d)" % (ind, d, a, size))
            return
        fn = self._struct(size, signed, be, "u")
        L.append("%s_p = _R(%s >> 12)" % (ind, a))
        if size == 1:
            L.append("%sif _p is not None:" % ind)
        else:
            L.append("%sif _p is not None and (%s & 4095) <= %d:" % (ind, a, 4096 - size))
        val = "%s(_p, %s & 4095)[0]" % (fn, a)
        if signed:
            val += " & " + m
        L.append("%s    %s = %s" % (ind, d, val))
        L.append("%selse:" % ind)
        slow = "_LD(%s, %d)" % (a, size)
        if be:
            slow = "int.from_bytes(%s.to_bytes(%d, 'little'), 'big')" % (slow, size)
        if signed:
            s = hex(1 << (size * 8 - 1))
            slow = "((%s ^ %s) - %s) & %s" % (slow, s, s, m)
        L.append("%s    %s = %s" % (ind, d, slow))

    def store(self, op: Op, ind: str) -> None:
        memop = op.params[0]
        size = 1 << (memop & MO_SIZE)
        be = bool(memop & MO_BE)
        val, a = self.v(op.ins[0]), self.v(op.ins[1])
        if size * 8 < op.width:
            val = "%s & %s" % (val, hex((1 << (size * 8)) - 1))
        L = self.lines
        if size > 8:
            self.ns["_p128"] = _Q2.pack_into
            L.append("%s_p = _W(%s >> 12)" % (ind, a))
            L.append("%sif _p is not None and (%s & 4095) <= %d:" % (ind, a, 4096 - size))
            L.append("%s    _p128(_p, %s & 4095, %s & 0xffffffffffffffff, (%s >> 64) & 0xffffffffffffffff)"
                     % (ind, a, val, val))
            L.append("%selse:" % ind)
            L.append("%s    _ST(%s, %s, %d)" % (ind, a, val, size))
            return
        fn = self._struct(size, False, be, "p")
        L.append("%s_p = _W(%s >> 12)" % (ind, a))
        if size == 1:
            L.append("%sif _p is not None:" % ind)
        else:
            L.append("%sif _p is not None and (%s & 4095) <= %d:" % (ind, a, 4096 - size))
        L.append("%s    %s(_p, %s & 4095, %s)" % (ind, fn, a, val))
        L.append("%selse:" % ind)
        if be:
            val = "int.from_bytes((%s).to_bytes(%d, 'little'), 'big')" % (val, size)
        L.append("%s    _ST(%s, %s, %d)" % (ind, a, val, size))

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
                neg = {"eq": "ne", "ne": "eq", "lt": "ge", "ge": "lt", "le": "gt", "gt": "le",
                       "ltu": "geu", "geu": "ltu", "leu": "gtu", "gtu": "leu",
                       "always": "never", "never": "always"}[op.params[0]]
                test = self.cond(neg, self.v(op.ins[0]), self.v(op.ins[1]), op.width)
                last = ops[q - 1] if q - 1 > k else None
                if last is not None and last.opc == "br" and op.params[1].refs == 1 and \
                        q < pos[last.params[0]] <= j:
                    q2 = pos[last.params[0]]
                    self.lines.append("%sif %s:" % (ind, test))
                    self.structured(k + 1, q - 1, ind + "    ")
                    self.lines.append("%selse:" % ind)
                    self.structured(q + 1, q2, ind + "    ")
                    k = q2
                    continue
                self.lines.append("%sif %s:" % (ind, test))
                self.structured(k + 1, q, ind + "    ")
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
        for k, op in enumerate(ops):
            if op.opc == "set_label":
                seg = op.params[0].id
                self.lines.append("%s_L = %d" % (ind3, seg))
                self.lines.append("%sif _L == %d:" % (ind2, seg))
                self.lines.append(ind3 + "pass")
            elif op.opc == "brcond":
                test = self.cond(op.params[0], self.v(op.ins[0]), self.v(op.ins[1]), op.width)
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
        containers = sorted({t.container for t in self.globals if t.container})
        for c in containers:
            L.append("    _c_%s = env.%s" % (c, c))
        self.reload("    ")
        if self.has_self_loop:
            L.append("    _it = 0")
        if self.may_raise:
            L.append("    _ip = 0")
            L.append("    try:")
            ind = "        "
        else:
            ind = "    "
        body_start = len(L)
        self.state_machine = False
        try:
            if self.has_self_loop:
                L.append(ind + "while True:")
                self.structured(0, len(self.block.ops), ind + "    ")
            else:
                self.structured(0, len(self.block.ops), ind)
        except _Unstructured:
            del L[body_start:]
            self.insn_data = []
            self.state_machine = True
            self.state_machine_body(ind)
        if self.may_raise:
            L.append("    except BaseException:")
            self.writeback("        ")
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
        # Everything the body uses from the namespace becomes a default argument,
        # i.e. a local: plain-dict globals of exec'd code are slow on PyPy.
        names = sorted(k for k in ns if k.startswith("_") and not k.startswith("__"))
        src = src.replace("def tb(env):", "def tb(env, %s):" % ", ".join("%s=%s" % (k, k) for k in names), 1)
        exec(compile(src, name, "exec"), ns)
        return ns["tb"], src

