"""-kernel/-initrd/-append: what the PC hands the firmware through fw_cfg (the
setup header as patched, addresses, sizes, command line, the linuxboot_dma.bin
option ROM) compared with real qemu-system-x86_64, and the loader's errors."""
import subprocess

import pytest
from pcvm import PYQEMU, PCVM

from pyqemu.hw.i386.initramfs import fetch_debian_guest


@pytest.fixture(scope="module")
def guest():
    return fetch_debian_guest()


def loader_items(vm):
    def item(key, n):
        vm.hmp("o /h 0x510 0x%x" % key)
        return bytes(vm.inb(0x511) for _ in range(n))
    out = {k: item(k, 4) for k in (0x07, 0x08, 0x0A, 0x0B, 0x13, 0x14, 0x16, 0x17)}
    out["cmdline"] = item(0x15, 40)
    out["header"] = item(0x18, 0x270)[0x1F0:]
    d = item(0x19, 4)
    n = int.from_bytes(d, "big")
    names = item(0x19, 4 + 64 * n)[4:]
    out["files"] = sorted(names[64 * i + 8:64 * i + 64].rstrip(b"\0") for i in range(n))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("mem", ["512", "2G"])
def test_fw_cfg_linux_boot_items(real_qemu, tmp_path, guest, mem):
    args = ["-m", mem, "-kernel", guest["kernel"], "-initrd", guest["initrd"],
            "-append", "console=ttyS0 quiet"]
    res = []
    for tag, prog in (("py", PYQEMU), ("real", real_qemu)):
        vm = PCVM(prog, args, str(tmp_path), tag)
        try:
            res.append(loader_items(vm))
        finally:
            vm.close()
    ours, real = res
    assert b"genroms/linuxboot_dma.bin" in ours["files"] and b"genroms/linuxboot_dma.bin" in real["files"]
    assert b"etc/e820" in ours["files"]
    del ours["files"], real["files"]  # real QEMU also has ACPI, SMBIOS and VGA ROM files
    assert ours == real
    assert ours["cmdline"].startswith(b"console=ttyS0 quiet\0")
    assert ours["header"][0x12:0x16] == b"HdrS"


def run_both(real_qemu, args):
    out = []
    for prog in (PYQEMU, real_qemu):
        p = subprocess.run([prog, "-M", "pc", "-S", "-display", "none", "-nodefaults"] + args,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        out.append((p.returncode, p.stderr.decode().split(": ", 1)[-1]))
    return out


def test_initrd_too_large_for_ram(real_qemu, tmp_path, guest):
    big = tmp_path / "big.img"
    with open(big, "wb") as f:
        f.truncate(24 << 20)
    ours, real = run_both(real_qemu, ["-m", "16", "-kernel", guest["kernel"], "-initrd", str(big)])
    assert ours == real
    assert ours[0] == 1 and "initrd is too large" in ours[1]


def test_missing_kernel_file(real_qemu):
    ours, real = run_both(real_qemu, ["-kernel", "/no/such/kernel"])
    assert ours == real and ours[0] == 1


@pytest.mark.parametrize("opt", ["-append", "-initrd"])
def test_boot_options_need_kernel(real_qemu, opt):
    ours, real = run_both(real_qemu, [opt, "x"])
    assert ours == real and ours[0] == 1


def test_not_a_bzimage(tmp_path):
    bogus = tmp_path / "kernel"
    bogus.write_bytes(bytes(8192))
    p = subprocess.run([PYQEMU, "-M", "pc", "-S", "-display", "none", "-kernel", str(bogus)],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert p.returncode == 1
    assert b"neither a bzImage" in p.stderr and b"Traceback" not in p.stderr
