"""APIC IDs from the -smp topology, as QEMU's PC numbers its CPUs.

An APIC ID is made of bit fields, thread | core | die | package from the
low bits up, each field as wide as its count needs (3 cores take 2 bits), so
``-smp 6,sockets=2`` gives the IDs 0 1 2 4 5 6.  The guest sees these IDs in
its local APICs, in CPUID and in the firmware tables; fw_cfg's "max CPUs" is
the highest possible ID plus one.  (Python 3.9 syntax: target/ imports it.)
"""
from __future__ import annotations

from typing import Dict, List


def _width(count: int) -> int:
    return (count - 1).bit_length() if count > 1 else 0


def apic_id_from_index(smp: Dict[str, int], index: int) -> int:
    threads = smp.get("threads", 1) or 1
    cores = smp.get("cores", 1) or 1
    dies = smp.get("dies", 1) or 1
    core_off = _width(threads)
    die_off = core_off + _width(cores)
    pkg_off = die_off + _width(dies)
    smt = index % threads
    core = index // threads % cores
    die = index // (threads * cores) % dies
    pkg = index // (threads * cores * dies)
    return pkg << pkg_off | die << die_off | core << core_off | smt


def apic_ids(smp: Dict[str, int]) -> List[int]:
    """The APIC IDs of the CPUs present at start (index order)."""
    return [apic_id_from_index(smp, i) for i in range(smp.get("cpus", 1) or 1)]


def apic_id_limit(smp: Dict[str, int]) -> int:
    """One more than the highest APIC ID any of maxcpus CPUs can have."""
    return apic_id_from_index(smp, (smp.get("maxcpus", 1) or 1) - 1) + 1


__all__ = ["apic_id_from_index", "apic_id_limit", "apic_ids"]
