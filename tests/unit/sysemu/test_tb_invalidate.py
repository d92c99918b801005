"""Translated blocks in system mode: a store to a code page drops only the
blocks whose bytes it overwrites (data next to code, a patched site, blocks
spanning two pages), from any CPU, self-modifying code still takes effect,
and EIP lookups of code on global pages survive a CR3 load while a remapped
non-global page runs its new code."""
from __future__ import annotations

from pyqemu.exec import memory as m
from pyqemu.exec.cpu_loop import cpu_exec_sys
from pyqemu.target.i386.cpu import EXCP_HLT
from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu import mmu
from pyqemu.target.i386.sysemu.control import write_cr, write_cr0
from pyqemu.target.i386.sysemu.cpu import X86SysCPU
from pyqemu.target.i386.sysemu.translator import get_sys_translator, sys_flags

from sysemu_helpers import enter_pm

P, RW, G = 1, 2, 0x100


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


def _run(cpu: X86SysCPU, rip: int = -1) -> None:
    if rip >= 0:
        cpu.rip = rip
    cpu.halted = False
    for _ in range(50):
        if cpu_exec_sys(cpu, 100000) == EXCP_HLT:
            return
    raise AssertionError("the code did not reach HLT")


def _cache(cpu: X86SysCPU):
    return get_sys_translator(cpu).cache


def test_store_next_to_code_keeps_the_page_blocks():
    code = bytes.fromhex(
        "e81d00"        # 7c00: call 7c20
        "c606007d55"    # 7c03: mov byte [0x7d00], 0x55   (same page, no code there)
        "e81500"        # 7c08: call 7c20
        "f4")           # 7c0b: hlt
    code = code.ljust(0x20, b"\x90") + bytes.fromhex("b011c3")   # 7c20: mov al, 0x11; ret
    cpu = _cpu(code)
    _run(cpu)
    cache = _cache(cpu)
    made = cache.translations
    assert cache.invalidations == 0
    assert 0x7000 in cpu.tlb.code_pages          # stores there still reach the hook
    _run(cpu, 0x7c00)
    assert cache.translations == made and cache.invalidations == 0
    assert cpu.as_.read(0x7d00, 1) == 0x55 and cpu.regs[0] & 0xff == 0x11


def test_patched_call_target_only_that_block_is_dropped():
    code = bytes.fromhex(
        "b90500"        # 7c00: mov cx, 5
        "e83a00"        # 7c03: call 7c40
        "00060006"      # 7c06: add [0x600], al
        "fe06417c"      # 7c0a: inc byte [0x7c41]      (the immediate of 7c40)
        "49"            # 7c0e: dec cx
        "75f2"          # 7c0f: jnz 7c03
        "f4")           # 7c11: hlt
    code = code.ljust(0x40, b"\x90") + bytes.fromhex("b001c3")   # 7c40: mov al, 1; ret
    cpu = _cpu(code)
    _run(cpu)
    assert cpu.as_.read(0x600, 1) == 1 + 2 + 3 + 4 + 5
    cache = _cache(cpu)
    # the patching loop on the same page stays translated: one block per patch
    assert cache.invalidations == 5
    assert cache.pc_map(0, sys_flags(cpu)).get(0x7c06) is not None


def test_store_into_the_running_block_takes_effect_next_time():
    code = bytes.fromhex(
        "b90200"        # 7c00: mov cx, 2
        "bf0006"        # 7c03: mov di, 0x600
        "c6060c7c22"    # 7c06: mov byte [0x7c0c], 0x22   (the next instruction's immediate)
        "b011"          # 7c0b: mov al, 0x11
        "aa"            # 7c0d: stosb
        "e2f6"          # 7c0e: loop 7c06
        "f4")           # 7c10: hlt
    cpu = _cpu(code)
    _run(cpu)
    assert cpu.as_.read(0x601, 1) == 0x22


def test_patched_invalid_instruction_ending_a_block():
    # the decoder rejects ARPL in real mode: the block at 7c00 ends with #UD
    # at 7c02 and depends on those bytes, which the #UD handler patches
    code = bytes.fromhex(
        "b011"          # 7c00: mov al, 0x11
        "6307"          # 7c02: arpl [bx], ax -> #UD (patched to two NOPs)
        "a20006"        # 7c04: mov [0x600], al
        "fe062006"      # 7c07: inc byte [0x620]
        "803e200602"    # 7c0b: cmp byte [0x620], 2
        "75ee"          # 7c10: jne 7c00
        "f4")           # 7c12: hlt
    handler = bytes.fromhex(
        "c706027c9090"  # mov word [0x7c02], 0x9090
        "fe061006"      # inc byte [0x610]
        "cf")           # iret (back to 7c02)
    cpu = _cpu(code)
    cpu.as_.write_bytes(0x8000, handler)
    cpu.as_.write(6 * 4, 2, 0x8000)
    cpu.as_.write(6 * 4 + 2, 2, 0)
    _run(cpu)
    # the second pass through 7c00 runs the patched code: one #UD only
    assert cpu.as_.read(0x610, 1) == 1
    assert cpu.as_.read(0x620, 1) == 2 and cpu.as_.read(0x600, 1) == 0x11


def test_block_spanning_two_pages():
    # the block at 0x7ffc is one instruction whose immediate ends on the next page
    cpu = _cpu(bytes.fromhex("66b878563412" "f4"), at=0x7ffc)
    _run(cpu)
    assert cpu.regs[0] == 0x12345678
    cache = _cache(cpu)
    made = cache.translations
    view = cpu.views[c.MMU_KERNEL_IDX]
    # bytes of both pages next to the block but not in it
    view.store(0x7ff0, 0x90, 1)
    view.store(0x8100, 0x90, 2)
    _run(cpu, 0x7ffc)
    assert cache.translations == made and cache.invalidations == 0
    # the immediate's last byte, on the second page
    view.store(0x8001, 0x9a, 1)
    assert cache.invalidations == 1
    assert 0x7000 not in cpu.tlb.code_pages      # no block left on the first page
    assert 0x8000 in cpu.tlb.code_pages          # the HLT block is still there
    _run(cpu, 0x7ffc)
    assert cpu.regs[0] == 0x9a345678
    assert cache.translations == made + 1
    # dropping every block of both pages gives their stores the fast path back
    view.store(0x7ffe, 0x11, 1)
    view.store(0x8002, 0xf4, 1)
    assert not cpu.tlb.code_pages and not cache.code


def test_store_from_another_cpu_drops_the_blocks_it_overwrites():
    cpu = _cpu(bytes.fromhex("b011" "f4"))          # mov al, 0x11; hlt
    other = X86SysCPU(cpu.as_)
    get_sys_translator(other)       # as cpu_exec_sys does before a CPU runs
    _run(cpu)
    assert cpu.regs[0] & 0xff == 0x11
    # the page holds the first CPU's code: the second CPU's stores reach the hook
    assert 0x7000 in other.tlb.code_pages
    other.views[c.MMU_KERNEL_IDX].store(0x7c01, 0x22, 1)
    assert _cache(cpu).invalidations == 1
    _run(cpu, 0x7c00)
    assert cpu.regs[0] & 0xff == 0x22
    # code translated by the second CPU is dropped by the first one's stores
    other.segs[c.R_CS], other.seg_base[c.R_CS] = 0, 0
    _run(other, 0x7c00)
    assert other.regs[0] & 0xff == 0x22
    cpu.views[c.MMU_KERNEL_IDX].store(0x7c01, 0x33, 1)
    _run(other, 0x7c00)
    assert other.regs[0] & 0xff == 0x33
    # no block left anywhere: both TLBs give the page's stores the fast path back
    cpu.views[c.MMU_KERNEL_IDX].store(0x7c00, 0xb0, 1)
    cpu.views[c.MMU_KERNEL_IDX].store(0x7c02, 0xf4, 1)
    assert not cpu.tlb.code_pages and not other.tlb.code_pages


def _paged_machine(mach, global_page: bool):
    """32-bit paging with two page directories: linear 0x40000 maps to code
    setting EAX=1 under the first and EAX=2 under the second."""
    cpu = mach.cpu
    enter_pm(mach)
    dirs = []
    for pd, pt, code_page in ((0x10000, 0x11000, 0x200000), (0x12000, 0x13000, 0x300000)):
        for i in range(1024):
            mach.w(pt + 4 * i, 4, (i << 12) | P | RW)
        mach.w(pt + 0x40 * 4, 4, code_page | P | RW | (G if global_page else 0))
        mach.w(pd, 4, pt | P | RW)
        dirs.append(pd)
    mach.as_.write_bytes(0x200000, bytes.fromhex("b801000000f4"))   # mov eax, 1; hlt
    mach.as_.write_bytes(0x300000, bytes.fromhex("b802000000f4"))   # mov eax, 2; hlt
    write_cr(cpu, 4, c.CR4_PGE if global_page else 0)
    write_cr(cpu, 3, dirs[0])
    write_cr0(cpu, c.CR0_PE | c.CR0_PG | c.CR0_ET)
    return dirs


def test_cr3_load_runs_the_new_code_of_a_remapped_page(mach):
    cpu = mach.cpu
    first, second = _paged_machine(mach, global_page=False)
    _run(cpu, 0x40000)
    assert cpu.regs[0] == 1
    write_cr(cpu, 3, second)
    assert _cache(cpu).pc_map(0, sys_flags(cpu)).get(0x40000) is None
    _run(cpu, 0x40000)
    assert cpu.regs[0] == 2
    write_cr(cpu, 3, first)
    _run(cpu, 0x40000)
    assert cpu.regs[0] == 1


def test_cr3_load_keeps_the_lookups_of_global_code(mach):
    cpu = mach.cpu
    first, second = _paged_machine(mach, global_page=True)
    _run(cpu, 0x40000)
    assert cpu.regs[0] == 1
    cache = _cache(cpu)
    made = cache.translations
    write_cr(cpu, 3, second)
    # the global TLB entry survives the CR3 load, and so does the block's lookup
    assert cache.pc_map(0, sys_flags(cpu)).get(0x40000) is not None
    _run(cpu, 0x40000)
    assert cpu.regs[0] == 1 and cache.translations == made
    # INVLPG drops the entry: the second directory's code runs
    mmu.invlpg(cpu, 0x40000)
    _run(cpu, 0x40000)
    assert cpu.regs[0] == 2
    # a CR3 load with CR4.PGE clear drops everything: the first mapping again
    write_cr(cpu, 4, 0)
    write_cr(cpu, 3, first)
    _run(cpu, 0x40000)
    assert cpu.regs[0] == 1
