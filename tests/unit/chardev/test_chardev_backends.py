import os
import socket
import time

import pytest

from pyqemu.chardev import (CHARDEV_OPTS, CHR_EVENT_BREAK, CHR_EVENT_CLOSED, CHR_EVENT_OPENED,
                            chardev_find, create_from_opts)
from pyqemu.chardev.socket import TELNET_INIT
from pyqemu.util.error import QemuError


def make(spec):
    return create_from_opts(CHARDEV_OPTS.parse(spec, store=False))


class Frontend:
    """A frontend that records what it reads and the events it sees."""

    def __init__(self, chr, room=4096):
        self.data = bytearray()
        self.events = []
        self.room = room
        chr.set_handlers(lambda: self.room, self.data.extend, self.events.append, owner=self)


def wait(loop, pred, timeout=5):
    assert loop.run_until(pred, timeout=timeout), "condition not reached"


def test_null(loop):
    c = make("null,id=n")
    assert c.write(b"x" * 100) == 100
    assert c.info() == {"frontend-open": False, "filename": "null", "label": "n"}
    assert list(c.info()) == ["frontend-open", "filename", "label"]  # QEMU's member order
    Frontend(c)
    assert c.info()["frontend-open"]


def test_ringbuf_keeps_last_bytes(loop):
    c = make("ringbuf,id=r,size=8")
    fe = Frontend(c)
    c.write(b"hello world")
    assert c.ringbuf_read(100) == b"lo world"
    assert c.ringbuf_read(100) == b""
    # ringbuf-write fills the same buffer; the frontend receives nothing (as in QEMU).
    c.ringbuf_write(b"typed")
    assert c.ringbuf_read(3) == b"typ"
    assert fe.data == b""


def test_ringbuf_size_must_be_power_of_two(loop):
    with pytest.raises(QemuError, match="size of ringbuf chardev must be power of two"):
        make("ringbuf,id=r,size=3")


def test_frontend_flow_control(loopback):
    c = loopback()
    fe = Frontend(c, room=0)
    c.type(b"abcdef")
    assert fe.data == b""
    fe.room = 4
    c.accept_input()
    assert bytes(fe.data) == b"abcdef"


def test_file_truncate_append_and_logfile(loop, tmp_path):
    out = tmp_path / "out"
    out.write_bytes(b"old")
    log = tmp_path / "log"
    c = make("file,id=f,path=%s,logfile=%s" % (out, log))
    c.write(b"new")
    c.close()
    assert out.read_bytes() == b"new"
    assert log.read_bytes() == b"new"
    c = make("file,id=g,path=%s,append=on,logfile=%s,logappend=on" % (out, log))
    c.write(b"+more")
    c.close()
    assert out.read_bytes() == b"new+more"
    assert log.read_bytes() == b"new+more"


def test_file_errors(loop, tmp_path):
    with pytest.raises(QemuError, match="^chardev: file: no filename given$"):
        make("file,id=f")
    bad = tmp_path / "missing" / "x"
    with pytest.raises(QemuError, match="^Could not open '%s': No such file or directory$" % bad):
        make("file,id=f,path=%s" % bad)


def test_pipe_pair(loop, tmp_path):
    base = tmp_path / "p"
    os.mkfifo(str(base) + ".in")
    os.mkfifo(str(base) + ".out")
    c = make("pipe,id=p,path=%s" % base)
    fe = Frontend(c)
    rd = os.open(str(base) + ".out", os.O_RDONLY | os.O_NONBLOCK)
    wr = os.open(str(base) + ".in", os.O_WRONLY)
    c.write(b"to-host")
    assert os.read(rd, 100) == b"to-host"
    os.write(wr, b"to-guest")
    wait(loop, lambda: fe.data == b"to-guest")
    os.close(rd)
    os.close(wr)


def test_pty_roundtrip(loop, capfd):
    c = make("pty,id=p")
    assert c.filename.startswith("pty:/dev/pts/")
    out = capfd.readouterr().out  # on stdout, as QEMU prints it
    assert out == "char device redirected to %s (label p)\n" % c.filename[4:]
    fe = Frontend(c)
    fd = os.open(c.filename[4:], os.O_RDWR | os.O_NOCTTY)
    os.write(fd, b"abc\n")
    wait(loop, lambda: fe.data == b"abc\n")
    c.write(b"out\r\n")
    time.sleep(0.05)
    assert os.read(fd, 100) == b"out\r\n"  # raw mode: bytes pass unchanged
    os.close(fd)


def test_serial_on_a_tty_device(loop):
    master, slave = os.openpty()
    path = os.ttyname(slave)
    c = make("serial,id=s,path=%s" % path)
    fe = Frontend(c)
    os.write(master, b"xyz")
    wait(loop, lambda: fe.data == b"xyz")
    c.write(b"back")
    time.sleep(0.05)
    assert os.read(master, 100) == b"back"
    os.close(master)
    os.close(slave)


def test_tty_is_an_alias_of_serial(loop, tmp_path):
    bad = tmp_path / "nodev"
    with pytest.raises(QemuError, match="^Could not open '%s': No such file or directory$" % bad):
        make("tty,id=t,path=%s" % bad)


def test_unix_server_nowait_roundtrip_and_reconnect(loop, tmp_path):
    path = str(tmp_path / "s")
    c = make("socket,id=s,path=%s,server=on,wait=off" % path)
    assert c.filename == "disconnected:unix:%s,server=on" % path
    fe = Frontend(c)
    c.write(b"dropped")  # nobody connected yet
    cli = socket.socket(socket.AF_UNIX)
    cli.connect(path)
    wait(loop, lambda: CHR_EVENT_OPENED in fe.events)
    assert c.filename == "unix:%s,server=on" % path
    cli.sendall(b"hello")
    wait(loop, lambda: fe.data == b"hello")
    c.write(b"reply")
    assert cli.recv(100) == b"reply"
    cli.close()
    wait(loop, lambda: CHR_EVENT_CLOSED in fe.events)
    assert c.filename.startswith("disconnected:")
    cli2 = socket.socket(socket.AF_UNIX)
    cli2.connect(path)
    wait(loop, lambda: fe.events.count(CHR_EVENT_OPENED) == 2)
    cli2.close()


def test_tcp_server_wait_blocks_until_client(loop, capfd):
    import threading
    port = _free_port()
    conns = []

    def client():
        for _ in range(100):
            try:
                conns.append(socket.create_connection(("127.0.0.1", port)))
                return
            except OSError:
                time.sleep(0.02)
    th = threading.Thread(target=client)
    th.start()
    c = make("socket,id=t,host=127.0.0.1,port=%d,server=on,nodelay=on" % port)
    th.join()
    assert c.conn is not None
    assert c.conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    assert capfd.readouterr().err == (
        "QEMU waiting for connection on: disconnected:tcp:127.0.0.1:%d,server=on\n" % port)
    assert c.filename.startswith("tcp:127.0.0.1:%d,server=on <-> 127.0.0.1:" % port)
    conns[0].close()


def test_telnet_negotiation_and_iac_filtering(loop):
    port = _free_port()
    c = make("socket,id=t,host=127.0.0.1,port=%d,server=on,wait=off,telnet=on" % port)
    fe = Frontend(c)
    cli = socket.create_connection(("127.0.0.1", port))
    wait(loop, lambda: CHR_EVENT_OPENED in fe.events)
    assert _recv_exact(cli, len(TELNET_INIT)) == TELNET_INIT
    # IAC WILL x (3 bytes) is dropped, IAC IAC is a literal 0xff, IAC BREAK is a break.
    cli.sendall(b"a\xff\xfb\x18b\xff\xffc\xff\xf3d")
    wait(loop, lambda: fe.data == b"ab\xffcd")
    assert CHR_EVENT_BREAK in fe.events
    cli.close()


def test_inherited_socket_fd(loop):
    a, b = socket.socketpair()
    c = make("socket,id=f,fd=%d" % b.detach())
    fe = Frontend(c)
    a.sendall(b"via fd")
    wait(loop, lambda: fe.data == b"via fd")
    c.write(b"back")
    assert a.recv(10) == b"back"
    a.close()


def test_unsupported_socket_options_are_refused(loop):
    with pytest.raises(QemuError, match="'websocket' is not supported by pyqemu yet"):
        make("socket,id=w,port=1,server=on,wait=off,websocket=on")


def test_client_reconnect(loop, tmp_path):
    path = str(tmp_path / "late")
    c = make("socket,id=c,path=%s,reconnect=1" % path)  # nobody listens yet: not fatal
    fe = Frontend(c)
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)
    wait(loop, lambda: CHR_EVENT_OPENED in fe.events, timeout=5)
    conn, _ = srv.accept()
    c.write(b"hi")
    assert conn.recv(10) == b"hi"
    conn.close()
    srv.close()


def test_client_without_reconnect_fails(loop, tmp_path):
    path = str(tmp_path / "none")
    with pytest.raises(QemuError, match="^Failed to connect to '%s': No such file or directory$" % path):
        make("socket,id=c,path=%s" % path)


def test_socket_option_errors(loop):
    with pytest.raises(QemuError, match="^chardev: socket: no port given$"):
        make("socket,id=a,host=localhost,server=on,wait=off")
    with pytest.raises(QemuError, match="^Unable to parse FD number $"):
        make("socket,id=a")
    with pytest.raises(QemuError, match="'reconnect' option is incompatible with socket in server listen mode"):
        make("socket,id=a,port=1,server=on,wait=off,reconnect=1")


def test_udp_roundtrip(loop):
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    pport = peer.getsockname()[1]
    lport = _free_port(socket.SOCK_DGRAM)
    c = make("udp,id=u,host=127.0.0.1,port=%d,localaddr=127.0.0.1,localport=%d" % (pport, lport))
    assert c.filename == "udp"
    fe = Frontend(c)
    c.write(b"dgram")
    assert peer.recv(100) == b"dgram"
    peer.sendto(b"back", ("127.0.0.1", lport))
    wait(loop, lambda: fe.data == b"back")
    peer.close()


def test_udp_needs_port(loop):
    with pytest.raises(QemuError, match="^chardev: udp: remote port not specified$"):
        make("udp,id=u")


def test_unknown_backend_and_missing_id(loop):
    with pytest.raises(QemuError, match="^'bogus' is not a valid char driver name$"):
        make("bogus,id=a")
    with pytest.raises(QemuError, match="^chardev: no id specified$"):
        make("null")


def test_mux_on_creates_base(loop):
    c = make("ringbuf,id=m,mux=on")
    assert c.filename == "mux"
    assert chardev_find("m-base").filename == "ringbuf"


def _free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        assert chunk
        buf += chunk
    return buf


def test_input_waits_for_a_frontend_that_can_read(loop, tmp_path):
    path = str(tmp_path / "fc")
    c = make("socket,id=s,path=%s,server=on,wait=off" % path)
    cli = socket.socket(socket.AF_UNIX)
    cli.connect(path)
    wait(loop, lambda: c.conn is not None)
    cli.sendall(b"early")
    cli.close()
    loop.run_until(lambda: False, timeout=0.2)
    # No frontend: nothing is read, so the hang-up is not seen either (as in QEMU).
    assert c.filename == "unix:%s,server=on" % path
    fe = Frontend(c, room=2)
    wait(loop, lambda: len(fe.data) >= 2)
    assert bytes(fe.data) == b"ea"  # only what the frontend said it could take
    fe.room = 100
    c.accept_input()
    wait(loop, lambda: CHR_EVENT_CLOSED in fe.events)
    assert bytes(fe.data) == b"early"
    assert c.filename.startswith("disconnected:")


def test_reconnect_failure_is_reported(loop, tmp_path, capfd):
    path = str(tmp_path / "absent")
    make("socket,id=rc,path=%s,reconnect=5" % path)
    assert capfd.readouterr().err.endswith(
        "Unable to connect character device rc: Failed to connect to '%s': No such file or directory\n" % path)


@pytest.mark.parametrize("text, raw", [
    # What QEMU 7.2's ringbuf-write stores for these base64 strings (read back from it).
    ("YWJj", b"abc"), ("YQ", b""), ("Y===", b"\x60"), ("YQ==YQ==", b"aa"), ("YQ=a", b"\x61\x1a"),
    ("=", b""), ("Y=Q=", b"\x60\x04"), ("YQ==\n", b"a"), ("", b""),
])
def test_base64_decoding_as_qemu(text, raw):
    from pyqemu.chardev.simple import base64_decode_lenient
    assert base64_decode_lenient(text) == raw


def test_base64_invalid_characters():
    from pyqemu.chardev.simple import base64_decode_lenient
    with pytest.raises(QemuError, match="^Base64 data contains invalid characters$"):
        base64_decode_lenient("Y Q==")


def test_pty_connects_and_hangs_up_with_its_user(loop):
    c = make("pty,id=p2")
    fe = Frontend(c)
    start = time.monotonic()
    for _ in range(50):
        c.write(b"x" * 4096)  # nobody there: dropped at once, never blocks
    assert time.monotonic() - start < 1
    assert CHR_EVENT_OPENED not in fe.events
    fd = os.open(c.filename[4:], os.O_RDWR | os.O_NOCTTY)
    wait(loop, lambda: CHR_EVENT_OPENED in fe.events)  # noticed within a second
    c.write(b"hi")
    time.sleep(0.05)
    assert os.read(fd, 100) == b"hi"  # nothing of the dropped output
    os.close(fd)
    wait(loop, lambda: CHR_EVENT_CLOSED in fe.events)
    fd = os.open(c.filename[4:], os.O_RDWR | os.O_NOCTTY)
    wait(loop, lambda: fe.events.count(CHR_EVENT_OPENED) == 2)
    os.close(fd)
