"""x86 CPU state for user-mode emulation, CPU models and CPUID.

The state is plain Python (ARCHITECTURE.md decision 2).  General registers
are ``regs`` (x86 encoding order), arithmetic flags are lazy (see ``cc.py``)
and ``get_eflags``/``set_eflags`` materialise them.
"""
from __future__ import annotations

import struct
from typing import Dict, List, Optional, Set

from pyqemu.target.i386.cc import CC_MASK, CC_OP_EFLAGS, compute_eflags

# Exception numbers returned by cpu_exec (x86 vectors where there is one).
EXCP_DIVIDE = 0
EXCP_DEBUG = 1
EXCP_BREAKPOINT = 3
EXCP_INVALID_OPCODE = 6
EXCP_GPF = 13
EXCP_PAGE_FAULT = 14
EXCP_INTERRUPT = 0x10000
EXCP_HLT = 0x10001
EXCP_SYSCALL = 0x10002
EXCP_NEWSTATE = 0x10003       # system mode: the block changed mode/CPL/CS/paging state
EXCP_INT80 = EXCP_SYSCALL      # int 0x80 also returns EXCP_SYSCALL, syscall_kind says which
EXCP_FPE = 16                  # x87 floating-point error (#MF)
EXCP_XMM = 19                  # SIMD floating-point exception (#XM)

SYSCALL_KIND_SYSCALL = "syscall"
SYSCALL_KIND_INT80 = "int80"

R_EAX, R_ECX, R_EDX, R_EBX, R_ESP, R_EBP, R_ESI, R_EDI = range(8)
REG_NAMES64 = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
               "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]

# CPUID feature bits we implement (leaf 1 edx/ecx, leaf 7 ebx, 0x80000001 edx/ecx).
_FPU, _TSC, _CX8, _CMOV, _MMX, _FXSR, _SSE, _SSE2 = (1 << 0, 1 << 4, 1 << 8, 1 << 15,
                                                    1 << 23, 1 << 24, 1 << 25, 1 << 26)
_PSE, _MSR, _PAE, _MCE, _APIC, _SEP, _MTRR, _PGE, _MCA, _PAT, _PSE36, _CLFLUSH = (
    1 << 3, 1 << 5, 1 << 6, 1 << 7, 1 << 9, 1 << 11, 1 << 12, 1 << 13, 1 << 14, 1 << 16,
    1 << 17, 1 << 19)
_E_SSE3, _E_CX16, _E_POPCNT = 1 << 0, 1 << 13, 1 << 23
_E_SSSE3, _E_SSE41, _E_SSE42 = 1 << 9, 1 << 19, 1 << 20
_X_SYSCALL, _X_NX, _X_LM = 1 << 11, 1 << 20, 1 << 29
_X_LAHF, _X_ABM = 1 << 0, 1 << 5


class CpuModel:
    def __init__(self, name: str, desc: str, level: int, family: int, model: int,
                 stepping: int, edx: int, ecx: int, ext_edx: int, ext_ecx: int,
                 vendor: str = "AuthenticAMD", model_id: str = "",
                 long_mode: bool = True) -> None:
        self.name = name
        self.desc = desc
        self.level = level
        self.family = family
        self.model = model
        self.stepping = stepping
        self.edx = edx
        self.ecx = ecx
        self.ext_edx = ext_edx
        self.ext_ecx = ext_ecx
        self.vendor = vendor
        self.model_id = model_id or "QEMU Virtual CPU version 2.5+"
        self.long_mode = long_mode


_BASE_EDX = (_FPU | _PSE | _TSC | _MSR | _PAE | _MCE | _CX8 | _APIC | _SEP | _MTRR | _PGE |
             _MCA | _CMOV | _PAT | _PSE36 | _CLFLUSH | _MMX | _FXSR | _SSE | _SSE2)

_MODELS: Dict[str, CpuModel] = {}
for _m in (
    CpuModel("qemu64", "QEMU Virtual CPU version 2.5+", 0xd, 15, 107, 1, _BASE_EDX,
             _E_SSE3 | _E_CX16, _X_SYSCALL | _X_NX | _X_LM, _X_LAHF | _X_ABM),
    CpuModel("qemu32", "QEMU Virtual CPU version 2.5+", 4, 6, 6, 3, _BASE_EDX, _E_SSE3,
             0, 0, vendor="GenuineIntel", long_mode=False),
    CpuModel("core2duo", "Intel(R) Core(TM)2 Duo CPU     T7700  @ 2.40GHz", 10, 6, 15, 11,
             _BASE_EDX, _E_SSE3 | _E_CX16, _X_SYSCALL | _X_NX | _X_LM, _X_LAHF,
             vendor="GenuineIntel",
             model_id="Intel(R) Core(TM)2 Duo CPU     T7700  @ 2.40GHz"),
    CpuModel("max", "Enables all features supported by the accelerator in the current host",
             0xd, 15, 107, 1, _BASE_EDX,
             _E_SSE3 | _E_CX16 | _E_POPCNT | _E_SSSE3 | _E_SSE41 | _E_SSE42 | (1 << 22),
             _X_SYSCALL | _X_NX | _X_LM | (1 << 27), _X_LAHF | _X_ABM),
):
    _MODELS[_m.name] = _m


def cpu_models() -> List[CpuModel]:
    """CPU models for ``-cpu help``."""
    return list(_MODELS.values())


def find_model(name: str) -> Optional[CpuModel]:
    return _MODELS.get(name)


class X86CPU:
    """State of one x86 user-mode CPU (one guest thread)."""

    def __init__(self, mem, model: str = "qemu64", mode: int = 64) -> None:
        m = _MODELS.get(model)
        if m is None:
            raise ValueError("unknown CPU model '%s'" % model)
        self.model = m
        self.mem = mem
        # translated code reaches the CPU object itself as the 'env' global
        self.env = self
        self.mode = mode
        self.regs: List[int] = [0] * 16
        self.rip = 0
        self.eflags = 0x202          # non-arithmetic bits (IF, bit 1, DF, ID, AC ...)
        self.cc_op = CC_OP_EFLAGS
        self.cc_dst = 0
        self.cc_src = 0
        self.cc_src2 = 0
        self.fs_base = 0
        self.gs_base = 0
        self.segs = [0x2b, 0x33, 0x2b, 0x2b, 0, 0] if mode == 64 else [0x2b, 0x23, 0x2b, 0x2b, 0, 0]
        self.xmm: List[int] = [0] * 16
        self.mxcsr = 0x1f80
        # x87: st registers as raw 80-bit integers, top-of-stack, status/control/tag.
        self.fpregs: List[int] = [0] * 8
        self.fpstt = 0
        self.fpus = 0
        self.fpuc = 0x37f
        self.fptags = [1] * 8       # 1 = empty
        self.exception_index = -1
        self.fault_addr = 0
        self.fault_is_write = False
        self.syscall_kind = SYSCALL_KIND_SYSCALL
        self.exception_next_eip = 0
        self.interrupt_request = False
        self.single_step = False
        # QEMU's -singlestep: one guest instruction per block, no debug exception
        self.one_insn_per_tb = False
        self.breakpoints: Set[int] = set()
        self.insn_count = 0
        self.tsc_offset = 0
        self.halted = False

    # -- flags -------------------------------------------------------------
    def get_eflags(self) -> int:
        return (self.eflags & ~CC_MASK) | compute_eflags(self.cc_op, self.cc_dst, self.cc_src,
                                                         self.cc_src2) | 2

    def set_eflags(self, value: int) -> None:
        self.cc_op = CC_OP_EFLAGS
        self.cc_src = value & CC_MASK
        self.eflags = (value & ~CC_MASK & 0x3f7fd7) | 2

    # -- SSE ---------------------------------------------------------------------
    def get_xmm(self, i: int) -> int:
        return self.xmm[i]

    def set_xmm(self, i: int, value: int) -> None:
        self.xmm[i] = value & ((1 << 128) - 1)

    def fxsave(self, addr: int) -> None:
        """Write the 512-byte FXSAVE image to guest memory at ``addr``."""
        from pyqemu.target.i386.fpu import fxsave_image
        self.mem.write(addr, fxsave_image(self))

    def fxrstor(self, addr: int) -> None:
        from pyqemu.target.i386.fpu import fxrstor_image
        fxrstor_image(self, self.mem.read(addr, 512))

    def exec(self) -> int:
        from pyqemu.exec.cpu_loop import cpu_exec
        return cpu_exec(self)

    def dump_state(self) -> str:
        """Register dump in the layout of QEMU's ``-d cpu`` (x86-64)."""
        r = self.regs
        f = self.get_eflags()
        flags = "".join(c if f & b else "-" for c, b in
                        (("D", 0x400), ("O", 0x800), ("S", 0x80), ("Z", 0x40), ("A", 0x10),
                         ("P", 4), ("C", 1)))
        lines = []
        if self.mode == 64:
            for i in range(0, 16, 4):
                lines.append(" ".join("%s=%016x" % (REG_NAMES64[j].upper().ljust(3), r[j])
                                      for j in range(i, i + 4)))
            lines.append("RIP=%016x RFL=%08x [%s] CPL=3" % (self.rip, f, flags))
        else:
            names = ["EAX", "EBX", "ECX", "EDX", "ESI", "EDI", "EBP", "ESP"]
            idx = [0, 3, 1, 2, 6, 7, 5, 4]
            lines.append(" ".join("%s=%08x" % (names[k], r[idx[k]] & 0xffffffff) for k in range(4)))
            lines.append(" ".join("%s=%08x" % (names[k], r[idx[k]] & 0xffffffff)
                                  for k in range(4, 8)))
            lines.append("EIP=%08x EFL=%08x [%s] CPL=3" % (self.rip, f, flags))
        lines.append("FS =%016x GS =%016x" % (self.fs_base, self.gs_base))
        return "\n".join(lines) + "\n"

    # -- CPUID ---------------------------------------------------------------------
    def cpuid(self, leaf: int, sub: int) -> tuple:
        m = self.model
        if leaf >= 0x80000000:
            if leaf == 0x80000000:
                return (0x80000008, 0, 0, 0)
            if leaf == 0x80000001:
                ver = (m.family << 8) | (m.model << 4) | m.stepping
                edx = m.ext_edx | (m.edx & 0x0183f3ff if m.vendor == "AuthenticAMD" else 0)
                return (ver, 0, m.ext_ecx, edx)
            if 0x80000002 <= leaf <= 0x80000004:
                s = m.model_id.encode().ljust(48, b"\0")[:48]
                k = (leaf - 0x80000002) * 16
                return struct.unpack("<4I", s[k:k + 16])
            if leaf == 0x80000008:
                return (0x3028, 0, 0, 0)
            return (0, 0, 0, 0)
        if leaf > m.level:
            leaf = m.level
        if leaf == 0:
            v = m.vendor.encode()
            b, d, c = struct.unpack("<3I", v)
            return (m.level, b, c, d)
        if leaf == 1:
            fam = m.family
            eax = m.stepping | ((m.model & 0xf) << 4) | (min(fam, 15) << 8)
            if fam > 15:
                eax |= (fam - 15) << 20
            eax |= (m.model >> 4) << 16
            return (eax, 0x800, m.ecx, m.edx)
        if leaf == 4:
            return (0, 0, 0, 0)
        if leaf == 7:
            # BMI1 (bit 3) and BMI2 (bit 8) for -cpu max only
            return (0, (1 << 3) | (1 << 8) if m.name == "max" and sub == 0 else 0, 0, 0)
        if leaf == 0xd:
            return (0, 0, 0, 0)
        return (0, 0, 0, 0)
