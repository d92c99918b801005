"""The monitor's view of the system-mode x86 CPUs: ``info tlb``, ``info mem``,
``$reg`` in HMP expressions (QEMU's target/i386 monitor_defs), and the CPU
methods ``x``/``x /i`` use (debug reads through the page tables)."""
from __future__ import annotations

from typing import Any, Callable, List, Optional

from pyqemu.target.i386.sysemu import cpu as c

_REG32 = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
_REG64 = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
          "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
_SEGS = ("es", "cs", "ss", "ds", "fs", "gs")


def register_value(cpu, name: str) -> Optional[int]:
    """The value of ``$name`` (None when the CPU has no such register)."""
    name = name.lower()
    if name == "pc":
        return (cpu.seg_base[c.R_CS] + cpu.rip) & ((1 << 64) - 1)
    if name in ("eip", "rip"):
        return cpu.rip
    if name == "eflags":
        return cpu.get_eflags()
    if name in _REG32:
        return cpu.regs[_REG32.index(name)] & 0xffffffff
    if name in _REG64:
        return cpu.regs[_REG64.index(name)]
    if name in ("sp", "fp"):
        return cpu.regs[4 if name == "sp" else 5]
    if name in _SEGS:
        return cpu.segs[_SEGS.index(name)]
    if name in ("cr0", "cr2", "cr3", "cr4"):
        return cpu.cr[int(name[2])]
    return None


def read_virtual(cpu, addr: int, length: int) -> Optional[bytes]:
    """Bytes at linear address ``addr`` through the page tables, or None when
    a page is not mapped (no A/D bits, no fault, as QEMU's debug access)."""
    from pyqemu.target.i386.sysemu.mmu import get_phys_debug
    out = bytearray()
    while length > 0:
        phys = get_phys_debug(cpu, addr)
        if phys is None:
            return None
        n = min(length, 4096 - (addr & 0xfff))
        out += cpu.as_.read_bytes(phys, n)
        addr += n
        length -= n
    return bytes(out)


def disassemble(cpu, addr: int, count: int, physical: bool) -> str:
    """``x /Ni`` and ``xp /Ni`` in the CPU's current code size."""
    from pyqemu.target.i386.disas import disassemble as dis

    def read(a: int, n: int) -> bytes:
        # all n bytes or an exception (the disassembler's contract)
        if physical:
            if not cpu.as_.is_accessible(a, n):
                raise ValueError("unassigned")
            return cpu.as_.read_bytes(a, n)
        data = read_virtual(cpu, a, n)
        if data is None:
            raise ValueError("unmapped")
        return data
    return dis(read, addr, count, cpu.mode)


def install(get_cpu: Callable[[], Any]) -> None:
    """Register info tlb/mem and the $reg hook for the machine's CPUs."""
    from pyqemu.monitor.expr import set_register_hook
    from pyqemu.monitor.hmp_table import register_info
    from pyqemu.target.i386.sysemu import mmu

    def info(fn: Callable[[Any], str]) -> Callable[[Any, Any], None]:
        def handler(mon: Any, args: Any) -> None:
            cpu = get_cpu()
            mon.printf("No CPU available\n" if cpu is None else fn(cpu))
        return handler
    register_info("tlb", "", "", "show virtual to physical memory mappings", info(mmu.info_tlb))
    register_info("mem", "", "", "show the active virtual memory mappings", info(mmu.info_mem))

    def reg(name: str) -> Optional[int]:
        cpu = get_cpu()
        return None if cpu is None else register_value(cpu, name)
    set_register_hook(reg)


__all__: List[str] = ["disassemble", "install", "read_virtual", "register_value"]
