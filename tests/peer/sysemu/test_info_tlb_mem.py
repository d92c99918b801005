"""``info tlb`` and ``info mem`` against real qemu-system-x86_64.

A tiny firmware (assembled here with GNU as) enters protected mode, writes
page tables, enables paging (32-bit with PSE, PAE, or IA-32e) and halts; real
QEMU's HMP then prints its view.  pyqemu's CPU gets the same tables and
control registers and must print the same text.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time

import pytest

from pyqemu.exec import memory as m
from pyqemu.exec.softmmu import ACCESS_FETCH
from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu import mmu
from pyqemu.target.i386.sysemu.control import write_cr, write_cr0
from pyqemu.target.i386.sysemu.cpu import X86SysCPU
from pyqemu.target.i386.sysemu.msr import MSR_EFER, wrmsr

NX = 1 << 63

# (mode, cr4, efer, cr3, page-table writes (address, 64-bit value, entry size))
CASES = {
    "pse32": (c.CR4_PSE, 0, 0x10000, [
        (0x10000, 0x11000 | 7, 4), (0x11000 + 0x40 * 4, 0x200000 | 7, 4),
        (0x11000 + 0x41 * 4, 0x201000 | 1, 4), (0x11000 + 0x42 * 4, 0x202000 | 0x13f, 4),
        (0x10000 + 2 * 4, 0x400000 | 0x83, 4), (0x10000 + 3 * 4, 0x800000 | 0x87 | 0x40, 4),
        (0x10000 + 1023 * 4, 0xffc00000 | 0x83, 4)]),
    "pae": (c.CR4_PAE | c.CR4_PGE, 0, 0x10000, [
        (0x10000, 0x11000 | 1, 8), (0x10000 + 3 * 8, 0x12000 | 1, 8),
        (0x11000, 0x13000 | 7, 8), (0x13000 + 5 * 8, 0x205000 | 0x107, 8),
        (0x11000 + 4 * 8, 0x600000 | 0x83, 8), (0x12000 + 511 * 8, 0xffe00000 | 0x83, 8)]),
    "long": (c.CR4_PAE, c.EFER_LME | c.EFER_NXE, 0x10000, [
        (0x10000, 0x11000 | 7, 8), (0x10000 + 511 * 8, 0x11000 | 3, 8),
        (0x11000, 0x12000 | 7, 8), (0x11000 + 3 * 8, 0x13000 | 3, 8),
        (0x12000, 0x14000 | 7, 8), (0x14000 + 8, 0x700000 | 7 | NX, 8),
        (0x14000 + 9 * 8, 0x701000 | 5, 8), (0x12000 + 8, 0x600000 | 0x83, 8),
        (0x13000 + 511 * 8, 0xffe00000 | 0x83, 8)]),
}


def _firmware(tmp_path, cr4: int, efer: int, cr3: int, writes, jump64: bool = False) -> bytes:
    body = []
    for addr, value, size in writes:
        body.append("    movl $0x%x, 0x%x" % (value & 0xffffffff, addr))
        if size == 8:
            body.append("    movl $0x%x, 0x%x" % (value >> 32, addr + 4))
    if efer:
        body += ["    movl $0xc0000080, %ecx", "    movl $0x%x, %%eax" % efer,
                 "    xorl %edx, %edx", "    wrmsr"]
    src = """.code16
.globl _start
_start:
    cli
    lgdtl %%cs:(gdtdesc - _start)
    movl %%cr0, %%eax
    orl $1, %%eax
    movl %%eax, %%cr0
    ljmpl $0x08, $(0xffff0000 + pm32 - _start)
.code32
pm32:
    movw $0x10, %%ax
    movw %%ax, %%ds
    movw %%ax, %%ss
%s
    movl $0x%x, %%eax
    movl %%eax, %%cr4
    movl $0x%x, %%eax
    movl %%eax, %%cr3
    movl %%cr0, %%eax
    orl $0x80010000, %%eax
    movl %%eax, %%cr0
%s
1:  hlt
    jmp 1b
.align 8
gdt:
    .quad 0
    .quad 0x00cf9b000000ffff
    .quad 0x00cf93000000ffff
    .quad 0x00af9b000000ffff
gdtdesc:
    .word 31
    .long 0xffff0000 + gdt - _start
.org 0xfff0
    .byte 0xea
    .word 0
    .word 0xf000
.org 0x10000
""" % ("\n".join(body), cr4, cr3,
       "    ljmpl $0x18, $(0xffff0000 + l64 - _start)\n.code64\nl64:" if jump64 else "")
    (tmp_path / "fw.S").write_text(src)
    subprocess.run(["as", "--64" if jump64 else "--32", "-o", str(tmp_path / "fw.o"), str(tmp_path / "fw.S")],
                   check=True)
    subprocess.run(["ld", "-m", "elf_x86_64" if jump64 else "elf_i386", "-Ttext", "0", "--oformat", "binary", "-o",
                    str(tmp_path / "fw.bin"), str(tmp_path / "fw.o")], check=True)
    return (tmp_path / "fw.bin").read_bytes()


@contextlib.contextmanager
def _qmp_session(tmp_path):
    """Real QEMU running tmp_path/fw.bin as its BIOS; yields a QMP command function."""
    sock_path = str(tmp_path / "qmp.sock")
    proc = subprocess.Popen(["qemu-system-x86_64", "-M", "pc", "-bios", str(tmp_path / "fw.bin"),
                             "-display", "none", "-nodefaults", "-qmp",
                             "unix:%s,server=on,wait=off" % sock_path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        while True:
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(sock_path)
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        f = s.makefile("rw")
        f.readline()

        def cmd(name, **args):
            f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
            f.flush()
            while True:
                r = json.loads(f.readline())
                if "error" in r:
                    raise AssertionError(r["error"])
                if "return" in r:
                    return r["return"]

        cmd("qmp_capabilities")
        yield cmd
        cmd("quit")
        s.close()
    finally:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _real_qemu(tmp_path) -> dict:
    out = {}
    with _qmp_session(tmp_path) as cmd:
        for _ in range(400):
            out["tlb"] = cmd("human-monitor-command", **{"command-line": "info tlb"})
            if out["tlb"] != "PG disabled\r\n":
                break
            time.sleep(0.05)
        out["mem"] = cmd("human-monitor-command", **{"command-line": "info mem"})
    return {k: v.replace("\r\n", "\n") for k, v in out.items()}


def _pyqemu(cr4: int, efer: int, cr3: int, writes) -> dict:
    m.memory_init()
    ram = m.memory_region_init_ram(None, "pc.ram", 16 << 20)
    m.get_system_memory().add_subregion(0, ram)
    as_ = m.address_space_memory()
    cpu = X86SysCPU(as_)
    for addr, value, size in writes:
        as_.write(addr, size, value)
    cpu.cr[0] |= c.CR0_PE
    write_cr(cpu, 4, cr4)
    if efer:
        wrmsr(cpu, MSR_EFER, efer)
    write_cr(cpu, 3, cr3)
    write_cr0(cpu, cpu.cr[0] | c.CR0_PG | c.CR0_WP)
    # the firmware goes on fetching its halt loop from the top of the ROM
    cpu.tlb.translate(0xffff0000, ACCESS_FETCH, c.MMU_KERNEL_IDX)
    return {"tlb": mmu.info_tlb(cpu), "mem": mmu.info_mem(cpu)}


@pytest.mark.parametrize("mode", sorted(CASES))
def test_info_tlb_and_info_mem_match_qemu(tmp_path, mode):
    for tool in ("qemu-system-x86_64", "as", "ld"):
        assert shutil.which(tool), "%s is needed for this peer test" % tool
    cr4, efer, cr3, writes = CASES[mode]
    _firmware(tmp_path, cr4, efer, cr3, writes)
    real = _real_qemu(tmp_path)
    ours = _pyqemu(cr4, efer, cr3, writes)
    assert real["tlb"] != "PG disabled\n"
    assert ours == real
