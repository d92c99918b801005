"""HMP of pyqemu-system-x86_64 -M none over stdio, tcp, telnet and a pty, and the mux keys."""
import os
import re
import select
import subprocess
import time

from monitor_helpers import connect_tcp, free_port, read_until, strip_echo

from pyqemu.chardev.socket import TELNET_INIT

BANNER = b"QEMU 7.2.0 monitor - type 'help' for more information\r\n"


def screen_lines(raw):
    """What a terminal shows: echo sequences removed, split at CR LF."""
    return strip_echo(raw).decode().split("\r\n")


def session(sock, lines):
    """Type each line and collect what the monitor printed for it (prompt dropped)."""
    out = []
    for line in lines:
        sock.sendall(line.encode() + b"\r")
        raw = read_until(sock, b"(qemu) ")
        text = strip_echo(raw).decode()
        # The echo of the typed line ends with CR LF; the output follows.
        out.append(text.split("\r\n", 1)[1][:-len("(qemu) ")])
    return out


def test_stdio_nographic(emulator, tmp_path):
    proc = emulator(["-M", "none", "-nographic"], stdin=subprocess.PIPE)
    cmds = ["info version", "chardev-add ringbuf,id=r,size=16", "ringbuf_write r hello",
            "ringbuf_read r 10", "info chardev", "nosuch", "help ringbuf_read", "info status",
            "stop", "info status", "c", "info status", "info history", "quit"]
    out, err = proc.communicate(("\n".join(cmds) + "\n").encode(), timeout=30)
    assert proc.returncode == 0, err
    text = strip_echo(out).decode()
    assert text.startswith(BANNER.decode() + "(qemu) ")
    parts = text.split("(qemu) ")[1:]
    # Each part: the echoed command, CR LF, its output.
    outputs = {}
    for cmd, part in zip(cmds, parts):
        echoed, _, body = part.partition("\r\n")
        assert echoed == cmd
        outputs.setdefault(cmd, []).append(body)
    assert outputs["info version"] == ["7.2.0pyqemu 0.1.0\r\n"]
    assert outputs["ringbuf_read r 10"] == ["hello\r\n"]
    assert sorted(outputs["info chardev"][0].split("\r\n")) == ["", "compat_monitor0: filename=stdio",
                                                               "r: filename=ringbuf"]
    assert outputs["nosuch"] == ["unknown command: 'nosuch'\r\n"]
    assert outputs["help ringbuf_read"] == ["ringbuf_read device size -- Read from a ring buffer character device\r\n"]
    assert outputs["info status"] == ["VM status: running\r\n", "VM status: paused\r\n",
                                      "VM status: running\r\n"]
    assert outputs["info history"][0].startswith("0: 'info version'\r\n1: 'chardev-add ringbuf,id=r,size=16'\r\n")
    # After quit there is no new prompt, as with QEMU.
    assert len(parts) == len(cmds)
    assert parts[-1] == "quit\r\n"


def test_tcp_monitor(emulator):
    port = free_port()
    proc = emulator(["-M", "none", "-display", "none", "-monitor", "tcp:127.0.0.1:%d,server=on,wait=off" % port])
    s = connect_tcp(port, proc)
    assert read_until(s, b"(qemu) ") == BANNER + b"(qemu) "
    out = session(s, ["info version", "p 2*3|1", "ringbuf_read x 3", "info chardev"])
    assert out[0] == "7.2.0pyqemu 0.1.0\r\n"
    assert out[1] == "0x7\r\n"
    assert out[2] == "Error: Device 'x' not found\r\n"
    assert out[3].startswith("compat_monitor0: filename=tcp:127.0.0.1:%d,server=on <-> 127.0.0.1:" % port)
    # A second connection after the first closes gets a fresh banner.
    s.close()
    s2 = connect_tcp(port, proc)
    assert read_until(s2, b"(qemu) ") == BANNER + b"(qemu) "
    s2.sendall(b"quit\r")
    assert proc.wait(10) == 0
    s2.close()


def test_telnet_monitor(emulator):
    port = free_port()
    proc = emulator(["-M", "none", "-display", "none", "-monitor", "telnet:127.0.0.1:%d,server,nowait" % port])
    s = connect_tcp(port, proc)
    assert read_until(s, b"(qemu) ") == TELNET_INIT + BANNER + b"(qemu) "
    # A telnet client sends CR LF: the LF is a second, empty, command line (as in QEMU).
    s.sendall(b"info version\r\n")
    raw = read_until(s, b"(qemu) \r\n(qemu) ")
    assert strip_echo(raw).endswith(b"info version\r\n7.2.0pyqemu 0.1.0\r\n(qemu) \r\n(qemu) ")
    s.sendall(b"q\r")
    assert proc.wait(10) == 0
    s.close()


def test_pty_monitor(emulator):
    proc = emulator(["-M", "none", "-display", "none", "-monitor", "pty"])
    line = b""
    while not line.endswith(b"\n"):
        r, _, _ = select.select([proc.stdout], [], [], 10)
        assert r, "no redirect message"
        line += os.read(proc.stdout.fileno(), 1)
    m = re.fullmatch(rb"char device redirected to (/dev/pts/\d+) \(label compat_monitor0\)\n", line)
    assert m, line
    fd = os.open(m.group(1), os.O_RDWR | os.O_NOCTTY)
    try:
        buf = b""
        while not buf.endswith(b"(qemu) "):
            r, _, _ = select.select([fd], [], [], 10)
            assert r
            buf += os.read(fd, 4096)
        assert buf == BANNER + b"(qemu) "
        os.write(fd, b"info version\r")
        buf = b""
        while not buf.endswith(b"(qemu) "):
            r, _, _ = select.select([fd], [], [], 10)
            assert r
            buf += os.read(fd, 4096)
        assert strip_echo(buf) == b"info version\r\n7.2.0pyqemu 0.1.0\r\n(qemu) "
        os.write(fd, b"quit\r")
        assert proc.wait(10) == 0
    finally:
        os.close(fd)


def test_mux_keys_on_stdio(emulator):
    proc = emulator(["-M", "none", "-display", "none", "-serial", "mon:stdio"], stdin=subprocess.PIPE)

    def typed(data, marker):
        proc.stdin.write(data)
        proc.stdin.flush()
        buf = b""
        end = time.monotonic() + 10
        while marker not in buf:
            r, _, _ = select.select([proc.stdout], [], [], max(0, end - time.monotonic()))
            assert r, "timed out; got %r" % buf
            chunk = os.read(proc.stdout.fileno(), 4096)
            assert chunk
            buf += chunk
        return buf
    assert typed(b"", b"(qemu) ") == BANNER + b"(qemu) "
    help_text = typed(b"\x01h", b"sends C-a\n\r")
    assert help_text == (b"\n\rC-a h    print this help\n\rC-a x    exit emulator\n\r"
                         b"C-a s    save disk data back to file (if -snapshot)\n\r"
                         b"C-a t    toggle console timestamps\n\rC-a b    send break (magic sysrq)\n\r"
                         b"C-a c    switch between console and monitor\n\rC-a C-a  sends C-a\n\r")
    assert typed(b"\x01c", b"(qemu) ") == b"\r\n(qemu) "
    out = typed(b"info chardev\n", b"(qemu) ")
    shown = strip_echo(out).split(b"\r\n")[1:-1]
    assert b"serial0-base: filename=stdio" in shown and b"serial0: filename=mux" in shown
    assert typed(b"\x01x", b"QEMU: Terminated\n\r") == b"QEMU: Terminated\n\r"
    assert proc.wait(10) == 0


# Every HMP command of issue 5, with arguments that work on -M none.
EVERY_COMMAND = [
    "help", "? info", "info version", "info status", "info name", "info uuid", "info chardev",
    "info qtree", "info qom-tree", "info mtree", "info ramblock", "info history", "info cpus",
    "info registers", "info kvm", "info memdev", "stop", "cont", "c", "system_reset",
    "system_powerdown", "xp /4xb 0", "x /2x 0", "p /x 16", "print 5", "memsave 0 16 out.bin",
    "pmemsave 0 16 out.bin", "chardev-add ringbuf,id=rb,size=8", "ringbuf_write rb abc",
    "ringbuf_read rb 3", "chardev-remove rb", "qom-list /machine", "qom-set /machine graphics off",
    "object_add memory-backend-ram,id=m3,size=1M", "object_del m3", "log int", "log none",
    "logfile log.txt", "i /b 0x80", "o /b 0x80 1",
]


def test_every_command_over_tcp(emulator, tmp_path):
    port = free_port()
    proc = emulator(["-M", "none", "-display", "none", "-object", "memory-backend-ram,id=mem0,size=1M",
                     "-monitor", "tcp:127.0.0.1:%d,server=on,wait=off" % port], cwd=str(tmp_path))
    s = connect_tcp(port, proc)
    read_until(s, b"(qemu) ")
    outs = dict(zip(EVERY_COMMAND, session(s, EVERY_COMMAND)))
    for cmd, out in outs.items():
        assert "unknown command" not in out and "internal error" not in out, (cmd, out)
        assert "Try \"help" not in out, (cmd, out)
    assert outs["info status"] == "VM status: running\r\n"
    assert outs["ringbuf_read rb 3"] == "abc\r\n"
    assert outs["p /x 16"] == "0x10\r\n"
    assert "info version  -- show the version of QEMU\r\n" in outs["? info"]
    assert "memory backend: mem0\r\n" in outs["info memdev"]
    assert outs["info history"].startswith("0: 'help'\r\n1: '? info'\r\n")
    # Relative file names are the emulator's working directory, as with QEMU.
    assert (tmp_path / "out.bin").stat().st_size == 16
    assert (tmp_path / "log.txt").exists()
    s.sendall(b"q\r")
    assert proc.wait(10) == 0
    s.close()
