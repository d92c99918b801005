"""Guest programs compiled with gcc: output and exit status equal to native."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(__file__)
SRC = os.path.join(HERE, "..", "..", "..", "src")
pytestmark = pytest.mark.skipif(shutil.which("gcc") is None and not os.environ.get("CI"), reason="needs gcc")


def emulate(prog, mode, tmp_path, *args):
    """Run ``prog`` under pyqemu; ``args`` are emulator options placed before it."""
    entry = "main_x86_64" if mode == 64 else "main_i386"
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC))
    code = "import sys; from pyqemu.cli.user import %s; %s(sys.argv[1:])" % (entry, entry)
    return subprocess.run([sys.executable, "-c", code] + list(args) + [prog], capture_output=True,
                          env=env, timeout=600, cwd=tmp_path)


def build(tmp_path, name, src, *flags):
    out = str(tmp_path / name)
    subprocess.run(["gcc", "-static", "-o", out, src] + list(flags), check=True,
                   capture_output=True)
    return out


def build_c(tmp_path, name, variant):
    """variant: 'static64', 'static32' (x87 floating point), 'pie64' (dynamic, run with -L /),
    'max64' (static, run with -cpu max: glibc picks its SSSE3/SSE4.2 routines)."""
    flags = ["-O2", "-lm"]
    if name == "simd":
        flags.append("-msse3")
    if name == "sse4":
        flags.append("-msse4.2")
    if name == "bmi":
        flags += ["-mbmi", "-mbmi2", "-mlzcnt"]
    if variant == "static32":
        flags.append("-m32")
    out = str(tmp_path / (name + variant))
    cmd = ["gcc"] + ([] if variant == "pie64" else ["-static"]) + \
        ["-o", out, os.path.join(HERE, "progs", name + ".c")] + flags
    subprocess.run(cmd, check=True, capture_output=True)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name,variant", [
    (n, v) for n in ("intops", "fpu", "simd") for v in ("static64", "static32", "pie64")] +
    [("libm", "static32"), ("libm", "static64")] +
    [("intops", "max64"), ("sse4", "max64"), ("bmi", "max64")])
def test_c_programs_match_native(tmp_path, name, variant):
    prog = build_c(tmp_path, name, variant)
    native = subprocess.run([prog], capture_output=True)
    args = {"pie64": ["-L", "/"], "max64": ["-cpu", "max"]}.get(variant, [])
    emu = emulate(prog, 32 if variant == "static32" else 64, tmp_path, *args)
    assert emu.stderr == b""
    assert emu.stdout == native.stdout
    assert emu.returncode == native.returncode


ASM = r"""
.globl _start
_start:
    /* flags after sub/sbb/adc chains, shifts by cl, rotates, bt, bsf/bsr, setcc, cmov */
    xor %ebx, %ebx
    mov $0x7ffffff0, %eax
    mov $0x20, %ecx
    add %ecx, %eax          /* overflow */
    seto %bl
    shl $1, %ebx
    mov $5, %eax
    sub $6, %eax            /* borrow */
    adc $0, %ebx            /* +1 */
    shl $1, %ebx
    mov $3, %cl
    mov $0x81, %edx
    rol %cl, %dl            /* 0x0c, CF=0 */
    setc %al
    or %al, %bl
    shl $8, %ebx
    mov $0x1000, %eax
    bsf %eax, %ecx          /* 12 */
    or %ecx, %ebx
    shl $8, %ebx
    mov $0x1000, %eax
    bsr %eax, %ecx
    bt $12, %eax
    sbb %edx, %edx          /* -1 */
    and $0xf, %edx
    add %edx, %ecx          /* 27 */
    mov $1, %eax
    cmp $27, %ecx
    cmove %ecx, %eax
    or %eax, %ebx
    mov %ebx, %ebp
    /* string ops: rep stosb / rep movsb / repne scasb */
    lea buf, %edi
    mov $16, %ecx
    mov $0x41, %al
    cld
    rep stosb
    movb $0, buf+10
    lea buf, %edi
    mov $100, %ecx
    xor %eax, %eax
    repne scasb
    mov $100, %eax
    sub %ecx, %eax          /* 11 */
    mov %ebp, %ebx
    add %eax, %ebx
    /* write(1, result as 8 hex digits) */
    lea out+8, %edi
    mov $8, %ecx
1:  mov %ebx, %eax
    and $15, %eax
    movzbl hex(%eax), %eax
    dec %edi
    mov %al, (%edi)
    shr $4, %ebx
    loop 1b
#ifdef __x86_64__
    mov $1, %eax
    mov $1, %edi
    lea out(%rip), %rsi
    mov $9, %edx
    syscall
    mov $60, %eax
    mov $5, %edi
    syscall
#else
    mov $0x33, %ecx         /* segment selectors are kept (glibc derives TLS entries) */
    mov %ecx, %gs
    push %gs
    pop %fs
    mov %fs, %eax
    sub $0x33, %eax
    add %eax, out           /* unchanged when the selector round-trips */
    mov $4, %eax
    mov $1, %ebx
    mov $out, %ecx
    mov $9, %edx
    int $0x80
    mov $1, %eax
    mov $5, %ebx
    int $0x80
#endif
.data
hex: .ascii "0123456789abcdef"
out: .ascii "00000000\n"
buf: .space 128
"""


@pytest.mark.parametrize("mode", [64, 32])
def test_asm_flags_and_strings(tmp_path, mode):
    src = tmp_path / "t.S"
    src.write_text(ASM)
    flags = ["-nostdlib", "-no-pie"] + (["-m32"] if mode == 32 else [])
    prog = build(tmp_path, "t%d" % mode, str(src), *flags)
    native = subprocess.run([prog], capture_output=True)
    emu = emulate(prog, mode, tmp_path)
    assert native.returncode == 5
    assert emu.stdout == native.stdout
    assert emu.returncode == native.returncode


MOVBE_RDTSCP = r"""
.globl _start
_start:
    lea val(%rip), %rsi
    movbe (%rsi), %eax
    movbe %eax, 4(%rsi)
    mov 4(%rsi), %ebx
    rdtscp
    mov %ebx, %edi
    shr $24, %edi
    mov $60, %eax
    syscall
.data
val: .long 0x11223344, 0
"""


def test_movbe_and_rdtscp_with_cpu_max(tmp_path):
    src = tmp_path / "m.S"
    src.write_text(MOVBE_RDTSCP)
    prog = build(tmp_path, "m", str(src), "-nostdlib", "-no-pie")
    emu = emulate(prog, 64, tmp_path, "-cpu", "max")
    assert emu.returncode == subprocess.run([prog]).returncode == 0x11
