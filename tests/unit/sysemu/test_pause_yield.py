"""PAUSE in system mode with several CPUs gives the other CPUs their turn (as
QEMU's round-robin TCG yields on it), so a spin-wait lets the lock holder
run; with nothing else runnable it stays a plain NOP."""
from __future__ import annotations

from pyqemu.exec import memory as m
from pyqemu.exec.cpu_loop import cpu_exec_sys
from pyqemu.target.i386.cpu import EXCP_INTERRUPT
from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu.cpu import X86SysCPU

SPIN = bytes.fromhex(
    "40"            # inc ax
    "f390"          # pause
    "ebfb")         # jmp back to inc


def _cpus(n: int):
    m.memory_init()
    ram = m.memory_region_init_ram(None, "pc.ram", 1 << 20)
    m.get_system_memory().add_subregion(0, ram)
    cpus = []
    for i in range(n):
        cpu = X86SysCPU(m.address_space_memory(), cpu_index=i)
        cpu.io_as = m.address_space_io()
        cpu.wait_sipi = False
        cpu.intr_level = False
        cpu.segs[c.R_CS], cpu.seg_base[c.R_CS] = 0, 0
        cpu.rip = 0x7c00
        cpus.append(cpu)
    for cpu in cpus:
        cpu.smp_siblings = cpus
    cpus[0].as_.write_bytes(0x7c00, SPIN)
    return cpus


def test_pause_yields_to_a_runnable_cpu():
    bsp, ap = _cpus(2)
    assert cpu_exec_sys(bsp, 100000) == EXCP_INTERRUPT
    # back to the runner at the first PAUSE, past it
    assert bsp.regs[0] & 0xFFFF == 1
    assert bsp.rip == 0x7c03
    assert cpu_exec_sys(bsp, 100000) == EXCP_INTERRUPT
    assert bsp.regs[0] & 0xFFFF == 2


def test_pause_runs_on_when_the_others_cannot_run():
    bsp, ap, ap2 = _cpus(3)
    ap.wait_sipi = True            # not started yet
    ap2.halted = True              # halted, no interrupt pending
    cpu_exec_sys(bsp, 3000)
    assert bsp.regs[0] & 0xFFFF > 100
    # an interrupt for the halted CPU makes it runnable: the spinner yields
    ap2.intr_level = ap2.interrupt_request = True
    before = bsp.regs[0] & 0xFFFF
    cpu_exec_sys(bsp, 3000)
    assert (bsp.regs[0] & 0xFFFF) - before <= 1


def test_single_cpu_pause_is_a_nop():
    (bsp,) = _cpus(1)
    cpu_exec_sys(bsp, 3000)
    assert bsp.regs[0] & 0xFFFF > 100
