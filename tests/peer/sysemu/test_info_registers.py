"""``info registers`` of a halted firmware: real qemu-system-x86_64 against
pyqemu's dump of a CPU brought to the same state through its helpers."""
from __future__ import annotations

import shutil

import pytest

from pyqemu.exec import memory as m
from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu import seg
from pyqemu.target.i386.sysemu.control import write_cr
from pyqemu.target.i386.sysemu.cpu import X86SysCPU
from pyqemu.target.i386.sysemu.dump import dump_state
from pyqemu.target.i386.sysemu.msr import MSR_EFER, wrmsr

from test_info_tlb_mem import CASES, _firmware, _qmp_session


def _real(tmp_path, ready: str = "CR0=e") -> str:
    with _qmp_session(tmp_path) as cmd:
        for _ in range(400):
            text = cmd("human-monitor-command", **{"command-line": "info registers"})
            if "HLT=1" in text and ready in text:
                break
    text = text.replace("\r\n", "\n")
    # the monitor's per-CPU header is not part of the CPU's dump
    return text.split("CPU#0\n", 1)[-1] if "CPU#0\n" in text else text


def _ours(rom: bytes, cr4: int, efer: int, cr3: int, writes, jump64: bool) -> str:
    m.memory_init()
    ram = m.memory_region_init_ram(None, "pc.ram", 16 << 20)
    m.get_system_memory().add_subregion(0, ram)
    bios = m.memory_region_init_rom(None, "pc.bios", len(rom))
    bios.ram[:len(rom)] = rom
    m.get_system_memory().add_subregion(0x100000000 - len(rom), bios)
    as_ = m.address_space_memory()
    cpu = X86SysCPU(as_)
    gdt = rom.index(bytes.fromhex("ffff0000009bcf00")) - 8
    seg.lgdt(cpu, 31, 0xffff0000 + gdt, 32)
    cr0 = cpu.cr[0] | c.CR0_PE
    write_cr(cpu, 0, cr0)
    seg.ljmp(cpu, 0x08, 0, 0)
    seg.load_seg(cpu, c.R_DS, 0x10)
    seg.load_seg(cpu, c.R_SS, 0x10)
    for addr, value, size in writes:
        as_.write(addr, size, value)
    if efer:
        cpu.regs[1], cpu.regs[0], cpu.regs[2] = 0xc0000080, efer, 0
        wrmsr(cpu, MSR_EFER, efer)
    write_cr(cpu, 4, cr4)
    write_cr(cpu, 3, cr3)
    cr0 |= 0x80010000
    write_cr(cpu, 0, cr0)
    cpu.regs[0] = cr0
    # flags of the last 'orl': SF and PF of the result, everything else clear
    parity = bin(cr0 & 0xff).count("1") % 2 == 0
    cpu.set_eflags(2 | (0x80 if cr0 >> 31 else 0) | (4 if parity else 0))
    if jump64:
        seg.ljmp(cpu, 0x18, 0, 0)
        assert cpu.code64
    cpu.rip = 0xffff0000 + rom.index(b"\xf4\xeb\xfd") + 1
    cpu.halted = True
    return dump_state(cpu)


@pytest.mark.parametrize("mode", ["pse32", "long", "long64"])
def test_info_registers_matches_qemu(tmp_path, mode):
    for tool in ("qemu-system-x86_64", "as", "ld"):
        assert shutil.which(tool), "%s is needed for this peer test" % tool
    # long64: the long-mode tables, then a far jump into 64-bit code before halting
    cr4, efer, cr3, writes = CASES["long" if mode == "long64" else mode]
    rom = _firmware(tmp_path, cr4, efer, cr3, writes, mode == "long64")
    real = _real(tmp_path)
    assert "CR3=" in real
    assert ("RAX=" in real) == (mode == "long64")
    assert _ours(rom, cr4, efer, cr3, writes, mode == "long64") == real
