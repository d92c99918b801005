"""convert's zero-block scan (-S): the runs it writes are exactly the blocks that hold data."""
from __future__ import annotations

import mmap
import os
import random

import pytest

from pyqemu.cli.img_convert import _nonzero_runs


def _runs_block_by_block(buf: bytes, gran: int):
    runs, start = [], None
    for s in range(0, len(buf), gran):
        e = min(s + gran, len(buf))
        if buf[s:e] == bytes(e - s):
            if start is not None:
                runs.append((start, s))
                start = None
        elif start is None:
            start = s
    if start is not None:
        runs.append((start, len(buf)))
    return runs


@pytest.mark.parametrize("seed", range(4))
def test_scan_matches_a_block_by_block_check(seed):
    rnd = random.Random(seed)
    for _ in range(300):
        gran = rnd.choice([512, 1536, 4096, 65536, 4 << 20])
        n = rnd.randint(1, 300000)
        buf = bytearray(n)
        for _ in range(rnd.randint(0, 6)):
            a = rnd.randrange(n)
            b = min(n, a + rnd.randint(1, 20000))
            buf[a:b] = os.urandom(b - a) if rnd.random() < 0.5 else b"\x01" * (b - a)
        if rnd.random() < 0.3:
            # blocks whose first and last bytes are zero but not the middle
            for s in range(0, n, gran):
                if rnd.random() < 0.5 and s + gran // 2 < n:
                    buf[s + gran // 2] = 7
        want = _runs_block_by_block(bytes(buf), gran)
        # the buffer may be longer than the data (a reused read buffer)
        assert _nonzero_runs(buf + os.urandom(rnd.randint(0, 99)), gran, n) == want
        assert _nonzero_runs(bytes(buf), gran) == want
        mm = mmap.mmap(-1, n + 4096)  # convert's page-aligned read buffers
        mm[:n] = buf
        assert _nonzero_runs(mm, gran, n) == want
        mm.close()


def test_scan_edge_cases():
    assert _nonzero_runs(bytes(8192), 4096) == []
    assert _nonzero_runs(b"\x01" + bytes(8191), 4096) == [(0, 4096)]
    assert _nonzero_runs(bytes(8191) + b"\x01", 4096) == [(4096, 8192)]
    assert _nonzero_runs(bytes(5000) + b"\x01", 4096) == [(4096, 5001)]  # the partial tail block
    assert _nonzero_runs(bytes(4096) + b"\x01" + bytes(4095) + bytes(4096), 4096) == [(4096, 8192)]
