"""cpu_exec on hand-assembled x86-64 code: exceptions, stepping, SMC, interrupts."""
from __future__ import annotations

import threading

from pyqemu.exec.cpu_loop import cpu_exec
from pyqemu.exec.guest_memory import PROT_EXEC, PROT_READ, PROT_WRITE, GuestMemory
from pyqemu.target.i386 import cpu as x86

CODE = 0x400000
DATA = 0x600000


def make(code: bytes, mode: int = 64):
    mem = GuestMemory()
    mem.map(CODE, 0x2000, PROT_READ | PROT_WRITE | PROT_EXEC, code)
    mem.map(DATA, 0x1000, PROT_READ | PROT_WRITE)
    cpu = x86.X86CPU(mem, mode=mode)
    cpu.rip = CODE
    cpu.regs[4] = DATA + 0x800
    return cpu


MOV_RAX_1 = bytes.fromhex("48c7c001000000")        # mov rax, 1
SYSCALL = bytes.fromhex("0f05")


def test_page_fault_is_precise():
    # mov rax,1 ; mov rbx,[0x1000] ; mov rax,2
    code = MOV_RAX_1 + bytes.fromhex("488b1c2500100000") + bytes.fromhex("48c7c002000000")
    cpu = make(code)
    assert cpu_exec(cpu) == x86.EXCP_PAGE_FAULT
    assert cpu.fault_addr == 0x1000 and not cpu.fault_is_write
    assert cpu.rip == CODE + 7 and cpu.regs[0] == 1


def test_faulting_push_leaves_rsp_alone():
    # mov rsp, 0x1008 ; push rax  (the store faults: rsp must keep its value)
    code = bytes.fromhex("48c7c408100000") + bytes.fromhex("50")
    cpu = make(code)
    assert cpu_exec(cpu) == x86.EXCP_PAGE_FAULT
    assert cpu.fault_is_write and cpu.regs[4] == 0x1008 and cpu.rip == CODE + 7


def test_divide_error_invalid_opcode_breakpoint_syscall():
    cpu = make(bytes.fromhex("31c9") + bytes.fromhex("f7f1"))       # xor ecx,ecx ; div ecx
    assert cpu_exec(cpu) == x86.EXCP_DIVIDE and cpu.rip == CODE + 2
    cpu = make(bytes.fromhex("90") + bytes.fromhex("0f0b"))         # nop ; ud2
    assert cpu_exec(cpu) == x86.EXCP_INVALID_OPCODE and cpu.rip == CODE + 1
    cpu = make(bytes.fromhex("cc"))                                 # int3: rip after it
    assert cpu_exec(cpu) == x86.EXCP_BREAKPOINT and cpu.rip == CODE + 1
    cpu = make(MOV_RAX_1 + SYSCALL)
    assert cpu_exec(cpu) == x86.EXCP_SYSCALL
    assert cpu.rip == CODE + 9 and cpu.syscall_kind == "syscall" and cpu.regs[0] == 1
    cpu = make(bytes.fromhex("cd80"), mode=32)                      # int 0x80
    assert cpu_exec(cpu) == x86.EXCP_SYSCALL and cpu.syscall_kind == "int80"
    cpu = make(bytes.fromhex("fa"))                                 # cli: privileged
    assert cpu_exec(cpu) == x86.EXCP_GPF and cpu.rip == CODE


def test_single_step_and_breakpoints():
    code = MOV_RAX_1 + bytes.fromhex("48ffc0") * 3 + SYSCALL          # inc rax x3
    cpu = make(code)
    cpu.single_step = True
    assert cpu_exec(cpu) == x86.EXCP_DEBUG and cpu.rip == CODE + 7
    assert cpu_exec(cpu) == x86.EXCP_DEBUG and cpu.rip == CODE + 10 and cpu.regs[0] == 2
    cpu.single_step = False
    cpu.breakpoints.add(CODE + 16)
    assert cpu_exec(cpu) == x86.EXCP_DEBUG and cpu.rip == CODE + 16 and cpu.regs[0] == 4
    cpu.breakpoints.clear()
    assert cpu_exec(cpu) == x86.EXCP_SYSCALL and cpu.rip == CODE + 18
    assert cpu.insn_count == 5


def test_self_modifying_code():
    # The first pass runs "mov eax, 5" at L, then rewrites its immediate to 7
    # and jumps back: the second pass must see the new code.
    #   L:   mov eax, 5          (b8 05 00 00 00)   at CODE
    #        cmp ebx, 0 ; jne done
    #        inc ebx
    #        mov byte [CODE+1], 7
    #        jmp L
    #   done: syscall
    code = bytes.fromhex("b805000000") + bytes.fromhex("83fb00") + bytes.fromhex("750c") + \
        bytes.fromhex("ffc3") + bytes.fromhex("c604250100400007") + bytes.fromhex("ebea") + SYSCALL
    cpu = make(code)
    assert cpu_exec(cpu) == x86.EXCP_SYSCALL
    assert cpu.regs[0] == 7 and cpu.regs[3] == 1


def test_interrupt_request_stops_an_endless_loop():
    cpu = make(bytes.fromhex("ebfe"))                               # jmp .
    t = threading.Timer(0.2, lambda: setattr(cpu, "interrupt_request", True))
    t.start()
    try:
        assert cpu_exec(cpu) == x86.EXCP_INTERRUPT
    finally:
        t.cancel()
    assert cpu.rip == CODE and cpu.insn_count > 100


def test_loop_inside_one_block_counts_instructions():
    # mov ecx, 1000 ; L: add rax, rcx ; dec ecx ; jnz L ; syscall
    code = bytes.fromhex("b9e8030000") + bytes.fromhex("4801c8") + bytes.fromhex("ffc9") + \
        bytes.fromhex("75f9") + SYSCALL
    cpu = make(code)
    assert cpu_exec(cpu) == x86.EXCP_SYSCALL
    assert cpu.regs[0] == 1000 * 1001 // 2
    assert cpu.insn_count == 1 + 3 * 1000 + 1


def test_eflags_materialise_and_restore():
    cpu = make(bytes.fromhex("4883f801") + SYSCALL)                 # cmp rax, 1 (rax=0)
    assert cpu_exec(cpu) == x86.EXCP_SYSCALL
    f = cpu.get_eflags()
    assert f & 1 and f & 0x80 and not f & 0x40          # CF, SF set, ZF clear
    cpu.set_eflags(0x246)
    assert cpu.get_eflags() & 0x8d5 == 0x44


def test_fxsave_roundtrip():
    cpu = make(b"")
    cpu.set_xmm(3, (1 << 127) | 5)
    cpu.mxcsr = 0x3f80
    cpu.fxsave(DATA)
    other = x86.X86CPU(cpu.mem)
    other.fxrstor(DATA)
    assert other.get_xmm(3) == (1 << 127) | 5 and other.mxcsr == 0x3f80
    assert other.fpuc == 0x37f


def test_d_logging_items(tmp_path):
    from pyqemu.util import log
    path = tmp_path / "log.txt"
    old = log.get_mask()
    mask, _ = log.parse_items("in_asm,op,op_opt,out_asm,exec,cpu")
    log.set_mask(mask)
    log.set_file(str(path))
    try:
        cpu = make(MOV_RAX_1 + bytes.fromhex("48ffc0") + SYSCALL)
        assert cpu_exec(cpu) == x86.EXCP_SYSCALL and cpu.regs[0] == 2
    finally:
        log.set_mask(old)
        log.set_file(None)
    text = path.read_text()
    assert "IN: \n0x00400000:  48 c7 c0 01 00 00 00     movq     $1, %rax\n" in text
    assert "OP:\n insn_start $0x400000" in text
    assert "OP after optimization and liveness analysis:" in text
    assert "OUT: [size=" in text and "def tb(env" in text
    assert "Trace 0: 0x0 [" in text and "RIP=0000000000400000" in text
