"""Signal frames on the guest stack, as the Linux kernel builds them for x86.

x86_64 and i386 ``rt_sigframe`` (SA_SIGINFO, and every x86_64 handler) and
i386's old ``sigframe``; ``rt_sigreturn``/``sigreturn`` read them back.
The FPU/SSE state is saved in the 512-byte FXSAVE layout the sigcontext's
``fpstate`` pointer refers to.
"""
from __future__ import annotations

import struct
from typing import Tuple

# sigcontext register order (x86_64) as indices into cpu.regs.
_SC64_REGS = [8, 9, 10, 11, 12, 13, 14, 15, 7, 6, 5, 3, 2, 0, 1, 4]
_SC64 = struct.Struct("<16QQQHHHHQQQQQ64x")   # regs, rip, eflags, cs gs fs ss, err trapno oldmask cr2 fpstate
# i386 sigcontext: gs fs es ds edi esi ebp esp ebx edx ecx eax trapno err eip cs eflags esp_at_signal ss fpstate
# oldmask cr2.
_SC32 = struct.Struct("<22I")
_SC32_REGS = [7, 6, 5, 4, 3, 2, 1, 0]  # edi esi ebp esp ebx edx ecx eax
SIGINFO_SIZE = 128
UC64_SIZE = 304   # uc_flags, uc_link, stack_t, sigcontext, sigset
UC32_SIZE = 116
FPSTATE_SIZE = 512
# eflags bits a sigreturn may change (the kernel's FIX_EFLAGS).
FIX_EFLAGS = 0x40DD5


def pack_siginfo(sig: int, code: int, addr: int = 0, pid: int = 0, uid: int = 0, bits: int = 64) -> bytes:
    if addr or code > 0:
        tail = struct.pack("<Q" if bits == 64 else "<I", addr)
    else:
        tail = struct.pack("<iI", pid, uid)
    head = struct.pack("<iii", sig, 0, code) + (b"\0" * 4 if bits == 64 else b"")
    return (head + tail).ljust(SIGINFO_SIZE, b"\0")


def _save_fp(cpu, mem, addr: int) -> None:
    if hasattr(cpu, "fxsave"):
        cpu.fxsave(addr)
    else:
        mem.write(addr, bytes(FPSTATE_SIZE))


def _restore_fp(cpu, mem, addr: int) -> None:
    if addr and hasattr(cpu, "fxrstor"):
        cpu.fxrstor(addr)


def setup_rt_frame64(cpu, mem, sig: int, handler: int, restorer: int, oldmask: int,
                     info: bytes, sp: int, altstack: Tuple[int, int, int]) -> None:
    """Build an x86_64 rt_sigframe below ``sp`` and enter ``handler``."""
    regs = cpu.regs
    sp -= 128  # the red zone of the interrupted code
    fp = (sp - FPSTATE_SIZE) & ~63
    frame = ((fp - (8 + UC64_SIZE + SIGINFO_SIZE)) & ~15) - 8
    _save_fp(cpu, mem, fp)
    sc = _SC64.pack(*[regs[i] & 0xFFFFFFFFFFFFFFFF for i in _SC64_REGS], cpu.rip,
                    cpu.get_eflags(), 0x33, 0, 0, 0x2B, 0, getattr(cpu, "trapno", 0),
                    oldmask & 0xFFFFFFFFFFFFFFFF, getattr(cpu, "fault_addr", 0) if sig in (7, 11) else 0, fp)
    ss_sp, ss_flags, ss_size = altstack
    uc = struct.pack("<QQQi4xQ", 0, 0, ss_sp, ss_flags, ss_size) + sc + struct.pack("<Q", oldmask)
    mem.write(frame, struct.pack("<Q", restorer) + uc + info)
    regs[7] = sig
    regs[6] = frame + 8 + UC64_SIZE
    regs[2] = frame + 8
    regs[0] = 0
    regs[4] = frame
    cpu.rip = handler
    cpu.set_eflags(cpu.get_eflags() & ~0x500)  # clear DF and TF


def restore_rt_frame64(cpu, mem) -> int:
    """rt_sigreturn on x86_64: restore the interrupted state; returns the saved mask."""
    frame = cpu.regs[4] - 8
    uc = frame + 8
    vals = _SC64.unpack(mem.read(uc + 40, _SC64.size))
    regs = cpu.regs
    for i, r in enumerate(_SC64_REGS):
        regs[r] = vals[i]
    cpu.rip = vals[16]
    cpu.set_eflags((cpu.get_eflags() & ~FIX_EFLAGS) | (vals[17] & FIX_EFLAGS))
    _restore_fp(cpu, mem, vals[26])
    return struct.unpack("<Q", mem.read(uc + 40 + _SC64.size, 8))[0]


def _sc32(cpu, fp: int, oldmask: int, sig: int) -> bytes:
    r = cpu.regs
    segs = getattr(cpu, "segs", [0x2B, 0x23, 0x2B, 0x2B, 0, 0])
    vals = [segs[5], segs[4], segs[0], segs[3]] + [r[i] & 0xFFFFFFFF for i in _SC32_REGS]
    vals += [getattr(cpu, "trapno", 0), 0, cpu.rip & 0xFFFFFFFF, segs[1], cpu.get_eflags() & 0xFFFFFFFF,
             r[4] & 0xFFFFFFFF, segs[2], fp, oldmask & 0xFFFFFFFF,
             getattr(cpu, "fault_addr", 0) & 0xFFFFFFFF if sig in (7, 11) else 0]
    return _SC32.pack(*vals)


def _restore_sc32(cpu, mem, addr: int) -> None:
    vals = _SC32.unpack(mem.read(addr, _SC32.size))
    regs = cpu.regs
    for i, r in enumerate(_SC32_REGS):
        regs[r] = vals[4 + i]
    cpu.rip = vals[14]
    cpu.set_eflags((cpu.get_eflags() & ~FIX_EFLAGS) | (vals[16] & FIX_EFLAGS))
    _restore_fp(cpu, mem, vals[19])


def setup_frame32(cpu, mem, sig: int, handler: int, restorer: int, oldmask: int, sp: int) -> None:
    """i386 sigframe (handler without SA_SIGINFO): pretcode, sig, sigcontext, extramask."""
    fp = (sp - FPSTATE_SIZE) & ~63
    size = 8 + _SC32.size + 4
    frame = ((fp - size) & ~15) - 4
    _save_fp(cpu, mem, fp)
    mem.write(frame, struct.pack("<II", restorer, sig) + _sc32(cpu, fp, oldmask, sig)
              + struct.pack("<I", (oldmask >> 32) & 0xFFFFFFFF))
    _enter32(cpu, frame, handler, sig, 0, 0)


def restore_frame32(cpu, mem) -> int:
    """sigreturn (i386): the handler's return popped pretcode, __restore popped sig."""
    frame = (cpu.regs[4] - 8) & 0xFFFFFFFF
    sc = frame + 8
    _restore_sc32(cpu, mem, sc)
    lo = struct.unpack("<I", mem.read(sc + 21 * 4 - 4, 4))[0]
    hi = struct.unpack("<I", mem.read(sc + _SC32.size, 4))[0]
    return lo | hi << 32


def setup_rt_frame32(cpu, mem, sig: int, handler: int, restorer: int, oldmask: int,
                     info: bytes, sp: int, altstack: Tuple[int, int, int]) -> None:
    """i386 rt_sigframe: pretcode, sig, &info, &uc, info, ucontext."""
    fp = (sp - FPSTATE_SIZE) & ~63
    size = 16 + SIGINFO_SIZE + UC32_SIZE
    frame = ((fp - size) & ~15) - 4
    _save_fp(cpu, mem, fp)
    info_addr = frame + 16
    uc_addr = info_addr + SIGINFO_SIZE
    ss_sp, ss_flags, ss_size = altstack
    uc = struct.pack("<IIIiI", 0, 0, ss_sp, ss_flags, ss_size) + _sc32(cpu, fp, oldmask, sig) \
        + struct.pack("<Q", oldmask)
    mem.write(frame, struct.pack("<IIII", restorer, sig, info_addr, uc_addr) + info + uc)
    _enter32(cpu, frame, handler, sig, info_addr, uc_addr)


def restore_rt_frame32(cpu, mem) -> int:
    frame = (cpu.regs[4] - 4) & 0xFFFFFFFF
    uc = frame + 16 + SIGINFO_SIZE
    _restore_sc32(cpu, mem, uc + 20)
    return struct.unpack("<Q", mem.read(uc + 20 + _SC32.size, 8))[0]


def _enter32(cpu, frame: int, handler: int, sig: int, info: int, uc: int) -> None:
    regs = cpu.regs
    regs[4] = frame
    regs[0] = sig          # regparm(3) handlers take their arguments in registers too
    regs[2] = info
    regs[1] = uc
    cpu.rip = handler
    cpu.set_eflags(cpu.get_eflags() & ~0x500)
