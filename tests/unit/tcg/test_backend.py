"""The IR, optimizer and Python backend, driven directly (no guest decoder)."""
from __future__ import annotations

import pytest

from pyqemu.exec.guest_memory import GuestFault, GuestMemory
from pyqemu.tcg import interp
from pyqemu.tcg.backend_py import LOOP_LIMIT, PyCodegen
from pyqemu.tcg.ir import I32, I64, MO_SIGN, Block, Builder, GlobalSet
from pyqemu.tcg.optimize import optimize


class Env:
    def __init__(self) -> None:
        self.regs = [0] * 4
        self.pc = 0
        self.insn_count = 0


G = GlobalSet()
R = [G.add("r%d" % i, I64, "regs", i) for i in range(4)]
PC = G.add("pc", I64)


def restore(env, data):
    env.pc = data[0]


# Every test runs against both tiers: the generated Python code and the IR
# interpreter, which must behave the same.
TIER = ["compiled"]


@pytest.fixture(autouse=True, params=["compiled", "interpreted"])
def _tier(request):
    TIER[0] = request.param


def build(fn, pc=0x1000, opt=True, mem=None):
    block = Block(pc)
    b = Builder(block)
    fn(b)
    if opt:
        optimize(block, b.const)
    mem = mem or GuestMemory()
    if TIER[0] == "interpreted":
        return interp.build(block, mem, restore, LOOP_LIMIT), None, block
    gen = PyCodegen(block, mem, restore)
    code, src = gen.compile_python()
    return code, src, block


def run_binop(opc, width, a, c):
    def body(b):
        b.insn_start(0x1000)
        b.emit(opc, width, [R[0]], [R[1], R[2]])
        b.exit_tb(3)
    code, _, _ = build(body, opt=False)
    env = Env()
    env.regs[1], env.regs[2] = a, c
    assert code(env) == 3
    return env.regs[0]


M64 = (1 << 64) - 1


@pytest.mark.parametrize("opc,width,a,c,want", [
    ("add", I64, M64, 2, 1),
    ("add", I32, 0xffffffff, 1, 0),
    ("sub", I64, 0, 1, M64),
    ("mul", I32, 0x10000, 0x10000, 0),
    ("shl", I64, 1, 65, 2),              # count taken modulo the width
    ("shr", I32, 0x80000000, 31, 1),
    ("sar", I32, 0x80000000, 31, 0xffffffff),
    ("sar", I64, 1 << 63, 63, M64),
    ("rotl", I32, 0x80000001, 1, 3),
    ("rotr", I64, 1, 1, 1 << 63),
    ("andc", I64, 0xff, 0x0f, 0xf0),
    ("div", I64, (-7) & M64, 2, (-3) & M64),   # truncates toward zero like C
    ("rem", I64, (-7) & M64, 2, (-1) & M64),
    ("divu", I32, 7, 2, 3),
])
def test_binops(opc, width, a, c, want):
    assert run_binop(opc, width, a, c) == want


def test_setcond_signed_and_unsigned():
    def body(b):
        b.insn_start(0)
        b.setcond("lt", R[1], R[2], dst=R[0])
        b.setcond("ltu", R[1], R[2], dst=R[3])
        b.exit_tb(3)
    code, _, _ = build(body, opt=False)
    env = Env()
    env.regs[1], env.regs[2] = M64, 1       # -1 < 1 signed, not unsigned
    code(env)
    assert env.regs[0] == 1 and env.regs[3] == 0


def test_constant_folding_and_dead_flags():
    def body(b):
        b.insn_start(0)
        t = b.op3("add", b.const(2), b.const(3))
        b.op3("mul", t, b.const(10), dst=R[0])
        b.mov(R[1], R[2])        # overwritten before use: dead
        b.movi(R[1], 7)
        b.exit_tb(3)
    code, src, block = build(body)
    ops = [op.opc for op in block.ops]
    assert ops.count("mov") == 2 and "add" not in ops and "mul" not in ops
    env = Env()
    env.regs[2] = 99
    code(env)
    assert env.regs[0] == 50 and env.regs[1] == 7


def test_branches_become_structured_code():
    def body(b):
        b.insn_start(0)
        lab = b.label()
        b.brcond("eq", R[1], b.const(0), lab)
        b.movi(R[0], 1)
        b.goto_tb(0, 0x2000)
        b.set_label(lab)
        b.movi(R[0], 2)
        b.goto_tb(1, 0x3000)
    code, src, _ = build(body)
    assert src is None or "_L = " not in src     # no state machine needed
    env = Env()
    assert code(env) == 1 and env.regs[0] == 2
    env.regs[1] = 5
    assert code(env) == 0 and env.regs[0] == 1


def test_self_loop_runs_inside_the_function():
    # r0 += r1 until r1 reaches 0: a block jumping to its own start
    def body(b):
        b.insn_start(0x1000)
        b.op3("add", R[0], R[1], dst=R[0])
        b.op3("sub", R[1], b.const(1), dst=R[1])
        lab = b.label()
        b.brcond("eq", R[1], b.const(0), lab)
        b.goto_tb(0, 0x1000)
        b.set_label(lab)
        b.goto_tb(1, 0x2000)
    code, src, _ = build(body)
    assert src is None or "continue" in src
    env = Env()
    env.regs[1] = 100
    assert code(env) == 1
    assert env.regs[0] == 5050 and env.regs[1] == 0


def test_guest_memory_access_and_precise_fault():
    mem = GuestMemory()
    mem.map(0x10000, 0x1000, 3)
    mem.write(0x10ffe, b"\x80\xff")

    def body(b):
        b.insn_start(0x1000)
        v = b.ld(R[1], 1 | MO_SIGN)          # 16-bit signed load
        b.mov(R[0], v)
        b.insn_start(0x1004)
        b.movi(R[3], 42)
        b.st(R[0], R[2], 3)                   # 64-bit store, may fault
        b.insn_start(0x1008)
        b.movi(R[3], 43)
        b.exit_tb(3)
    code, _, _ = build(body, mem=mem)
    env = Env()
    env.regs[1], env.regs[2] = 0x10ffe, 0x10ff8
    assert code(env) == 3
    assert env.regs[0] == 0xffffffffffffff80
    assert mem.read_u64(0x10ff8) == 0xffffffffffffff80
    # a store crossing into an unmapped page faults with the state of that insn
    mem.write(0x10ff8, bytes(6) + b"\x01\x00")
    env = Env()
    env.regs[1], env.regs[2] = 0x10ffe, 0x10ffc
    with pytest.raises(GuestFault) as exc:
        code(env)
    assert exc.value.addr >= 0x11000 and exc.value.is_write
    assert env.pc == 0x1004 and env.regs[0] == 1 and env.regs[3] == 42
    assert mem.read(0x10ffc, 4) == b"\0\0\x01\0"      # nothing of the store was written
