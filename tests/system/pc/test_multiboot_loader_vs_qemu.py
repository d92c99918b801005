"""-kernel with a multiboot kernel: what the PC hands multiboot_dma.bin
through fw_cfg (entry, load address, buffer size, the multiboot information
structure) and the loader's errors, compared with real qemu-system-x86_64."""
from __future__ import annotations

import struct
import subprocess

import mbguest
import pytest
from pcvm import PYQEMU, PCVM

MAGIC = 0x1BADB002


def mb_header(flags: int, *fields: int) -> bytes:
    return struct.pack("<III", MAGIC, flags, (-(MAGIC + flags)) & 0xFFFFFFFF) + struct.pack(
        "<%dI" % len(fields), *fields)


def items(vm: PCVM) -> dict:
    def item(key: int, n: int) -> bytes:
        vm.hmp("o /h 0x510 0x%x" % key)
        return bytes(vm.inb(0x511) for _ in range(n))
    out = {k: item(k, 4) for k in (0x07, 0x08, 0x0A, 0x0B, 0x10)}
    out["mbi"] = item(0x12, 88)
    n = int.from_bytes(item(0x19, 4), "big")
    names = item(0x19, 4 + 64 * n)[4:]
    files = [names[64 * i + 8:64 * i + 64].rstrip(b"\0") for i in range(n)]
    out["rom"] = [f for f in files if f.startswith(b"genroms/") and b"boot" in f]
    return out


def compare(real_qemu: str, tmp_path, args: list) -> dict:
    res = []
    for tag, prog in (("py", PYQEMU), ("real", real_qemu)):
        vm = PCVM(prog, args, str(tmp_path), tag)
        try:
            res.append(items(vm))
        finally:
            vm.close()
    assert res[0] == res[1]
    return res[0]


def test_elf_kernel_with_modules(real_qemu, tmp_path):
    k = mbguest.build_kernel()
    (tmp_path / "m1").write_bytes(b"\x01" * 5000)
    (tmp_path / "m2").write_bytes(b"two")
    got = compare(real_qemu, tmp_path, ["-kernel", k, "-append", "tests=mbi x=1",
                                        "-initrd", "%s arg=foo,,bar,%s" % (tmp_path / "m1", tmp_path / "m2")])
    assert got["rom"] == [b"genroms/multiboot_dma.bin"]
    assert struct.unpack("<I", got[0x07])[0] == 0x100000
    assert struct.unpack("<I", got[0x0A])[0] == 0x9500 and struct.unpack("<I", got[0x0B])[0] == 88
    flags, = struct.unpack_from("<I", got["mbi"], 0)
    assert flags == 0x24F
    assert struct.unpack_from("<I", got["mbi"], 20)[0] == 2     # mods_count


def test_aout_kludge_kernel(real_qemu, tmp_path):
    k = mbguest.build_kernel(aout=True)
    got = compare(real_qemu, tmp_path, ["-kernel", k])
    assert got["rom"] == [b"genroms/multiboot_dma.bin"]


def run_both(real_qemu: str, args: list) -> list:
    out = []
    for prog in (PYQEMU, real_qemu):
        p = subprocess.run([prog, "-M", "pc", "-S", "-display", "none", "-nodefaults"] + args,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        out.append((p.returncode, p.stderr.decode().split(": ", 1)[-1]))
    return out


def elf64_with_multiboot_header() -> bytes:
    eh = bytearray(64)
    eh[0:7] = b"\x7fELF\x02\x01\x01"
    struct.pack_into("<HHI", eh, 16, 2, 62, 1)
    return bytes(eh) + mb_header(0) + bytes(512)


def elf32_without_multiboot(with_segment: bool) -> bytes:
    eh = bytearray(52)
    eh[0:7] = b"\x7fELF\x01\x01\x01"
    struct.pack_into("<HHI", eh, 16, 2, 3, 1)
    if not with_segment:
        return bytes(eh) + bytes(4096)
    struct.pack_into("<IIIIHHHHHH", eh, 24, 0x100000, 52, 0, 0, 52, 32, 1, 40, 0, 0)
    ph = struct.pack("<IIIIIIII", 1, 0x1000, 0x100000, 0x100000, 16, 16, 5, 0x1000)
    return (bytes(eh) + ph).ljust(0x1000, b"\0") + b"\xf4" * 16


BAD = {
    "header_before_load": mb_header(0x10000, 0x100000, 0x100100, 0, 0, 0x100000) + b"x" * 100,
    "load_end_before_load": mb_header(0x10000, 0x100000, 0x100000, 0xF0000, 0, 0x100000) + b"x" * 100,
    "bss_end_before_load_end": mb_header(0x10000, 0x100000, 0x100000, 0x100010, 0x100000, 0x100000) + b"x" * 100,
    "load_end_beyond_file": mb_header(0x10000, 0x100000, 0x100000, 0x200000, 0, 0x100000) + b"x" * 100,
    "not_elf_without_addresses": mb_header(0) + b"x" * 100,
    "elf64": elf64_with_multiboot_header(),
    "elf_without_pvh_note": elf32_without_multiboot(True),
    "elf_without_segments": elf32_without_multiboot(False),
    "too_short": b"hello",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_kernels(real_qemu, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(BAD[name])
    ours, real = run_both(real_qemu, ["-kernel", str(path)])
    assert ours == real
    assert ours[0] == 1


def test_missing_module(real_qemu, tmp_path):
    k = mbguest.build_kernel()
    ours, real = run_both(real_qemu, ["-kernel", k, "-initrd", "%s arg=1" % (tmp_path / "nope")])
    assert ours == real
    assert ours[0] == 1 and "Failed to open file" in ours[1]


def test_neither_bzimage_nor_multiboot(tmp_path):
    bogus = tmp_path / "kernel"
    bogus.write_bytes(bytes(16384))
    p = subprocess.run([PYQEMU, "-M", "pc", "-S", "-display", "none", "-kernel", str(bogus)],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert p.returncode == 1
    assert b"neither a bzImage" in p.stderr and b"Traceback" not in p.stderr
