"""The register dump of a system-mode CPU, in the layout of QEMU's
``info registers`` (and ``-d cpu``) for x86: general registers, segment
caches with their decoded rights, descriptor tables, control and debug
registers, EFER, x87 and SSE state."""
from __future__ import annotations

from typing import List

from pyqemu.target.i386.sysemu import cpu as c

_SYS_TYPES = (
    ("Reserved", "TSS16-avl", "LDT", "TSS16-busy", "CallGate16", "TaskGate", "IntGate16",
     "TrapGate16", "Reserved", "TSS32-avl", "Reserved", "TSS32-busy", "CallGate32",
     "Reserved", "IntGate32", "TrapGate32"),
    ("<hiword>", "Reserved", "LDT", "Reserved", "Reserved", "Reserved", "Reserved",
     "Reserved", "Reserved", "TSS64-avl", "Reserved", "TSS64-busy", "CallGate64",
     "Reserved", "IntGate64", "TrapGate64"),
)


def _seg_line(cpu, name: str, selector: int, base: int, limit: int, flags: int) -> str:
    if cpu.code64:
        text = "%-3s=%04x %016x %08x %08x" % (name, selector, base, limit, flags)
    else:
        text = "%-3s=%04x %08x %08x %08x" % (name, selector, base & 0xffffffff, limit, flags)
    if not cpu.cr[0] & c.CR0_PE or not flags & c.DESC_P_MASK:
        return text
    text += " DPL=%d " % ((flags & c.DESC_DPL_MASK) >> c.DESC_DPL_SHIFT)
    if flags & c.DESC_S_MASK:
        if flags & c.DESC_CS_MASK:
            text += "CS64" if flags & c.DESC_L_MASK else ("CS32" if flags & c.DESC_B_MASK
                                                          else "CS16")
            text += " [%s%s" % ("C" if flags & c.DESC_C_MASK else "-",
                                "R" if flags & c.DESC_R_MASK else "-")
        else:
            text += "DS  " if flags & c.DESC_B_MASK or cpu.lma else "DS16"
            text += " [%s%s" % ("E" if flags & c.DESC_E_MASK else "-",
                                "W" if flags & c.DESC_W_MASK else "-")
        text += "%s]" % ("A" if flags & c.DESC_A_MASK else "-")
    else:
        text += _SYS_TYPES[1 if cpu.lma else 0][(flags & c.DESC_TYPE_MASK) >> c.DESC_TYPE_SHIFT]
    return text


def dump_state(cpu, fpu: bool = True) -> str:
    """The text of ``info registers`` for one CPU (without the CPU#n header)."""
    r = cpu.regs
    ef = cpu.get_eflags()
    flags = "".join(ch if ef & bit else "-" for ch, bit in (
        ("D", 0x400), ("O", 0x800), ("S", 0x80), ("Z", 0x40), ("A", 0x10), ("P", 4), ("C", 1)))
    tail = "CPL=%d II=%d A20=%d SMM=0 HLT=%d" % (
        cpu.cpl, 1 if cpu.inhibit_irq else 0, (cpu.a20_mask >> 20) & 1, 1 if cpu.halted else 0)
    out: List[str] = []
    # 64-bit register layout only in 64-bit code; compatibility mode prints 32-bit
    if cpu.code64:
        names = ("RAX", "RBX", "RCX", "RDX", "RSI", "RDI", "RBP", "RSP",
                 "R8 ", "R9 ", "R10", "R11", "R12", "R13", "R14", "R15")
        idx = (0, 3, 1, 2, 6, 7, 5, 4, 8, 9, 10, 11, 12, 13, 14, 15)
        for row in range(4):
            out.append(" ".join("%s=%016x" % (names[k], r[idx[k]])
                                for k in range(row * 4, row * 4 + 4)))
        out.append("RIP=%016x RFL=%08x [%s] %s" % (cpu.rip, ef, flags, tail))
    else:
        names = ("EAX", "EBX", "ECX", "EDX", "ESI", "EDI", "EBP", "ESP")
        idx = (0, 3, 1, 2, 6, 7, 5, 4)
        for row in range(2):
            out.append(" ".join("%s=%08x" % (names[k], r[idx[k]] & 0xffffffff)
                                for k in range(row * 4, row * 4 + 4)))
        out.append("EIP=%08x EFL=%08x [%s] %s" % (cpu.rip & 0xffffffff, ef, flags, tail))
    for i, name in enumerate(c.SEG_NAMES):
        out.append(_seg_line(cpu, name, cpu.segs[i], cpu.seg_base[i], cpu.seg_limit[i],
                             cpu.seg_flags[i]))
    out.append(_seg_line(cpu, "LDT", cpu.ldt.selector, cpu.ldt.base, cpu.ldt.limit,
                         cpu.ldt.flags))
    out.append(_seg_line(cpu, "TR", cpu.tr.selector, cpu.tr.base, cpu.tr.limit, cpu.tr.flags))
    if cpu.lma:
        out.append("GDT=     %016x %08x" % (cpu.gdt.base, cpu.gdt.limit))
        out.append("IDT=     %016x %08x" % (cpu.idt.base, cpu.idt.limit))
        out.append("CR0=%08x CR2=%016x CR3=%016x CR4=%08x" % (cpu.cr[0], cpu.cr[2], cpu.cr[3],
                                                             cpu.cr[4]))
    else:
        out.append("GDT=     %08x %08x" % (cpu.gdt.base & 0xffffffff, cpu.gdt.limit))
        out.append("IDT=     %08x %08x" % (cpu.idt.base & 0xffffffff, cpu.idt.limit))
        out.append("CR0=%08x CR2=%08x CR3=%08x CR4=%08x" % (
            cpu.cr[0], cpu.cr[2] & 0xffffffff, cpu.cr[3] & 0xffffffff, cpu.cr[4]))
    out.append("".join("DR%d=%016x " % (i, cpu.dr[i]) for i in range(4)))
    out.append("DR6=%016x DR7=%016x" % (cpu.dr[6], cpu.dr[7]))
    out.append("EFER=%016x" % cpu.efer)
    if fpu:
        fsw = (cpu.fpus & ~0x3800) | ((cpu.fpstt & 7) << 11)
        ftw = sum(1 << i for i in range(8) if not cpu.fptags[i])
        out.append("FCW=%04x FSW=%04x [ST=%d] FTW=%02x MXCSR=%08x" % (
            cpu.fpuc, fsw, cpu.fpstt & 7, ftw, cpu.mxcsr))
        for i in range(0, 8, 2):
            out.append(" ".join("FPR%d=%016x %04x" % (j, cpu.fpregs[j] & ((1 << 64) - 1),
                                                      cpu.fpregs[j] >> 64) for j in (i, i + 1)))
        n = 16 if cpu.code64 else 8
        for i in range(0, n, 2):
            out.append(" ".join("XMM%02d=%016x %016x" % (j, cpu.xmm[j] >> 64,
                                                         cpu.xmm[j] & ((1 << 64) - 1))
                                for j in (i, i + 1)))
    return "".join(line + "\n" for line in out)
