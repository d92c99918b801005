"""x86 register layout for the GDB stub (i386:x86-64 and i386).

The stub describes the registers with a target description (``target.xml``)
so gdb numbers them in the order of :func:`registers`; the ``g`` packet is
these registers, little endian, in that order.
"""
from __future__ import annotations

from typing import List, Tuple

_GPR64 = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
          "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]
# Index into cpu.regs (x86 encoding order) for each gdb general register.
_GPR64_IDX = [0, 3, 1, 2, 6, 7, 5, 4, 8, 9, 10, 11, 12, 13, 14, 15]
_GPR32 = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"]
_SEGS = ["cs", "ss", "ds", "es", "fs", "gs"]
_SEG_IDX = [1, 2, 3, 0, 4, 5]  # cpu.segs is in x86 order ES CS SS DS FS GS
_FPCTL = ["fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"]

_FLAGS_TYPE = """  <flags id="i386_eflags" size="4">
    <field name="CF" start="0" end="0"/><field name="" start="1" end="1"/>
    <field name="PF" start="2" end="2"/><field name="AF" start="4" end="4"/>
    <field name="ZF" start="6" end="6"/><field name="SF" start="7" end="7"/>
    <field name="TF" start="8" end="8"/><field name="IF" start="9" end="9"/>
    <field name="DF" start="10" end="10"/><field name="OF" start="11" end="11"/>
    <field name="NT" start="14" end="14"/><field name="RF" start="16" end="16"/>
    <field name="VM" start="17" end="17"/><field name="AC" start="18" end="18"/>
    <field name="VIF" start="19" end="19"/><field name="VIP" start="20" end="20"/>
    <field name="ID" start="21" end="21"/>
  </flags>
"""


def registers(mode: int) -> List[Tuple[str, int, str, str]]:
    """(name, bit size, gdb type, feature) for every register, in gdb's numbering."""
    regs: List[Tuple[str, int, str, str]] = []
    core = "org.gnu.gdb.i386.core"
    if mode == 64:
        for n in _GPR64:
            regs.append((n, 64, "code_ptr" if n == "rip" else
                         ("data_ptr" if n in ("rsp", "rbp") else "int64"), core))
        regs.append(("rip", 64, "code_ptr", core))
    else:
        for n in _GPR32:
            regs.append((n, 32, "data_ptr" if n in ("esp", "ebp") else "int32", core))
        regs.append(("eip", 32, "code_ptr", core))
    regs.append(("eflags", 32, "i386_eflags", core))
    for n in _SEGS:
        regs.append((n, 32, "int32", core))
    for i in range(8):
        regs.append(("st%d" % i, 80, "i387_ext", core))
    for n in _FPCTL:
        regs.append((n, 32, "int", core))
    sse = "org.gnu.gdb.i386.sse"
    for i in range(16 if mode == 64 else 8):
        regs.append(("xmm%d" % i, 128, "uint128", sse))
    regs.append(("mxcsr", 32, "int", sse))
    if mode == 64:
        regs.append(("fs_base", 64, "int", "org.gnu.gdb.i386.segments"))
        regs.append(("gs_base", 64, "int", "org.gnu.gdb.i386.segments"))
    return regs


def target_xml(mode: int, osabi: str = "") -> str:
    """The target description gdb reads with qXfer:features:read:target.xml.

    ``osabi`` ("GNU/Linux" for user mode) lets gdb use the Linux shared-library
    support, which relocates PIE programs from the auxiliary vector.
    """
    arch = "i386:x86-64" if mode == 64 else "i386"
    out = ['<?xml version="1.0"?>', '<!DOCTYPE target SYSTEM "gdb-target.dtd">',
           "<target>", "  <architecture>%s</architecture>" % arch]
    if osabi:
        out.append("  <osabi>%s</osabi>" % osabi)
    feature = None
    for num, (name, bits, typ, feat) in enumerate(registers(mode)):
        if feat != feature:
            if feature is not None:
                out.append("</feature>")
            out.append('<feature name="%s">' % feat)
            if feat.endswith(".core"):
                out.append(_FLAGS_TYPE.rstrip("\n"))
            feature = feat
        out.append('  <reg name="%s" bitsize="%d" type="%s" regnum="%d"/>' % (name, bits, typ, num))
    out.append("</feature>")
    out.append("</target>")
    return "\n".join(out) + "\n"


def _fp_tag_word(cpu) -> int:
    tags = getattr(cpu, "fptags", [1] * 8)
    word = 0
    for i in range(8):
        # Abridged emulator tags: 1 = empty (11b); otherwise call it valid (00b).
        if tags[i]:
            word |= 3 << (2 * i)
    return word


def get_register(cpu, num: int, mode: int) -> int:
    """Value of gdb register ``num`` (unsigned)."""
    ngpr = 16 if mode == 64 else 8
    mask = (1 << mode) - 1
    if num < ngpr:
        return cpu.regs[_GPR64_IDX[num] if mode == 64 else num] & mask
    num -= ngpr
    if num == 0:
        return cpu.rip & mask
    if num == 1:
        return cpu.get_eflags() & 0xFFFFFFFF
    num -= 2
    if num < 6:
        segs = getattr(cpu, "segs", [0] * 6)
        return segs[_SEG_IDX[num]] & 0xFFFF
    num -= 6
    if num < 8:
        top = getattr(cpu, "fpstt", 0)
        val = cpu.fpregs[(top + num) & 7]
        return val if isinstance(val, int) else 0
    num -= 8
    if num < 8:
        if num == 0:
            return getattr(cpu, "fpuc", 0x37F)
        if num == 1:
            return (getattr(cpu, "fpus", 0) & ~0x3800) | ((getattr(cpu, "fpstt", 0) & 7) << 11)
        if num == 2:
            return _fp_tag_word(cpu)
        return 0
    num -= 8
    nxmm = 16 if mode == 64 else 8
    if num < nxmm:
        return cpu.get_xmm(num)
    num -= nxmm
    if num == 0:
        return cpu.mxcsr
    if mode == 64 and num == 1:
        return cpu.fs_base
    if mode == 64 and num == 2:
        return cpu.gs_base
    raise IndexError(num)


def set_register(cpu, num: int, value: int, mode: int) -> None:
    """Set gdb register ``num``; read-only ones (x87 control state) ignore writes."""
    ngpr = 16 if mode == 64 else 8
    if num < ngpr:
        cpu.regs[_GPR64_IDX[num] if mode == 64 else num] = value
        return
    num -= ngpr
    if num == 0:
        cpu.rip = value
        return
    if num == 1:
        cpu.set_eflags(value)
        return
    num -= 2 + 6
    if 0 <= num < 8:
        top = getattr(cpu, "fpstt", 0)
        cpu.fpregs[(top + num) & 7] = value
        return
    num -= 16
    nxmm = 16 if mode == 64 else 8
    if 0 <= num < nxmm:
        cpu.set_xmm(num, value)
        return
    num -= nxmm
    if num == 0:
        cpu.mxcsr = value & 0xFFFF
    elif mode == 64 and num == 1:
        cpu.fs_base = value
    elif mode == 64 and num == 2:
        cpu.gs_base = value
