"""qcow2's extent walk (block status, read plans) merges runs of clusters in bulk:
every cluster of every extent must still map as its own L2 entry says."""
from __future__ import annotations

import os
import random

import pytest

from pyqemu.block import create_image, open_image
from pyqemu.block.qcow2.driver import COMPRESSED, L2_OFFSET_MASK, NORMAL, UNALLOC, ZERO_ALLOC, ZERO_PLAIN


@pytest.mark.parametrize("seed", range(3))
def test_extents_agree_with_each_clusters_entry(tmp_path, seed):
    rnd = random.Random(seed)
    cs = rnd.choice([512, 4096, 65536])
    size = 4 << 20
    path = str(tmp_path / "x.qcow2")
    create_image("qcow2", path, size, {"cluster_size": str(cs)})
    with open_image(path, readonly=False) as node:
        for _ in range(40):
            off = rnd.randrange(size)
            n = min(size - off, rnd.randint(1, 400000))
            r = rnd.random()
            if r < 0.6:
                node.pwrite(off, os.urandom(n))
            elif r < 0.85:
                node.pwrite_zeroes(off, n, may_unmap=rnd.random() < 0.5)
            else:
                node.discard(off, n)
    with open_image(path) as node:
        for _ in range(40):
            off = rnd.randrange(size)
            length = rnd.randint(1, size - off)
            pos = off
            for kind, goff, n, host, entry in node._extents(off, length):
                assert goff == pos and n > 0
                c = goff // cs
                while c * cs < goff + n:
                    e = node._entry(c)
                    own = node._kind(e)
                    assert own == kind, (c, hex(e), kind)
                    if kind in (NORMAL, ZERO_ALLOC):
                        assert not e & COMPRESSED
                        assert (e & L2_OFFSET_MASK) + max(goff, c * cs) - c * cs == host + max(goff, c * cs) - goff
                    else:
                        assert kind in (UNALLOC, ZERO_PLAIN)
                    c += 1
                pos += n
            assert pos == off + length
