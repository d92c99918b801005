"""System-mode instructions of the x86 frontend (docs/x86-system.md).

The handlers here replace the user-mode ones for the same opcodes when a
block is translated for an X86SysCPU (``Disas.sys``): segment loads, far
transfers, INT/IRET, HLT/CLI/STI, PUSHF/POPF with their IOPL rules, port I/O,
descriptor tables, control/debug registers, MSRs and the fast system calls.
They decode and emit calls to ``sysemu/ops.py``; an instruction that may
change the mode, the privilege level, CS or the paging ends its block with
``EXCP_NEWSTATE`` so that the next block is looked up with new TB flags (and
pending interrupts are looked at).
"""
from __future__ import annotations

from pyqemu.exec.cpu_loop import EXIT_EXCP
from pyqemu.tcg.ir import CALL_MAY_RAISE, CALL_READS_STATE, CALL_WRITES_STATE, Helper
from pyqemu.target.i386 import cc as C
from pyqemu.target.i386.cpu import EXCP_HLT, EXCP_NEWSTATE
from pyqemu.target.i386.sysemu import ops
from pyqemu.target.i386.translate import (_SYS_TABLE, MASK, R_CS, R_ES, R_SS, Disas,
                                          Unsupported, _grp45, _xchg_ax)

_RW = CALL_READS_STATE | CALL_WRITES_STATE | CALL_MAY_RAISE
_RD = CALL_READS_STATE | CALL_MAY_RAISE


def _h(fn, flags: int = _RW, nret: int = 0) -> Helper:
    return Helper(fn, flags, nret)


h_load_seg = _h(ops.load_seg)
h_load_far = _h(ops.load_far)
h_ljmp = _h(ops.ljmp)
h_lcall = _h(ops.lcall)
h_lret = _h(ops.lret)
h_iret = _h(ops.iret)
h_int_n = _h(ops.int_n)
h_int3 = _h(lambda env, nxt: ops.interrupt.raise_interrupt(env, 3, nxt))
h_into = _h(ops.into)
h_hlt = _h(ops.hlt)
h_pause = _h(ops.pause, CALL_READS_STATE | CALL_WRITES_STATE)
h_cli = _h(ops.cli)
h_sti = _h(ops.sti)
h_pushf = _h(ops.pushf, _RD, 1)
h_popf = _h(ops.popf)
h_in = _h(ops.io_in, _RW, 1)
h_out = _h(ops.io_out)
h_io_string = _h(ops.io_string)
h_lgdt = _h(ops.lgdt)
h_lidt = _h(ops.lidt)
h_sgdt = _h(ops.sgdt, _RD, 2)
h_sidt = _h(ops.sidt, _RD, 2)
h_lldt = _h(ops.lldt)
h_ltr = _h(ops.ltr)
h_sldt = _h(ops.sldt, _RD, 1)
h_str = _h(ops.str_, _RD, 1)
h_lar_lsl = _h(ops.lar_lsl, _RW, 1)
h_verr_verw = _h(ops.verr_verw)
h_read_cr = _h(ops.read_cr, _RD, 1)
h_write_cr = _h(ops.write_cr)
h_read_dr = _h(ops.read_dr, _RD, 1)
h_write_dr = _h(ops.write_dr)
h_clts = _h(ops.clts)
h_lmsw = _h(ops.lmsw)
h_smsw = _h(ops.smsw, _RD, 1)
h_invlpg = _h(ops.invlpg)
h_priv_nop = _h(ops.priv_nop, _RD)
h_rdmsr = _h(ops.rdmsr, _RD, 2)
h_wrmsr = _h(ops.wrmsr)
h_rdtsc = _h(ops.rdtsc, _RD, 2)
h_rdtscp = _h(ops.rdtscp, _RD, 3)
h_syscall = _h(ops.sys_call)
h_sysret = _h(ops.sys_ret)
h_sysenter = _h(ops.sys_enter)
h_sysexit = _h(ops.sys_exit)
h_swapgs = _h(ops.swapgs)


def sys_op(*codes):
    def deco(fn):
        for c in codes:
            _SYS_TABLE[c] = fn
        return fn
    return deco


def _end(d: Disas, next_pc=None) -> None:
    """End the block: the helper changed state the TB flags depend on."""
    if next_pc is not None:
        d.b.movi(d.g.rip, next_pc & (MASK[8] if d.mode == 64 else MASK[4]))
    d.b.exit_tb(EXIT_EXCP + EXCP_NEWSTATE)
    d.done = True


def _no64(d: Disas) -> None:
    if d.mode == 64:
        raise Unsupported()


def _c(d: Disas, v: int):
    return d.b.const(v)


# -- segment registers ---------------------------------------------------------------

@sys_op(0x8e)
def _mov_to_seg(d: Disas, c: int) -> None:
    d.modrm()
    sr = d.reg & 7
    if sr > 5 or sr == R_CS:
        raise Unsupported()
    v = d.ld_rm(2)
    d.b.call(h_load_seg, [d.g.env, _c(d, sr), v])
    _end(d, d.pc)


@sys_op(0x07, 0x17, 0x1f, 0x1a1, 0x1a9)
def _pop_seg(d: Disas, c: int) -> None:
    sr = {0x07: R_ES, 0x17: R_SS, 0x1f: 3, 0x1a1: 4, 0x1a9: 5}[c]
    if c < 0x100:
        _no64(d)
    size = d.stack_size()
    v = d.pop_val(size)
    d.b.call(h_load_seg, [d.g.env, _c(d, sr), d.mask(v, 2)])
    d.pop_adjust(size)
    _end(d, d.pc)


def _far_operand(d: Disas, osize: int):
    """(offset, selector) of an m16:16/32/64 operand."""
    a = d.addr()
    off = d.ld(osize, a)
    a2 = d.b.op3("add", a, _c(d, osize))
    if d.mode != 64:
        a2 = d.b.op2("ext32u", a2)
    return off, d.ld(2, a2)


@sys_op(0xc4, 0xc5, 0x1b2, 0x1b4, 0x1b5)
def _load_far_ptr(d: Disas, c: int) -> None:
    sr = {0xc4: R_ES, 0xc5: 3, 0x1b2: R_SS, 0x1b4: 4, 0x1b5: 5}[c]
    if c < 0x100:
        _no64(d)
    d.modrm()
    if d.ea is None:
        raise Unsupported()
    osize = d.osize
    off, sel = _far_operand(d, osize)
    d.b.call(h_load_far if sr != R_SS else h_load_seg, [d.g.env, _c(d, sr), sel])
    d.sreg(osize, d.reg, off)
    _end(d, d.pc)


# -- far transfers, interrupts ---------------------------------------------------------

@sys_op(0xea, 0x9a)
def _far_ptr(d: Disas, c: int) -> None:
    _no64(d)
    osize = d.osize
    off = d.imm(osize)
    sel = d.imm(2)
    if c == 0xea:
        d.b.call(h_ljmp, [d.g.env, _c(d, sel), _c(d, off), _c(d, d.pc)])
    else:
        d.b.call(h_lcall, [d.g.env, _c(d, sel), _c(d, off), _c(d, osize), _c(d, d.pc)])
    _end(d)


@sys_op(0xff)
def _grp5(d: Disas, c: int) -> None:
    k = (d._byte(d.pc) >> 3) & 7
    if k not in (3, 5):
        _grp45(d, c)
        return
    d.modrm()
    if d.ea is None:
        raise Unsupported()
    osize = d.osize
    off, sel = _far_operand(d, osize)
    if k == 5:
        d.b.call(h_ljmp, [d.g.env, sel, off, _c(d, d.pc)])
    else:
        d.b.call(h_lcall, [d.g.env, sel, off, _c(d, osize), _c(d, d.pc)])
    _end(d)


@sys_op(0xca, 0xcb)
def _retf(d: Disas, c: int) -> None:
    addend = d.imm(2) if c == 0xca else 0
    d.b.call(h_lret, [d.g.env, _c(d, d.osize), _c(d, addend)])
    _end(d)


@sys_op(0xcf)
def _iret(d: Disas, c: int) -> None:
    d.b.call(h_iret, [d.g.env, _c(d, d.osize), _c(d, d.pc)])
    _end(d)


@sys_op(0xcd)
def _int_n(d: Disas, c: int) -> None:
    n = d.u8()
    d.b.call(h_int_n, [d.g.env, _c(d, n), _c(d, d.pc)])
    _end(d)


@sys_op(0xcc)
def _int3(d: Disas, c: int) -> None:
    d.b.call(h_int3, [d.g.env, _c(d, d.pc)])
    _end(d)


@sys_op(0xce)
def _into(d: Disas, c: int) -> None:
    _no64(d)
    d.b.call(h_into, [d.g.env, _c(d, d.pc)])
    _end(d)


@sys_op(0xf4)
def _hlt(d: Disas, c: int) -> None:
    d.b.call(h_hlt, [d.g.env])
    d.b.movi(d.g.rip, d.pc)
    d.b.exit_tb(EXIT_EXCP + EXCP_HLT)
    d.done = True


@sys_op(0x90)
def _nop_pause(d: Disas, c: int) -> None:
    if d.rex_b:
        _xchg_ax(d, c)
    elif d.rep == 1 and len(getattr(getattr(d.tr, "cpu", None), "smp_siblings", ())) > 1:
        # PAUSE yields to the other CPUs (the CPU count is fixed when blocks are made)
        d.b.call(h_pause, [d.g.env])
        _end(d, d.pc)


@sys_op(0xfa)
def _cli(d: Disas, c: int) -> None:
    d.b.call(h_cli, [d.g.env])


@sys_op(0xfb)
def _sti(d: Disas, c: int) -> None:
    d.b.call(h_sti, [d.g.env])
    _end(d, d.pc)


@sys_op(0x9c)
def _pushf(d: Disas, c: int) -> None:
    size = d.stack_size()
    f = d.b.call(h_pushf, [d.g.env])[0]
    d.push(d.mask(f, size), size)


@sys_op(0x9d)
def _popf(d: Disas, c: int) -> None:
    size = d.stack_size()
    v = d.pop_val(size)
    d.b.call(h_popf, [d.g.env, v, _c(d, size)])
    d.cc_op = C.CC_OP_EFLAGS
    d.pop_adjust(size)
    _end(d, d.pc)


# -- port I/O -----------------------------------------------------------------------------

def _io_size(d: Disas, c: int) -> int:
    return 1 if c & 1 == 0 else (2 if d.osize == 2 else 4)


@sys_op(0xe4, 0xe5, 0xec, 0xed)
def _in(d: Disas, c: int) -> None:
    size = _io_size(d, c)
    port = _c(d, d.u8()) if c < 0xe8 else d.greg(2, 2)
    v = d.b.call(h_in, [d.g.env, port, _c(d, size)])[0]
    d.sreg(size, 0, v)


@sys_op(0xe6, 0xe7, 0xee, 0xef)
def _out(d: Disas, c: int) -> None:
    size = _io_size(d, c)
    port = _c(d, d.u8()) if c < 0xe8 else d.greg(2, 2)
    d.b.call(h_out, [d.g.env, port, _c(d, size), d.greg(size, 0)])
    _end(d, d.pc)


@sys_op(0x6c, 0x6d, 0x6e, 0x6f)
def _ins_outs(d: Disas, c: int) -> None:
    size = _io_size(d, c)
    out = c >= 0x6e
    b = d.b
    seg = d.seg if d.seg is not None else _c(d, 0)
    es = d.seg_temp(None, R_ES) if d.mode != 64 else None
    b.call(h_io_string, [d.g.env, _c(d, int(out)), _c(d, size), _c(d, 1 if d.rep else 0),
                         _c(d, MASK[d.asize]), seg, es if es is not None else _c(d, 0)])
    if out:
        _end(d, d.pc)


# -- 0F 00 / 0F 01: descriptor tables, SMSW/LMSW, INVLPG, SWAPGS ----------------------------

@sys_op(0x100)
def _grp6(d: Disas, c: int) -> None:
    d.modrm()
    k = d.reg & 7
    b, env = d.b, d.g.env
    if k in (0, 1):
        v = b.call(h_sldt if k == 0 else h_str, [env])[0]
        d.st_rm(2 if d.ea is not None else d.osize, v)
    elif k in (2, 3):
        sel = d.ld_rm(2)
        b.call(h_lldt if k == 2 else h_ltr, [env, sel])
    elif k in (4, 5):
        sel = d.ld_rm(2)
        b.call(h_verr_verw, [env, sel, _c(d, k - 4)])
        d.cc_op = C.CC_OP_EFLAGS
    else:
        raise Unsupported()


@sys_op(0x101)
def _grp7(d: Disas, c: int) -> None:
    m = d._byte(d.pc)
    b, env = d.b, d.g.env
    if m >> 6 == 3:
        if m == 0xf8:           # swapgs
            if d.mode != 64:
                raise Unsupported()
            d.u8()
            b.call(h_swapgs, [env])
            return
        if m == 0xf9:           # rdtscp
            d.u8()
            lo, hi, aux = b.call(h_rdtscp, [env])
            d.sreg(4, 0, lo)
            d.sreg(4, 2, hi)
            d.sreg(4, 1, aux)
            return
        k = (m >> 3) & 7
        if k == 4:              # smsw reg
            d.modrm()
            d.sreg(d.osize, d.rm, d.mask(b.call(h_smsw, [env])[0], d.osize))
            return
        if k == 6:              # lmsw reg
            d.modrm()
            b.call(h_lmsw, [env, d.greg(2, d.rm)])
            _end(d, d.pc)
            return
        raise Unsupported()
    d.modrm()
    k = d.reg & 7
    a = d.addr()
    wide = 8 if d.mode == 64 else 4
    if k in (0, 1):             # sgdt / sidt
        limit, base = b.call(h_sgdt if k == 0 else h_sidt, [env])
        if d.osize == 2 and d.mode != 64:
            base = b.op3("and", base, _c(d, 0xffffff))
        d.st(2, a, limit)
        d.st(wide, _plus(d, a, 2), base)
    elif k in (2, 3):           # lgdt / lidt
        limit = d.ld(2, a)
        base = d.ld(wide, _plus(d, a, 2))
        opsize = 64 if d.mode == 64 else (16 if d.osize == 2 else 32)
        b.call(h_lgdt if k == 2 else h_lidt, [env, limit, base, _c(d, opsize)])
    elif k == 4:                # smsw m16
        d.st(2, a, b.op3("and", b.call(h_smsw, [env])[0], _c(d, 0xffff)))
    elif k == 6:                # lmsw m16
        b.call(h_lmsw, [env, d.ld(2, a)])
        _end(d, d.pc)
    elif k == 7:                # invlpg
        b.call(h_invlpg, [env, a])
        _end(d, d.pc)
    else:
        raise Unsupported()


def _plus(d: Disas, a, n: int):
    t = d.b.op3("add", a, _c(d, n))
    return d.b.op2("ext32u", t) if d.mode != 64 else t


@sys_op(0x102, 0x103)
def _lar_lsl(d: Disas, c: int) -> None:
    d.modrm()
    sel = d.ld_rm(2)
    size = 8 if d.osize == 4 and d.mode == 64 else d.osize
    old = d.greg(size, d.reg)
    v = d.b.call(h_lar_lsl, [d.g.env, sel, _c(d, c - 0x102), old])[0]
    d.cc_op = C.CC_OP_EFLAGS
    d.sreg(size, d.reg, v)


# -- control, debug and model-specific registers ------------------------------------------

@sys_op(0x106)
def _clts(d: Disas, c: int) -> None:
    d.b.call(h_clts, [d.g.env])


@sys_op(0x108, 0x109)
def _invd_wbinvd(d: Disas, c: int) -> None:
    d.b.call(h_priv_nop, [d.g.env])


@sys_op(0x120, 0x121, 0x122, 0x123)
def _mov_cr_dr(d: Disas, c: int) -> None:
    m = d.u8()          # always a register operand, whatever mod says
    n = ((m >> 3) & 7) | d.rex_r
    r = (m & 7) | d.rex_b
    size = 8 if d.mode == 64 else 4
    b, env = d.b, d.g.env
    is_dr = c & 1
    if c < 0x122:
        v = b.call(h_read_dr if is_dr else h_read_cr, [env, _c(d, n)])[0]
        d.sreg(size, r, d.mask(v, size))
        return
    b.call(h_write_dr if is_dr else h_write_cr, [env, _c(d, n), d.greg(size, r)])
    _end(d, d.pc)


@sys_op(0x130)
def _wrmsr(d: Disas, c: int) -> None:
    d.b.call(h_wrmsr, [d.g.env])
    _end(d, d.pc)


@sys_op(0x132)
def _rdmsr(d: Disas, c: int) -> None:
    lo, hi = d.b.call(h_rdmsr, [d.g.env])
    d.sreg(4, 0, lo)
    d.sreg(4, 2, hi)


@sys_op(0x131)
def _rdtsc(d: Disas, c: int) -> None:
    lo, hi = d.b.call(h_rdtsc, [d.g.env])
    d.sreg(4, 0, lo)
    d.sreg(4, 2, hi)


# -- fast system calls -------------------------------------------------------------------------

@sys_op(0x105)
def _syscall(d: Disas, c: int) -> None:
    d.b.call(h_syscall, [d.g.env, _c(d, d.pc)])
    _end(d)


@sys_op(0x107)
def _sysret(d: Disas, c: int) -> None:
    d.b.call(h_sysret, [d.g.env, _c(d, 8 if d.rex_w else 4)])
    _end(d)


@sys_op(0x134)
def _sysenter(d: Disas, c: int) -> None:
    d.b.call(h_sysenter, [d.g.env])
    _end(d)


@sys_op(0x135)
def _sysexit(d: Disas, c: int) -> None:
    d.b.call(h_sysexit, [d.g.env, _c(d, 8 if d.rex_w else 4)])
    _end(d)

