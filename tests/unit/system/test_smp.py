"""-smp: QEMU 7.2's derivation of omitted values and its checks."""
from __future__ import annotations

import pytest

from pyqemu.system.vl import compute_smp
from pyqemu.util.error import QemuError


class Board:
    NAME = "board"
    MAX_CPUS = 64
    SMP_DIES = True
    SMP_CLUSTERS = False


def topo(**kw):
    s = compute_smp(Board, kw)
    return (s["cpus"], s["maxcpus"], s["sockets"], s["dies"], s["cores"], s["threads"])


def test_derivations_prefer_cores():
    assert topo() == (1, 1, 1, 1, 1, 1)
    assert topo(cpus=8) == (8, 8, 1, 1, 8, 1)
    assert topo(cpus=8, sockets=2) == (8, 8, 2, 1, 4, 1)
    assert topo(cpus=8, cores=2) == (8, 8, 4, 1, 2, 1)
    assert topo(cpus=8, sockets=2, cores=2) == (8, 8, 2, 1, 2, 2)
    assert topo(cpus=2, maxcpus=8) == (2, 8, 1, 1, 8, 1)
    assert topo(sockets=2, cores=3, threads=2) == (12, 12, 2, 1, 3, 2)


def test_mismatch_and_limits():
    with pytest.raises(QemuError, match=r"sockets \(1\) \* dies \(1\) \* cores \(1\) \* threads \(1\) "
                                        r"!= maxcpus \(4\)"):
        topo(cpus=4, sockets=1, cores=1, threads=1)
    with pytest.raises(QemuError, match="maxcpus must be equal to or greater than smp"):
        topo(cpus=4, maxcpus=2)
    with pytest.raises(QemuError, match="The max CPUs supported by machine 'board' is 64"):
        topo(cpus=65)
    with pytest.raises(QemuError, match="clusters not supported"):
        topo(cpus=4, clusters=2)
