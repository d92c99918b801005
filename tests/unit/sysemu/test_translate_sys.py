"""The translator in system mode on a bare CPU over RAM (hand-encoded code,
no firmware): 16-bit code and addressing with segment bases, SS for BP-based
operands and a 16-bit stack that wraps, 0x66 in 16-bit code, faults delivered
through the IVT, a hardware interrupt after the STI shadow waking HLT, port
I/O, and self-modifying code."""
from __future__ import annotations

from pyqemu.exec import memory as m
from pyqemu.exec.cpu_loop import cpu_exec_sys
from pyqemu.target.i386.cpu import EXCP_HLT
from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu.cpu import X86SysCPU


def _cpu(code: bytes, at: int = 0x7c00) -> X86SysCPU:
    m.memory_init()
    ram = m.memory_region_init_ram(None, "pc.ram", 1 << 20)
    m.get_system_memory().add_subregion(0, ram)
    cpu = X86SysCPU(m.address_space_memory())
    cpu.io_as = m.address_space_io()
    cpu.as_.write_bytes(at, code)
    cpu.segs[c.R_CS], cpu.seg_base[c.R_CS] = 0, 0
    cpu.rip = at
    cpu.regs[4] = 0x7000
    return cpu


def _run(cpu: X86SysCPU) -> None:
    for _ in range(50):
        if cpu_exec_sys(cpu, 100000) == EXCP_HLT:
            return
    raise AssertionError("the code did not reach HLT")


def _ivt(cpu: X86SysCPU, vector: int, handler: int) -> None:
    cpu.as_.write(vector * 4, 2, handler)
    cpu.as_.write(vector * 4 + 2, 2, 0)


def test_real_mode_segments_stack_and_operand_size():
    code = bytes.fromhex(
        "b80010"        # mov ax, 0x1000
        "8ed0"          # mov ss, ax
        "bc0000"        # mov sp, 0          (the push wraps to 0xfffe)
        "89e5"          # mov bp, sp
        "683412"        # push 0x1234
        "8b46fe"        # mov ax, [bp-2]     (SS: 0x1fffe)
        "bb0020"        # mov bx, 0x2000
        "8edb"          # mov ds, bx
        "a31000"        # mov [0x10], ax     (DS: 0x20010)
        "66b878563412"  # mov eax, 0x12345678
        "66a31200"      # mov [0x12], eax
        "f4")           # hlt
    cpu = _cpu(code)
    _run(cpu)
    as_ = cpu.as_
    assert as_.read(0x1fffe, 2) == 0x1234
    assert cpu.regs[4] == 0xfffe
    assert as_.read(0x20010, 2) == 0x1234
    assert as_.read(0x20012, 4) == 0x12345678
    assert cpu.regs[0] == 0x12345678


def test_fault_through_the_ivt_and_iret():
    code = bytes.fromhex(
        "0f0b"          # ud2 -> #UD (vector 6)
        "c706000500be"  # mov word [0x500], 0xbe00
        "f4")
    handler = bytes.fromhex(
        "89e5"          # mov bp, sp
        "83460002"      # add word [bp], 2   (skip the ud2; SS-based)
        "c706020501ca"  # mov word [0x502], 0xca01
        "cf")           # iret
    cpu = _cpu(code)
    cpu.as_.write_bytes(0x7d00, handler)
    _ivt(cpu, 6, 0x7d00)
    _run(cpu)
    assert cpu.as_.read(0x502, 2) == 0xca01
    assert cpu.as_.read(0x500, 2) == 0xbe00
    assert cpu.regs[4] == 0x7000


def test_hardware_interrupt_after_the_sti_shadow_wakes_hlt():
    code = bytes.fromhex(
        "fb"            # sti (the next instruction still runs with interrupts blocked)
        "f4"            # hlt: woken by the interrupt, which returns after it
        "a10005"        # mov ax, [0x500]
        "a30205"        # mov [0x502], ax
        "fa"            # cli
        "f4")
    handler = bytes.fromhex(
        "c7060005aa55"  # mov word [0x500], 0x55aa
        "cf")
    cpu = _cpu(code)
    cpu.as_.write_bytes(0x7d00, handler)
    _ivt(cpu, 0x20, 0x7d00)
    pending = [0x20]

    def get_irq() -> int:
        cpu.intr_level = False
        return pending.pop() if pending else -1
    cpu.get_irq = get_irq
    cpu.intr_level = cpu.interrupt_request = True
    _run(cpu)
    assert not pending
    assert cpu.as_.read(0x502, 2) == 0x55aa


def test_port_io():
    seen = []
    ops = m.MemoryRegionOps(lambda off, size: 0x5a + off,
                            lambda off, v, size: seen.append((off, v, size)))
    code = bytes.fromhex(
        "e481"          # in al, 0x81
        "88c3"          # mov bl, al
        "ba8000"        # mov dx, 0x80
        "b8cdab"        # mov ax, 0xabcd
        "ef"            # out dx, ax
        "f4")
    cpu = _cpu(code)
    m.get_system_io().add_subregion(0x80, m.memory_region_init_io(None, ops, "probe", 4))
    _run(cpu)
    assert cpu.regs[3] & 0xff == 0x5b
    assert seen == [(0, 0xabcd, 2)]


def test_self_modifying_code_takes_effect_at_the_next_block():
    code = bytes.fromhex(
        "e81a00"        # 7c00: call 7c20
        "a20006"        # 7c03: mov [0x600], al
        "c606217c42"    # 7c06: mov byte [0x7c21], 0x42   (patch the immediate)
        "e80f00"        # 7c0b: call 7c20
        "a20106"        # 7c0e: mov [0x601], al
        "f4")           # 7c11: hlt
    code = code.ljust(0x20, b"\x90") + bytes.fromhex("b011c3")   # 7c20: mov al, 0x11; ret
    cpu = _cpu(code)
    _run(cpu)
    assert cpu.as_.read(0x600, 1) == 0x11
    assert cpu.as_.read(0x601, 1) == 0x42


def test_amd_prefetchw_is_a_hint():
    # Linux's slab allocator patches in prefetchw (0F 0D /1): it must not #UD
    code = bytes.fromhex(
        "0f0d0e0005"    # prefetchw [0x500]
        "c606100501"    # mov byte [0x510], 1
        "f4")
    cpu = _cpu(code)
    _run(cpu)
    assert cpu.as_.read(0x510, 1) == 1
