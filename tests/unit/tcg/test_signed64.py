"""The Python backend's signed form of 64-bit values (backend_py, "Signed 64-bit values").

Every block is compiled both ways (raw and signed) and also run by the IR
interpreter; all three must leave the same CPU state, memory and exceptions,
and the state must hold the IR's unsigned values.  The values sit where the
signed form is delicate: around 2**63, -1, the most negative value, kernel
addresses (0xffff8880...), shifts by 0 and 63, products that overflow.
"""
from __future__ import annotations

import random
import struct

import pytest

from pyqemu.exec.guest_memory import GuestFault, GuestMemory
from pyqemu.tcg import backend_py, interp
from pyqemu.tcg.backend_py import LOOP_LIMIT, PyCodegen, set_signed64, signed64
from pyqemu.tcg.ir import (CALL_MAY_RAISE, CALL_READS_STATE, CALL_WRITES_STATE, I32, I64, MO_BE,
                           MO_SIGN, Block, Builder, GlobalSet, Helper)
from pyqemu.tcg.optimize import optimize
from pyqemu.tcg.region import compile_region
from pyqemu.tcg.tb import TB, TBCache

M64 = (1 << 64) - 1
MIN = 1 << 63
KPAGE = 0xffff888000042000        # a kernel direct-map page
EDGE = [0, 1, 2, 7, 63, 64, 0xff, 0xffffffff, 0x100000000, 0x7ffffffffffffffe, 0x7fffffffffffffff,
        0x8000000000000000, 0x8000000000000001, 0xfffffffffffffffe, M64, 0xffff888000001234,
        0xffffffff81000000, 0x123456789abcdef0]

G = GlobalSet()
R = [G.add("r%d" % i, I64, "regs", i) for i in range(8)]
PC = G.add("pc", I64)
ENVG = G.add("env", I64)


class Env:
    def __init__(self, regs=()) -> None:
        self.regs = list(regs) + [0] * (8 - len(regs))
        self.pc = 0
        self.insn_count = 0
        self.env = self
        self.log = []

    def state(self):
        return list(self.regs), self.pc, self.insn_count, list(self.log)


def restore(env, data):
    env.pc = data[0]


class KernelMemory:
    """Pages at any 64-bit address, with the MMUView contract: ``rpages``/``wpages``
    keyed by the unsigned page number, ``load``/``store`` slow paths (counted)."""

    def __init__(self, *pages: int) -> None:
        self.bufs = {p >> 12: bytearray(4096) for p in pages}
        self.rpages = {pn: memoryview(b) for pn, b in self.bufs.items()}
        self.wpages = dict(self.rpages)
        self.slow = 0

    def _buf(self, addr: int, is_write: bool):
        assert 0 <= addr <= M64, "slow path given a non-canonical address %r" % addr
        b = self.bufs.get(addr >> 12)
        if b is None:
            raise GuestFault(addr, is_write)
        return b

    def load(self, addr: int, size: int) -> int:
        self.slow += 1
        out = bytearray()
        for i in range(size):
            a = (addr + i) & M64
            out.append(self._buf(a, False)[a & 4095])
        return int.from_bytes(out, "little")

    def store(self, addr: int, value: int, size: int) -> None:
        self.slow += 1
        assert 0 <= value < (1 << (8 * size)), "slow path given %r" % value
        for i in range(size):
            a = (addr + i) & M64
            self._buf(a, True)[a & 4095] = (value >> (8 * i)) & 0xff

    def snapshot(self):
        return {pn: bytes(b) for pn, b in sorted(self.bufs.items())}


def compiled(block, mem, signed):
    return PyCodegen(block, mem, restore, signed=signed).compile_python()


def run_all(make_block, regs, mem_factory=lambda: KernelMemory(KPAGE), opt=False):
    """Run one block raw, signed and interpreted; return the common outcome."""
    results = []
    srcs = []
    for kind in ("raw", "signed", "interp"):
        block = Block(0x1000)
        b = Builder(block)
        make_block(b)
        if opt:
            optimize(block, b.const)
        mem = mem_factory()
        if kind == "interp":
            fn = interp.build(block, mem, restore, LOOP_LIMIT)
        else:
            fn, src = compiled(block, mem, kind == "signed")
            srcs.append(src)
        env = Env(regs)
        try:
            r = ("ret", fn(env))
        except (GuestFault, ArithmeticError) as e:
            r = ("raise", type(e).__name__, str(e))
        for v in env.regs:
            assert type(v) is not int or 0 <= v, "negative value in the CPU state: %r" % v
        results.append((r, env.state(), mem.snapshot() if hasattr(mem, "snapshot") else None))
    assert results[1] == results[0], "signed differs from raw\n%s" % srcs[1]
    assert results[2] == results[0], "interpreter differs"
    return results[0]


@pytest.fixture(params=[False, True], ids=["raw", "signed"])
def signed(request):
    old = backend_py._settings.get("signed")
    set_signed64(request.param)
    yield request.param
    set_signed64(old)


def test_default_form_and_environment(monkeypatch):
    old = backend_py._settings.pop("signed", None)
    try:
        monkeypatch.setenv("PYQEMU_TCG_SIGNED64", "1")
        assert signed64() is True
        backend_py._settings.pop("signed", None)
        monkeypatch.setenv("PYQEMU_TCG_SIGNED64", "0")
        assert signed64() is False
        backend_py._settings.pop("signed", None)
        monkeypatch.delenv("PYQEMU_TCG_SIGNED64")
        assert signed64() is backend_py._SIGNED_DEFAULT
    finally:
        backend_py._settings.pop("signed", None)
        if old is not None:
            backend_py._settings["signed"] = old


def _ref_binop(opc, a, b):
    """What the IR defines, computed on unsigned values (written independently of the backend)."""
    sa, sb = a - (a >> 63 << 64), b - (b >> 63 << 64)
    n = b & 63
    if opc == "add":
        return (a + b) & M64
    if opc == "sub":
        return (a - b) & M64
    if opc == "mul":
        return (a * b) & M64
    if opc == "and":
        return a & b
    if opc == "or":
        return a | b
    if opc == "xor":
        return a ^ b
    if opc == "andc":
        return a & ~b & M64
    if opc == "shl":
        return (a << n) & M64
    if opc == "shr":
        return a >> n
    if opc == "sar":
        return (sa >> n) & M64
    if opc == "rotl":
        return ((a << n) | (a >> (64 - n))) & M64
    if opc == "rotr":
        return ((a >> n) | (a << (64 - n))) & M64
    if opc in ("div", "rem"):
        q = abs(sa) // abs(sb)
        q = q if (sa < 0) == (sb < 0) else -q
        return (q if opc == "div" else sa - q * sb) & M64
    if opc == "divu":
        return a // b
    if opc == "remu":
        return a % b
    raise AssertionError(opc)


BINOPS = ["add", "sub", "mul", "and", "or", "xor", "andc", "shl", "shr", "sar", "rotl", "rotr",
          "div", "rem", "divu", "remu"]


@pytest.mark.parametrize("opc", BINOPS)
def test_binops_on_edge_values(opc):
    def make(x, y, where):
        def body(b):
            b.insn_start(0x1000)
            # inputs from the CPU state, as constants, and as temps computed in the block
            ia = b.const(x) if where == "const" else R[1]
            ib = b.const(y) if where == "const" else R[2]
            if where == "temp":
                ia = b.op3("xor", R[1], b.const(0))
                ib = b.op3("add", R[2], b.const(0))
            b.emit(opc, I64, [R[0]], [ia, ib])
            b.exit_tb(3)
        return body
    for x in EDGE:
        for y in EDGE:
            if opc in ("div", "rem", "divu", "remu") and y == 0:
                continue
            want = _ref_binop(opc, x, y)
            for where in ("regs", "const", "temp"):
                r, (regs, *_), _ = run_all(make(x, y, where), [0, x, y])
                assert regs[0] == want, (opc, hex(x), hex(y), where)


UNOPS = {"neg": lambda a: -a & M64, "not": lambda a: a ^ M64,
         "ext8s": lambda a: ((a & 0xff) ^ 0x80) - 0x80 & M64, "ext8u": lambda a: a & 0xff,
         "ext16s": lambda a: ((a & 0xffff) ^ 0x8000) - 0x8000 & M64,
         "ext32s": lambda a: ((a & 0xffffffff) ^ MIN >> 32) - (MIN >> 32) & M64,
         "ext32u": lambda a: a & 0xffffffff, "ctpop": lambda a: bin(a).count("1"),
         "bswap64": lambda a: int.from_bytes(a.to_bytes(8, "little"), "big"),
         "bswap32": lambda a: int.from_bytes((a & 0xffffffff).to_bytes(4, "little"), "big"),
         "mov": lambda a: a}


@pytest.mark.parametrize("opc", sorted(UNOPS))
def test_unops_on_edge_values(opc):
    for x in EDGE:
        def body(b):
            b.insn_start(0x1000)
            b.emit(opc, I64, [R[0]], [R[1]])
            b.emit(opc, I64, [R[3]], [b.const(x)])
            b.exit_tb(3)
        _, (regs, *_), _ = run_all(body, [0, x])
        assert regs[0] == regs[3] == UNOPS[opc](x), (opc, hex(x))


def test_clz_ctz_extract_deposit_edges():
    for x in EDGE:
        for ofs, ln in ((0, 64), (0, 63), (1, 63), (63, 1), (32, 32), (8, 8), (60, 4)):
            def body(b):
                b.insn_start(0x1000)
                b.op3("clz", R[1], b.const(64), dst=R[0])
                b.op3("ctz", R[1], b.const(64), dst=R[2])
                b.extract(R[1], ofs, ln, dst=R[3])
                b.extract(R[1], ofs, ln, signed=True, dst=R[4])
                b.deposit(R[5], R[1], ofs, ln, dst=R[6])
                b.exit_tb(3)
            other = 0x5555aaaa5555aaaa ^ x
            _, (regs, *_), _ = run_all(body, [0, x, 0, 0, 0, other])
            assert regs[0] == (64 - x.bit_length() if x else 64)
            assert regs[2] == ((x & -x).bit_length() - 1 if x else 64)
            field = (x >> ofs) & ((1 << ln) - 1)
            assert regs[3] == field
            assert regs[4] == (field - (field >> (ln - 1) << ln)) & M64
            fm = ((1 << ln) - 1) << ofs
            assert regs[6] == (other & ~fm) | ((x << ofs) & fm)


@pytest.mark.parametrize("cond", ["eq", "ne", "lt", "ge", "le", "gt", "ltu", "geu", "leu", "gtu"])
def test_compares_across_the_sign_boundary(cond):
    def ref(a, b):
        sa, sb = a - (a >> 63 << 64), b - (b >> 63 << 64)
        x, y = (a, b) if cond.endswith("u") else (sa, sb)
        return {"eq": x == y, "ne": x != y, "lt": x < y, "ge": x >= y, "le": x <= y, "gt": x > y,
                "ltu": x < y, "geu": x >= y, "leu": x <= y, "gtu": x > y}[cond]
    for x in EDGE:
        for y in EDGE:
            def body(b):
                b.insn_start(0x1000)
                b.setcond(cond, R[1], R[2], dst=R[0])
                b.setcond(cond, R[1], b.const(y), dst=R[3])
                b.movcond(cond, R[1], R[2], R[1], R[2], dst=R[4])
                skip = b.label()
                b.brcond(cond, R[1], R[2], skip)
                b.movi(R[5], 1)
                b.set_label(skip)
                b.exit_tb(3)
            _, (regs, *_), _ = run_all(body, [0, x, y, 0, 0, 0])
            t = ref(x, y)
            assert regs[0] == regs[3] == int(t), (cond, hex(x), hex(y))
            assert regs[4] == (x if t else y) and regs[5] == (0 if t else 1)


def test_double_width_products():
    for x in EDGE:
        for y in EDGE:
            def body(b):
                b.insn_start(0x1000)
                b.emit("mulu2", I64, [R[0], R[3]], [R[1], R[2]])
                b.emit("muls2", I64, [R[4], R[5]], [R[1], R[2]])
                b.exit_tb(3)
            _, (regs, *_), _ = run_all(body, [0, x, y])
            sx, sy = x - (x >> 63 << 64), y - (y >> 63 << 64)
            assert (regs[3] << 64) | regs[0] == x * y
            assert regs[4] == (sx * sy) & M64 and regs[5] == ((sx * sy) >> 64) & M64


def test_kernel_addresses_use_the_fast_path():
    def body(b):
        b.insn_start(0x1000)
        b.st(R[1], R[0], 3)                              # 8-byte store of a value >= 2**63
        v = b.ld(R[0], 3)
        b.mov(R[2], v)
        b.insn_start(0x1004)
        a = b.op3("add", R[0], b.const(8))
        b.st(R[1], a, 2 | MO_BE)
        b.ld(a, 2 | MO_SIGN, dst=R[3])                   # sign-extending loads
        b.ld(a, 1 | MO_SIGN, dst=R[4])
        b.ld(a, 0 | MO_SIGN, dst=R[5])
        b.ld(a, 3 | MO_BE, dst=R[6])
        b.exit_tb(3)
    val = 0xfedcba98f6543280
    for signed in (False, True):
        mem = KernelMemory(KPAGE)
        fn, src = compiled(_block(body), mem, signed)
        env = Env([KPAGE + 0x100, val])
        assert fn(env) == 3
        assert env.regs[2] == val
        data = mem.snapshot()[KPAGE >> 12]
        assert data[0x100:0x10c] == val.to_bytes(8, "little") + b"\xf6\x54\x32\x80"
        assert env.regs[3] == 0xffffffff803254f6 and env.regs[4] == 0x54f6
        assert env.regs[5] == 0xfffffffffffffff6 and env.regs[6] == 0xf654328000000000
        assert mem.slow == 0
    # the same through the slow paths: a page crossing and the last bytes of the address space
    run_all(body, [KPAGE + 0xffc, val])
    run_all(body, [M64 - 3, val], mem_factory=lambda: KernelMemory(M64 & ~4095))
    _, (regs, *_), _ = run_all(body, [KPAGE + 0xff4, val])
    assert regs[2] == val and regs[3] == 0xffffffff803254f6


def _block(body, pc=0x1000):
    block = Block(pc)
    body(Builder(block))
    return block


def h_double(a):
    assert 0 <= a <= M64
    return (a * 2) & M64


def h_wide(a):
    return (a << 64) | a            # a 128-bit value, as the SSE helpers return


def h_check(env, a, b):
    assert 0 <= a and 0 <= b
    env.log.append((a, b))


def h_set(env, a):
    env.regs[7] = a ^ MIN


def test_helpers_see_unsigned_values_and_wide_results_stay_exact():
    hd = Helper(h_double, 0, 1)
    hw = Helper(h_wide, 0, 1)
    hc = Helper(h_check, CALL_SIDE_EFFECTS_AND_READS, 0)
    hs = Helper(h_set, CALL_READS_STATE | CALL_WRITES_STATE, 0)

    def body(b):
        b.insn_start(0x1000)
        t = b.op3("add", R[1], b.const(5))            # signed inside the block
        d = b.call(hd, [t])[0]
        b.op3("add", d, b.const(1), dst=R[0])
        w = b.call(hw, [R[1]])[0]
        lo = b.op3("and", w, b.const(M64))           # low half of a wide value
        hi = b.op3("xor", w, b.const(0))             # stays wide
        b.call(hc, [ENVG, lo, hi])
        b.op3("sub", lo, b.const(1), dst=R[2])
        b.call(hs, [ENVG, R[1]])                      # writes r7 behind the block's back
        b.op3("add", R[7], b.const(1), dst=R[3])
        b.exit_tb(3)
    for x in EDGE:
        _, (regs, _, _, log), _ = run_all(body, [0, x])
        assert regs[0] == ((((x + 5) & M64) * 2) + 1) & M64
        assert log == [(x, (x << 64) | x)]
        assert regs[2] == (x - 1) & M64 and regs[3] == ((x ^ MIN) + 1) & M64


CALL_SIDE_EFFECTS_AND_READS = CALL_READS_STATE | 8


def test_fault_in_the_middle_restores_unsigned_state():
    def body(b):
        b.insn_start(0x1000)
        b.op3("sub", R[0], b.const(16), dst=R[0])     # rsp-like: a kernel stack pointer
        b.op3("add", R[1], b.const(1), dst=R[1])
        b.insn_start(0x1004)
        b.ld(R[2], 3, dst=R[3])                        # faults: r2 is unmapped
        b.insn_start(0x1008)
        b.movi(R[0], 0)
        b.exit_tb(3)
    for x in EDGE:
        r, (regs, pc, _, _), _ = run_all(body, [KPAGE + 0x800, x, 0xffffc90000000000])
        assert r[0] == "raise" and r[1] == "GuestFault"
        assert regs[0] == KPAGE + 0x7f0 and regs[1] == (x + 1) & M64 and pc == 0x1004


def test_self_loop_counting_across_the_sign_boundary():
    # r0 counts from 2**63 - 5 up to 2**63 + 5 (an unsigned compare), r1 sums the low bytes
    def body(b):
        b.insn_start(0x1000)
        b.op3("add", R[1], b.op3("and", R[0], b.const(0xff)), dst=R[1])
        b.op3("add", R[0], b.const(1), dst=R[0])
        done = b.label()
        b.brcond("geu", R[0], R[2], done)
        b.movi(PC, 0x1000)
        b.goto_tb(0, 0x1000)
        b.set_label(done)
        b.movi(PC, 0x2000)
        b.goto_tb(1, 0x2000)
    for opt in (False, True):
        r, (regs, pc, icount, _), _ = run_all(body, [MIN - 5, 0, MIN + 5], opt=opt)
        assert r == ("ret", 1) and pc == 0x2000 and icount == 9
        assert regs[0] == MIN + 5 and regs[1] == sum((MIN - 5 + i) & 0xff for i in range(10))


def test_region_with_kernel_values(signed):
    # A: r0 += 8 (a kernel pointer) -> B;  B: store r1 at r0, r2 -= 1, r2 != 0 -> A
    a = Block(0x1000)
    b = Builder(a)
    b.insn_start(0x1000)
    b.op3("add", R[0], b.const(8), dst=R[0])
    b.movi(PC, 0x1100)
    b.goto_tb(0, 0x1100)
    blk = Block(0x1100)
    b = Builder(blk)
    b.insn_start(0x1100)
    b.st(R[1], R[0], 3)
    b.op3("sub", R[1], b.const(1), dst=R[1])
    b.op3("sub", R[2], b.const(1), dst=R[2])
    done = b.label()
    b.brcond("eq", R[2], b.const(0), done)
    b.movi(PC, 0x1000)
    b.goto_tb(0, 0x1000)
    b.set_label(done)
    b.movi(PC, 0x5000)
    b.goto_tb(1, 0x5000)
    mem = KernelMemory(KPAGE)
    cache = TBCache(GuestMemory())
    tbs = []
    for blk_ in (a, blk):
        tb = TB(blk_.pc, 0, 0)
        tb.block = blk_
        tb.ninsns = blk_.ninsns
        cache.add(tb)
        tbs.append(tb)
    fn = compile_region(tbs, mem, restore)
    assert fn is not None and fn.region_pcs == [0x1000, 0x1100]
    env = Env([KPAGE, 1, 10])
    assert fn(env) == 2 and env.pc == 0x5000        # left from B, a member: look up pc
    assert env.regs[:3] == [KPAGE + 80, (1 - 10) & M64, 0]
    data = mem.snapshot()[KPAGE >> 12]
    assert [int.from_bytes(data[8 * i:8 * i + 8], "little") for i in range(1, 11)] == \
        [(1 - i) & M64 for i in range(10)]
    assert mem.slow == 0


# -- random blocks of 64-bit work: raw, signed and interpreted agree ------------------

OPS2 = ["add", "sub", "mul", "and", "or", "xor", "andc", "shl", "shr", "sar", "rotl", "rotr"]
OPS1 = ["neg", "not", "ext8s", "ext16s", "ext32s", "ext32u", "mov", "bswap64", "ctpop"]
CONDS = ["eq", "ne", "lt", "ge", "le", "gt", "ltu", "geu", "leu", "gtu"]


def random_block(seed: int) -> Block:
    rnd = random.Random(seed)
    block = Block(0x1000)
    b = Builder(block)
    vals = list(R[:6])

    def pick():
        if rnd.random() < 0.25:
            return b.const(rnd.choice(EDGE + [rnd.getrandbits(64), rnd.randrange(64)]))
        return rnd.choice(vals)

    pending = None
    for k in range(rnd.randrange(4, 30)):
        b.insn_start(0x1000 + 4 * k)
        w = I64 if rnd.random() < 0.85 else I32
        r = rnd.random()
        if r < 0.45:
            t = b.op3(rnd.choice(OPS2), pick(), pick(), w)
        elif r < 0.6:
            t = b.op2(rnd.choice(OPS1), pick(), w)
        elif r < 0.68:
            t = b.setcond(rnd.choice(CONDS), pick(), pick(), w)
        elif r < 0.74:
            t = b.movcond(rnd.choice(CONDS), pick(), pick(), pick(), pick(), w)
        elif r < 0.8:
            lo, hi = b.temp(w), b.temp(w)
            b.emit(rnd.choice(["mulu2", "muls2"]), w, [lo, hi], [pick(), pick()])
            vals.append(hi)
            t = lo
        elif r < 0.87:
            # a kernel address plus a small offset (sometimes off the page)
            addr = b.op3("add", b.op3("and", pick(), b.const(0xfff)), b.const(KPAGE))
            if rnd.random() < 0.5:
                t = b.ld(addr, rnd.choice([0, 1, 2, 3]) | rnd.choice([0, MO_SIGN]) | rnd.choice([0, MO_BE]))
            else:
                b.st(pick(), addr, rnd.choice([0, 1, 2, 3]) | rnd.choice([0, MO_BE]))
                continue
        elif r < 0.93 and pending is None:
            pending = b.label()
            b.brcond(rnd.choice(CONDS), pick(), pick(), pending, w)
            n_before = len(vals)
            continue
        else:
            t = b.op2("mov", pick(), I64, dst=rnd.choice(R[:6]))
        vals.append(t)
        if rnd.random() < 0.4:
            b.mov(rnd.choice(R[:6]), t)
        if pending is not None and rnd.random() < 0.3:
            del vals[n_before:]
            b.set_label(pending)
            pending = None
    if pending is not None:
        b.set_label(pending)
    b.movi(PC, 0x3000)
    b.exit_tb(3)
    if rnd.random() < 0.7:
        optimize(block, b.const)
    return block


def test_random_64bit_blocks_agree_in_every_form():
    for seed in range(120):
        rnd = random.Random(seed)
        regs = [rnd.choice(EDGE + [rnd.getrandbits(64)]) for _ in range(6)]
        block = random_block(seed)
        outs = []
        for kind in ("raw", "signed", "interp"):
            mem = KernelMemory(KPAGE)
            mem.bufs[KPAGE >> 12][:] = random.Random(seed).getrandbits(0x8000).to_bytes(0x1000, "little")
            if kind == "interp":
                fn = interp.build(block, mem, restore, LOOP_LIMIT)
            else:
                fn, src = compiled(block, mem, kind == "signed")
            env = Env(regs)
            try:
                r = ("ret", fn(env))
            except (GuestFault, ArithmeticError, struct.error) as e:
                r = ("raise", type(e).__name__)
            outs.append((r, env.state(), mem.snapshot()))
        assert outs[1] == outs[0], "seed %d\n%s\n%s" % (seed, block.dump(), src)
        assert outs[2] == outs[0], "seed %d" % seed


def test_backend_unit_tests_cover_both_forms(signed):
    # a smoke check that the fixture really switches the generated code
    fn, src = PyCodegen(_block(lambda b: (b.insn_start(0), b.op3("add", R[0], R[1], dst=R[0]),
                                          b.exit_tb(3))), GuestMemory(), restore).compile_python()
    assert ("_tos" in src) == signed
    env = Env([M64, 2])
    fn(env)
    assert env.regs[0] == 1


_ = (CALL_MAY_RAISE, CALL_WRITES_STATE)


def h_clock(env):
    env.log.append(env.insn_count)


def test_helper_reading_state_sees_the_count_of_a_self_loop(signed):
    # a calibration loop: read the clock (a helper reading the CPU state) until r1 runs out
    hc = Helper(h_clock, CALL_READS_STATE, 0)

    def body(b):
        b.insn_start(0x1000)
        b.call(hc, [ENVG])
        b.insn_start(0x1004)
        b.op3("sub", R[1], b.const(1), dst=R[1])
        b.insn_start(0x1008)
        done = b.label()
        b.brcond("eq", R[1], b.const(0), done)
        b.movi(PC, 0x1000)
        b.goto_tb(0, 0x1000)
        b.set_label(done)
        b.movi(PC, 0x2000)
        b.goto_tb(1, 0x2000)
    fn, src = PyCodegen(_block(body), GuestMemory(), restore).compile_python()
    env = Env([0, 10])
    env.insn_count = 100
    assert fn(env) == 1
    assert env.log == [100 + 3 * i for i in range(10)]
    assert env.insn_count == 100 + 3 * 9      # the execution loop adds the last pass


def test_helper_reading_state_sees_the_count_inside_a_region(signed):
    hc = Helper(h_clock, CALL_READS_STATE, 0)
    a = Block(0x1000)
    b = Builder(a)
    b.insn_start(0x1000)
    b.call(hc, [ENVG])
    b.movi(PC, 0x1100)
    b.goto_tb(0, 0x1100)
    blk = Block(0x1100)
    b = Builder(blk)
    b.insn_start(0x1100)
    b.insn_start(0x1104)
    b.op3("sub", R[1], b.const(1), dst=R[1])
    done = b.label()
    b.brcond("eq", R[1], b.const(0), done)
    b.movi(PC, 0x1000)
    b.goto_tb(0, 0x1000)
    b.set_label(done)
    b.movi(PC, 0x5000)
    b.goto_tb(1, 0x5000)
    cache = TBCache(GuestMemory())
    tbs = []
    for blk_ in (a, blk):
        tb = TB(blk_.pc, 0, 0)
        tb.block = blk_
        tb.ninsns = blk_.ninsns
        cache.add(tb)
        tbs.append(tb)
    fn = compile_region(tbs, GuestMemory(), restore)
    env = Env([0, 5])
    assert fn(env) == 2 and env.pc == 0x5000
    assert env.log == [3 * i for i in range(5)]
    assert env.insn_count + 1 == 3 * 5        # + the head, which the execution loop counts
