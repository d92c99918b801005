import re

import pytest

from pyqemu.chardev import (CHARDEV_OPTS, CHR_EVENT_BREAK, CHR_EVENT_MUX_IN, CHR_EVENT_MUX_OUT,
                            create_from_opts)
from pyqemu.chardev import mux as muxmod
from pyqemu.monitor import start_monitor

# What QEMU 7.2 prints for C-a h (captured from qemu-system-x86_64 -serial mon:stdio).
QEMU_HELP = (b"\n\rC-a h    print this help\n\rC-a x    exit emulator\n\r"
             b"C-a s    save disk data back to file (if -snapshot)\n\r"
             b"C-a t    toggle console timestamps\n\rC-a b    send break (magic sysrq)\n\r"
             b"C-a c    switch between console and monitor\n\rC-a C-a  sends C-a\n\r")


class Recorder:
    def __init__(self, chr):
        self.data = bytearray()
        self.events = []
        chr.set_handlers(lambda: 4096, self.data.extend, self.events.append, owner=self)


@pytest.fixture
def mux(loopback):
    base = loopback("m-base")
    chr = create_from_opts(CHARDEV_OPTS.parse("mux,id=m,chardev=m-base", store=False))
    return chr, base


def test_help_text_matches_qemu(mux):
    chr, base = mux
    Recorder(chr)
    base.type(b"\x01h")
    assert base.screen() == QEMU_HELP


def test_focus_switch_and_input_routing(mux):
    chr, base = mux
    a = Recorder(chr)
    b = Recorder(chr)
    # The last frontend attached has the focus, as in QEMU (the serial port after the monitor).
    assert b.events == [CHR_EVENT_MUX_IN]
    assert a.events == [CHR_EVENT_MUX_IN, CHR_EVENT_MUX_OUT]
    base.type(b"to-b")
    base.type(b"\x01c")
    base.type(b"to-a")
    assert bytes(b.data) == b"to-b" and bytes(a.data) == b"to-a"
    assert b.events[-1] == CHR_EVENT_MUX_OUT and a.events[-1] == CHR_EVENT_MUX_IN


def test_escape_escape_break_and_save(mux, monkeypatch):
    chr, base = mux
    a = Recorder(chr)
    saved = []
    monkeypatch.setattr(muxmod, "save_handler", lambda: saved.append(1))
    base.type(b"x\x01\x01y\x01b\x01s")
    assert bytes(a.data) == b"x\x01y"
    assert CHR_EVENT_BREAK in a.events
    assert saved == [1]


def test_exit_key(mux, monkeypatch):
    chr, base = mux
    Recorder(chr)
    quits = []
    monkeypatch.setattr(muxmod, "quit_handler", lambda: quits.append(1))
    base.type(b"\x01x")
    assert quits == [1]
    assert base.screen() == b"QEMU: Terminated\n\r"


def test_timestamps(mux):
    chr, base = mux
    Recorder(chr)
    base.type(b"\x01t")
    chr.write(b"one\ntwo\n")
    out = base.screen().decode()
    # The line under way when timestamps start gets none; every new line does.
    assert re.fullmatch(r"one\n\[00:00:00\.\d{3}\] two\n", out), out
    base.type(b"\x01t")
    chr.write(b"plain\n")
    assert base.screen() == b"plain\n"


def test_monitor_on_mux_prints_like_qemu(mux, loop):
    chr, base = mux
    start_monitor(chr, "readline")
    loop.run_until(lambda: b"(qemu) " in bytes(base.out), timeout=5)
    assert base.screen() == (b"QEMU 7.2.0 monitor - type 'help' for more information\r\n"
                                       b"(qemu) ")
    # C-a c with the monitor alone: focus leaves (a newline) and comes back (the prompt).
    base.type(b"\x01c")
    assert base.screen() == b"\r\n(qemu) "


def test_too_many_frontends(mux):
    chr, _ = mux
    for _ in range(4):
        Recorder(chr)
    from pyqemu.util.error import QemuError
    with pytest.raises(QemuError, match="too many uses of multiplexed chardev 'm'"):
        Recorder(chr)


def test_monitor_behind_a_serial_port_waits_for_the_focus(mux, loop):
    # -nographic on a machine with a serial port: the monitor attaches first, the
    # serial port after it and has the focus; QEMU shows the banner only on C-a c.
    chr, base = mux
    start_monitor(chr, "readline")
    serial = Recorder(chr)
    loop.run_until(lambda: False, timeout=0.1)
    assert base.screen() == b""
    base.type(b"typed to the guest")
    assert bytes(serial.data) == b"typed to the guest"
    base.type(b"\x01c")
    assert base.screen() == b"QEMU 7.2.0 monitor - type 'help' for more information\r\n(qemu) "
    base.type(b"\x01c")
    assert base.screen() == b"\r\n"
