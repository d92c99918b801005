"""The project's Linux guest (Debian kernel + busybox initramfs written by
pyqemu's cpio code) really boots to its init marker under real QEMU, so the
PC machine has a proven guest to aim at."""
import os
import shutil
import subprocess

import pytest

from pyqemu.hw.i386.initramfs import INIT_MARKER, fetch_debian_guest

QEMU = shutil.which("qemu-system-x86_64")


@pytest.fixture(scope="module")
def guest():
    return fetch_debian_guest()


@pytest.mark.slow
@pytest.mark.skipif(QEMU is None and not os.environ.get("CI"), reason="qemu-system-x86_64 (peer tool) is missing")
@pytest.mark.parametrize("mem,smp", [("256", "1"), ("1G", "2")])
def test_boots_to_marker_under_real_qemu(guest, mem, smp):
    res = subprocess.run(
        [QEMU, "-kernel", guest["kernel"], "-initrd", guest["initrd"],
         "-append", "console=ttyS0 quiet", "-nographic", "-no-reboot",
         "-m", mem, "-smp", smp],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=180)
    out = res.stdout.decode(errors="replace")
    assert res.returncode == 0, out[-2000:]
    assert INIT_MARKER in out
    line = [ln for ln in out.splitlines() if "pyqemu-guest: cpus" in ln][0]
    assert line.split()[2] == smp
    total_kb = int(line.split()[4])
    want_kb = 256 * 1024 if mem == "256" else 1024 * 1024
    # The guest's MemTotal is RAM minus what the kernel reserves for itself.
    assert 0.7 * want_kb < total_kb <= want_kb
    assert "Power down" in out


def test_initramfs_is_reproducible(guest):
    from pyqemu.hw.i386.initramfs import build_initramfs
    with open(os.path.join(os.path.dirname(guest["kernel"]), "..", "bin", "busybox"), "rb") as f:
        bb = f.read()
    assert build_initramfs(bb) == build_initramfs(bb)
    with open(guest["initrd"], "rb") as f:
        assert f.read() == build_initramfs(bb)
