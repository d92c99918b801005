"""A bounded piece of the Linux boot that CI can afford under pyqemu today:
with -M pc,host-unpack=on the Debian kernel proper starts at once, and with
earlyprintk on ttyS0 its first console lines ("Linux version ...",
"Command line: ...") come out within seconds of guest time. They must be the
lines real qemu-system-x86_64 prints for the same kernel and command line.
(Measured on a loaded 2-core machine: about 20 s on CPython.)"""
from __future__ import annotations

import re

import pytest
from linuxboot import PYQEMU, run_until

from pyqemu.hw.i386.initramfs import fetch_debian_guest

APPEND = "console=ttyS0 earlyprintk=serial,ttyS0"
NEEDLES = ["Linux version ", "Command line: "]


def early_lines(out: str) -> list:
    """The two lines, without their printk timestamps."""
    lines = []
    for needle in NEEDLES:
        line = [ln for ln in out.splitlines() if needle in ln][0]
        lines.append(re.sub(r"^.*?\[ *\d+\.\d+\] ", "", line.strip()))
    return lines


@pytest.mark.slow
def test_early_console_lines_match_real_qemu(real_qemu):
    guest = fetch_debian_guest()
    args = ["-kernel", guest["kernel"], "-initrd", guest["initrd"], "-append", APPEND,
            "-m", "256", "-nographic", "-no-reboot"]
    ours = run_until([PYQEMU, "-M", "pc,host-unpack=on"] + args, NEEDLES, 180)
    real = run_until([real_qemu, "-M", "pc"] + args, NEEDLES, 120)
    assert early_lines(ours) == early_lines(real)
    assert early_lines(ours)[1] == "Command line: " + APPEND
    assert "Traceback" not in ours
