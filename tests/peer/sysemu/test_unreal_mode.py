"""Unreal mode: a 4 GiB DS limit loaded in protected mode survives the return
to real mode and a real-mode segment load.  Compared through ``info
registers`` of real qemu-system-x86_64 (real-mode layout of the dump)."""
from __future__ import annotations

import shutil
import subprocess

from pyqemu.exec import memory as m
from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu import seg
from pyqemu.target.i386.sysemu.control import write_cr
from pyqemu.target.i386.sysemu.cpu import X86SysCPU
from pyqemu.target.i386.sysemu.dump import dump_state

from test_info_registers import _real

SRC = r""".code16
.globl _start
_start:
    cli
    lgdtl %cs:(gdtdesc - _start)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    movw $0x10, %bx
    movw %bx, %ds
    andl $0xfffffffe, %eax
    movl %eax, %cr0
    xorw %bx, %bx
    movw %bx, %ds
1:  hlt
    jmp 1b
.align 8
gdt:
    .quad 0
    .quad 0x00cf9b000000ffff
    .quad 0x00cf93000000ffff
gdtdesc:
    .word 23
    .long 0xffff0000 + gdt - _start
.org 0xfff0
    jmp _start
.org 0x10000
"""


def _ours(rom: bytes) -> str:
    m.memory_init()
    ram = m.memory_region_init_ram(None, "pc.ram", 1 << 20)
    m.get_system_memory().add_subregion(0, ram)
    bios = m.memory_region_init_rom(None, "pc.bios", len(rom))
    bios.ram[:len(rom)] = rom
    m.get_system_memory().add_subregion(0x100000000 - len(rom), bios)
    cpu = X86SysCPU(m.address_space_memory())
    gdt = rom.index(bytes.fromhex("ffff0000009bcf00")) - 8
    seg.lgdt(cpu, 23, 0xffff0000 + gdt, 32)
    write_cr(cpu, 0, 0x60000011)
    seg.load_seg(cpu, c.R_DS, 0x10)
    write_cr(cpu, 0, 0x60000010)
    seg.load_seg(cpu, c.R_DS, 0)
    cpu.regs[0], cpu.regs[3] = 0x60000010, 0
    cpu.set_eflags(0x46)                      # ZF and PF of 'xorw %bx, %bx'
    cpu.rip = rom.index(b"\xf4\xeb\xfd") + 1
    cpu.halted = True
    return dump_state(cpu)


def test_unreal_mode_limit_survives_like_qemu(tmp_path):
    for tool in ("qemu-system-x86_64", "as", "ld"):
        assert shutil.which(tool), "%s is needed for this peer test" % tool
    (tmp_path / "fw.S").write_text(SRC)
    subprocess.run(["as", "--32", "-o", str(tmp_path / "fw.o"), str(tmp_path / "fw.S")],
                   check=True)
    subprocess.run(["ld", "-m", "elf_i386", "-Ttext", "0", "--oformat", "binary", "-o",
                    str(tmp_path / "fw.bin"), str(tmp_path / "fw.o")], check=True)
    rom = (tmp_path / "fw.bin").read_bytes()
    real = _real(tmp_path, "DS =0000")
    assert "DS =0000 00000000 ffffffff" in real
    assert _ours(rom) == real
