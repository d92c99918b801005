"""A firmware assembled here walks the x86 modes (reset vector, real mode with
16-bit addressing, protected mode, 32-bit paging with a #PF, long mode with an
INT3 through a 64-bit IDT), printing on COM1, and exits through isa-debug-exit:
pyqemu-system-x86_64 must print the same text and exit with the same status
as real qemu-system-x86_64."""
from __future__ import annotations

from x86sys_util import PYQEMU, build_firmware, run


def _boot(prog: str, fw: str, out) -> int:
    status, err = run([prog, "-M", "pc", "-nodefaults", "-display", "none", "-no-reboot",
                       "-bios", fw, "-serial", "file:%s" % out,
                       "-device", "isa-debug-exit,iobase=0xf4,iosize=4"], timeout=300)
    assert err == b""
    return status


def test_modes_firmware_matches_qemu(real_qemu, binutils, tmp_path):
    fw = build_firmware("fw_modes.S", tmp_path)
    real_status = _boot(real_qemu, fw, tmp_path / "real.txt")
    ours_status = _boot(PYQEMU, fw, tmp_path / "ours.txt")
    real = (tmp_path / "real.txt").read_text()
    assert real_status == (0x10 << 1) | 1
    assert "back rbx=EEDDCCBBAA998877" in real
    assert (tmp_path / "ours.txt").read_text() == real
    assert ours_status == real_status
