"""ELF parsing, validation and the initial stack, on the host's own binaries."""
import os
import shutil
import struct
import subprocess

import pytest

from pyqemu.exec.guest_memory import PROT_EXEC, PROT_READ, PROT_WRITE, GuestMemory
from pyqemu.linux_user import loader
from pyqemu.linux_user.elf import EM_386, EM_X86_64, InvalidElf, LoadError, parse_elf, read_program

TRUE = shutil.which("true") or "/bin/true"


def _copy(tmp_path, name, data, mode=0o755):
    p = tmp_path / name
    p.write_bytes(bytes(data))
    os.chmod(p, mode)
    return str(p)


def _load_err(path, bits=64):
    with pytest.raises((LoadError, InvalidElf)) as ei:
        loader.load_program(GuestMemory(), path, [path], [], bits=bits)
    return str(ei.value)


def test_missing_and_not_executable(tmp_path):
    assert _load_err(str(tmp_path / "nope")) == "Error while loading %s: No such file or directory" % (tmp_path / "nope")
    p = _copy(tmp_path, "noexec", open(TRUE, "rb").read(), 0o644)
    assert _load_err(p) == "Error while loading %s: Permission denied" % p
    assert _load_err(str(tmp_path)) == "Error while loading %s: Permission denied" % tmp_path


def test_not_elf_is_exec_format_error(tmp_path):
    for data in (b"", b"abc", b"#!/bin/sh\necho hi\n", b"\x7fELF"):
        p = _copy(tmp_path, "x", data)
        assert _load_err(p) == "Error while loading %s: Exec format error" % p


def test_wrong_arch_class_type(tmp_path):
    good = bytearray(open(TRUE, "rb").read())
    for off, val in ((16, 1), (18, 40), (4, 1), (5, 2)):
        d = bytearray(good)
        d[off] = val
        p = _copy(tmp_path, "bad%d" % off, d)
        assert _load_err(p) == "%s: Invalid ELF image for this architecture" % p
    # A 64-bit program is not an i386 one.
    assert _load_err(TRUE, bits=32) == "%s: Invalid ELF image for this architecture" % TRUE


def test_truncated_and_absurd_headers(tmp_path):
    good = open(TRUE, "rb").read()
    p = _copy(tmp_path, "t64", good[:64])
    assert "Incomplete read of file header" in _load_err(p)
    p = _copy(tmp_path, "t30", good[:30])
    assert _load_err(p) == "Error while loading %s: Exec format error" % p
    d = bytearray(good)
    struct.pack_into("<H", d, 56, 0xFFFF)  # e_phnum
    p = _copy(tmp_path, "phnum", d)
    assert "Invalid ELF image" in _load_err(p)
    # A PT_LOAD whose file range runs past the end of the file.
    img = parse_elf(TRUE, good, EM_X86_64)
    idx = img.phdrs.index(img.loads[1])
    d = bytearray(good)
    struct.pack_into("<Q", d, img.phoff + idx * 56 + 32, 1 << 40)  # p_filesz
    struct.pack_into("<Q", d, img.phoff + idx * 56 + 40, 1 << 40)  # p_memsz
    p = _copy(tmp_path, "seg", d)
    assert "segment outside the file" in _load_err(p)
    # memsz so large it wraps the address space.
    d = bytearray(good)
    struct.pack_into("<Q", d, img.phoff + idx * 56 + 40, (1 << 64) - 4096)
    p = _copy(tmp_path, "wrap", d)
    assert "outside the address space" in _load_err(p)


def test_host_pie_and_interpreter():
    mem = GuestMemory()
    info = loader.load_program(mem, TRUE, [TRUE, "arg"], ["A=1", "B=2"], bits=64, prefix="/")
    img = parse_elf(TRUE, read_program(TRUE), EM_X86_64)
    assert info.interp and os.path.basename(info.interp) == os.path.basename(img.interp)
    assert info.entry == img.entry + info.load_bias and info.load_bias % 4096 == 0
    assert info.start_entry != info.entry
    # The code at the entry point is the file's bytes, and is executable, not writable.
    text = next(p for p in img.loads if p.offset <= img.entry - p.vaddr + p.offset < p.offset + p.filesz
                and p.vaddr <= img.entry < p.vaddr + p.filesz)
    off = img.entry - text.vaddr + text.offset
    assert mem.read(info.entry, 16) == img.data[off:off + 16]
    assert mem.get_prot(info.entry) == PROT_READ | PROT_EXEC
    assert mem.read(info.phdr, 4) == struct.pack("<I", 6)  # PT_PHDR comes first


def _read_stack(mem, sp, w):
    fmt = "<Q" if w == 8 else "<I"
    rd = lambda a: struct.unpack(fmt, mem.read(a, w))[0]
    argc = rd(sp)
    argv = [mem.read_cstring(rd(sp + w * (1 + i))).decode() for i in range(argc)]
    assert rd(sp + w * (1 + argc)) == 0
    pos = sp + w * (2 + argc)
    envp = []
    while rd(pos):
        envp.append(mem.read_cstring(rd(pos)).decode())
        pos += w
    pos += w
    aux = {}
    while True:
        k, v = rd(pos), rd(pos + w)
        pos += 2 * w
        if k == 0:
            break
        aux[k] = v
    return argv, envp, aux


@pytest.mark.parametrize("bits", [64, 32])
def test_initial_stack(tmp_path, bits):
    gcc = shutil.which("gcc")
    if bits == 32:
        src = tmp_path / "s.c"
        src.write_text("int main(void){return 0;}\n")
        prog = str(tmp_path / "s32")
        subprocess.run([gcc, "-m32", "-static", "-o", prog, str(src)], check=True)
    else:
        prog = TRUE
    mem = GuestMemory()
    info = loader.load_program(mem, prog, ["prog", "a b", ""], ["X=1"], bits=bits, prefix="/",
                               hwcap=0x1234, random_bytes=bytes(range(16)))
    assert info.sp % 16 == 0
    argv, envp, aux = _read_stack(mem, info.sp, bits // 8)
    assert argv == ["prog", "a b", ""] and envp == ["X=1"]
    assert aux[loader.AT_PAGESZ] == 4096 and aux[loader.AT_HWCAP] == 0x1234
    assert aux[loader.AT_ENTRY] == info.entry and aux[loader.AT_PHDR] == info.phdr
    assert mem.read(aux[loader.AT_RANDOM], 16) == bytes(range(16))
    assert mem.read_cstring(aux[loader.AT_EXECFN]).decode() == prog
    assert mem.read_cstring(aux[loader.AT_PLATFORM]) == (b"x86_64" if bits == 64 else b"i686")
    assert 33 not in aux  # no vDSO
    if bits == 32:
        assert info.entry < 1 << 32 and info.sp < 1 << 32
        assert parse_elf(prog, read_program(prog), EM_386).bits == 32
        assert mem.get_prot(info.sp) == PROT_READ | PROT_WRITE


def test_argument_list_too_long(tmp_path):
    with pytest.raises(LoadError) as ei:
        loader.load_program(GuestMemory(), TRUE, ["x" * 100000] * 1, [], stack_size=64 * 1024)
    assert "Argument list too long" in str(ei.value)


def test_huge_bss_is_refused_not_allocated(tmp_path):
    good = open(TRUE, "rb").read()
    img = parse_elf(TRUE, good, EM_X86_64)
    idx = img.phdrs.index(img.loads[-1])
    d = bytearray(good)
    struct.pack_into("<Q", d, img.phoff + idx * 56 + 40, 1 << 40)  # p_memsz: a terabyte of bss
    p = _copy(tmp_path, "bigbss", d)
    assert "Not enough memory" in _load_err(p)
