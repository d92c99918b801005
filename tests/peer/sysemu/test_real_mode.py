"""Real-mode INT n through the IVT and IRET, against real qemu-system-x86_64:
the frame (SP, IP, CS, FLAGS), the flags inside the handler and after IRET."""
from __future__ import annotations

import shutil
import struct
import subprocess

from pyqemu.exec import memory as m
from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu import interrupt, seg
from pyqemu.target.i386.sysemu.cpu import X86SysCPU

from test_info_tlb_mem import _qmp_session

SRC = r""".code16
.globl _start
_start:
    cli
    xorw %ax, %ax
    movw %ax, %ds
    movw %ax, %ss
    movw $0x7000, %sp
    movw $(handler - _start), 0x41 * 4
    movw $0xf000, 0x41 * 4 + 2
    std
    int $0x41
    pushfw
    popw %ax
    movw %ax, 0x5010
    movw $0x600d, 0x5000
1:  hlt
    jmp 1b
handler:
    movw %sp, 0x5002
    movw %sp, %bx
    movw (%bx), %ax
    movw %ax, 0x5004
    movw 2(%bx), %ax
    movw %ax, 0x5006
    movw 4(%bx), %ax
    movw %ax, 0x5008
    pushfw
    popw %ax
    movw %ax, 0x500a
    iret
.org 0xfff0
    .byte 0xea
    .word 0
    .word 0xf000
.org 0x10000
"""


def _real(tmp_path, rom_path):
    dump = tmp_path / "out.bin"
    with _qmp_session(tmp_path) as cmd:
        for _ in range(400):
            cmd("pmemsave", val=0x5000, size=0x20, filename=str(dump))
            data = dump.read_bytes()
            if struct.unpack_from("<H", data, 0)[0] == 0x600d:
                break
        else:
            raise AssertionError("the firmware did not finish")
    return struct.unpack_from("<5H", data, 2) + struct.unpack_from("<H", data, 0x10)


def _ours(rom: bytes):
    m.memory_init()
    ram = m.memory_region_init_ram(None, "pc.ram", 1 << 20)
    m.get_system_memory().add_subregion(0, ram)
    as_ = m.address_space_memory()
    cpu = X86SysCPU(as_)
    seg.ljmp(cpu, 0xf000, 0, 0)                # the reset vector's far jump
    for s in (c.R_DS, c.R_SS):
        seg.load_seg(cpu, s, 0)
    cpu.regs[4] = 0x7000
    as_.write(0x41 * 4, 2, 0x1234)
    as_.write(0x41 * 4 + 2, 2, 0xf000)
    cpu.set_eflags(2 | 0x40 | 0x04 | c.DF_MASK)     # ZF, PF of 'xorw %ax, %ax', then std
    after_int = rom.index(b"\xcd\x41") + 2
    cpu.rip = after_int - 2
    interrupt.raise_interrupt(cpu, 0x41, after_int)
    assert cpu.rip == 0x1234 and cpu.seg_base[c.R_CS] == 0xf0000
    sp = cpu.regs[4]
    frame = [as_.read(sp + 2 * i, 2) for i in range(3)]
    inside = cpu.get_eflags() & 0xffff
    seg.iret(cpu, 2, 0)
    assert cpu.rip == after_int
    return (sp, frame[0], frame[1], frame[2], inside, cpu.get_eflags() & 0xffff)


def test_real_mode_int_and_iret_match_qemu(tmp_path):
    for tool in ("qemu-system-x86_64", "as", "ld"):
        assert shutil.which(tool), "%s is needed for this peer test" % tool
    (tmp_path / "fw.S").write_text(SRC)
    subprocess.run(["as", "--32", "-o", str(tmp_path / "fw.o"), str(tmp_path / "fw.S")],
                   check=True)
    subprocess.run(["ld", "-m", "elf_i386", "-Ttext", "0", "--oformat", "binary", "-o",
                    str(tmp_path / "fw.bin"), str(tmp_path / "fw.o")], check=True)
    rom = (tmp_path / "fw.bin").read_bytes()
    real = _real(tmp_path, tmp_path / "fw.bin")
    assert real[0] == 0x7000 - 6
    assert _ours(rom) == real
