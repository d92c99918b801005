"""Debian's SeaBIOS (the default firmware of -M pc) through its POST under
pyqemu-system-x86_64: its debug log on port 0x402 must show the same start,
the same milestones and the same end ("No bootable device") as under real
qemu-system-x86_64.  Lines that depend on devices pyqemu's PC does not model
yet (ACPI, IDE, PM timer) are not compared."""
from __future__ import annotations

import subprocess

import pytest

from x86sys_util import PYQEMU, wait_for_text

END = b"No bootable device."


def _post(prog: str, log) -> list:
    p = subprocess.Popen([prog, "-M", "pc", "-nodefaults", "-display", "none",
                          "-chardev", "file,id=d,path=%s" % log,
                          "-device", "isa-debugcon,iobase=0x402,chardev=d"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        data = wait_for_text(str(log), END, p, timeout=400)
    finally:
        p.kill()
        p.wait()
    assert END in data, data[-2000:]
    return data.decode("latin-1").splitlines()


@pytest.mark.slow
def test_seabios_post_matches_qemu(real_qemu, tmp_path):
    real = _post(real_qemu, tmp_path / "real.log")
    ours = _post(PYQEMU, tmp_path / "ours.log")
    # banner, build, hypervisor probe, fw_cfg with DMA, the e820 from fw_cfg, relocation
    assert ours[:8] == real[:8]
    assert ours[0].startswith("SeaBIOS (version")
    for milestone in ("=== PCI device probing ===", "PCI: init bdf=00:00.0 id=8086:1237",
                      "PCI: init bdf=00:01.0 id=8086:7000", "Found 1 cpu(s) max supported 1 cpu(s)",
                      "Found 0 lpt ports", "PS2 keyboard initialized",
                      "All threads complete.", "Scan for option roms", "enter handle_19:",
                      "Booting from Hard Disk...", "Boot failed: could not read the boot disk"):
        assert milestone in real and milestone in ours, milestone
    assert ours[-1].startswith("No bootable device.")
    assert real[-1].startswith("No bootable device.")
