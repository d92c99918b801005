"""rep movs copies in blocks where that cannot change the result: forward and
backward (DF=1), overlapping both ways, all element sizes; compared with an
element-by-element model of the instruction."""
from __future__ import annotations

import random

from pyqemu.target.i386.helpers import string_op


class _Mem:
    def __init__(self, data: bytes) -> None:
        self.b = bytearray(data)

    def load(self, a: int, n: int) -> int:
        return int.from_bytes(self.b[a:a + n], "little")

    def store(self, a: int, v: int, n: int) -> None:
        self.b[a:a + n] = v.to_bytes(n, "little")

    def read(self, a: int, n: int) -> bytes:
        return bytes(self.b[a:a + n])

    def write(self, a: int, d: bytes) -> None:
        self.b[a:a + len(d)] = d


class _Env:
    pass


def test_rep_movs_blocks_equal_the_element_wise_copy():
    rnd = random.Random(7)
    for _ in range(400):
        size = rnd.choice([1, 2, 4, 8])
        n = rnd.randint(0, 600)
        si = rnd.randint(9000, 14000)
        di = si + rnd.randint(-40, 40) * rnd.choice([1, size, 37])
        df = rnd.random() < 0.5
        data = rnd.randbytes(6 * 4096)
        env = _Env()
        env.mem = _Mem(data)
        env.mode = 32
        env.eflags = 0x400 if df else 0
        env.regs = [0] * 16
        env.regs[1], env.regs[6], env.regs[7] = n, si, di
        string_op(env, 0, size, 1, 0xffffffff, 0, 4)
        model = _Mem(data)
        step = -size if df else size
        s, d = si, di
        for _i in range(n):
            model.store(d, model.load(s, size), size)
            s += step
            d += step
        assert env.mem.b == model.b, (size, n, si, di, df)
        assert (env.regs[1], env.regs[6], env.regs[7]) == (0, s, d)
