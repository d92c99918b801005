"""The stdio chardev on a real terminal: raw mode, signal=on|off, terminal restored at exit."""
import fcntl
import os
import select
import subprocess
import termios
import time

from monitor_helpers import PYQEMU


def read_for(fd, marker, timeout=10):
    buf = b""
    end = time.monotonic() + timeout
    while marker not in buf:
        r, _, _ = select.select([fd], [], [], max(0, end - time.monotonic()))
        assert r, "timed out; got %r" % buf
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
    return buf


def start_on_tty(args):
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)
    def own_terminal():
        # A new session whose controlling terminal is the pty, as in a shell.
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    p = subprocess.Popen([PYQEMU] + args, stdin=slave, stdout=slave, stderr=slave,
                         preexec_fn=own_terminal)
    return p, master, slave, before


def test_signal_on_lets_ctrl_c_end_the_emulator():
    p, master, slave, before = start_on_tty(["-M", "none", "-display", "none", "-monitor", "stdio"])
    try:
        read_for(master, b"(qemu) ")
        attrs = termios.tcgetattr(slave)
        assert not attrs[3] & termios.ICANON and not attrs[3] & termios.ECHO  # raw while running
        assert attrs[3] & termios.ISIG
        os.write(master, b"\x03")
        p.wait(10)
        out = read_for(master, b"terminating on signal 2")
        assert b"terminating on signal 2" in out
        assert termios.tcgetattr(slave) == before  # the terminal is given back as it was
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
        os.close(slave)


def test_signal_off_passes_ctrl_c_to_the_guest_side():
    p, master, slave, before = start_on_tty(["-M", "none", "-display", "none", "-chardev",
                                             "stdio,id=s0,signal=off", "-mon", "chardev=s0"])
    try:
        read_for(master, b"(qemu) ")
        assert not termios.tcgetattr(slave)[3] & termios.ISIG
        os.write(master, b"\x03")
        time.sleep(0.3)
        assert p.poll() is None  # C-c is only a byte now
        os.write(master, b"info version\r")
        assert b"7.2.0pyqemu" in read_for(master, b"(qemu) ")
        os.write(master, b"quit\r")
        assert p.wait(10) == 0
        assert termios.tcgetattr(slave) == before
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
        os.close(slave)
