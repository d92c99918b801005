"""x86 disassembler: the AT&T text QEMU 7.2 (capstone) prints for -d in_asm
and x /i.  The expected strings are what qemu-x86_64/qemu-system-x86_64 print
for these encodings."""
import pytest

from pyqemu.target.i386.disas import decode, disas_lines, disassemble, in_asm_block

CASES = [
    # (mode, hex, pc, mnemonic, operands)
    (64, "31ed", 0x40ebf0, "xorl", "%ebp, %ebp"),
    (64, "4883e4f0", 0, "andq", "$0xfffffffffffffff0, %rsp"),
    (64, "4883c0ff", 0, "addq", "$-1, %rax"),
    (64, "83c8ff", 0, "orl", "$0xffffffff, %eax"),
    (64, "48c7c778c44e00", 0, "movq", "$0x4ec478, %rdi"),
    (64, "67e8ef160000", 0x40ec0b, "callq", "0x410300"),
    (64, "488d7cc208", 0, "leaq", "8(%rdx, %rax, 8), %rdi"),
    (64, "488d440720", 0, "leaq", "0x20(%rdi, %rax), %rax"),
    (64, "8d04c5f8ffffff", 0, "leal", "-8(, %rax, 8), %eax"),
    (64, "48893d60b51d00", 0, "movq", "%rdi, 0x1db560(%rip)"),
    (64, "64488b042528000000", 0, "movq", "%fs:0x28, %rax"),
    (64, "0f1f440000", 0, "nopl", "(%rax, %rax)"),
    (64, "660fefc0", 0, "pxor", "%xmm0, %xmm0"),
    (64, "f30f6f0c0e", 0, "movdqu", "(%rsi, %rcx), %xmm1"),
    (64, "660f3a63c11a", 0, "pcmpistri", "$0x1a, %xmm1, %xmm0"),
    (64, "f20fc2e501", 0, "cmpltsd", "%xmm5, %xmm4"),
    (64, "f2480f2ac0", 0, "cvtsi2sdq", "%rax, %xmm0"),
    (64, "f3ab", 0, "rep stosl", "%eax, (%rdi)"),
    (64, "f2ae", 0, "repne scasb", "(%rdi), %al"),
    (64, "f00fb10a", 0, "lock cmpxchgl", "%ecx, (%rdx)"),
    (64, "f27d08", 0x408001 - 3 - 8, "bnd jge", "0x408001"),
    (64, "ffe0", 0, "jmpq", "*%rax"),
    (64, "f30f1efa", 0, "endbr64", ""),
    (64, "0f01f9", 0, "rdtscp", ""),
    (64, "c4e2f0f3d1", 0, "blsmskq", "%rcx, %rcx"),
    (64, "d9c9", 0, "fxch", "%st(1)"),
    (64, "dcc1", 0, "fadd", "%st(0), %st(1)"),
    (64, "db2dea3b0f00", 0, "fldt", "0xf3bea(%rip)"),
    (64, "df3c24", 0, "fistpll", "(%rsp)"),
    (64, "dfe0", 0, "fnstsw", "%ax"),
    (32, "e8dcffffff", 0x400000, "calll", "0x3fffe1"),
    (32, "f3a5", 0, "rep movsl", "(%esi), %es:(%edi)"),
    (32, "9a000000000000", 0, "lcalll", "$0x0:$0x0"),
    (32, "0f22d8", 0, "movl", "%eax, %cr3"),
    (32, "0f0110", 0, "lgdtl", "(%eax)"),
    (16, "ea5be000f0", 0xfffffff0, "ljmpw", "$0xf000:$0xe05b"),
    (16, "2e66833ec86100", 0xfe05b, "cmpl", "$0, %cs:0x61c8"),
    (16, "0f8536f0", 0xfe062, "jne", "0xd09c"),
    (16, "31d2", 0, "xorw", "%dx, %dx"),
    (16, "8b4206", 0, "movw", "6(%bp, %si), %ax"),
]


@pytest.mark.parametrize("mode,hexcode,pc,mnem,ops", CASES)
def test_decode(mode, hexcode, pc, mnem, ops):
    code = bytes.fromhex(hexcode)
    assert decode(code + b"\x90" * 4, pc, mode) == (len(code), mnem, ops)


def test_invalid_in_64bit_mode_is_a_byte():
    assert decode(b"\x06", 0, 64) is None
    assert disas_lines(b"\x90\x06", 0x401000, 64) == (
        "0x00401000:  90                       nop      \n"
        "0x00401001:  06                       .byte    0x06\n")


def test_truncated_instruction_does_not_raise():
    assert decode(b"\x48\x8b", 0, 64) is None
    assert decode(b"", 0, 64) is None


def test_long_encoding_continues_on_next_line():
    text = disas_lines(bytes.fromhex("64488b042528000000"), 0x498437, 64)
    assert text == ("0x00498437:  64 48 8b 04 25 28 00 00  movq     %fs:0x28, %rax\n"
                    "0x0049843f:  00\n")


def test_in_asm_block_layout():
    text = in_asm_block(0xfffffff0, bytes.fromhex("ea5be000f0"), 16)
    assert text == ("----------------\nIN: \n"
                    "0xfffffff0:  ea 5b e0 00 f0           ljmpw    $0xf000:$0xe05b\n\n")


def test_disassemble_for_the_monitor_reads_like_qemu():
    mem = bytes.fromhex("2e66833ec861000f8536f031d2") + bytes(0x400)

    def read(addr, n):
        off = addr - 0xfe05b
        if off < 0 or off + n > len(mem):
            raise OSError("unmapped")
        return mem[off:off + n]

    text = disassemble(read, 0xfe05b, 3, 16)
    assert text == ("0x000fe05b:  2e 66 83 3e c8 61 00     cmpl     $0, %cs:0x61c8\n"
                    "0x000fe062:  0f 85 36 f0              jne      0xd09c\n"
                    "0x000fe066:  31 d2                    xorw     %dx, %dx\n")


def test_disassemble_stops_when_a_refill_fails():
    # real mode reset vector: 16 bytes below 4 GiB are readable, the refill
    # after the first instruction crosses 4 GiB and fails (QEMU prints this)
    rom = bytes.fromhex("ea5be000f0") + bytes(11)

    def read(addr, n):
        if addr < 0xfffffff0 or addr + n > 1 << 32:
            raise OSError("unassigned")
        return rom[addr - 0xfffffff0:addr - 0xfffffff0 + n]

    assert disassemble(read, 0xfffffff0, 3, 16) == (
        "0xfffffff0:  ea 5b e0 00 f0           ljmpw    $0xf000:$0xe05b\n"
        "0xfffffff5: unable to read memory\n")
    assert disassemble(read, 0x1000, 2, 16) == "0x00001000: unable to read memory\n"


def test_random_bytes_never_raise():
    import random
    rnd = random.Random(7)
    for _ in range(3000):
        code = bytes(rnd.randrange(256) for _ in range(16))
        for mode in (16, 32, 64):
            r = decode(code, 0x1000, mode)
            assert r is None or 1 <= r[0] <= 15
