"""Fault vectors, error codes and CR2 against real qemu-system-x86_64.

A firmware assembled here runs a list of scenarios in 32-bit protected mode
(bad segment loads, LAR/LSL/VERR/VERW, page faults, a double fault) and
records what its exception handlers saw; pyqemu's helpers run the same
scenarios on the same tables and must record the same.
"""
from __future__ import annotations

import shutil
import struct
import subprocess


from pyqemu.exec import memory as m
from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu import control, interrupt, msr, seg, syscall
from pyqemu.target.i386.sysemu.control import write_cr, write_cr0
from pyqemu.target.i386.sysemu.cpu import X86SysCPU
from pyqemu.target.i386.sysemu.excp import ERROR_CODE_VECTORS, CpuException

from test_info_tlb_mem import _qmp_session

GDT = [0, 0x00cf9b000000ffff, 0x00cf93000000ffff,
       0x00cffb000000ffff,            # 0x18: ring-3 code
       0x00cff3000000ffff,            # 0x20: ring-3 data
       0x00cf13000000ffff,            # 0x28: data, not present
       0x00cf99000000ffff,            # 0x30: execute-only code
       0x0040930100001234,            # 0x38: data, byte granular, base 0x10000, limit 0x1234
       0x0000890060000067,            # 0x40: 32-bit TSS at 0x6000
       0xffffec0100088000,            # 0x48: call gate, DPL 3, 1 parameter, to 0x08:0xffff8000
       0x0000890061000067,            # 0x50: 32-bit TSS at 0x6100 (the task-gate task)
       ]
NVEC = 0x43
# the second task: EIP, EFLAGS, ESP, ES CS SS DS, CR3 written into its TSS at 0x6100
TSS2 = [(0x6120, 0xffff8300), (0x6124, 2), (0x6138, 0x9400), (0x6148, 0x10), (0x614c, 0x08),
        (0x6150, 0x10), (0x6154, 0x10), (0x611c, 0x20000),
        (0x601c, 0x20000)]           # the first task's CR3: a task switch does not save it
RING3 = "call to_ring3\n movw $0x23, %ax\n movw %ax, %ds\n movw %ax, %es\n "

# (assembly for the real CPU, the same action through pyqemu's helpers)
SCENARIOS = [
    ("movw $0x28, %ax\n movw %ax, %ds", lambda cpu: seg.load_seg(cpu, c.R_DS, 0x28)),
    ("movw $0x28, %ax\n movw %ax, %ss", lambda cpu: seg.load_seg(cpu, c.R_SS, 0x28)),
    ("movw $0x08, %ax\n movw %ax, %ss", lambda cpu: seg.load_seg(cpu, c.R_SS, 0x08)),
    ("movw $0x200, %ax\n movw %ax, %ds", lambda cpu: seg.load_seg(cpu, c.R_DS, 0x200)),
    ("movw $0x30, %ax\n movw %ax, %es", lambda cpu: seg.load_seg(cpu, c.R_ES, 0x30)),
    ("movw $0x13, %ax\n movw %ax, %ss", lambda cpu: seg.load_seg(cpu, c.R_SS, 0x13)),
    ("movw $0, %ax\n movw %ax, %ss", lambda cpu: seg.load_seg(cpu, c.R_SS, 0)),
    ("movw $0, %ax\n movw %ax, %fs", lambda cpu: seg.load_seg(cpu, c.R_FS, 0)),
    ("movw $0x3c, %ax\n movw %ax, %gs", lambda cpu: seg.load_seg(cpu, c.R_GS, 0x3c)),
    ("movl $0x38, %eax\n xorl %ebx, %ebx\n lsl %ax, %ebx\n call record_zf",
     lambda cpu: _rec(seg.lsl(cpu, 0x38))),
    ("movl $0x08, %eax\n xorl %ebx, %ebx\n lar %ax, %ebx\n call record_zf",
     lambda cpu: _rec(seg.lar(cpu, 0x08))),
    ("movl $0x28, %eax\n xorl %ebx, %ebx\n lar %ax, %ebx\n call record_zf",
     lambda cpu: _rec(seg.lar(cpu, 0x28))),
    ("movl $0, %eax\n xorl %ebx, %ebx\n lsl %ax, %ebx\n call record_zf",
     lambda cpu: _rec(seg.lsl(cpu, 0))),
    ("movl $0x30, %eax\n xorl %ebx, %ebx\n verr %ax\n call record_zf",
     lambda cpu: _rec((seg.verr(cpu, 0x30), 0))),
    ("movl $0x08, %eax\n xorl %ebx, %ebx\n verr %ax\n call record_zf",
     lambda cpu: _rec((seg.verr(cpu, 0x08), 0))),
    ("movl $0x10, %eax\n xorl %ebx, %ebx\n verw %ax\n call record_zf",
     lambda cpu: _rec((seg.verw(cpu, 0x10), 0))),
    ("movl $0x08, %eax\n xorl %ebx, %ebx\n verw %ax\n call record_zf",
     lambda cpu: _rec((seg.verw(cpu, 0x08), 0))),
    ("movl $0x12345, %ecx\n movl $-1, %eax\n rdmsr\n movl %eax, %ebx\n xorl %ecx, %ecx\n"
     " call record_zf", lambda cpu: (0xff, msr.rdmsr(cpu, 0x12345), 1, 0)),
    ("movl $0xfe, %ecx\n xorl %eax, %eax\n xorl %edx, %edx\n wrmsr",
     lambda cpu: msr.wrmsr(cpu, 0xfe, 0)),
    ("movl $0xc0000080, %ecx\n movl $0x100000, %eax\n xorl %edx, %edx\n wrmsr",
     lambda cpu: msr.wrmsr(cpu, 0xc0000080, 0x100000)),
    ("movl $0xfe, %ecx\n rdmsr\n movl %eax, %ebx\n xorl %ecx, %ecx\n call record_zf",
     lambda cpu: (0xff, msr.rdmsr(cpu, 0xfe) & 0xffffffff, 1, 0)),
    ("movl $0xc0000080, %ecx\n rdmsr\n movl %eax, %ebx\n xorl %ecx, %ecx\n call record_zf",
     lambda cpu: (0xff, msr.rdmsr(cpu, 0xc0000080) & 0xffffffff, 1, 0)),
    ("movl $0x201, %ecx\n movl $0xfff00800, %eax\n movl $0xff, %edx\n wrmsr\n"
     " movl $0, %eax\n rdmsr\n movl %edx, %ebx\n xorl %ecx, %ecx\n call record_zf",
     lambda cpu: (msr.wrmsr(cpu, 0x201, 0xfffff00800),
                  (0xff, msr.rdmsr(cpu, 0x201) >> 32, 1, 0))[1]),
    ("movl %cr0, %eax\n movl %eax, %esi\n andl $0xbfffffff, %eax\n orl $0x20000000, %eax\n"
     " movl %eax, %cr0\n movl %esi, %cr0", lambda cpu: _cr0_nw_without_cd(cpu)),
    ("movl $0xc0000080, %ecx\n movl $0x100, %eax\n xorl %edx, %edx\n wrmsr\n"
     " movl %cr0, %eax\n orl $0x80000000, %eax\n movl %eax, %cr0\n movl %cr0, %ebx\n"
     " movl $0xc0000080, %ecx\n xorl %eax, %eax\n wrmsr\n xorl %ecx, %ecx\n call record_zf",
     lambda cpu: _lme_without_pae(cpu)),
    ("call to_v86\n int $0x41", lambda cpu: interrupt.raise_interrupt(_v86(cpu), 0x41, 0)),
    ("call to_v86\n int $0x40", lambda cpu: interrupt.raise_interrupt(_v86(cpu), 0x40, 0)),
    ("call paging_on", lambda cpu: _paging_on(cpu)),
    ("movl 0xc00010, %eax", lambda cpu: cpu.tlb.ld(0xc00010, 4, c.MMU_KERNEL_IDX)),
    ("movl %eax, 0x800004", lambda cpu: cpu.tlb.st(0x800004, 4, 0, c.MMU_KERNEL_IDX)),
    ("movl 0x800ffe, %eax", lambda cpu: cpu.tlb.ld(0x800ffe, 4, c.MMU_KERNEL_IDX)),
    ("andl $0xffff7fff, 0x3000 + 13 * 8 + 4\n movw $0, %ax\n movw %ax, %ss",
     lambda cpu: _df(cpu)),
    ("int $0x40", lambda cpu: interrupt.raise_interrupt(cpu, 0x40, cpu.rip)),
    (RING3 + "movl 0x800000, %eax", lambda cpu: _r3(cpu).tlb.ld(0x800000, 4, c.MMU_USER_IDX)),
    (RING3 + "movl %eax, 0x802000",
     lambda cpu: _r3(cpu).tlb.st(0x802000, 4, 0, c.MMU_USER_IDX)),
    (RING3 + "int $0x40", lambda cpu: interrupt.raise_interrupt(_r3(cpu), 0x40, cpu.rip)),
    (RING3 + "int $0x41", lambda cpu: interrupt.raise_interrupt(_r3(cpu), 0x41, cpu.rip)),
    (RING3 + "hlt", lambda cpu: syscall.hlt(_r3(cpu))),
    (RING3 + "movl %cr0, %eax", lambda cpu: control.read_cr(_r3(cpu), 0)),
    (RING3 + "rdmsr", lambda cpu: msr.rdmsr(_r3(cpu), 0x10)),
    (RING3 + "movw $0x10, %ax\n movw %ax, %fs", lambda cpu: seg.load_seg(_r3(cpu), c.R_FS, 0x10)),
    (RING3 + "lgdt 0x100", lambda cpu: seg.lgdt(_r3(cpu), 0, 0, 32)),
    (RING3 + "inb $0x80, %al", lambda cpu: _io(_r3(cpu), 0x80, 1)),
    (RING3 + "pushl $0xabcd\n lcall $0x4b, $0\n int $0x41", lambda cpu: _call_gate(cpu)),
    (RING3 + "sysenter", lambda cpu: _sysenter(cpu)),
    ("int $0x42", lambda cpu: _task_gate(cpu)),
]


def _task_gate(cpu):
    """INT 0x42 through a task gate to the task of TSS 0x50, which records its
    back link, NT and TR, and IRETs back."""
    old_esp = cpu.regs[4]
    interrupt.raise_interrupt(cpu, 0x42, 0x4242)
    assert cpu.rip == 0xffff8300 and cpu.tr.selector == 0x50
    rec = (0x7a, cpu.as_.read(0x6100, 2), cpu.get_eflags() & c.NT_MASK, cpu.tr.selector)
    seg.iret(cpu, 4, 0)
    assert cpu.rip == 0x4242 and cpu.tr.selector == 0x40 and cpu.regs[4] == old_esp
    return [rec]


def _sysenter(cpu):
    """SYSENTER to 0x08:0xffff8100 (records ESP, CS, SS, EFLAGS), SYSEXIT to
    ring 3 at 0xffff8200, which does INT 0x41."""
    _r3(cpu)
    syscall.sysenter(cpu)
    rec = (0xee, cpu.regs[4], (cpu.segs[c.R_SS] << 16) | cpu.segs[c.R_CS], cpu.get_eflags())
    assert cpu.rip == 0xffff8100 and cpu.cpl == 0
    cpu.regs[1], cpu.regs[2] = 0x7fe0, 0xffff8200
    syscall.sysexit(cpu, 4)
    assert cpu.cpl == 3 and cpu.regs[4] == 0x7fe0
    interrupt.raise_interrupt(cpu, 0x41, cpu.rip)
    return [rec]


def _cr0_nw_without_cd(cpu):
    old = cpu.cr[0]
    control.write_cr(cpu, 0, (old & ~c.CR0_CD) | c.CR0_NW)
    control.write_cr(cpu, 0, old)


def _lme_without_pae(cpu):
    msr.wrmsr(cpu, 0xc0000080, 0x100)
    try:
        control.write_cr(cpu, 0, cpu.cr[0] | c.CR0_PG)
    finally:
        msr.wrmsr(cpu, 0xc0000080, 0)
    return (0xff, cpu.cr[0], 1, 0)


def _v86(cpu):
    """What to_v86 does: IRET with VM set (IOPL 3) to f000:ip, stack 0700:0ff0."""
    sp = cpu.regs[4] - 36
    for i, v in enumerate((0x100, 0xf000, 0x23002, 0xff0, 0x700, 0, 0, 0, 0)):
        cpu.as_.write(sp + 4 * i, 4, v)
    cpu.regs[4] = sp
    seg.iret(cpu, 4, 0)
    assert cpu.vm86 and cpu.cpl == 3
    return cpu


def _call_gate(cpu):
    """Through the call gate to ring 0 (the target records its stack), LRET 4 back."""
    _r3(cpu)
    cpu.regs[4] -= 4
    cpu.as_.write(cpu.regs[4], 4, 0xabcd)
    seg.lcall(cpu, 0x4b, 0, 4, cpu.rip + 7)
    esp = cpu.regs[4]
    top = [cpu.as_.read(esp + 4 * i, 4) for i in range(5)]
    recs = [(0xcc, esp, top[1], top[2]),
            (0xcd, top[3], top[4], (cpu.segs[c.R_SS] << 16) | cpu.segs[c.R_CS])]
    seg.lret_iret(cpu, 4, False, 4)
    assert cpu.cpl == 3 and cpu.regs[4] == 0x7ff0
    interrupt.raise_interrupt(cpu, 0x41, cpu.rip)
    return recs


def _io(cpu, port, size):
    assert not seg.io_allowed_by_iopl(cpu)
    seg.check_io(cpu, port, size)


def _r3(cpu):
    """What to_ring3 does: IRET to ring 3 at the same place, then user DS/ES."""
    sp = cpu.regs[4] - 20
    for i, v in enumerate((cpu.rip, 0x1b, 2, 0x7ff0, 0x23)):
        cpu.as_.write(sp + 4 * i, 4, v)
    cpu.regs[4] = sp
    seg.iret(cpu, 4, 0)
    assert cpu.cpl == 3 and cpu.segs[c.R_DS] == 0      # IRET nulled the ring-0 DS
    seg.load_seg(cpu, c.R_DS, 0x23)
    seg.load_seg(cpu, c.R_ES, 0x23)
    return cpu


def _rec(result):
    ok, value = result
    return (0xff, value & 0xffffffff if ok else 0, int(bool(ok)), 0)


def _paging_on(cpu) -> None:
    write_cr(cpu, 4, c.CR4_PSE)
    write_cr(cpu, 3, 0x20000)
    write_cr0(cpu, cpu.cr[0] | c.CR0_PG | c.CR0_WP)


def _df(cpu) -> None:
    cpu.as_.write(0x3000 + 13 * 8 + 4, 4, cpu.as_.read(0x3000 + 13 * 8 + 4, 4) & ~0x8000)
    seg.load_seg(cpu, c.R_SS, 0)


def _firmware(tmp_path) -> None:
    stubs = []
    for n in range(NVEC):
        stubs.append(".align 16\n%s    pushl $%d\n    jmp common" % (
            "" if n in ERROR_CODE_VECTORS else "    pushl $0\n", n))
    scen = []
    for i, (asm, _fn) in enumerate(SCENARIOS):
        scen.append("    movl $(0xffff0000 + r%d - _start), 0x5004\n    %s\nr%d:" % (i, asm, i))
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
    movw %%ax, %%es
    movw %%ax, %%ss
    movl $0x9000, %%esp
    xorl %%ecx, %%ecx
2:  movl $(0xffff0000 + stubs - _start), %%eax
    movl %%ecx, %%edx
    shll $4, %%edx
    addl %%edx, %%eax
    movl %%eax, %%edx
    andl $0xffff, %%edx
    orl $0x00080000, %%edx
    movl %%edx, 0x3000(,%%ecx,8)
    andl $0xffff0000, %%eax
    orl $0x8e00, %%eax
    movl %%eax, 0x3004(,%%ecx,8)
    incl %%ecx
    cmpl $%d, %%ecx
    jb 2b
    lidtl (0xffff0000 + idtdesc - _start)
    orl $0x6000, 0x3000 + 0x41 * 8 + 4
    movl $0x9000, 0x6004
    movl $0x10, 0x6008
    movw $0x68, 0x6066
    movl $(0xffff0000 + gdt - _start), %%esi
    movl $0x1000, %%edi
    movl $%d, %%ecx
    cld
    rep movsb
    movw $%d, 0x1f00
    movl $0x1000, 0x1f02
    lgdtl 0x1f00
    movw $0x40, %%ax
    ltr %%ax
%s
    movl $0x00500000, 0x3000 + 0x42 * 8
    movl $0x8500, 0x3004 + 0x42 * 8
    xorl %%ecx, %%ecx
3:  movl %%ecx, %%eax
    shll $12, %%eax
    orl $3, %%eax
    movl %%eax, 0x21000(,%%ecx,4)
    incl %%ecx
    cmpl $1024, %%ecx
    jb 3b
    movl $(0x21000 | 7), 0x20000
    movl $(0x22000 | 7), 0x20008
    movl $(0x600000 | 1), 0x22000
    movl $(0x602000 | 5), 0x22008
    movl $(0x7000 | 7), 0x21000 + 7 * 4
    movl $(0xffc00000 | 0x87), 0x20000 + 1023 * 4
    movl $0x174, %%ecx
    movl $0x08, %%eax
    xorl %%edx, %%edx
    wrmsr
    movl $0x175, %%ecx
    movl $0x9800, %%eax
    wrmsr
    movl $0x176, %%ecx
    movl $0xffff8100, %%eax
    wrmsr
    movl $0, 0x5000
%s
    movl $0x600d, 0x5008
1:  hlt
    jmp 1b
paging_on:
    movl $0x10, %%eax
    movl %%eax, %%cr4
    movl $0x20000, %%eax
    movl %%eax, %%cr3
    movl %%cr0, %%eax
    orl $0x80010000, %%eax
    movl %%eax, %%cr0
    ret
record_zf:
    setz %%cl
    movzbl %%cl, %%ecx
    movl 0x5000, %%edx
    shll $4, %%edx
    movl $0xff, 0x5010(%%edx)
    movl %%ebx, 0x5014(%%edx)
    movl %%ecx, 0x5018(%%edx)
    movl $0, 0x501c(%%edx)
    incl 0x5000
    ret
to_v86:
    popl %%ecx
    subl $0xffff0000, %%ecx
    pushl $0
    pushl $0
    pushl $0
    pushl $0
    pushl $0x700
    pushl $0xff0
    pushl $0x23002
    pushl $0xf000
    pushl %%ecx
    iret
to_ring3:
    popl %%ecx
    pushl $0x23
    pushl $0x7ff0
    pushl $2
    pushl $0x1b
    pushl %%ecx
    iret
common:
    movw $0x10, %%ax
    movw %%ax, %%ds
    movw %%ax, %%es
    movl 0x5000, %%ebx
    shll $4, %%ebx
    popl %%eax
    movl %%eax, 0x5010(%%ebx)
    popl %%eax
    movl %%eax, 0x5014(%%ebx)
    movl %%cr2, %%eax
    movl %%eax, 0x5018(%%ebx)
    movl 4(%%esp), %%eax
    movl %%eax, 0x501c(%%ebx)
    incl 0x5000
    orl $0x8000, 0x3000 + 13 * 8 + 4
    movw $0x10, %%ax
    movw %%ax, %%ss
    movl $0x9000, %%esp
    jmp *0x5004
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
    .long 0x3000
.org 0x8000
gate_target:
    movl 0x5000, %%edx
    shll $4, %%edx
    movl $0xcc, 0x5010(%%edx)
    movl %%esp, 0x5014(%%edx)
    movl 4(%%esp), %%eax
    movl %%eax, 0x5018(%%edx)
    movl 8(%%esp), %%eax
    movl %%eax, 0x501c(%%edx)
    incl 0x5000
    movl 0x5000, %%edx
    shll $4, %%edx
    movl $0xcd, 0x5010(%%edx)
    movl 12(%%esp), %%eax
    movl %%eax, 0x5014(%%edx)
    movl 16(%%esp), %%eax
    movl %%eax, 0x5018(%%edx)
    movw %%ss, %%ax
    shll $16, %%eax
    movw %%cs, %%ax
    movl %%eax, 0x501c(%%edx)
    incl 0x5000
    lret $4
.org 0x8100
sysenter_target:
    pushfl
    movl 0x5000, %%edx
    shll $4, %%edx
    movl $0xee, 0x5010(%%edx)
    leal 4(%%esp), %%eax
    movl %%eax, 0x5014(%%edx)
    movw %%ss, %%ax
    shll $16, %%eax
    movw %%cs, %%ax
    movl %%eax, 0x5018(%%edx)
    popl %%eax
    movl %%eax, 0x501c(%%edx)
    incl 0x5000
    movl $0x7fe0, %%ecx
    movl $0xffff8200, %%edx
    sysexit
.org 0x8200
    int $0x41
.org 0x8300
task2:
    movl 0x5000, %%edx
    shll $4, %%edx
    movl $0x7a, 0x5010(%%edx)
    movl 0x6100, %%eax
    movl %%eax, 0x5014(%%edx)
    pushfl
    popl %%eax
    andl $0x4000, %%eax
    movl %%eax, 0x5018(%%edx)
    str %%ax
    movzwl %%ax, %%eax
    movl %%eax, 0x501c(%%edx)
    incl 0x5000
    iret
.org 0xfff0
    .byte 0xea
    .word 0
    .word 0xf000
.org 0x10000
""" % (NVEC, len(GDT) * 8, len(GDT) * 8 - 1,
       "\n".join("    movl $0x%x, 0x%x" % (v, a) for a, v in TSS2),
       "\n".join(scen), "\n".join(stubs),
       "\n".join("    .quad 0x%x" % d for d in GDT), len(GDT) * 8 - 1, NVEC * 8 - 1)
    (tmp_path / "fw.S").write_text(src)
    subprocess.run(["as", "--32", "-o", str(tmp_path / "fw.o"), str(tmp_path / "fw.S")],
                   check=True)
    subprocess.run(["ld", "-m", "elf_i386", "-Ttext", "0", "--oformat", "binary", "-o",
                    str(tmp_path / "fw.bin"), str(tmp_path / "fw.o")], check=True)


def _real_records(tmp_path):
    dump = tmp_path / "results.bin"
    with _qmp_session(tmp_path) as cmd:
        for _ in range(400):
            cmd("pmemsave", val=0x5000, size=0x1000, filename=str(dump))
            data = dump.read_bytes()
            if struct.unpack_from("<I", data, 8)[0] == 0x600d:
                break
        else:
            raise AssertionError("the firmware did not finish")
    n = struct.unpack_from("<I", data, 0)[0]
    return [struct.unpack_from("<4I", data, 0x10 + 16 * i) for i in range(n)]


def _our_records():
    m.memory_init()
    ram = m.memory_region_init_ram(None, "pc.ram", 16 << 20)
    m.get_system_memory().add_subregion(0, ram)
    as_ = m.address_space_memory()
    cpu = X86SysCPU(as_)
    for i, d in enumerate(GDT):
        as_.write(0x1000 + 8 * i, 8, d)
    for n in range(NVEC):
        off = 0x100000 + 16 * n
        as_.write(0x3000 + 8 * n, 4, (0x08 << 16) | (off & 0xffff))
        as_.write(0x3004 + 8 * n, 4, (off & 0xffff0000) | 0x8e00)
    for i in range(1024):
        as_.write(0x21000 + 4 * i, 4, (i << 12) | 3)
    as_.write(0x20000, 4, 0x21000 | 7)
    as_.write(0x20008, 4, 0x22000 | 7)
    as_.write(0x22000, 4, 0x600000 | 1)
    as_.write(0x22008, 4, 0x602000 | 5)
    as_.write(0x21000 + 7 * 4, 4, 0x7000 | 7)
    as_.write(0x20000 + 1023 * 4, 4, 0xffc00000 | 0x87)
    as_.write(0x3000 + 0x41 * 8 + 4, 4, as_.read(0x3000 + 0x41 * 8 + 4, 4) | 0x6000)
    as_.write(0x6004, 4, 0x9000)
    as_.write(0x6008, 4, 0x10)
    as_.write(0x6066, 2, 0x68)                 # I/O bitmap base past the TSS limit
    cpu.gdt.base, cpu.gdt.limit = 0x1000, len(GDT) * 8 - 1
    cpu.idt.base, cpu.idt.limit = 0x3000, NVEC * 8 - 1
    write_cr0(cpu, cpu.cr[0] | c.CR0_PE)
    seg.ljmp(cpu, 0x08, 0x100, 0)
    for s in (c.R_DS, c.R_ES, c.R_SS):
        seg.load_seg(cpu, s, 0x10)
    seg.ltr(cpu, 0x40)
    for a, v in TSS2:
        as_.write(a, 4, v)
    as_.write(0x3000 + 0x42 * 8, 4, 0x00500000)
    as_.write(0x3004 + 0x42 * 8, 4, 0x8500)
    msr.wrmsr(cpu, 0x174, 0x08)
    msr.wrmsr(cpu, 0x175, 0x9800)
    msr.wrmsr(cpu, 0x176, 0xffff8100)
    records = []
    for _asm, fn in SCENARIOS:
        cpu.regs[4] = 0x9000
        try:
            rec = fn(cpu)
        except CpuException as e:
            interrupt.deliver(cpu, e.vector, e.error_code)
            rec = None
        if isinstance(rec, list):
            records.extend(rec)
        if cpu.rip >= 0x100000:
            # a handler got control: which one, with which error code
            vec = (cpu.rip - 0x100000) // 16
            has_err = vec in ERROR_CODE_VECTORS
            err = as_.read(cpu.regs[4], 4) if has_err else 0
            saved_cs = as_.read(cpu.regs[4] + (8 if has_err else 4), 4)
            records.append((vec, err, cpu.cr[2], saved_cs))
            as_.write(0x3000 + 13 * 8 + 4, 4, as_.read(0x3000 + 13 * 8 + 4, 4) | 0x8000)
            for s in (c.R_DS, c.R_ES, c.R_SS):
                seg.load_seg(cpu, s, 0x10)
            cpu.rip = 0x100
        elif isinstance(rec, tuple):
            records.append(rec)
    return records


def test_fault_codes_match_qemu(tmp_path):
    for tool in ("qemu-system-x86_64", "as", "ld"):
        assert shutil.which(tool), "%s is needed for this peer test" % tool
    _firmware(tmp_path)
    real = _real_records(tmp_path)
    assert len(real) >= 43
    assert _our_records() == real
