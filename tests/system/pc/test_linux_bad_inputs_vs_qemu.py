"""Bad -kernel/-initrd inputs (issue 6: "a kernel that is neither bzImage nor
multiboot, an initrd too large for -m ..."): pyqemu-system-x86_64 stops with
real qemu-system-x86_64's message and exit status, and never a traceback.
(test_linux_loader_vs_qemu.py has the initrd too large for -m, a missing
kernel and -append/-initrd without -kernel.)"""
from __future__ import annotations

import subprocess

import pytest
from pcvm import PYQEMU

from pyqemu.hw.i386.initramfs import fetch_debian_guest


@pytest.fixture(scope="module")
def kernel():
    return fetch_debian_guest()["kernel"]


def run(prog, args):
    p = subprocess.run([prog, "-M", "pc", "-S", "-display", "none", "-nodefaults"] + args,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    err = p.stderr.decode()
    assert "Traceback" not in err
    # the program name differs ("qemu: " for QEMU's loader messages)
    return p.returncode, err.split(": ", 1)[-1]


def inputs(tmp_path, kernel):
    zeros = tmp_path / "zeros"          # no setup header, no multiboot header
    zeros.write_bytes(bytes(8192))
    tiny = tmp_path / "tiny"            # shorter than the setup it would have
    tiny.write_bytes(b"not a kernel\n")
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"07070100")
    return {
        "zeros+initrd": ["-kernel", str(zeros), "-initrd", str(initrd)],
        "tiny": ["-kernel", str(tiny)],
        "tiny+initrd": ["-kernel", str(tiny), "-initrd", str(initrd)],
        "kernel-is-dir": ["-kernel", str(tmp_path)],
        "initrd-missing": ["-kernel", kernel, "-initrd", str(tmp_path / "nonexistent")],
        "initrd-is-dir": ["-kernel", kernel, "-initrd", str(tmp_path)],
    }


@pytest.mark.parametrize("case", ["zeros+initrd", "tiny", "tiny+initrd", "kernel-is-dir",
                                  "initrd-missing", "initrd-is-dir"])
def test_bad_kernel_or_initrd_as_qemu(real_qemu, tmp_path, kernel, case):
    args = inputs(tmp_path, kernel)[case]
    ours, real = run(PYQEMU, args), run(real_qemu, args)
    assert ours == real
    assert ours[0] == 1 and ours[1].strip()


def test_host_unpack_errors(tmp_path, kernel):
    """-M pc,host-unpack=on is pyqemu's own: its errors are plain and exit 1."""
    zeros = tmp_path / "zeros"
    zeros.write_bytes(bytes(8192))
    big = tmp_path / "big.img"
    with open(big, "wb") as f:
        f.truncate(200 << 20)
    for args, msg in (
            (["-kernel", str(zeros)], "host-unpack=on needs a bzImage kernel"),
            (["-m", "16", "-kernel", kernel], "host-unpack=on: the kernel needs"),
            (["-m", "128", "-kernel", kernel, "-initrd", str(big)], "initrd is too large")):
        p = subprocess.run([PYQEMU, "-M", "pc,host-unpack=on", "-S", "-display", "none",
                            "-nodefaults"] + args,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        err = p.stderr.decode()
        assert p.returncode == 1 and err.startswith("pyqemu-system-x86_64: " + msg), err
        assert "Traceback" not in err
