"""Long-mode delivery against real qemu-system-x86_64: 16-byte gates, RSP0
and IST stacks, 16-byte alignment, the frame's CS/SS, non-canonical #GP,
#DF, SYSCALL/SYSRET and ring 3 via IRETQ.

Like test_faults.py: a firmware runs the scenarios on real QEMU and records
what its handlers saw; pyqemu's helpers run them on the same tables.
"""
from __future__ import annotations

import shutil
import struct
import subprocess

from pyqemu.exec import memory as m
from pyqemu.exec.softmmu import ACCESS_FETCH
from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu import interrupt, msr, seg, syscall
from pyqemu.target.i386.sysemu.control import write_cr, write_cr0
from pyqemu.target.i386.sysemu.cpu import X86SysCPU
from pyqemu.target.i386.sysemu.excp import ERROR_CODE_VECTORS, CpuException

from test_info_tlb_mem import _qmp_session

NVEC = 0x42
GDT = [0, 0x00cf9b000000ffff, 0x00cf93000000ffff, 0, 0, 0, 0, 0, 0,
       0x00af9b000000ffff,            # 0x48: 64-bit kernel code
       0x00cf93000000ffff,            # 0x50: kernel data
       0x00cffb000000ffff,            # 0x58: user 32-bit code (SYSRET base)
       0x00cff3000000ffff,            # 0x60: user data
       0x00affb000000ffff,            # 0x68: user 64-bit code
       0x0000890060000067, 0,         # 0x70: 64-bit TSS at 0x6000
       ]
PAGE_WRITES = [(0x20000, 0x21000 | 7), (0x21000, 0x22000 | 7), (0x21000 + 3 * 8, 0x23000 | 7),
               (0x22000, 0x87), (0x22008, 0x200087), (0x22010, 0x400087),
               (0x23000 + 511 * 8, 0xffe00087),
               # 0x600000: a table of 4 KiB pages: no-execute, then a reserved bit
               (0x22018, 0x24000 | 3), (0x24000, 0x700003 | (1 << 63)),
               (0x24008, 0x701003 | (1 << 45))]
RING3 = "call to_ring3\n "


def _r3(cpu):
    sp = cpu.regs[4] - 40
    for i, v in enumerate((cpu.rip, 0x6b, 2, 0x7ff0, 0x63)):
        cpu.as_.write(sp + 8 * i, 8, v)
    cpu.regs[4] = sp
    seg.iret(cpu, 8, 0)
    assert cpu.cpl == 3 and cpu.code64
    return cpu


def _df(cpu):
    a = 0x3000 + 13 * 16 + 4
    cpu.as_.write(a, 4, cpu.as_.read(a, 4) & ~0x8000)
    seg.load_seg(cpu, c.R_DS, 0x3c)


def _syscall(cpu, records):
    _r3(cpu)
    syscall.syscall(cpu, cpu.rip + 2)
    records.append((0x5c, cpu.regs[11] & 0xffffffff, 0, cpu.segs[c.R_CS], 0,
                    cpu.segs[c.R_SS], 0, 0))
    syscall.sysret(cpu, 8)
    interrupt.raise_interrupt(cpu, 0x41, cpu.rip)


def _unaligned_int(cpu):
    cpu.regs[4] = 0x8ff8
    interrupt.raise_interrupt(cpu, 0x40, cpu.rip)


SCENARIOS = [
    ("movq 0x40000000, %rax", lambda cpu, r: cpu.tlb.ld(0x40000000, 8, c.MMU_KERNEL_IDX)),
    ("movabsq 0x0000800000000000, %rax",
     lambda cpu, r: cpu.tlb.ld(0x800000000000, 8, c.MMU_KERNEL_IDX)),
    ("int $0x40", lambda cpu, r: interrupt.raise_interrupt(cpu, 0x40, cpu.rip)),
    ("movq $0x8ff8, %rsp\n int $0x40", lambda cpu, r: _unaligned_int(cpu)),
    ("movw $0x3c, %ax\n movw %ax, %ds", lambda cpu, r: seg.load_seg(cpu, c.R_DS, 0x3c)),
    ("andl $0xffff7fff, 0x3000 + 13 * 16 + 4\n movw $0x3c, %ax\n movw %ax, %ds",
     lambda cpu, r: _df(cpu)),
    (RING3 + "movq 0x40000000, %rax",
     lambda cpu, r: _r3(cpu).tlb.ld(0x40000000, 8, c.MMU_USER_IDX)),
    (RING3 + "int $0x40", lambda cpu, r: interrupt.raise_interrupt(_r3(cpu), 0x40, cpu.rip)),
    (RING3 + "int $0x41", lambda cpu, r: interrupt.raise_interrupt(_r3(cpu), 0x41, cpu.rip)),
    (RING3 + "swapgs", lambda cpu, r: syscall.swapgs(_r3(cpu))),
    (RING3 + "hlt", lambda cpu, r: syscall.hlt(_r3(cpu))),
    (RING3 + "syscall\n int $0x41", _syscall),
    ("movq 0x601000, %rax", lambda cpu, r: cpu.tlb.ld(0x601000, 8, c.MMU_KERNEL_IDX)),
    ("movl $0x600000, %eax\n call *%rax", lambda cpu, r: _call_nx(cpu)),
]


def _call_nx(cpu):
    cpu.regs[4] -= 8                       # CALL pushes before the fetch faults
    cpu.tlb.translate(0x600000, ACCESS_FETCH, c.MMU_KERNEL_IDX)


def _firmware(tmp_path) -> None:
    stubs = []
    for n in range(NVEC):
        stubs.append(".align 16\n%s    pushq $%d\n    jmp common" % (
            "" if n in ERROR_CODE_VECTORS else "    pushq $0\n", n))
    scen = []
    for i, (asm, _fn) in enumerate(SCENARIOS):
        scen.append("    movl $(0xffff0000 + r%d - _start), 0x5008\n    %s\nr%d:" % (i, asm, i))
    pages = "\n".join("    movl $0x%x, 0x%x\n    movl $0x%x, 0x%x" % (v & 0xffffffff, a, v >> 32,
                                                                    a + 4)
                       for a, v in PAGE_WRITES)
    src = r""".code16
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
    movl $0x20, %%eax
    movl %%eax, %%cr4
    movl $0x20000, %%eax
    movl %%eax, %%cr3
    movl $0xc0000080, %%ecx
    movl $0x901, %%eax
    xorl %%edx, %%edx
    wrmsr
    movl %%cr0, %%eax
    orl $0x80010000, %%eax
    movl %%eax, %%cr0
    ljmpl $0x48, $(0xffff0000 + long64 - _start)
.code64
long64:
    movw $0x50, %%ax
    movw %%ax, %%ds
    movw %%ax, %%es
    movw %%ax, %%ss
    movq $0x9000, %%rsp
    xorl %%ecx, %%ecx
2:  movl $(0xffff0000 + stubs - _start), %%eax
    movl %%ecx, %%edx
    shll $4, %%edx
    addl %%edx, %%eax
    movl %%edx, %%edi
    movl %%eax, %%edx
    andl $0xffff, %%edx
    orl $0x00480000, %%edx
    movl %%edx, 0x3000(%%rdi)
    andl $0xffff0000, %%eax
    orl $0x8e00, %%eax
    movl %%eax, 0x3004(%%rdi)
    movl $0, 0x3008(%%rdi)
    movl $0, 0x300c(%%rdi)
    incl %%ecx
    cmpl $%d, %%ecx
    jb 2b
    orl $1, 0x3000 + 8 * 16 + 4
    orl $0x6000, 0x3000 + 0x41 * 16 + 4
    movl $(0xffff0000 + idtdesc - _start), %%eax
    lidt (%%rax)
    movl $0x9000, 0x6004
    movl $0xa000, 0x6024
    movw $0x70, %%ax
    ltr %%ax
    movl $0xc0000081, %%ecx
    xorl %%eax, %%eax
    movl $0x00580048, %%edx
    wrmsr
    movl $0xc0000082, %%ecx
    movl $(0xffff0000 + syscall_entry - _start), %%eax
    xorl %%edx, %%edx
    wrmsr
    movl $0xc0000084, %%ecx
    movl $0x700, %%eax
    wrmsr
    movl $0, 0x5000
%s
    movl $0x600d, 0x5010
1:  hlt
    jmp 1b
to_ring3:
    popq %%rcx
    pushq $0x63
    pushq $0x7ff0
    pushq $2
    pushq $0x6b
    pushq %%rcx
    iretq
syscall_entry:
    movl 0x5000, %%ebx
    shll $5, %%ebx
    movl $0x5c, 0x5020(%%rbx)
    movl %%r11d, 0x5024(%%rbx)
    movw %%cs, %%ax
    movzwl %%ax, %%eax
    movl %%eax, 0x502c(%%rbx)
    movw %%ss, %%ax
    movzwl %%ax, %%eax
    movl %%eax, 0x5034(%%rbx)
    incl 0x5000
    sysretq
common:
    movl 0x5000, %%ebx
    shll $5, %%ebx
    popq %%rax
    movl %%eax, 0x5020(%%rbx)
    popq %%rax
    movl %%eax, 0x5024(%%rbx)
    movq %%cr2, %%rax
    movl %%eax, 0x5028(%%rbx)
    movq 8(%%rsp), %%rax
    movl %%eax, 0x502c(%%rbx)
    movq %%rsp, %%rax
    movl %%eax, 0x5030(%%rbx)
    movq 32(%%rsp), %%rax
    movl %%eax, 0x5034(%%rbx)
    incl 0x5000
    orl $0x8000, 0x3000 + 13 * 16 + 4
    movw $0x50, %%ax
    movw %%ax, %%ss
    movw %%ax, %%ds
    movq $0x9000, %%rsp
    jmp *0x5008
.align 16
stubs:
%s
.align 8
gdt:
%s
gdtdesc:
    .word %d
    .long 0xffff0000 + gdt - _start
idtdesc:
    .word %d
    .quad 0x3000
.org 0xfff0
    .byte 0xea
    .word 0
    .word 0xf000
.org 0x10000
""" % (pages, NVEC, "\n".join(scen), "\n".join(stubs),
       "\n".join("    .quad 0x%x" % d for d in GDT), len(GDT) * 8 - 1, NVEC * 16 - 1)
    (tmp_path / "fw.S").write_text(src)
    subprocess.run(["as", "--64", "-o", str(tmp_path / "fw.o"), str(tmp_path / "fw.S")],
                   check=True)
    subprocess.run(["ld", "-m", "elf_x86_64", "-Ttext", "0", "--oformat", "binary", "-o",
                    str(tmp_path / "fw.bin"), str(tmp_path / "fw.o")], check=True)


def _real_records(tmp_path):
    dump = tmp_path / "results.bin"
    with _qmp_session(tmp_path) as cmd:
        for _ in range(400):
            cmd("pmemsave", val=0x5000, size=0x1000, filename=str(dump))
            data = dump.read_bytes()
            if struct.unpack_from("<I", data, 0x10)[0] == 0x600d:
                break
        else:
            raise AssertionError("the firmware did not finish")
    n = struct.unpack_from("<I", data, 0)[0]
    return [struct.unpack_from("<8I", data, 0x20 + 32 * i) for i in range(n)]


def _our_records():
    m.memory_init()
    ram = m.memory_region_init_ram(None, "pc.ram", 16 << 20)
    m.get_system_memory().add_subregion(0, ram)
    as_ = m.address_space_memory()
    cpu = X86SysCPU(as_)
    for i, d in enumerate(GDT):
        as_.write(0x1000 + 8 * i, 8, d)
    for a, v in PAGE_WRITES:
        as_.write(a, 8, v)
    for n in range(NVEC):
        off = 0x100000 + 16 * n
        as_.write(0x3000 + 16 * n, 4, (0x48 << 16) | (off & 0xffff))
        as_.write(0x3004 + 16 * n, 4, (off & 0xffff0000) | 0x8e00 | (1 if n == 8 else 0) |
                  (0x6000 if n == 0x41 else 0))
    as_.write(0x6004, 8, 0x9000)
    as_.write(0x6024, 8, 0xa000)
    cpu.gdt.base, cpu.gdt.limit = 0x1000, len(GDT) * 8 - 1
    cpu.idt.base, cpu.idt.limit = 0x3000, NVEC * 16 - 1
    write_cr0(cpu, cpu.cr[0] | c.CR0_PE)
    seg.ljmp(cpu, 0x08, 0x100, 0)
    seg.load_seg(cpu, c.R_SS, 0x10)
    write_cr(cpu, 4, c.CR4_PAE)
    write_cr(cpu, 3, 0x20000)
    msr.wrmsr(cpu, msr.MSR_EFER, 0x901)
    write_cr0(cpu, cpu.cr[0] | c.CR0_PG | c.CR0_WP)
    seg.ljmp(cpu, 0x48, 0x100, 0)
    for s in (c.R_DS, c.R_ES, c.R_SS):
        seg.load_seg(cpu, s, 0x50)
    seg.ltr(cpu, 0x70)
    msr.wrmsr(cpu, msr.MSR_STAR, 0x00580048 << 32)
    msr.wrmsr(cpu, msr.MSR_FMASK, 0x700)
    records = []
    for _asm, fn in SCENARIOS:
        cpu.regs[4] = 0x9000
        try:
            fn(cpu, records)
        except CpuException as e:
            interrupt.deliver(cpu, e.vector, e.error_code)
        if cpu.rip >= 0x100000:
            vec = (cpu.rip - 0x100000) // 16
            has_err = vec in ERROR_CODE_VECTORS
            err = as_.read(cpu.regs[4], 8) if has_err else 0
            frame = cpu.regs[4] + (8 if has_err else 0)
            records.append((vec, err, cpu.cr[2] & 0xffffffff, as_.read(frame + 8, 8), frame,
                            as_.read(frame + 32, 8), 0, 0))
            a = 0x3000 + 13 * 16 + 4
            as_.write(a, 4, as_.read(a, 4) | 0x8000)
            seg.load_seg(cpu, c.R_SS, 0x50)
            seg.load_seg(cpu, c.R_DS, 0x50)
            cpu.rip = 0x100
    return records


def test_long_mode_delivery_matches_qemu(tmp_path):
    for tool in ("qemu-system-x86_64", "as", "ld"):
        assert shutil.which(tool), "%s is needed for this peer test" % tool
    _firmware(tmp_path)
    real = _real_records(tmp_path)
    assert len(real) == 15
    assert _our_records() == real
