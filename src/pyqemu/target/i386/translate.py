"""x86 frontend: guest instructions -> IR (never Python; the backend does that).

One ``Disas`` object decodes one translation block.  Operands are read into
temps masked to the operand size; condition codes are lazy (``cc.py``) and the
current ``cc_op`` is tracked statically inside the block so that a compare
followed by a conditional jump becomes a single compare in the IR.

Within one instruction all memory accesses come before register writes, so
a fault leaves the registers exactly as they were before the instruction.
"""
from __future__ import annotations

from typing import Dict, Optional

from pyqemu.exec.cpu_loop import EXIT_EXCP
from pyqemu.exec.guest_memory import PAGE_MASK, GuestFault
from pyqemu.tcg.backend_py import PyCodegen
from pyqemu.tcg.ir import (CALL_MAY_RAISE, CALL_READS_STATE, CALL_SIDE_EFFECTS, CALL_WRITES_STATE,
                           I32, I64,
                           MO_SIGN, Block, Builder, GlobalSet, Helper, Temp)
from pyqemu.tcg import tier
from pyqemu.tcg.optimize import optimize
from pyqemu.tcg.tb import TB, TBCache
from pyqemu.target.i386 import cc as C
from pyqemu.target.i386 import helpers as H
from pyqemu.target.i386.sysemu.excp import CpuException
from pyqemu.target.i386.cpu import (EXCP_BREAKPOINT, EXCP_GPF, EXCP_INVALID_OPCODE,
                                    EXCP_SYSCALL)
from pyqemu.util import log

MAX_INSNS = 256
DYNAMIC = -1
SIZE_MO = {1: 0, 2: 1, 4: 2, 8: 3, 16: 4}
MASK = {1: 0xff, 2: 0xffff, 4: 0xffffffff, 8: (1 << 64) - 1}

_RS = CALL_READS_STATE | CALL_WRITES_STATE
h_divu = Helper(H.divu, CALL_MAY_RAISE, 2)
h_divs = Helper(H.divs, CALL_MAY_RAISE, 2)
h_cpuid = Helper(H.cpuid, CALL_READS_STATE, 4)
h_rdtsc = Helper(H.rdtsc, CALL_READS_STATE, 2)
h_get_eflags = Helper(H.get_eflags, CALL_READS_STATE, 1)
h_set_eflags = Helper(H.set_eflags, _RS, 0)
h_cond = Helper(C.eval_cond, 0, 1, "eval_cond")
h_compute_cc = Helper(H.compute_cc, 0, 1)
h_raise = Helper(H.raise_exception, CALL_MAY_RAISE, 0)
h_string = Helper(H.string_op, _RS | CALL_MAY_RAISE, 0)
h_atomic = Helper(H.atomic_op, CALL_MAY_RAISE, 1)
h_atomic_cx = Helper(H.atomic_cmpxchg, CALL_MAY_RAISE, 1)
h_cmpxchg_n = Helper(H.cmpxchg_n, _RS | CALL_MAY_RAISE, 0)
h_rcl_rcr = Helper(H.rcl_rcr, _RS, 1)
h_shld = Helper(H.shld_shrd, _RS, 1)
h_bcd = Helper(H.bcd_adjust, _RS | CALL_MAY_RAISE, 0)


class Unsupported(Exception):
    pass


class X86Globals:
    def __init__(self) -> None:
        g = self.set = GlobalSet()
        names = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi"] + \
                ["r%d" % i for i in range(8, 16)]
        self.regs = [g.add(n, I64, "regs", i) for i, n in enumerate(names)]
        self.rip = g.add("rip", I64)
        self.cc_op = g.add("cc_op", I32)
        self.cc_dst = g.add("cc_dst", I64)
        self.cc_src = g.add("cc_src", I64)
        self.cc_src2 = g.add("cc_src2", I64)
        self.eflags = g.add("eflags", I64)
        self.fs_base = g.add("fs_base", I64)
        self.gs_base = g.add("gs_base", I64)
        self.env = g.add("env", I64)   # the CPU object itself, as a helper argument
        self.mem = g.add("mem", I64)
        # system mode: the segment bases (hidden descriptor caches), ES..GS
        self.seg_base = [g.add("seg_base%d" % i, I64, "seg_base", i) for i in range(6)]


def _restore(env, data) -> None:
    env.rip = data[0]


R_ES, R_CS, R_SS, R_DS, R_FS, R_GS = range(6)
_SEG_PREFIX = {0x26: R_ES, 0x2e: R_CS, 0x36: R_SS, 0x3e: R_DS, 0x64: R_FS, 0x65: R_GS}
_LEGACY_PREFIXES = frozenset((0x66, 0x67, 0xf2, 0xf3, 0xf0) + tuple(_SEG_PREFIX))

# TB flags.  User mode: bit 0 = 64-bit code.  System mode (SYSF_SYS) adds
# QEMU's hflags that change what the decoder emits; a change of any of them
# happens only in instructions that end their block.
SYSF_CODE64 = 1
SYSF_SYS = 4
SYSF_CODE32 = 8
SYSF_CPL_SHIFT = 5
SYSF_PE = 1 << 7
SYSF_VM86 = 1 << 8
SYSF_SS32 = 1 << 9
SYSF_ADDSEG = 1 << 10
SYSF_LMA = 1 << 11


class Translator:
    """Per address space: the TB cache and the translation entry point."""

    def __init__(self, mem) -> None:
        self.mem = mem
        self.cache = TBCache(mem)
        self.g = X86Globals()
        self.page_cache: Dict[int, bytes] = {}

    def fetch_page(self, lin: int, d: "Disas") -> bytes:
        """The 4 KiB page of code holding linear address ``lin`` (faults as a fetch)."""
        prot = self.mem.get_prot(lin)
        if not prot or not prot & 5:
            raise GuestFault(lin, False)
        return self.mem.read(lin & ~PAGE_MASK, 4096)

    @staticmethod
    def flags_for(cpu) -> int:
        return 1 if cpu.mode == 64 else 0

    def find_tb(self, pc: int, flags: int, max_insns: int = 0) -> TB:
        tb = self.cache.get(pc, 0, flags)
        if tb is not None:
            return tb
        with self.mem.lock:
            return self._translate(pc, flags, max_insns)

    def _translate(self, pc: int, flags: int, max_insns: int) -> TB:
        from pyqemu.exec.cpu_loop import ONE_INSN_FLAG
        if flags & ONE_INSN_FLAG:
            max_insns = 1
        block = Block(pc)
        b = Builder(block)
        d = Disas(self, b, pc, 64 if flags & 1 else 32, max_insns or MAX_INSNS)
        d.run()
        if log.enabled("in_asm"):
            from pyqemu.target.i386.disas import in_asm_block
            log.log(in_asm_block(pc, d.code_bytes(), d.mode))
        if log.enabled("op"):
            log.log("OP:\n" + block.dump() + "\n")
        if not tier.lazy_optimize():
            optimize(block, b.const)
        if log.enabled("op_opt"):
            log.log("OP after optimization and liveness analysis:\n" + block.dump() + "\n")
        gen = PyCodegen(block, self.mem, _restore)
        fn, src = gen.compile("<tb 0x%x>" % pc)
        if log.enabled("out_asm"):
            log.log("OUT: [size=%d]\n%s\n" % (len(src), src))
        tb = TB(pc, 0, flags)
        tb.fn = fn
        tb.src = src
        tb.ninsns = block.ninsns
        tb.size = d.pc - pc
        tb.pages = tuple(sorted({pc >> 12, (d.pc - 1) >> 12}))
        self.cache.add(tb)
        return tb


def get_translator(cpu) -> Translator:
    tr = getattr(cpu.mem, "_translator", None)
    if tr is None:
        tr = Translator(cpu.mem)
        cpu.mem._translator = tr
    return tr


class Disas:
    """Decodes one block (see module docstring)."""

    def __init__(self, tr: Translator, b: Builder, pc: int, mode: int, max_insns: int,
                 sysf: int = 0, cs_base: int = 0) -> None:
        self.tr = tr
        self.mem = tr.mem
        self.b = b
        self.g = tr.g
        self.pc = pc
        self.mode = mode
        self.max_insns = max_insns
        self.cc_op = DYNAMIC
        self.done = False
        # start of each decoded instruction (their bytes: code_bytes())
        self.insns = []
        self.code_pages: Dict[int, bytes] = {}
        # the page u8() reads from and the EIP of its first byte (none yet:
        # no EIP is within 4096 of this base)
        self._page = b""
        self._pbase = -(1 << 80)
        self.sys = bool(sysf & SYSF_SYS)
        self.cs_base = cs_base
        self.la_mask = MASK[8] if mode == 64 else MASK[4]
        if self.sys:
            self.cpl = (sysf >> SYSF_CPL_SHIFT) & 3
            self.pe = bool(sysf & SYSF_PE)
            self.vm86 = bool(sysf & SYSF_VM86)
            self.ss32 = bool(sysf & SYSF_SS32)
            self.addseg = bool(sysf & SYSF_ADDSEG) and mode != 64
        else:
            self.cpl = 3
            self.pe = True
            self.vm86 = False
            self.ss32 = True
            self.addseg = False
        self.spsize = 8 if mode == 64 else (4 if self.ss32 else 2)
        self.seg_ovr = None
        # Per-instruction state (insn(), modrm()), created here so that every
        # Disas has the same attribute layout: PyPy's interpreter and CPython's
        # attribute caches stay monomorphic on it.
        self.osize = self.asize = 4
        self.rex_w = self.rex_r = self.rex_x = self.rex_b = 0
        self.rex_any = False
        self.rep = 0
        self.lock = False
        self.seg = None
        self.pfx66 = False
        self.start = pc
        self.riprel_fixups = []
        self.vex = None
        self.mod = self.reg = self.rm = 0
        self.ea = None

    # -- fetching ------------------------------------------------------------
    def _byte(self, addr: int) -> int:
        lin = (addr + self.cs_base) & self.la_mask
        pn = lin >> 12
        page = self.code_pages.get(pn)
        if page is None:
            page = self.tr.fetch_page(lin, self)
            self.code_pages[pn] = page
        # EIPs [pbase, pbase + 4096) are this page without wrapping around
        self._page = page
        self._pbase = (lin & ~PAGE_MASK) - self.cs_base
        return page[lin & PAGE_MASK]

    def code_bytes(self) -> bytes:
        """The bytes of the instructions decoded so far (for -d in_asm)."""
        start = self.insns[0] if self.insns else self.pc
        return bytes(self._byte(a) for a in range(start, self.pc))

    def page_of(self, eip: int) -> int:
        return ((eip + self.cs_base) & self.la_mask) >> 12

    def page_offset(self, eip: int) -> int:
        return (eip + self.cs_base) & PAGE_MASK

    def u8(self) -> int:
        pc = self.pc
        self.pc = pc + 1
        off = pc - self._pbase
        if 0 <= off < 4096:
            return self._page[off]
        return self._byte(pc)

    def imm(self, size: int) -> int:
        off = self.pc - self._pbase
        if 0 <= off <= 4096 - size:
            self.pc += size
            return int.from_bytes(self._page[off:off + size], "little")
        v = 0
        for i in range(min(size, 4)):
            v |= self.u8() << (8 * i)
        if size == 8:
            v |= self.u8() << 32 | self.u8() << 40 | self.u8() << 48 | self.u8() << 56
        return v

    def simm(self, size: int) -> int:
        """Immediate of ``size`` bytes sign-extended to 64 bits (unsigned repr)."""
        v = self.imm(size)
        bits = size * 8
        s = 1 << (bits - 1)
        return ((v ^ s) - s) & MASK[8]

    # -- block loop ------------------------------------------------------------
    def run(self) -> None:
        b = self.b
        n = 0
        insns = self.insns
        max_insns = self.max_insns
        # the block ends on its first page, at most 16 bytes before the page's end
        page0 = self.page_of(self.pc)
        cs_base, la_mask = self.cs_base, self.la_mask
        while True:
            start = self.pc
            b.insn_start(start)
            try:
                self.insn(start)
            except (Unsupported, IndexError):
                # Undo this instruction's ops and raise #UD at it.
                while b.ops and not (b.ops[-1].opc == "insn_start" and b.ops[-1].params[0] == start):
                    b.ops.pop()
                self.pc = start
                self.gen_exception(EXCP_INVALID_OPCODE, start)
            except (GuestFault, CpuException):
                if n == 0:
                    raise
                while b.ops and not (b.ops[-1].opc == "insn_start" and b.ops[-1].params[0] == start):
                    b.ops.pop()
                b.ops.pop()
                b.block.ninsns -= 1
                self.pc = start
                self.gen_jmp_const(start, 0)
                break
            insns.append(start)
            n += 1
            if self.done:
                break
            lin = (self.pc + cs_base) & la_mask
            if n >= max_insns or lin >> 12 != page0 or lin & PAGE_MASK > 4096 - 16:
                self.gen_jmp_const(self.pc, 0)
                break

    # -- state helpers ------------------------------------------------------------
    def set_cc_op(self, op: int) -> None:
        if op != self.cc_op:
            self.b.movi(self.g.cc_op, op, I32)
            self.cc_op = op

    def gen_exit_prep(self) -> None:
        pass

    def gen_jmp_const(self, dest: int, n: int) -> None:
        if self.mode != 64:
            dest &= 0xffffffff
        self.b.movi(self.g.rip, dest)
        self.b.goto_tb(n, dest)
        self.done = True

    def gen_jmp_temp(self, t: Temp) -> None:
        if self.mode != 64:
            t = self.b.op2("ext32u", t)
        self.b.mov(self.g.rip, t)
        self.b.lookup_and_goto_ptr()
        self.done = True

    def gen_exception(self, excp: int, pc: int) -> None:
        """Raise exception ``excp`` with rip at ``pc``."""
        self.b.movi(self.g.rip, pc)
        self.b.exit_tb(EXIT_EXCP + excp)
        self.done = True

    # -- registers ------------------------------------------------------------------
    def greg(self, size: int, r: int) -> Temp:
        """Register ``r`` read at operand size ``size`` (masked)."""
        b = self.b
        if size == 1 and not self.rex_any and 4 <= r < 8:
            return b.extract(self.g.regs[r - 4], 8, 8)
        reg = self.g.regs[r]
        if size == 8:
            return b.op2("mov", reg)
        return b.op2({1: "ext8u", 2: "ext16u", 4: "ext32u"}[size], reg)

    def sreg(self, size: int, r: int, val: Temp) -> None:
        b = self.b
        if size == 1 and not self.rex_any and 4 <= r < 8:
            reg = self.g.regs[r - 4]
            b.deposit(reg, val, 8, 8, dst=reg)
            return
        reg = self.g.regs[r]
        if size == 8:
            b.mov(reg, val)
        elif size == 4:
            b.op2("ext32u", val, dst=reg)
        else:
            b.deposit(reg, val, 0, size * 8, dst=reg)

    def mask(self, t: Temp, size: int) -> Temp:
        if size == 8:
            return t
        return self.b.op2({1: "ext8u", 2: "ext16u", 4: "ext32u"}[size], t)

    def sext(self, t: Temp, size: int) -> Temp:
        if size == 8:
            return t
        return self.b.op2({1: "ext8s", 2: "ext16s", 4: "ext32s"}[size], t)

    # -- memory -----------------------------------------------------------------------
    def ld(self, size: int, addr: Temp, sign: bool = False) -> Temp:
        return self.b.ld(addr, SIZE_MO[size] | (MO_SIGN if sign else 0))

    def st(self, size: int, addr: Temp, val: Temp) -> None:
        self.b.st(val, addr, SIZE_MO[size])

    # -- ModRM --------------------------------------------------------------------------
    def modrm(self) -> None:
        m = self.u8()
        self.mod = m >> 6
        self.reg = ((m >> 3) & 7) | self.rex_r
        self.rm = m & 7
        if self.mod == 3:
            self.rm |= self.rex_b
            self.ea = None
            return
        # Decode the address now (reading SIB/displacement), build it later: a
        # RIP-relative address needs the end of the instruction.
        base = index = None
        scale = 0
        disp = 0
        riprel = False
        if self.asize == 2:
            rm = self.rm
            pairs = [(3, 6), (3, 7), (5, 6), (5, 7), (6, None), (7, None), (5, None), (3, None)]
            if self.mod == 0 and rm == 6:
                disp = self.imm(2)
                base = index = None
            else:
                base, index = pairs[rm]
                if self.mod == 1:
                    disp = self.simm(1)
                elif self.mod == 2:
                    disp = self.imm(2)
            self.ea = (base, index, 0, disp, False)
            if self.sys and base == 5:
                self.seg = self.seg_temp(self.seg_ovr, R_SS)     # BP-based: SS
            return
        rm = self.rm
        if rm == 4:
            sib = self.u8()
            scale = sib >> 6
            idx = ((sib >> 3) & 7) | self.rex_x
            if idx != 4:
                index = idx
            bs = sib & 7
            if bs == 5 and self.mod == 0:
                base = None
                disp = self.simm(4)
            else:
                base = bs | self.rex_b
        elif rm == 5 and self.mod == 0:
            disp = self.simm(4)
            if self.mode == 64:
                riprel = True
        else:
            base = rm | self.rex_b
        if self.mod == 1:
            disp = self.simm(1)
        elif self.mod == 2:
            disp = self.simm(4)
        self.ea = (base, index, scale, disp, riprel)
        if self.sys and base in (4, 5):
            self.seg = self.seg_temp(self.seg_ovr, R_SS)         # ESP/EBP-based: SS

    def addr(self, seg_ok: bool = True) -> Temp:
        """The effective address of the current ModRM memory operand (call after immediates)."""
        base, index, scale, disp, riprel = self.ea
        b = self.b
        if riprel:
            # Relative to the end of the instruction, which may still have
            # immediate bytes to read: the constant is fixed up in insn().
            t = Temp(0, I64, "const", value=(self.pc + disp) & MASK[8])
            self.riprel_fixups.append((t, disp))
            if self.seg is not None:
                t = b.op3("add", t, self.seg)
            return t   # RIP-relative exists only in 64-bit mode: no 32-bit wrap
        return self.gen_addr(base, index, scale, disp, seg_ok)

    def gen_addr(self, base: Optional[int], index: Optional[int], scale: int, disp: int,
                 seg_ok: bool = True) -> Temp:
        b = self.b
        regs = self.g.regs
        t = None
        if base is not None:
            t = regs[base]
        if index is not None:
            x = regs[index]
            if scale:
                x = b.op3("shl", x, b.const(scale))
            t = x if t is None else b.op3("add", t, x)
        if t is None:
            t = b.const(disp)
        elif disp:
            t = b.op3("add", t, b.const(disp))
        if self.asize == 4:
            t = b.op2("ext32u", t)
        elif self.asize == 2:
            t = b.op2("ext16u", t)
        elif t.kind == "global":
            t = b.op2("mov", t)
        if self.seg is not None and seg_ok:
            t = b.op3("add", t, self.seg)
            if self.mode != 64:
                t = b.op2("ext32u", t)
        return t

    def seg_lin(self, off: Temp, seg: Optional[Temp]) -> Temp:
        """offset + segment base, wrapped to 32 bits outside 64-bit mode."""
        if seg is None:
            return off
        t = self.b.op3("add", off, seg)
        return self.b.op2("ext32u", t) if self.mode != 64 else t

    def ld_rm(self, size: int) -> Temp:
        if self.ea is None:
            return self.greg(size, self.rm)
        return self.ld(size, self.addr())

    def st_rm(self, size: int, val: Temp, addr: Optional[Temp] = None) -> None:
        if self.ea is None:
            self.sreg(size, self.rm, val)
        else:
            self.st(size, addr if addr is not None else self.addr(), val)

    # -- flags --------------------------------------------------------------------------
    def set_cc(self, kind: int, size: int, dst: Temp, src: Optional[Temp] = None,
               src2: Optional[Temp] = None) -> None:
        b, g = self.b, self.g
        b.mov(g.cc_dst, dst)
        if src is not None:
            b.mov(g.cc_src, src)
        if src2 is not None:
            b.mov(g.cc_src2, src2)
        self.set_cc_op(C.cc_op_of(kind, size))

    def compute_eflags(self) -> Temp:
        """The arithmetic flags as a value (and the state switched to CC_OP_EFLAGS)."""
        b, g = self.b, self.g
        if self.cc_op == C.CC_OP_EFLAGS:
            return g.cc_src
        f = b.call(h_compute_cc, [g.cc_op, g.cc_dst, g.cc_src, g.cc_src2])[0]
        b.mov(g.cc_src, f)
        self.set_cc_op(C.CC_OP_EFLAGS)
        return g.cc_src

    def gen_cf(self) -> Temp:
        """CF as 0/1."""
        b, g = self.b, self.g
        op = self.cc_op
        if op != DYNAMIC:
            kind, size = op >> 2, 1 << (op & 3)
            if kind == C.K_SUB:
                return b.setcond("ltu", g.cc_src2, g.cc_src)
            if kind == C.K_LOGIC:
                return b.const(0)
            if kind == C.K_ADD:
                return b.setcond("ltu", self.mask(g.cc_dst, size), self.mask(g.cc_src, size))
            if kind in (C.K_INC, C.K_DEC, C.K_EFLAGS):
                return b.op3("and", g.cc_src, b.const(1))
        f = b.call(h_compute_cc, [g.cc_op, g.cc_dst, g.cc_src, g.cc_src2])[0]
        return b.op3("and", f, b.const(1))

    def cond(self, cc: int):
        """(cond, a, b) such that ``cond(a, b)`` is x86 condition ``cc`` (0..15)."""
        b, g = self.b, self.g
        op = self.cc_op
        inv = cc & 1
        base = cc >> 1
        if op != DYNAMIC and op != C.CC_OP_EFLAGS:
            kind, size = op >> 2, 1 << (op & 3)
            bits = size * 8
            if base == 2:       # E
                return ("ne" if inv else "eq", g.cc_dst, b.const(0))
            if base == 4:       # S
                s = b.extract(g.cc_dst, bits - 1, 1)
                return ("eq" if inv else "ne", s, b.const(0))
            if kind == C.K_SUB:
                a1, a2 = g.cc_src2, g.cc_src
                if base == 1:
                    return ("geu" if inv else "ltu", a1, a2)
                if base == 3:
                    return ("gtu" if inv else "leu", a1, a2)
                if base in (6, 7):
                    if size >= 4:
                        # operands are kept masked to their size: compare at that width
                        w = I32 if size == 4 else I64
                        if base == 6:
                            return ("ge" if inv else "lt", a1, a2, w)
                        return ("gt" if inv else "le", a1, a2, w)
                    s1, s2 = self.sext(a1, size), self.sext(a2, size)
                    if base == 6:
                        return ("ge" if inv else "lt", s1, s2)
                    return ("gt" if inv else "le", s1, s2)
            if kind == C.K_LOGIC:
                if base == 0 or base == 1:
                    return ("eq" if inv else "ne", b.const(0), b.const(0))
                if base == 3:
                    return ("ne" if inv else "eq", g.cc_dst, b.const(0))
                if base == 6:
                    s = b.extract(g.cc_dst, bits - 1, 1)
                    return ("eq" if inv else "ne", s, b.const(0))
                if base == 7:
                    return ("gt" if inv else "le", self.sext(g.cc_dst, size), b.const(0))
        if op == C.CC_OP_EFLAGS:
            f = g.cc_src
        else:
            f = b.call(h_compute_cc, [g.cc_op, g.cc_dst, g.cc_src, g.cc_src2])[0]
        masks = {0: 0x800, 1: 1, 2: 0x40, 3: 0x41, 4: 0x80, 5: 4}
        if base in masks:
            t = b.op3("and", f, b.const(masks[base]))
            return ("eq" if inv else "ne", t, b.const(0))
        x = b.op3("xor", b.op3("shr", f, b.const(4)), f)     # SF^OF at bit 7
        x = b.op3("and", x, b.const(0x80))
        if base == 7:
            x = b.op3("or", x, b.op3("and", f, b.const(0x40)))
        return ("eq" if inv else "ne", x, b.const(0))

    def cond_value(self, cc: int) -> Temp:
        c = self.cond(cc)
        return self.b.setcond(c[0], c[1], c[2], c[3] if len(c) > 3 else I64)

    # -- stack --------------------------------------------------------------------------
    def stack_size(self) -> int:
        if self.mode == 64:
            return 2 if self.osize == 2 else 8
        return 2 if self.osize == 2 else 4

    def sp_addr(self, offset: int = 0) -> Temp:
        """SP + offset at the stack's address size (the new SP value, not linear)."""
        b = self.b
        sp = self.g.regs[4]
        t = b.op3("add", sp, b.const(offset)) if offset else b.op2("mov", sp)
        if self.spsize == 4:
            t = b.op2("ext32u", t)
        elif self.spsize == 2:
            t = b.op2("ext16u", t)
        return t

    def stack_lin(self, off: Temp) -> Temp:
        """The linear address of stack offset ``off`` (adds SS's base when needed)."""
        if self.sys and self.addseg:
            b = self.b
            return b.op2("ext32u", b.op3("add", off, self.g.seg_base[R_SS]))
        return off

    def set_sp(self, t: Temp) -> None:
        sp = self.g.regs[4]
        if self.spsize == 4:
            self.b.op2("ext32u", t, dst=sp)
        elif self.spsize == 2:
            self.b.deposit(sp, t, 0, 16, dst=sp)
        else:
            self.b.mov(sp, t)

    def push(self, val: Temp, size: Optional[int] = None) -> None:
        size = size or self.stack_size()
        a = self.sp_addr(-size)
        self.st(size, self.stack_lin(a), val)
        self.set_sp(a)

    def pop_val(self, size: Optional[int] = None) -> Temp:
        size = size or self.stack_size()
        return self.ld(size, self.stack_lin(self.sp_addr()))

    def pop_adjust(self, size: Optional[int] = None) -> None:
        size = size or self.stack_size()
        self.set_sp(self.sp_addr(size))

    # -- decode -----------------------------------------------------------------------
    def decode_vex(self, c: int) -> None:
        """VEX-encoded instructions: the BMI1/BMI2 general-purpose ones (no AVX)."""
        p1 = self.u8()
        if c == 0xc5:
            r, x, bb, mmmmm, w = (~p1 >> 7) & 1, 0, 0, 1, 0
            vvvv, ll, pp = (~p1 >> 3) & 15, (p1 >> 2) & 1, p1 & 3
        else:
            p2 = self.u8()
            r, x, bb, mmmmm = (~p1 >> 7) & 1, (~p1 >> 6) & 1, (~p1 >> 5) & 1, p1 & 31
            w, vvvv, ll, pp = p2 >> 7, (~p2 >> 3) & 15, (p2 >> 2) & 1, p2 & 3
        if self.mode != 64:
            r = x = bb = w = 0
            vvvv &= 7
        self.rex_r, self.rex_x, self.rex_b = r << 3, x << 3, bb << 3
        self.rex_w = w
        self.rex_any = True
        self.osize = 8 if w and self.mode == 64 else 4
        self.vex = (vvvv, ll, pp)
        op = self.u8()
        fn = _VEX_TABLE.get((mmmmm << 8) | op)
        if fn is None or ll:
            raise Unsupported()
        fn(self, pp)
        for t, disp in self.riprel_fixups:
            t.value = (self.pc + disp) & MASK[8]

    def seg_temp(self, ovr: Optional[int], default: int) -> Optional[Temp]:
        """The base to add for segment ``ovr`` (or ``default``), None when it is 0."""
        if self.mode == 64 or not self.sys:
            # only FS and GS have a base (user mode: from arch_prctl/set_thread_area)
            if ovr == R_FS:
                return self.g.fs_base
            if ovr == R_GS:
                return self.g.gs_base
            return None
        if ovr is not None:
            return self.g.seg_base[ovr]
        return self.g.seg_base[default] if self.addseg else None

    def insn(self, start: int) -> None:
        mode = self.mode
        self.osize = 2 if mode == 16 else 4
        self.asize = 8 if mode == 64 else (2 if mode == 16 else 4)
        self.seg_ovr = None
        self.rex_w = self.rex_r = self.rex_x = self.rex_b = 0
        self.rex_any = False
        self.rep = 0
        self.lock = False
        self.seg = None
        self.pfx66 = False
        self.start = start
        self.riprel_fixups = []
        rex = 0
        while True:
            c = self.u8()
            if c not in _LEGACY_PREFIXES:
                if mode == 64 and 0x40 <= c <= 0x4f:
                    rex = c
                    c = self.u8()
                    if c in _LEGACY_PREFIXES or 0x40 <= c <= 0x4f:
                        # A REX followed by a prefix is ignored.
                        self.pc -= 1
                        rex = 0
                        continue
                break
            if c == 0x66:
                self.pfx66 = True
            elif c == 0x67:
                self.asize = 2 if self.mode == 32 else 4
            elif c == 0xf3:
                self.rep = 1
            elif c == 0xf2:
                self.rep = 2
            elif c == 0xf0:
                self.lock = True
            else:
                self.seg_ovr = _SEG_PREFIX[c]
            if self.pc - start > 14:
                raise Unsupported()
        self.vex = None
        if c in (0xc4, 0xc5) and (self.mode == 64 or (self._byte(self.pc) >> 6) == 3) and not rex \
                and not (self.sys and (not self.pe or self.vm86)):
            self.seg = self.seg_temp(self.seg_ovr, R_DS)
            self.decode_vex(c)
            return
        if rex:
            self.rex_any = True
            self.rex_w = (rex >> 3) & 1
            self.rex_r = (rex & 4) << 1
            self.rex_x = (rex & 2) << 2
            self.rex_b = (rex & 1) << 3
        if self.rex_w:
            self.osize = 8
        elif self.pfx66:
            self.osize = 6 - self.osize      # 16 <-> 32 bits
        self.seg = self.seg_temp(self.seg_ovr, R_DS)
        if c == 0x0f:
            c = 0x100 | self.u8()
            if c == 0x138:
                c = 0x200 | self.u8()
            elif c == 0x13a:
                c = 0x300 | self.u8()
        fn = _SYS_TABLE.get(c) if self.sys else None
        if fn is None:
            fn = _TABLE.get(c)
        if fn is None:
            from pyqemu.target.i386 import sse
            if not sse.handles(self, c):
                raise Unsupported()
        else:
            fn(self, c)
        for t, disp in self.riprel_fixups:
            t.value = (self.pc + disp) & MASK[8]


_TABLE: Dict[int, object] = {}
_VEX_TABLE: Dict[int, object] = {}
# system mode's own handlers (translate_sys.py), looked up first for sys blocks
_SYS_TABLE: Dict[int, object] = {}


def op(*codes):
    def deco(fn):
        for c in codes:
            if isinstance(c, range):
                for x in c:
                    _TABLE[x] = fn
            else:
                _TABLE[c] = fn
        return fn
    return deco


def _osize_b(d: Disas, c: int) -> int:
    return 1 if c & 1 == 0 else d.osize


# -- ALU -------------------------------------------------------------------------------
ADD, OR, ADC, SBB, AND, SUB, XOR, CMP = range(8)


def gen_alu(d: Disas, opk: int, size: int, src: Temp, reg_dst: Optional[int] = None) -> None:
    """``dst = dst op src`` where dst is the ModRM r/m (reg_dst None) or register reg_dst."""
    b = d.b
    w = I64 if size == 8 else I32
    mem_dst = reg_dst is None and d.ea is not None
    addr = d.addr() if mem_dst else None
    if mem_dst and d.lock and opk in (ADD, OR, AND, SUB, XOR):
        a = b.call(h_atomic, [d.g.mem, addr, b.const(size), b.const(opk), src])[0]
        r = _alu_value(d, opk, size, a, src, w)
        _alu_flags(d, opk, size, a, src, r, None)
        return
    if mem_dst:
        a = d.ld(size, addr)
    elif reg_dst is not None:
        a = d.greg(size, reg_dst)
    else:
        a = d.greg(size, d.rm)
    cin = None
    if opk in (ADC, SBB):
        cin = d.gen_cf()
    r = _alu_value(d, opk, size, a, src, w, cin)
    if opk != CMP:
        if mem_dst:
            d.st(size, addr, r)
        elif reg_dst is not None:
            d.sreg(size, reg_dst, r)
        else:
            d.sreg(size, d.rm, r)
    _alu_flags(d, opk, size, a, src, r, cin)


def _alu_value(d: Disas, opk: int, size: int, a: Temp, s: Temp, w: int,
               cin: Optional[Temp] = None) -> Temp:
    b = d.b
    if opk == ADD:
        r = b.op3("add", a, s, w)
    elif opk == ADC:
        r = b.op3("add", b.op3("add", a, s, w), cin, w)
    elif opk in (SUB, CMP):
        r = b.op3("sub", a, s, w)
    elif opk == SBB:
        r = b.op3("sub", b.op3("sub", a, s, w), cin, w)
    elif opk == AND:
        r = b.op3("and", a, s, w)
    elif opk == OR:
        r = b.op3("or", a, s, w)
    else:
        r = b.op3("xor", a, s, w)
    if size < 4:
        r = d.mask(r, size)
    return r


def _alu_flags(d: Disas, opk: int, size: int, a: Temp, s: Temp, r: Temp,
               cin: Optional[Temp]) -> None:
    if opk == ADD:
        d.set_cc(C.K_ADD, size, r, s)
    elif opk == ADC:
        d.set_cc(C.K_ADC, size, r, s, cin)
    elif opk in (SUB, CMP):
        d.set_cc(C.K_SUB, size, r, s, a)
    elif opk == SBB:
        d.set_cc(C.K_SBB, size, r, s, a)
    else:
        d.set_cc(C.K_LOGIC, size, r)


@op(*[x for x in range(0x40) if x & 7 < 6])
def _alu_std(d: Disas, c: int) -> None:
    opk = c >> 3
    form = c & 7
    size = _osize_b(d, c)
    if form < 4:
        d.modrm()
        if form < 2:        # rm, reg
            gen_alu(d, opk, size, d.greg(size, d.reg))
        else:               # reg, rm
            gen_alu(d, opk, size, d.ld_rm(size), reg_dst=d.reg)
    else:
        imm = d.simm(1 if size == 1 else min(size, 4))
        gen_alu(d, opk, size, d.b.const(imm & MASK[size]), reg_dst=0)


@op(0x80, 0x81, 0x82, 0x83)
def _alu_grp1(d: Disas, c: int) -> None:
    if c == 0x82 and d.mode == 64:
        raise Unsupported()
    size = 1 if c in (0x80, 0x82) else d.osize
    d.modrm()
    imm = d.simm(1 if c != 0x81 else min(size, 4))
    gen_alu(d, d.reg & 7, size, d.b.const(imm & MASK[size]))


@op(0x84, 0x85)
def _test_rm(d: Disas, c: int) -> None:
    size = _osize_b(d, c)
    d.modrm()
    a = d.ld_rm(size)
    r = d.b.op3("and", a, d.greg(size, d.reg))
    d.set_cc(C.K_LOGIC, size, r)


@op(0xa8, 0xa9)
def _test_imm(d: Disas, c: int) -> None:
    size = _osize_b(d, c)
    imm = d.simm(1 if size == 1 else min(size, 4)) & MASK[size]
    r = d.b.op3("and", d.greg(size, 0), d.b.const(imm))
    d.set_cc(C.K_LOGIC, size, r)


@op(range(0x50, 0x58))
def _push_r(d: Disas, c: int) -> None:
    size = d.stack_size()
    d.push(d.greg(size, (c & 7) | d.rex_b), size)


@op(range(0x58, 0x60))
def _pop_r(d: Disas, c: int) -> None:
    size = d.stack_size()
    v = d.pop_val(size)
    r = (c & 7) | d.rex_b
    d.pop_adjust(size)
    d.sreg(size, r, v)


@op(0x68, 0x6a)
def _push_imm(d: Disas, c: int) -> None:
    size = d.stack_size()
    v = d.simm(1 if c == 0x6a else min(size, 4)) & MASK[size]
    d.push(d.b.const(v), size)


@op(0x69, 0x6b)
def _imul3(d: Disas, c: int) -> None:
    size = d.osize
    d.modrm()
    imm = d.simm(1 if c == 0x6b else min(size, 4))
    a = d.ld_rm(size)
    _imul(d, size, a, d.b.const(imm & MASK[size]), d.reg)


def _imul(d: Disas, size: int, a: Temp, s: Temp, dst: int) -> None:
    b = d.b
    lo, hi = b.temp(), b.temp()
    b.emit("muls2", I64, [lo, hi], [d.sext(a, size), d.sext(s, size)])
    r = d.mask(lo, size)
    # overflow when the full product differs from the sign-extended result
    if size == 8:
        ov = b.op3("sub", hi, b.op3("sar", lo, b.const(63)))
    else:
        ov = b.op3("sub", lo, d.sext(r, size))
    d.sreg(size, dst, r)
    d.set_cc(C.K_MUL, size, r, ov)


@op(0x1af)
def _imul2(d: Disas, c: int) -> None:
    d.modrm()
    size = d.osize
    _imul(d, size, d.greg(size, d.reg), d.ld_rm(size), d.reg)


@op(range(0x70, 0x80))
def _jcc8(d: Disas, c: int) -> None:
    disp = d.simm(1)
    _jcc(d, c & 15, (d.pc + disp) & MASK[d.osize if d.osize == 2 else 8])


@op(range(0x180, 0x190))
def _jcc32(d: Disas, c: int) -> None:
    disp = d.simm(4 if d.osize != 2 else 2)
    target = (d.pc + disp) & MASK[8]
    if d.osize == 2:
        target &= 0xffff
    _jcc(d, c & 15, target)


def _jcc(d: Disas, cc: int, target: int) -> None:
    b = d.b
    c = d.cond(cc)
    nxt = d.pc
    lab = b.label()
    b.brcond(c[0], c[1], c[2], lab, c[3] if len(c) > 3 else I64)
    d.gen_jmp_const(nxt, 0)
    b.set_label(lab)
    d.gen_jmp_const(target, 1)


@op(0xeb, 0xe9)
def _jmp(d: Disas, c: int) -> None:
    disp = d.simm(1 if c == 0xeb else (2 if d.osize == 2 else 4))
    d.gen_jmp_const((d.pc + disp) & MASK[d.osize if d.osize == 2 else 8], 0)


@op(0xe8)
def _call(d: Disas, c: int) -> None:
    disp = d.simm(2 if d.osize == 2 else 4)
    size = d.stack_size()
    d.push(d.b.const(d.pc & MASK[size]), size)
    d.gen_jmp_const((d.pc + disp) & MASK[d.osize if d.osize == 2 else 8], 0)


@op(0xc3, 0xc2)
def _ret(d: Disas, c: int) -> None:
    extra = d.imm(2) if c == 0xc2 else 0
    size = d.stack_size()
    v = d.pop_val(size)
    d.pop_adjust(size + extra)
    d.gen_jmp_temp(v)


@op(range(0xe0, 0xe4))
def _loop(d: Disas, c: int) -> None:
    b = d.b
    disp = d.simm(1)
    target = (d.pc + disp) & MASK[d.osize if d.osize == 2 else 8]
    asz = d.asize
    cx = d.g.regs[1]
    if c == 0xe3:
        v = d.mask(cx, asz)
    else:
        v = d.mask(b.op3("sub", cx, b.const(1)), asz)
        if asz == 8:
            b.mov(cx, v)
        elif asz == 4:
            b.op2("ext32u", v, dst=cx)
        else:
            b.deposit(cx, v, 0, 16, dst=cx)
    lab = b.label()
    nxt = d.pc
    if c == 0xe2 or c == 0xe3:
        b.brcond("eq" if c == 0xe3 else "ne", v, b.const(0), lab)
    else:
        z = d.cond_value(4 if c == 0xe1 else 5)     # E / NE
        t = b.op3("and", b.setcond("ne", v, b.const(0)), z)
        b.brcond("ne", t, b.const(0), lab)
    d.gen_jmp_const(nxt, 0)
    b.set_label(lab)
    d.gen_jmp_const(target, 1)


@op(0x88, 0x89)
def _mov_rm_r(d: Disas, c: int) -> None:
    size = _osize_b(d, c)
    d.modrm()
    d.st_rm(size, d.greg(size, d.reg))


@op(0x8a, 0x8b)
def _mov_r_rm(d: Disas, c: int) -> None:
    size = _osize_b(d, c)
    d.modrm()
    d.sreg(size, d.reg, d.ld_rm(size))


@op(0xc6, 0xc7)
def _mov_rm_imm(d: Disas, c: int) -> None:
    size = _osize_b(d, c)
    d.modrm()
    imm = d.simm(1 if size == 1 else min(size, 4)) & MASK[size]
    d.st_rm(size, d.b.const(imm))


@op(range(0xb0, 0xc0))
def _mov_r_imm(d: Disas, c: int) -> None:
    if c < 0xb8:
        d.sreg(1, (c & 7) | d.rex_b, d.b.const(d.imm(1)))
    else:
        size = d.osize
        d.sreg(size, (c & 7) | d.rex_b, d.b.const(d.imm(size)))


@op(0x8d)
def _lea(d: Disas, c: int) -> None:
    d.modrm()
    if d.ea is None:
        raise Unsupported()
    seg = d.seg
    d.seg = None
    a = d.addr()
    d.seg = seg
    d.sreg(d.osize, d.reg, d.mask(a, d.osize))


def _get_seg(env, i: int) -> int:
    return env.segs[i]


def _set_seg(env, i: int, v: int) -> None:
    # User mode keeps the selector only: the base of FS/GS comes from
    # arch_prctl/set_thread_area (fs_base/gs_base), as the kernel sets it up.
    env.segs[i] = v & 0xffff


h_get_seg = Helper(_get_seg, CALL_SIDE_EFFECTS, 1)
h_set_seg = Helper(_set_seg, CALL_SIDE_EFFECTS, 0)


@op(0x8c, 0x8e)
def _mov_seg(d: Disas, c: int) -> None:
    d.modrm()
    sr = d.reg & 7
    if sr > 5 or (c == 0x8e and sr == 1):
        raise Unsupported()
    b = d.b
    if c == 0x8c:
        v = b.call(h_get_seg, [d.g.env, b.const(sr)])[0]
        d.st_rm(2 if d.ea is not None else d.osize, v)
    else:
        b.call(h_set_seg, [d.g.env, b.const(sr), d.ld_rm(2)])


@op(0x1a0, 0x1a1, 0x1a8, 0x1a9, 0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f)
def _push_pop_seg(d: Disas, c: int) -> None:
    b = d.b
    sr = {0x1a0: 4, 0x1a1: 4, 0x1a8: 5, 0x1a9: 5, 0x06: 0, 0x07: 0, 0x0e: 1, 0x16: 2,
          0x17: 2, 0x1e: 3, 0x1f: 3}[c]
    if c < 0x100 and d.mode == 64:
        raise Unsupported()
    size = d.stack_size()
    if c in (0x1a0, 0x1a8, 0x06, 0x0e, 0x16, 0x1e):
        d.push(b.call(h_get_seg, [d.g.env, b.const(sr)])[0], size)
    else:
        v = d.pop_val(size)
        d.pop_adjust(size)
        b.call(h_set_seg, [d.g.env, b.const(sr), v])


@op(0x8f)
def _pop_rm(d: Disas, c: int) -> None:
    d.modrm()
    size = d.stack_size()
    v = d.pop_val(size)
    if d.ea is not None:
        # the address is computed with rsp already incremented
        sp = d.g.regs[4]
        tmp = d.b.op2("mov", sp)
        d.b.mov(sp, d.sp_addr(size))
        a = d.addr()
        d.b.mov(sp, tmp)
        d.st(size, a, v)
        d.pop_adjust(size)
    else:
        d.pop_adjust(size)
        d.sreg(size, d.rm, v)


@op(0x90)
def _nop(d: Disas, c: int) -> None:
    if d.rex_b:
        _xchg_ax(d, c)
    elif d.rep == 1:
        pass    # pause


@op(range(0x91, 0x98))
def _xchg_ax(d: Disas, c: int) -> None:
    size = d.osize
    r = (c & 7) | d.rex_b
    a, x = d.greg(size, 0), d.greg(size, r)
    d.sreg(size, 0, x)
    d.sreg(size, r, a)


@op(0x86, 0x87)
def _xchg(d: Disas, c: int) -> None:
    size = _osize_b(d, c)
    d.modrm()
    b = d.b
    v = d.greg(size, d.reg)
    if d.ea is None:
        o = d.greg(size, d.rm)
        d.sreg(size, d.rm, v)
        d.sreg(size, d.reg, o)
    else:
        a = d.addr()
        o = b.call(h_atomic, [d.g.mem, a, b.const(size), b.const(8), v])[0]
        d.sreg(size, d.reg, o)


@op(0x98)
def _cbw(d: Disas, c: int) -> None:
    size = d.osize
    half = size // 2
    d.sreg(size, 0, d.mask(d.sext(d.greg(half, 0), half), size))


@op(0x99)
def _cwd(d: Disas, c: int) -> None:
    size = d.osize
    b = d.b
    s = b.op3("sar", d.sext(d.greg(size, 0), size), b.const(63))
    d.sreg(size, 2, d.mask(s, size))


@op(0x9c)
def _pushf(d: Disas, c: int) -> None:
    f = d.b.call(h_get_eflags, [d.g.env])[0]
    size = d.stack_size()
    d.push(d.b.op3("and", f, d.b.const(0xfcffff)), size)


@op(0x9d)
def _popf(d: Disas, c: int) -> None:
    size = d.stack_size()
    v = d.pop_val(size)
    d.pop_adjust(size)
    mask = 0x244dd5 if size != 2 else 0x4dd5
    d.b.call(h_set_eflags, [d.g.env, v, d.b.const(mask)])
    d.cc_op = C.CC_OP_EFLAGS


@op(0x9e)
def _sahf(d: Disas, c: int) -> None:
    b = d.b
    f = d.compute_eflags()
    ah = b.extract(d.g.regs[0], 8, 8)
    nf = b.op3("or", b.op3("and", f, b.const(0x800)), b.op3("and", ah, b.const(0xd5)))
    b.mov(d.g.cc_src, nf)


@op(0x9f)
def _lahf(d: Disas, c: int) -> None:
    b = d.b
    f = d.compute_eflags()
    v = b.op3("or", b.op3("and", f, b.const(0xd5)), b.const(2))
    b.deposit(d.g.regs[0], v, 8, 8, dst=d.g.regs[0])


@op(0xa4, 0xa5, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xa6, 0xa7)
def _string(d: Disas, c: int) -> None:
    size = _osize_b(d, c)
    kind = {0xa4: 0, 0xa5: 0, 0xaa: 1, 0xab: 1, 0xac: 2, 0xad: 2, 0xae: 3, 0xaf: 3,
            0xa6: 4, 0xa7: 4}[c]
    rep = d.rep
    if kind < 3 and rep:
        rep = 1
    b = d.b
    seg = d.seg if d.seg is not None else b.const(0)
    es = d.seg_temp(None, R_ES) if d.mode != 64 else None
    b.call(h_string, [d.g.env, b.const(kind), b.const(size), b.const(rep),
                      b.const(MASK[d.asize]), seg, b.const(d.asize),
                      es if es is not None else b.const(0)])
    if kind >= 3:
        d.cc_op = DYNAMIC
    if rep:
        # keep interrupts and faults precise per iteration: the helper completes the loop
        pass


@op(0xd7)
def _xlat(d: Disas, c: int) -> None:
    b = d.b
    a = b.op3("add", d.g.regs[3], d.greg(1, 0))
    a = d.mask(a, d.asize)
    if d.seg is not None:
        a = b.op3("add", a, d.seg)
        if d.mode != 64:
            a = b.op2("ext32u", a)
    d.sreg(1, 0, d.ld(1, a))


@op(0xc9)
def _leave(d: Disas, c: int) -> None:
    size = d.stack_size()
    b = d.b
    bp = d.g.regs[5]
    a = d.mask(bp, d.spsize)
    v = d.ld(size, d.stack_lin(a))
    d.set_sp(b.op3("add", a, b.const(size)))
    d.sreg(size, 5, v)


@op(0xc8)
def _enter(d: Disas, c: int) -> None:
    b = d.b
    alloc = d.imm(2)
    level = d.u8() & 31
    size = d.stack_size()
    sp = d.sp_addr(-size)
    d.st(size, d.stack_lin(sp), d.greg(size, 5))
    frame = sp
    sps = d.spsize
    for i in range(1, level):
        src = d.mask(b.op3("sub", d.g.regs[5], b.const(size * i)), sps)
        v = d.ld(size, d.stack_lin(src))
        d.st(size, d.stack_lin(d.mask(b.op3("sub", frame, b.const(size * i)), sps)), v)
    top = frame
    if level:
        top = d.mask(b.op3("sub", frame, b.const(size * level)), sps)
        d.st(size, d.stack_lin(top), frame)
    d.sreg(size, 5, frame)
    d.set_sp(d.mask(b.op3("sub", top, b.const(alloc)), sps))


@op(0xc0, 0xc1, 0xd0, 0xd1, 0xd2, 0xd3)
def _shift_grp(d: Disas, c: int) -> None:
    size = _osize_b(d, c)
    d.modrm()
    b = d.b
    if c in (0xc0, 0xc1):
        count = b.const(d.u8() & (0x3f if size == 8 else 0x1f))
    elif c in (0xd0, 0xd1):
        count = b.const(1)
    else:
        count = b.op3("and", d.g.regs[1], b.const(0x3f if size == 8 else 0x1f))
    gen_shift(d, d.reg & 7, size, count)


def gen_shift(d: Disas, kind: int, size: int, count: Temp, val_addr=None) -> None:
    b, g = d.b, d.g
    addr = d.addr() if d.ea is not None else None
    v = d.ld(size, addr) if addr is not None else d.greg(size, d.rm)
    bits = size * 8
    w = I64 if size == 8 else I32
    if kind in (2, 3):       # rcl / rcr
        r = b.call(h_rcl_rcr, [g.env, v, count, b.const(size), b.const(kind == 3)])[0]
        d.cc_op = C.CC_OP_EFLAGS
        d.st_rm(size, r, addr)
        return
    if count.is_const and count.value == 0:
        return
    if kind in (0, 1):        # rol / ror
        cnt = b.op3("and", count, b.const(bits - 1))
        if size >= 4:
            r = b.op3("rotl" if kind == 0 else "rotr", v, cnt, w)
        else:
            if kind == 1:
                cnt = b.op3("and", b.op3("sub", b.const(bits), cnt), b.const(bits - 1))
            r = b.op3("or", b.op3("shl", v, cnt), b.op3("shr", v, b.op3("sub", b.const(bits), cnt)))
            r = d.mask(r, size)
        d.st_rm(size, r, addr)
        # CF/OF only; other flags kept
        f = d.compute_eflags() if not count.is_const else d.compute_eflags()
        if kind == 0:
            cf = b.op3("and", r, b.const(1))
            of = b.op3("xor", cf, b.extract(r, bits - 1, 1))
        else:
            cf = b.extract(r, bits - 1, 1)
            of = b.op3("xor", cf, b.extract(r, bits - 2, 1))
        nf = b.op3("or", b.op3("and", f, b.const(~0x801 & 0xfff)),
                   b.op3("or", cf, b.op3("shl", of, b.const(11))))
        if count.is_const:
            b.mov(g.cc_src, nf)
        else:
            b.movcond("ne", count, b.const(0), nf, f, dst=g.cc_src)
        return
    sv = d.sext(v, size) if kind == 7 else v
    cm1 = b.op3("sub", count, b.const(1))
    if kind in (4, 6):
        r = d.mask(b.op3("shl", v, count, I64), size)
        pre = d.mask(b.op3("shl", v, cm1, I64), size)
        ck = C.K_SHL
    else:
        r = d.mask(b.op3("shr" if kind == 5 else "sar", sv, count, I64), size)
        pre = d.mask(b.op3("shr" if kind == 5 else "sar", sv, cm1, I64), size)
        ck = C.K_SAR
    if kind == 5 and bits < 64:
        r = b.op3("shr", v, count)
        pre = b.op3("shr", v, cm1)
    d.st_rm(size, r, addr)
    if count.is_const:
        d.set_cc(ck, size, r, pre)
    else:
        old_op = g.cc_op
        if d.cc_op != DYNAMIC:
            pass    # the cc_op global is already up to date
        newop = C.cc_op_of(ck, size)
        b.movcond("ne", count, b.const(0), r, g.cc_dst, dst=g.cc_dst)
        b.movcond("ne", count, b.const(0), pre, g.cc_src, dst=g.cc_src)
        b.movcond("ne", count, b.const(0), b.const(newop, I32), old_op, I32, dst=g.cc_op)
        d.cc_op = DYNAMIC


@op(0x1a4, 0x1a5, 0x1ac, 0x1ad)
def _shld(d: Disas, c: int) -> None:
    size = d.osize
    d.modrm()
    b = d.b
    addr = d.addr() if d.ea is not None and c in (0x1a5, 0x1ad) else None
    if c in (0x1a4, 0x1ac):
        cnt = b.const(d.u8())
        if d.ea is not None:
            addr = d.addr()
    else:
        cnt = d.g.regs[1]
    v = d.ld(size, addr) if addr is not None else d.greg(size, d.rm)
    r = b.call(h_shld, [d.g.env, v, d.greg(size, d.reg), cnt, b.const(size),
                        b.const(1 if c >= 0x1ac else 0)])[0]
    d.cc_op = C.CC_OP_EFLAGS
    d.st_rm(size, r, addr)


@op(0xf6, 0xf7)
def _grp3(d: Disas, c: int) -> None:
    size = _osize_b(d, c)
    d.modrm()
    b = d.b
    k = d.reg & 7
    if k in (0, 1):
        imm = d.simm(1 if size == 1 else min(size, 4)) & MASK[size]
        r = b.op3("and", d.ld_rm(size), b.const(imm))
        d.set_cc(C.K_LOGIC, size, r)
        return
    addr = d.addr() if d.ea is not None else None
    v = d.ld(size, addr) if addr is not None else d.greg(size, d.rm)
    w = I64 if size == 8 else I32
    if k == 2:
        d.st_rm(size, d.mask(b.op2("not", v, w), size), addr)
        return
    if k == 3:
        r = d.mask(b.op2("neg", v, w), size)
        d.st_rm(size, r, addr)
        d.set_cc(C.K_SUB, size, r, v, b.const(0))
        return
    if k in (4, 5):     # mul / imul
        if size == 1:
            a = d.greg(1, 0)
            if k == 4:
                p = b.op3("mul", a, v)
                hi = b.op3("shr", p, b.const(8))
            else:
                p = d.mask(b.op3("mul", d.sext(a, 1), d.sext(v, 1)), 2)
                hi = b.op3("sub", p, d.mask(d.sext(d.mask(p, 1), 1), 2))
            d.sreg(2, 0, d.mask(p, 2))
            d.set_cc(C.K_MUL, 1, d.mask(p, 1), hi)
            return
        a = d.greg(size, 0)
        if size == 8:
            lo, hi = b.temp(), b.temp()
            b.emit("mulu2" if k == 4 else "muls2", I64, [lo, hi], [a, v])
            ov = hi if k == 4 else b.op3("sub", hi, b.op3("sar", lo, b.const(63)))
        else:
            bits = size * 8
            if k == 4:
                p = b.op3("mul", a, v)
            else:
                p = d.mask(b.op3("mul", d.sext(a, size), d.sext(v, size)), size * 2)
            lo = d.mask(p, size)
            hi = b.op3("shr", p, b.const(bits))
            ov = hi if k == 4 else b.op3("sub", p, d.mask(d.sext(lo, size), size * 2))
        d.sreg(size, 0, lo)
        d.sreg(size, 2, hi)
        d.set_cc(C.K_MUL, size, lo, ov)
        return
    # div / idiv
    if size == 1:
        ax = d.greg(2, 0)
        hi, lo = b.op3("shr", ax, b.const(8)), d.mask(ax, 1)
    else:
        hi, lo = d.greg(size, 2), d.greg(size, 0)
    q, r = b.call(h_divu if k == 6 else h_divs, [hi, lo, v, b.const(size)])
    if size == 1:
        d.sreg(2, 0, b.op3("or", q, b.op3("shl", r, b.const(8))))
    else:
        d.sreg(size, 0, q)
        d.sreg(size, 2, r)


@op(0xfe, 0xff)
def _grp45(d: Disas, c: int) -> None:
    size = _osize_b(d, c)
    d.modrm()
    b = d.b
    k = d.reg & 7
    if k in (0, 1):
        addr = d.addr() if d.ea is not None else None
        cf = d.gen_cf()
        w = I64 if size == 8 else I32
        if addr is not None and d.lock:
            old = b.call(h_atomic, [d.g.mem, addr, b.const(size), b.const(0 if k == 0 else 5),
                                    b.const(1)])[0]
            r = d.mask(b.op3("add" if k == 0 else "sub", old, b.const(1), w), size)
        else:
            v = d.ld(size, addr) if addr is not None else d.greg(size, d.rm)
            r = d.mask(b.op3("add" if k == 0 else "sub", v, b.const(1), w), size)
            d.st_rm(size, r, addr)
        d.set_cc(C.K_INC if k == 0 else C.K_DEC, size, r, cf)
        return
    if c == 0xfe:
        raise Unsupported()
    if k in (2, 4):     # call / jmp indirect
        tsize = 8 if d.mode == 64 else d.osize
        t = d.ld_rm(tsize)
        if k == 2:
            ss = d.stack_size()
            d.push(b.const(d.pc & MASK[ss]), ss)
        d.gen_jmp_temp(t)
        return
    if k == 6:
        size = d.stack_size()
        d.push(d.ld_rm(size), size)
        return
    raise Unsupported()


@op(0x63)
def _movsxd(d: Disas, c: int) -> None:
    d.modrm()
    if d.mode != 64:
        raise Unsupported()     # arpl
    v = d.ld_rm(4)
    d.sreg(d.osize, d.reg, d.mask(d.sext(v, 4), d.osize))


@op(0x1b6, 0x1b7, 0x1be, 0x1bf)
def _movx(d: Disas, c: int) -> None:
    d.modrm()
    src = 1 if c & 1 == 0 else 2
    v = d.ld_rm(src)
    if c >= 0x1be:
        v = d.mask(d.sext(v, src), d.osize)
    d.sreg(d.osize, d.reg, v)


@op(range(0x140, 0x150))
def _cmov(d: Disas, c: int) -> None:
    d.modrm()
    size = d.osize
    v = d.ld_rm(size)
    cd = d.cond(c & 15)
    r = d.b.movcond(cd[0], cd[1], cd[2], v, d.greg(size, d.reg), cd[3] if len(cd) > 3 else I64)
    d.sreg(size, d.reg, r)


@op(range(0x190, 0x1a0))
def _setcc(d: Disas, c: int) -> None:
    d.modrm()
    d.st_rm(1, d.cond_value(c & 15))


@op(0x1b0, 0x1b1)
def _cmpxchg(d: Disas, c: int) -> None:
    size = _osize_b(d, c)
    d.modrm()
    b = d.b
    acc = d.greg(size, 0)
    new = d.greg(size, d.reg)
    if d.ea is not None:
        addr = d.addr()
        old = b.call(h_atomic_cx, [d.g.mem, addr, b.const(size), acc, new])[0]
    else:
        old = d.greg(size, d.rm)
        d.sreg(size, d.rm, b.movcond("eq", old, acc, new, old))
    # on failure the accumulator gets the old value (on success it equals it anyway,
    # except that a 32-bit write zero-extends: x86 writes eax only on failure)
    if size == 4:
        res = b.movcond("eq", old, acc, d.g.regs[0], old)
        b.mov(d.g.regs[0], res)
        if d.ea is None:
            pass
    else:
        d.sreg(size, 0, old)
    r = d.mask(b.op3("sub", acc, old), size)
    d.set_cc(C.K_SUB, size, r, old, acc)


@op(0x1c0, 0x1c1)
def _xadd(d: Disas, c: int) -> None:
    size = _osize_b(d, c)
    d.modrm()
    b = d.b
    s = d.greg(size, d.reg)
    w = I64 if size == 8 else I32
    if d.ea is not None:
        addr = d.addr()
        old = b.call(h_atomic, [d.g.mem, addr, b.const(size), b.const(0), s])[0]
        r = d.mask(b.op3("add", old, s, w), size)
        d.sreg(size, d.reg, old)
    else:
        old = d.greg(size, d.rm)
        r = d.mask(b.op3("add", old, s, w), size)
        d.sreg(size, d.reg, old)
        d.sreg(size, d.rm, r)
    d.set_cc(C.K_ADD, size, r, s)


@op(0x1c7)
def _grp9(d: Disas, c: int) -> None:
    d.modrm()
    if d.reg & 7 == 1 and d.ea is not None:
        size = 16 if d.rex_w else 8
        d.b.call(h_cmpxchg_n, [d.g.env, d.addr(), d.b.const(size), d.b.const(1)])
        d.cc_op = C.CC_OP_EFLAGS
        return
    raise Unsupported()


@op(range(0x1c8, 0x1d0))
def _bswap(d: Disas, c: int) -> None:
    r = (c & 7) | d.rex_b
    size = 8 if d.rex_w else 4
    v = d.greg(size, r)
    d.sreg(size, r, d.b.op2("bswap64" if size == 8 else "bswap32", v))


@op(0x1a3, 0x1ab, 0x1b3, 0x1bb, 0x1ba)
def _bt(d: Disas, c: int) -> None:
    size = d.osize
    d.modrm()
    b = d.b
    bits = size * 8
    if c == 0x1ba:
        kind = d.reg & 7
        if kind < 4:
            raise Unsupported()
        kind -= 4
        off = b.const(d.u8() & (bits - 1))
        addr = d.addr() if d.ea is not None else None
    else:
        kind = {0x1a3: 0, 0x1ab: 1, 0x1b3: 2, 0x1bb: 3}[c]
        off = d.greg(size, d.reg)
        addr = None
        if d.ea is not None:
            # a register bit offset addresses memory beyond the operand
            so = d.sext(off, size)
            disp = b.op3("shl", b.op3("sar", so, b.const({2: 4, 4: 5, 8: 6}[size])),
                         b.const({2: 1, 4: 2, 8: 3}[size]))
            addr = b.op3("add", d.addr(), disp)
            if d.mode != 64:
                addr = b.op2("ext32u", addr)
        off = b.op3("and", off, b.const(bits - 1))
    v = d.ld(size, addr) if addr is not None else d.greg(size, d.rm)
    bit = b.op3("and", b.op3("shr", v, off), b.const(1))
    if kind:
        m = b.op3("shl", b.const(1), off)
        if kind == 1:
            r = b.op3("or", v, m)
        elif kind == 2:
            r = b.op3("andc", v, m)
        else:
            r = b.op3("xor", v, m)
        if addr is not None:
            d.st(size, addr, r)
        else:
            d.sreg(size, d.rm, r)
    f = d.compute_eflags()
    b.mov(d.g.cc_src, b.op3("or", b.op3("and", f, b.const(~1 & 0xfff)), bit))


@op(0x1bc, 0x1bd)
def _bsf(d: Disas, c: int) -> None:
    size = d.osize
    d.modrm()
    b = d.b
    v = d.ld_rm(size)
    bits = size * 8
    if d.rep == 1:      # tzcnt / lzcnt
        if c == 0x1bc:
            r = b.op3("ctz", v, b.const(bits))
        else:
            r = b.op3("sub", b.op3("clz", v, b.const(64), I64), b.const(64 - bits))
            r = b.movcond("eq", v, b.const(0), b.const(bits), r)
        d.sreg(size, d.reg, r)
        f = d.compute_eflags()
        cf = b.setcond("eq", v, b.const(0))
        zf = b.op3("shl", b.setcond("eq", r, b.const(0)), b.const(6))
        b.mov(d.g.cc_src, b.op3("or", b.op3("and", f, b.const(~0x41 & 0xfff)), b.op3("or", cf, zf)))
        return
    old = d.greg(size, d.reg)
    if c == 0x1bc:
        r = b.op3("ctz", v, old, I64)
    else:
        r = b.op3("xor", b.op3("clz", v, b.const(0), I64), b.const(63))
        r = b.movcond("eq", v, b.const(0), old, r)
    d.sreg(size, d.reg, r)
    # ZF from the source; the other flags are undefined (we keep the result-based ones)
    d.set_cc(C.K_LOGIC, size, v)


@op(0x1b8)
def _popcnt(d: Disas, c: int) -> None:
    if d.rep != 1:
        raise Unsupported()
    size = d.osize
    d.modrm()
    v = d.ld_rm(size)
    r = d.b.op2("ctpop", v)
    d.sreg(size, d.reg, r)
    d.set_cc(C.K_LOGIC, size, v)


@op(0x1a2)
def _cpuid(d: Disas, c: int) -> None:
    b = d.b
    rs = b.call(h_cpuid, [d.g.env, d.g.regs[0], d.g.regs[1]])
    for i, r in zip((0, 3, 1, 2), rs):
        d.sreg(4, i, r)


@op(0x131)
def _rdtsc(d: Disas, c: int) -> None:
    lo, hi = d.b.call(h_rdtsc, [d.g.env])
    d.sreg(4, 0, lo)
    d.sreg(4, 2, hi)


@op(0x105)
def _syscall(d: Disas, c: int) -> None:
    if d.mode != 64:
        raise Unsupported()
    d.set_cc_op(d.cc_op) if d.cc_op != DYNAMIC else None
    d.b.movi(d.g.rip, d.pc)
    d.b.exit_tb(EXIT_EXCP + EXCP_SYSCALL)
    d.done = True


@op(0xcd)
def _int(d: Disas, c: int) -> None:
    n = d.u8()
    if n == 0x80:
        d.b.movi(d.g.rip, d.pc)
        d.b.exit_tb(EXIT_EXCP + EXCP_SYSCALL + 1)
        d.done = True
    elif n == 3:
        d.b.movi(d.g.rip, d.pc)
        d.b.exit_tb(EXIT_EXCP + EXCP_BREAKPOINT)
        d.done = True
    else:
        d.gen_exception(EXCP_GPF, d.start)


@op(0xcc)
def _int3(d: Disas, c: int) -> None:
    d.b.movi(d.g.rip, d.pc)
    d.b.exit_tb(EXIT_EXCP + EXCP_BREAKPOINT)
    d.done = True


@op(0x10b)
def _ud2(d: Disas, c: int) -> None:
    d.gen_exception(EXCP_INVALID_OPCODE, d.start)


@op(0xf4)
def _hlt(d: Disas, c: int) -> None:
    # privileged: #GP in user mode
    d.gen_exception(EXCP_GPF, d.start)


@op(0x101)
def _grp7(d: Disas, c: int) -> None:
    m = d._byte(d.pc)
    if m == 0xf9:               # rdtscp: TSC plus TSC_AUX (0) in ecx
        d.u8()
        lo, hi = d.b.call(h_rdtsc, [d.g.env])
        d.sreg(4, 0, lo)
        d.sreg(4, 2, hi)
        d.sreg(4, 1, d.b.const(0))
        return
    d.gen_exception(EXCP_GPF, d.start)


@op(0xfa, 0xfb, 0x106, 0x108, 0x109, 0x130, 0x132, 0x100)
def _privileged(d: Disas, c: int) -> None:
    d.gen_exception(EXCP_GPF, d.start)


@op(0x11f, 0x119, 0x11a, 0x11b, 0x11c, 0x11d, 0x11e)
def _nop_rm(d: Disas, c: int) -> None:
    d.modrm()
    if d.ea is not None:
        d.addr()
    if c == 0x11e and d.rep == 1 and d.mod == 3:
        pass    # endbr64/endbr32


@op(0x118, 0x10d)     # prefetch hints; 0F 0D is AMD's prefetch/prefetchw (a NOP here, as in QEMU)
def _prefetch(d: Disas, c: int) -> None:
    d.modrm()


@op(0xf5, 0xf8, 0xf9, 0xfc, 0xfd)
def _flagops(d: Disas, c: int) -> None:
    b = d.b
    if c in (0xfc, 0xfd):
        e = d.g.eflags
        if c == 0xfc:
            b.op3("and", e, b.const(~0x400 & MASK[8]), dst=e)
        else:
            b.op3("or", e, b.const(0x400), dst=e)
        return
    f = d.compute_eflags()
    if c == 0xf5:
        b.op3("xor", f, b.const(1), dst=d.g.cc_src)
    elif c == 0xf8:
        b.op3("and", f, b.const(~1 & 0xfff), dst=d.g.cc_src)
    else:
        b.op3("or", f, b.const(1), dst=d.g.cc_src)


@op(0x27, 0x2f, 0x37, 0x3f, 0xd4, 0xd5)
def _bcd(d: Disas, c: int) -> None:
    if d.mode == 64:
        raise Unsupported()
    kind = {0x27: 0, 0x2f: 1, 0x37: 2, 0x3f: 3, 0xd4: 4, 0xd5: 5}[c]
    imm = d.u8() if c >= 0xd4 else 0
    d.b.call(h_bcd, [d.g.env, d.b.const(kind), d.b.const(imm)])
    d.cc_op = C.CC_OP_EFLAGS


@op(range(0x40, 0x50))
def _incdec32(d: Disas, c: int) -> None:
    # only reached in 32-bit mode (in 64-bit mode these are REX prefixes)
    size = d.osize
    r = c & 7
    b = d.b
    cf = d.gen_cf()
    v = d.greg(size, r)
    res = d.mask(b.op3("add" if c < 0x48 else "sub", v, b.const(1)), size)
    d.sreg(size, r, res)
    d.set_cc(C.K_INC if c < 0x48 else C.K_DEC, size, res, cf)


@op(0x60)
def _pusha(d: Disas, c: int) -> None:
    if d.mode == 64:
        raise Unsupported()
    size = d.osize
    b = d.b
    sp0 = d.sp_addr()
    for i in range(8):
        a = d.mask(b.op3("sub", sp0, b.const(size * (i + 1))), d.spsize)
        v = d.g.regs[4] if i == 4 else d.greg(size, i)
        d.st(size, d.stack_lin(a), d.mask(v, size))
    d.set_sp(b.op3("sub", sp0, b.const(size * 8)))


@op(0x61)
def _popa(d: Disas, c: int) -> None:
    if d.mode == 64:
        raise Unsupported()
    size = d.osize
    b = d.b
    sp0 = d.sp_addr()
    vals = {}
    for i in range(8):
        if i != 4:
            vals[i] = d.ld(size, d.stack_lin(d.mask(b.op3("add", sp0, b.const(size * (7 - i))),
                                                    d.spsize)))
    for i, v in vals.items():
        d.sreg(size, i, v)
    d.set_sp(b.op3("add", sp0, b.const(size * 8)))


@op(0x9b)
def _fwait(d: Disas, c: int) -> None:
    pass


@op(0xa0, 0xa1, 0xa2, 0xa3)
def _mov_moffs(d: Disas, c: int) -> None:
    size = _osize_b(d, c)
    a = d.imm(d.asize)
    b = d.b
    t = b.const(a)
    if d.seg is not None:
        t = b.op3("add", t, d.seg)
        if d.mode != 64:
            t = b.op2("ext32u", t)
    if c < 0xa2:
        d.sreg(size, 0, d.ld(size, t))
    else:
        d.st(size, t, d.greg(size, 0))


@op(0x1ae)
def _grp15(d: Disas, c: int) -> None:
    d.modrm()
    k = d.reg & 7
    if d.ea is None:
        if k in (5, 6, 7):     # lfence / mfence / sfence
            return
        raise Unsupported()
    from pyqemu.target.i386 import sse
    sse.grp15_mem(d, k)


@op(range(0xd8, 0xe0))
def _x87(d: Disas, c: int) -> None:
    from pyqemu.target.i386.fpu import translate_x87
    if not translate_x87(d, c):
        raise Unsupported()


# -- BMI1 / BMI2 (VEX-encoded general-purpose instructions) --------------------------------
def vex_op(*codes):
    def deco(fn):
        for c in codes:
            _VEX_TABLE[c] = fn
        return fn
    return deco


def _bmi_flags(d: Disas, size: int, r: Temp, cf: Temp) -> None:
    """ZF/SF from the result, CF given, OF cleared (as recorded by CC_OP_EFLAGS)."""
    b = d.b
    bits = size * 8
    z = b.op3("shl", b.setcond("eq", r, b.const(0)), b.const(6))
    s = b.op3("shl", b.extract(r, bits - 1, 1), b.const(7))
    f = b.op3("or", b.op3("or", z, s), cf)
    b.mov(d.g.cc_src, f)
    d.set_cc_op(C.CC_OP_EFLAGS)


@vex_op(0x2f2)
def _andn(d: Disas, pp: int) -> None:
    if pp:
        raise Unsupported()
    size = d.osize
    d.modrm()
    v = d.ld_rm(size)
    r = d.b.op3("andc", v, d.greg(size, d.vex[0]))
    d.sreg(size, d.reg, r)
    _bmi_flags(d, size, r, d.b.const(0))


@vex_op(0x2f3)
def _bls(d: Disas, pp: int) -> None:
    size = d.osize
    d.modrm()
    k = d.reg & 7
    if pp or k not in (1, 2, 3):
        raise Unsupported()
    b = d.b
    v = d.ld_rm(size)
    m1 = d.mask(b.op3("sub", v, b.const(1)), size)
    if k == 1:      # blsr
        r = b.op3("and", v, m1)
        cf = b.setcond("eq", v, b.const(0))
    elif k == 2:    # blsmsk
        r = b.op3("xor", v, m1)
        cf = b.setcond("eq", v, b.const(0))
    else:           # blsi
        r = b.op3("and", v, d.mask(b.op2("neg", v), size))
        cf = b.setcond("ne", v, b.const(0))
    d.sreg(size, d.vex[0], r)
    _bmi_flags(d, size, r, cf)


def _bextr(a: int, ctl: int, bits: int) -> int:
    start, length = ctl & 0xff, (ctl >> 8) & 0xff
    if start >= bits:
        return 0
    return (a >> start) & ((1 << min(length, bits)) - 1)


def _bzhi(a: int, n: int, bits: int) -> int:
    n &= 0xff
    return a if n >= bits else a & ((1 << n) - 1)


def _pdep(src: int, mask: int) -> int:
    r, k = 0, 0
    while mask:
        low = mask & -mask
        if (src >> k) & 1:
            r |= low
        mask ^= low
        k += 1
    return r


def _pext(src: int, mask: int) -> int:
    r, k = 0, 0
    while mask:
        low = mask & -mask
        if src & low:
            r |= 1 << k
        mask ^= low
        k += 1
    return r


h_bextr = Helper(_bextr, 0, 1)
h_bzhi = Helper(_bzhi, 0, 1)
h_pdep = Helper(_pdep, 0, 1)
h_pext = Helper(_pext, 0, 1)


@vex_op(0x2f7)
def _bextr_shx(d: Disas, pp: int) -> None:
    size = d.osize
    d.modrm()
    b = d.b
    v = d.ld_rm(size)
    ctl = d.greg(size, d.vex[0])
    bits = size * 8
    if pp == 0:     # bextr
        r = b.call(h_bextr, [v, ctl, b.const(bits)])[0]
        d.sreg(size, d.reg, r)
        _bmi_flags(d, size, r, b.const(0))
        return
    n = b.op3("and", ctl, b.const(bits - 1))
    w = I64 if size == 8 else I32
    if pp == 1:     # shlx
        r = b.op3("shl", v, n, w)
    elif pp == 2:   # sarx
        r = d.mask(b.op3("sar", d.sext(v, size), n), size)
    else:           # shrx
        r = b.op3("shr", v, n, w)
    d.sreg(size, d.reg, r)      # flags unaffected


@vex_op(0x2f5)
def _bzhi_pdep_pext(d: Disas, pp: int) -> None:
    size = d.osize
    d.modrm()
    b = d.b
    v = d.ld_rm(size)
    other = d.greg(size, d.vex[0])
    if pp == 0:     # bzhi
        r = b.call(h_bzhi, [v, other, b.const(size * 8)])[0]
        n = b.op3("and", other, b.const(0xff))
        d.sreg(size, d.reg, r)
        _bmi_flags(d, size, r, b.setcond("gtu", n, b.const(size * 8 - 1)))
    elif pp == 3:   # pdep: src1 = vvvv, mask = r/m
        d.sreg(size, d.reg, b.call(h_pdep, [other, v])[0])
    elif pp == 2:   # pext
        d.sreg(size, d.reg, b.call(h_pext, [other, v])[0])
    else:
        raise Unsupported()


@vex_op(0x2f6)
def _mulx(d: Disas, pp: int) -> None:
    if pp != 3:
        raise Unsupported()
    size = d.osize
    d.modrm()
    b = d.b
    v = d.ld_rm(size)
    a = d.greg(size, 2)
    if size == 8:
        lo, hi = b.temp(), b.temp()
        b.emit("mulu2", I64, [lo, hi], [a, v])
    else:
        p = b.op3("mul", a, v)
        lo, hi = d.mask(p, 4), b.op3("shr", p, b.const(32))
    d.sreg(size, d.vex[0], lo)
    d.sreg(size, d.reg, hi)     # the high half wins when both name one register


@vex_op(0x3f0)
def _rorx(d: Disas, pp: int) -> None:
    if pp != 3:
        raise Unsupported()
    size = d.osize
    d.modrm()
    n = d.u8() & (size * 8 - 1)
    v = d.ld_rm(size)
    r = d.b.op3("rotr", v, d.b.const(n), I64 if size == 8 else I32)
    d.sreg(size, d.reg, r)
