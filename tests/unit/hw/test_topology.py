"""APIC IDs from the -smp topology (hw/i386/topology.py), as QEMU numbers a PC's CPUs."""
from __future__ import annotations

from pyqemu.hw.i386 import linux_unpack
from pyqemu.hw.i386.topology import apic_id_from_index, apic_id_limit, apic_ids


def test_contiguous_when_counts_are_powers_of_two():
    smp = {"cpus": 8, "maxcpus": 8, "sockets": 2, "dies": 1, "cores": 2, "threads": 2}
    assert apic_ids(smp) == list(range(8))
    assert apic_id_limit(smp) == 8


def test_fields_are_as_wide_as_their_count_needs():
    smp = {"cpus": 6, "maxcpus": 6, "sockets": 2, "dies": 1, "cores": 3, "threads": 1}
    assert apic_ids(smp) == [0, 1, 2, 4, 5, 6]
    assert apic_id_limit(smp) == 7
    # threads below cores below dies below packages
    smp = {"cpus": 12, "maxcpus": 12, "sockets": 2, "dies": 1, "cores": 2, "threads": 3}
    assert [apic_id_from_index(smp, i) for i in (0, 2, 3, 6)] == [0, 2, 4, 8]


def test_limit_counts_hotpluggable_cpus():
    smp = {"cpus": 1, "maxcpus": 4, "sockets": 4, "dies": 1, "cores": 1, "threads": 1}
    assert apic_ids(smp) == [0]
    assert apic_id_limit(smp) == 4


def test_mp_table_lists_the_apic_ids():
    table = linux_unpack.mp_table(3, 0x663, 0x1, [0, 1, 4])
    # processor entries (type 0) follow the 44-byte configuration header
    base = table.index(b"PCMP")
    ids = [table[base + 44 + 20 * i + 1] for i in range(3)]
    assert ids == [0, 1, 4]
