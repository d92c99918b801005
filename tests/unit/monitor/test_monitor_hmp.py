import re

import pytest

from pyqemu.monitor import start_monitor
from pyqemu.monitor.hmp import run_hmp_command
from pyqemu.util import log as qlog


@pytest.fixture
def hmp(loop, loopback):
    """An HMP monitor on a loopback chardev; run(line) returns what the command printed."""
    chr = loopback("mon0")
    start_monitor(chr, "readline")
    loop.run_until(lambda: chr.out.endswith(b"(qemu) "), timeout=5)
    chr.screen()

    def run(line):
        chr.type(line.encode() + b"\r")
        screen = chr.screen().decode()
        # Drop the echo (everything up to the first CR LF) and the next prompt.
        body = screen.split("\r\n", 1)[1]
        assert body.endswith("(qemu) ")
        return body[:-len("(qemu) ")]
    return run


def test_banner_and_prompt(loop, loopback):
    chr = loopback("m")
    start_monitor(chr, "readline")
    loop.run_until(lambda: chr.out.endswith(b"(qemu) "), timeout=5)
    assert chr.screen() == b"QEMU 7.2.0 monitor - type 'help' for more information\r\n(qemu) "


def test_info_version(hmp):
    assert hmp("info version") == "7.2.0pyqemu 0.1.0\r\n"


def test_ringbuf_round_trip_and_info_chardev(hmp):
    assert hmp("chardev-add ringbuf,id=r,size=16") == ""
    assert hmp("ringbuf_write r hello") == ""
    assert hmp("ringbuf_read r 10") == "hello\r\n"
    assert hmp('ringbuf_write r "a b\\"c"') == ""
    assert hmp("ringbuf_read r 2+2*2") == 'a b"c\r\n'
    lines = hmp("info chardev").split("\r\n")
    assert "r: filename=ringbuf" in lines and "mon0: filename=loopback" in lines
    assert hmp("chardev-remove r") == ""
    assert hmp("chardev-remove r") == "Error: Chardev 'r' not found\r\n"


# Messages as real QEMU 7.2 prints them for the same input.
@pytest.mark.parametrize("line, text", [
    ("foo", "unknown command: 'foo'\r\n"),
    ("info bogus", "unknown command: 'info bogus'\r\n"),
    ("help bogus", "unknown command: 'bogus'\r\n"),
    ("ringbuf_read r x", "invalid char 'x' in expression\r\nTry \"help ringbuf_read\" for more information\r\n"),
    ("ringbuf_read r", "unexpected end of expression\r\nTry \"help ringbuf_read\" for more information\r\n"),
    ("ringbuf_read", "ringbuf_read: string expected\r\nTry \"help ringbuf_read\" for more information\r\n"),
    ("ringbuf_read x 3", "Error: Device 'x' not found\r\n"),
    ("chardev-remove", "chardev-remove: string expected\r\nTry \"help chardev-remove\" for more information\r\n"),
    ("chardev-remove zz", "Error: Chardev 'zz' not found\r\n"),
    ("chardev-add null", "Error: chardev: no id specified\r\n"),
    ("logfile", "logfile: filename expected\r\nTry \"help logfile\" for more information\r\n"),
    ("ringbuf_write r", "ringbuf_write: string expected\r\nTry \"help ringbuf_write\" for more information\r\n"),
    ("ringbuf_write r abc def",
     "ringbuf_write: extraneous characters at the end of line\r\nTry \"help ringbuf_write\" for more information\r\n"),
    ("info version extra",
     "version: extraneous characters at the end of line\r\nTry \"help info version\" for more information\r\n"),
    ("help ringbuf_read", "ringbuf_read device size -- Read from a ring buffer character device\r\n"),
    ("help info version", "info version  -- show the version of QEMU\r\n"),
    ("", ""),
])
def test_messages_match_qemu(hmp, line, text):
    assert hmp(line) == text


def test_help_lists_commands_sorted(hmp):
    lines = hmp("help").split("\r\n")
    assert "chardev-add args -- add chardev" in lines
    assert "help|? [cmd] -- show the help" in lines
    # continuation lines of a multi-line help text start with white space
    names = [ln.split(" ")[0] for ln in lines if ln and not ln[0].isspace()]
    assert names == sorted(names)
    assert hmp("?") == hmp("help")
    info = hmp("info").split("\r\n")
    assert "info chardev  -- show the character devices" in info
    assert "info history  -- show the command line history" in info


def test_info_history(hmp):
    hmp("info version")
    hmp("foo")
    text = hmp("info history")
    assert text == "0: 'info version'\r\n1: 'foo'\r\n2: 'info history'\r\n"


def test_log_and_logfile(hmp, tmp_path):
    try:
        assert hmp("log int,cpu") == ""
        assert qlog.enabled("int") and qlog.enabled("cpu")
        usage = hmp("log bogus")
        assert usage.startswith("Log items (comma separated):\r\n")
        assert 'Use "log trace:help" to get a list of trace events.' in usage
        assert hmp("log none") == ""
        assert qlog.get_mask() == 0
        path = tmp_path / "q.log"
        assert hmp("logfile %s" % path) == ""
        assert path.exists()
    finally:
        qlog.set_mask(0)
        qlog.set_file(None)


def test_human_monitor_command_captures_output(loop):
    from pyqemu.monitor import register_builtin_commands
    register_builtin_commands()
    assert run_hmp_command("info version") == "7.2.0pyqemu 0.1.0\r\n"
    assert re.match(r"unknown command: 'nope'\r\n$", run_hmp_command("nope"))


def test_suspended_monitor_holds_input(loop, loopback):
    from pyqemu.monitor.hmp_table import commands, register_hmp
    chr = loopback("m2")
    mon = start_monitor(chr, "readline")
    loop.run_until(lambda: chr.out.endswith(b"(qemu) "), timeout=5)
    register_hmp("x-suspend-test", "", "", "test", lambda m, a: m.suspend())
    try:
        chr.screen()
        chr.type(b"x-suspend-test\rinfo version\r")
        assert not chr.screen().endswith(b"(qemu) ")  # no prompt, like QEMU after quit
        mon.resume()
        assert b"7.2.0pyqemu 0.1.0\r\n(qemu) " in chr.screen()
    finally:
        del commands["x-suspend-test"]


def test_chardev_send_break(hmp, loopback):
    from pyqemu.chardev import CHR_EVENT_BREAK
    target = loopback("brk")
    seen = []
    target.set_handlers(lambda: 100, lambda d: None, seen.append, owner=seen)
    assert hmp("chardev-send-break brk") == ""
    assert CHR_EVENT_BREAK in seen
    assert hmp("chardev-send-break nope") == "Error: Chardev 'nope' not found\r\n"


def test_chardev_change_moves_a_hotswap_capable_frontend(hmp, loopback, tmp_path):
    from pyqemu.chardev import chardev_find

    class Device:
        supports_hotswap = True

        def __init__(self):
            self.chr = None

        def chardev_changed(self, chr):
            self.chr = chr
    dev = Device()
    old = loopback("dev0")
    old.set_handlers(lambda: 10, lambda d: None, None, owner=dev)
    out = tmp_path / "now-a-file"
    assert hmp("chardev-change dev0 file,path=%s" % out) == ""
    new = chardev_find("dev0")
    assert new is dev.chr and new.filename == "file" and new.has_frontend()
    new.write(b"written after the swap")
    assert out.read_bytes() == b"written after the swap"
    # A failing new backend leaves the old one in place.
    assert hmp("chardev-change dev0 file,path=%s" % (tmp_path / "no" / "x")).startswith(
        "Error: Failed to add chardev 'dev0': Could not open")
    assert chardev_find("dev0") is new
