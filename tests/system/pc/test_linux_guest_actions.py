"""The Linux guest's /init actions, chosen on the kernel command line (issue 6,
"Done means"): it writes to /dev/ttyS1 (a `-serial file:` chardev), exits
through isa-debug-exit with a chosen code, and reports the CPU count and
MemTotal, which must agree with -smp and -m.

Under real qemu-system-x86_64 this is a peer test (seconds per boot). Under
pyqemu-system-x86_64 (-M pc,host-unpack=on, on PyPy when .venv-pypy exists)
the same checks run only with PYQEMU_LINUX_BOOT=1: a boot to init takes far
longer than CI allows today."""
from __future__ import annotations

import pytest
from linuxboot import (OPT_IN, PYQEMU_TIMEOUT, guest_info, pyqemu_command, real_qemu_path,
                       run_to_exit)

from pyqemu.hw.i386.initramfs import INIT_MARKER, fetch_debian_guest

# (memory, CPUs, exit value, isa-debug-exit iobase or None for its default 0x501)
CASES = [("256", 1, 5, None), ("1G", 2, 0, 0xF4)]


@pytest.fixture(scope="module")
def guest():
    return fetch_debian_guest()


def boot(prefix, env, timeout, guest, tmp_path, mem, smp, exitval, port):
    text = "ttyS1-from-the-guest-%s-%d" % (mem, smp)
    append = "console=ttyS0 quiet pyqemu.ttys1=%s pyqemu.exit=%d" % (text, exitval)
    device = "isa-debug-exit"
    if port is not None:
        append += " pyqemu.exitport=0x%x" % port
        device += ",iobase=0x%x,iosize=4" % port
    ttys1 = tmp_path / "ttyS1.txt"
    cmd = list(prefix) + [
        "-kernel", guest["kernel"], "-initrd", guest["initrd"], "-append", append,
        "-nographic", "-no-reboot", "-m", mem, "-smp", str(smp),
        "-serial", "mon:stdio", "-serial", "file:%s" % ttys1, "-device", device]
    status, out = run_to_exit(cmd, timeout, env)
    return status, out, ttys1.read_bytes(), text


def check(status, out, ttys1, text, mem, smp, exitval):
    assert INIT_MARKER in out, out[-2000:]
    # isa-debug-exit: the emulator exits with (value << 1) | 1
    assert status == (exitval << 1) | 1, out[-2000:]
    assert "did not stop the machine" not in out
    # the guest's tty turns its newline into CR LF on the way out
    assert ttys1 == text.encode() + b"\r\n"
    cpus, total_kb = guest_info(out)
    assert cpus == smp
    want_kb = {"256": 256 << 10, "1G": 1 << 20}[mem]
    # MemTotal is RAM less the firmware's and the kernel's own reservations
    assert 0.7 * want_kb < total_kb <= want_kb


@pytest.mark.slow
@pytest.mark.parametrize("mem,smp,exitval,port", CASES)
def test_guest_actions_real_qemu(real_qemu, guest, tmp_path, mem, smp, exitval, port):
    status, out, ttys1, text = boot([real_qemu], None, 300, guest, tmp_path, mem, smp, exitval, port)
    check(status, out, ttys1, text, mem, smp, exitval)


@pytest.mark.slow
@pytest.mark.skipif(not OPT_IN, reason="a Linux boot to init under pyqemu takes too long for CI; "
                                        "set PYQEMU_LINUX_BOOT=1 to run it")
@pytest.mark.timeout(PYQEMU_TIMEOUT + 600)   # beyond the project's 600 s per test
@pytest.mark.parametrize("mem,smp,exitval,port", CASES)
def test_guest_actions_pyqemu(guest, tmp_path, mem, smp, exitval, port):
    prefix, env = pyqemu_command()
    # -icount shift=3 as make demo: in real time the guest's timer tick would
    # take most of a slow emulator's time
    status, out, ttys1, text = boot(prefix + ["-M", "pc,host-unpack=on", "-icount", "shift=3"],
                                    env, PYQEMU_TIMEOUT,
                                    guest, tmp_path, mem, smp, exitval, port)
    check(status, out, ttys1, text, mem, smp, exitval)
    # and the guest saw what it sees under real QEMU
    qemu = real_qemu_path()
    assert qemu, "qemu-system-x86_64 (Debian qemu-system-x86) is needed for this test"
    (tmp_path / "real").mkdir()
    r_status, r_out, r_ttys1, _ = boot([qemu], None, 300, guest, tmp_path / "real",
                                       mem, smp, exitval, port)
    assert (status, ttys1, guest_info(out)[0]) == (r_status, r_ttys1, guest_info(r_out)[0])
