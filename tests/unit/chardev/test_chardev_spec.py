import pytest

from pyqemu.chardev import parse_serial_spec
from pyqemu.util.error import QemuError


@pytest.mark.parametrize("spec, items", [
    ("null", [("backend", "null")]),
    ("vc", [("backend", "vc")]),
    ("vc:80Cx24C", [("backend", "vc")]),
    ("pty", [("backend", "pty")]),
    ("stdio", [("backend", "stdio")]),
    ("file:/tmp/x,y", [("backend", "file"), ("path", "/tmp/x,y")]),
    ("pipe:/tmp/p", [("backend", "pipe"), ("path", "/tmp/p")]),
    ("/dev/ttyS0", [("backend", "serial"), ("path", "/dev/ttyS0")]),
    ("tcp:127.0.0.1:4444,server,nowait",
     [("backend", "socket"), ("host", "127.0.0.1"), ("port", "4444"), ("server", "on"), ("wait", "off")]),
    ("tcp::4444,server=on,wait=off",
     [("backend", "socket"), ("host", ""), ("port", "4444"), ("server", "on"), ("wait", "off")]),
    ("telnet:localhost:23,server",
     [("backend", "socket"), ("host", "localhost"), ("port", "23"), ("telnet", "on"), ("server", "on")]),
    ("unix:/tmp/s,server,nowait",
     [("backend", "socket"), ("path", "/tmp/s"), ("server", "on"), ("wait", "off")]),
    ("udp::4555@:4556",
     [("backend", "udp"), ("host", ""), ("port", "4555"), ("localaddr", ""), ("localport", "4556")]),
    ("udp:10.0.0.1:99",
     [("backend", "udp"), ("host", "10.0.0.1"), ("port", "99")]),
])
def test_short_forms(spec, items):
    opts = parse_serial_spec(spec, "serial0")
    assert opts.id == "serial0"
    assert opts.items == items
    assert not getattr(opts, "monitor_wanted", False)


def test_mon_prefix_multiplexes_and_wants_a_monitor():
    opts = parse_serial_spec("mon:stdio", "serial0")
    assert ("mux", "on") in opts.items and ("backend", "stdio") in opts.items
    assert opts.monitor_wanted


def test_none_means_no_device():
    assert parse_serial_spec("none", "serial0") is None


@pytest.mark.parametrize("spec, silent", [("bogus:x", False), ("telnet", False),
                                          ("tcp:nohost", True), ("udp:127.0.0.1", True)])
def test_bad_short_forms(spec, silent):
    # QEMU prints "... is not a valid char driver" only for unknown forms; for a
    # malformed address of a known one only the caller's message appears.
    with pytest.raises(QemuError, match="^'%s' is not a valid char driver$" % spec) as e:
        parse_serial_spec(spec, "serial0")
    assert getattr(e.value, "silent", False) == silent
