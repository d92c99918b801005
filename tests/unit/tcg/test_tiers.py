"""The IR interpreter against the Python backend, and the switch between the two tiers."""
from __future__ import annotations

import random
import struct

import pytest

from pyqemu.exec.guest_memory import GuestFault, GuestMemory
from pyqemu.tcg import interp, tier
from pyqemu.tcg.backend_py import LOOP_LIMIT, PyCodegen
from pyqemu.tcg.ir import (CALL_MAY_RAISE, CALL_READS_STATE, CALL_WRITES_STATE, I32, I64,
                           INVERT, MO_BE, MO_SIGN, Block, Builder, GlobalSet, Helper)
from pyqemu.tcg.optimize import optimize
from pyqemu.tcg.tb import TB, TBCache

G = GlobalSet()
R = [G.add("r%d" % i, I64, "regs", i) for i in range(6)]
PC = G.add("pc", I64)
FLAGS = G.add("flags", I32)

BINOPS = ["add", "sub", "mul", "and", "or", "xor", "andc", "shl", "shr", "sar", "rotl", "rotr",
          "divu", "remu", "div", "rem"]
UNOPS = ["neg", "not", "ext8s", "ext8u", "ext16s", "ext16u", "ext32s", "ext32u", "ctpop",
         "bswap16", "bswap32", "bswap64", "mov"]
CONDS = sorted(INVERT)
PAGE = 0x20000


class Env:
    def __init__(self, seed: int) -> None:
        rnd = random.Random(seed)
        self.regs = [rnd.choice([0, 1, 5, 0x80, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff,
                                 1 << 63, (1 << 64) - 1, rnd.getrandbits(64), rnd.getrandbits(32),
                                 PAGE + rnd.randrange(0x1000), PAGE + 0xffc])
                     for _ in range(6)]
        self.pc = 0
        self.flags = 0
        self.insn_count = 0
        self.seen = []

    def state(self):
        return (self.regs, self.pc, self.flags, self.insn_count, self.seen)


def restore(env, data):
    env.pc = data[0]


def h_note(env, x):
    """Reads the CPU state (a write-back must come first)."""
    env.seen.append((list(env.regs), x))
    return x ^ 0x5a


def h_bump(env):
    """Changes the CPU state (globals are reloaded after it)."""
    env.regs[5] = (env.regs[5] + 3) & ((1 << 64) - 1)
    env.flags ^= 1


def h_check(x):
    if x & 0xff == 0x42:
        raise OverflowError("guest exception stand-in")
    return (x * 3) & 0xffffffff


def h_pair(a, b):
    return a & b, a | b


HELPERS = [(Helper(h_note, CALL_READS_STATE, 1), 2),
           (Helper(h_bump, CALL_READS_STATE | CALL_WRITES_STATE, 0), 1),
           (Helper(h_check, CALL_MAY_RAISE, 1), 1),
           (Helper(h_pair, 0, 2), 2)]


def random_block(seed: int, self_loop: bool = False) -> Block:
    rnd = random.Random(seed)
    block = Block(0x1000)
    b = Builder(block)
    env_g = G.by_name.get("env") or G.add("env", I64)
    vals = list(R)

    def pick():
        if rnd.random() < 0.2:
            return b.const(rnd.choice([0, 1, 3, 8, 31, 63, 0xff, 0x80000000, rnd.getrandbits(64)]))
        return rnd.choice(vals)

    def addr():
        # mostly inside the mapped page (sometimes crossing its end), sometimes anywhere
        if rnd.random() < 0.1:
            return rnd.choice(R)
        return b.op3("add", b.op3("and", pick(), b.const(0xfff)), b.const(PAGE))

    if self_loop:
        # count r5 down to 0 (bounded), with random work in between
        b.insn_start(0x1000)
        b.op3("and", R[5], b.const(0x3f), dst=R[5])
    pending = []
    for k in range(rnd.randrange(3, 25)):
        b.insn_start(0x1000 + 4 * (k + 1))
        w = rnd.choice([I32, I64])
        r = rnd.random()
        if r < 0.35:
            opc = rnd.choice(BINOPS)
            if opc in ("divu", "remu", "div", "rem"):
                # a zero divisor is undefined in the IR (frontends check first)
                t = b.op3(opc, pick(), b.op3("or", pick(), b.const(1), w), w)
            else:
                t = b.op3(opc, pick(), pick(), w)
        elif r < 0.5:
            t = b.op2(rnd.choice(UNOPS), pick(), w)
        elif r < 0.55:
            t = b.setcond(rnd.choice(CONDS), pick(), pick(), w)
        elif r < 0.6:
            t = b.movcond(rnd.choice(CONDS), pick(), pick(), pick(), pick(), w)
        elif r < 0.65:
            ofs = rnd.randrange(w)
            ln = rnd.randrange(1, w - ofs + 1)
            t = rnd.choice([lambda: b.extract(pick(), ofs, ln, w),
                            lambda: b.extract(pick(), ofs, ln, w, signed=True),
                            lambda: b.deposit(pick(), pick(), ofs, ln, w)])()
        elif r < 0.7:
            lo, hi = b.temp(w), b.temp(w)
            b.emit(rnd.choice(["mulu2", "muls2"]), w, [lo, hi], [pick(), pick()])
            vals.append(hi)
            t = lo
        elif r < 0.78:
            memop = rnd.choice([0, 1, 2, 3, 4]) | rnd.choice([0, MO_SIGN]) | rnd.choice([0, MO_BE])
            if memop & 7 == 4:
                memop = 4
            t = b.ld(addr(), memop, w if memop & 7 < 3 else I64)
        elif r < 0.84:
            memop = rnd.choice([0, 1, 2, 3]) | rnd.choice([0, MO_BE])
            b.st(pick(), addr(), memop, w)
            continue
        elif r < 0.9:
            h, nargs = rnd.choice(HELPERS)
            args = [env_g] if h.flags & CALL_READS_STATE else []
            args += [pick() for _ in range(nargs - len(args))]
            outs = b.call(h, args, w)
            vals.extend(outs)
            continue
        elif r < 0.95 and not pending:
            lab = b.label()
            b.brcond(rnd.choice(CONDS), pick(), pick(), lab, w)
            pending.append((lab, len(vals)))
            continue
        else:
            t = b.op2("mov", pick(), w, dst=rnd.choice(R))
        vals.append(t)
        if rnd.random() < 0.4:
            b.mov(rnd.choice(R), t)
        if pending and rnd.random() < 0.3:
            # temps set inside the skipped code are not defined after the label
            lab, n = pending.pop()
            del vals[n:]
            b.set_label(lab)
    for lab, _ in pending:
        b.set_label(lab)
    if self_loop:
        done = b.label()
        b.op3("sub", R[5], b.const(1), dst=R[5])
        b.brcond("eq", R[5], b.const(0), done)
        b.movi(PC, 0x1000)
        b.goto_tb(0, 0x1000)
        b.set_label(done)
        b.movi(PC, 0x2000)
        b.goto_tb(1, 0x2000)
    else:
        b.movi(PC, 0x3000)
        b.exit_tb(rnd.choice([2, 3, 0x10005]))
    if rnd.random() < 0.7:
        optimize(block, b.const)
    return block


def outcome(fn, mem, seed):
    env = Env(seed)
    env.env = env
    mem.write(PAGE, random.Random(seed).getrandbits(0x8000).to_bytes(0x1000, "little"))
    try:
        r = ("ret", fn(env))
    except (GuestFault, ArithmeticError, ValueError, struct.error) as e:
        r = ("raise", type(e).__name__, str(e))
    return r, env.state(), mem.read(PAGE, 0x1000)


@pytest.mark.parametrize("self_loop", [False, True])
def test_interpreter_matches_compiled_code_on_random_blocks(self_loop):
    mem = GuestMemory()
    mem.map(PAGE, 0x1000, 3)
    for seed in range(150):
        block = random_block(seed, self_loop)
        compiled, src = PyCodegen(block, mem, restore).compile_python()
        interpreted = interp.build(block, mem, restore, LOOP_LIMIT)
        for run in range(3):
            want = outcome(compiled, mem, seed * 7 + run)
            got = outcome(interpreted, mem, seed * 7 + run)
            assert got == want, "seed %d run %d\n%s\n%s" % (seed, run, block.dump(), src)


def _loop_block():
    # r0 += r1 while r1 counts down: a block looping to its own start
    block = Block(0x1000)
    b = Builder(block)
    b.insn_start(0x1000)
    b.op3("add", R[0], R[1], dst=R[0])
    b.insn_start(0x1004)
    b.op3("sub", R[1], b.const(1), dst=R[1])
    lab = b.label()
    b.brcond("eq", R[1], b.const(0), lab)
    b.movi(PC, 0x1000)
    b.goto_tb(0, 0x1000)
    b.set_label(lab)
    b.movi(PC, 0x2000)
    b.goto_tb(1, 0x2000)
    optimize(block, b.const)
    return block


@pytest.fixture
def threshold():
    old = tier.hot_threshold()
    yield tier.set_hot_threshold
    tier.set_hot_threshold(old)


def test_cold_block_is_interpreted_then_compiled_into_its_tb(threshold):
    threshold(3)
    mem = GuestMemory()
    fn, src = PyCodegen(_loop_block(), mem, restore).compile("<t>")
    assert src == ""
    cache = TBCache(mem)
    tb = TB(0x1000, 0, 0)
    tb.fn = fn
    cache.add(tb)
    for run in range(3):
        env = Env(0)
        env.regs[0], env.regs[1] = 0, 10
        assert tb.fn(env) == 1
        assert env.regs[0] == 55 and env.pc == 0x2000 and env.insn_count == 9 * 2
    assert tb.fn is not fn and "while True" in tb.src     # the third run compiled it
    env = Env(0)
    env.regs[0], env.regs[1] = 0, 10
    assert fn(env) == 1 and env.regs[0] == 55          # the old handle still works


def test_hot_self_loop_switches_to_compiled_code_mid_call(threshold):
    threshold(50)
    fn, _ = PyCodegen(_loop_block(), GuestMemory(), restore).compile("<t>")
    env = Env(0)
    env.regs[0], env.regs[1] = 0, 1000
    # one call: 50 iterations interpreted, the rest compiled, one block exit
    assert fn(env) == 1
    assert env.regs[0] == 500500 and env.regs[1] == 0 and env.pc == 0x2000
    assert env.insn_count == 999 * 2


def test_threshold_never_and_zero(threshold):
    threshold(tier.NEVER)
    fn, src = PyCodegen(_loop_block(), GuestMemory(), restore).compile("<t>")
    assert src == ""
    for _ in range(30):
        env = Env(0)
        env.regs[0], env.regs[1] = 0, 5000        # crosses LOOP_LIMIT: exits through goto_tb 0
        assert fn(env) == 0 and env.pc == 0x1000
        assert env.insn_count == LOOP_LIMIT * 2
    threshold(0)
    fn, src = PyCodegen(_loop_block(), GuestMemory(), restore).compile("<t>")
    assert "def tb(env" in src


@pytest.mark.parametrize("value,want", [("", tier.DEFAULT_HOT), ("never", tier.NEVER),
                                        ("0", 0), ("7", 7), ("-1", tier.NEVER),
                                        ("junk", tier.DEFAULT_HOT)])
def test_threshold_from_environment(monkeypatch, value, want):
    monkeypatch.setenv("PYQEMU_TCG_HOT", value)
    assert tier._from_env() == want


# -- regions: a hot loop of several blocks in one function -------------------------

def _two_block_loop(fault_at=None, bpc=0x1100):
    """A (0x1000): r0 += r1 -> B;  B (bpc): r1 -= 1 (loads from r2 when r1 == fault_at), r1 != 0 -> A, else -> C."""
    a = Block(0x1000)
    b = Builder(a)
    b.insn_start(0x1000)
    b.op3("add", R[0], R[1], dst=R[0])
    b.movi(PC, bpc)
    b.goto_tb(0, bpc)
    optimize(a, b.const)
    blk = Block(bpc)
    b = Builder(blk)
    b.insn_start(bpc)
    b.op3("sub", R[1], b.const(1), dst=R[1])
    b.insn_start(bpc + 4)
    if fault_at is not None:
        skip = b.label()
        b.brcond("ne", R[1], b.const(fault_at), skip)
        b.ld(R[2], 3, dst=R[3])
        b.set_label(skip)
    b.insn_start(bpc + 8)
    done = b.label()
    b.brcond("eq", R[1], b.const(0), done)
    b.movi(PC, 0x1000)
    b.goto_tb(0, 0x1000)
    b.set_label(done)
    b.movi(PC, 0x5000)
    b.goto_tb(1, 0x5000)
    optimize(blk, b.const)
    return [a, blk]


def _translate(blocks, mem, pages=None):
    cache = TBCache(mem)
    for blk in blocks:
        tb = TB(blk.pc, 0, 0)
        tb.fn, tb.src = PyCodegen(blk, mem, restore).compile("<t>")
        tb.ninsns = blk.ninsns
        tb.pages = (pages or {}).get(blk.pc, (blk.pc >> 12,))
        cache.add(tb)
    return cache


def _run(cache, env, pc):
    """A minimal execution loop: follow env.pc until it leaves the translated blocks."""
    m = cache.pc_map(0, 0)
    env.pc = pc
    while env.pc in m:
        tb = m[env.pc]
        r = tb.fn(env)
        env.insn_count += tb.ninsns
        assert r in (0, 1, 2)


@pytest.mark.parametrize("hot", [tier.NEVER, 0, 3])
def test_hot_loop_of_two_blocks_becomes_one_region(threshold, hot):
    threshold(hot)
    cache = _translate(_two_block_loop(), GuestMemory())
    for n in (5, 3000, 7):
        env = Env(0)
        env.regs[0], env.regs[1] = 0, n
        _run(cache, env, 0x1000)
        assert env.regs[0] == n * (n + 1) // 2 and env.regs[1] == 0 and env.pc == 0x5000
        assert env.insn_count == n * 4         # A has one instruction, B three
    head = cache.pc_map(0, 0)[0x1000]
    assert (getattr(head.fn, "region_pcs", None) == [0x1000, 0x1100]) == (hot == 3)


def test_region_stops_when_a_member_is_invalidated(threshold):
    threshold(3)
    mem = GuestMemory()
    # B's last instruction reaches into the next page, which is then written
    cache = _translate(_two_block_loop(), mem, pages={0x1100: (1, 2)})
    env = Env(0)
    env.regs[0], env.regs[1] = 0, 50
    _run(cache, env, 0x1000)
    head = cache.pc_map(0, 0)[0x1000]
    region_fn = head.fn
    assert region_fn.region_pcs
    cache.invalidate_page(0x2)
    assert region_fn.region_valid == [False] and head.fn is not region_fn
    # B is gone: the head runs alone and leaves towards 0x1100
    env = Env(0)
    env.regs[0], env.regs[1] = 0, 50
    _run(cache, env, 0x1000)
    assert env.regs[0] == 50 and env.pc == 0x1100 and env.insn_count == 1


def test_fault_inside_a_region_is_precise(threshold):
    threshold(3)
    mem = GuestMemory()
    mem.map(PAGE, 0x1000, 3)
    cache = _translate(_two_block_loop(fault_at=7), mem)
    for regs_ok in (True, False):
        env = Env(0)
        env.regs[0], env.regs[1], env.regs[2] = 0, 20, PAGE if regs_ok else 0x666000
        if regs_ok:
            _run(cache, env, 0x1000)
            assert env.regs[0] == 210 and env.pc == 0x5000
            continue
        with pytest.raises(GuestFault):
            _run(cache, env, 0x1000)
        # 12 loop iterations done, then A and the first insn of B of the 13th
        assert env.pc == 0x1104 and env.regs[1] == 7
        assert env.regs[0] == sum(range(8, 21))
        assert env.insn_count == 12 * 4 + 1
    assert cache.pc_map(0, 0)[0x1000].fn.region_pcs


def test_region_stays_on_the_page_of_its_head(threshold):
    threshold(3)
    # the same loop with B on the next page: no region, same results
    cache = _translate(_two_block_loop(bpc=0x2100), GuestMemory())
    for _ in range(5):
        env = Env(0)
        env.regs[0], env.regs[1] = 0, 30
        _run(cache, env, 0x1000)
        assert env.regs[0] == 465 and env.pc == 0x5000 and env.insn_count == 30 * 4
    assert not hasattr(cache.pc_map(0, 0)[0x1000].fn, "region_pcs")
