"""pyqemu-io's formatting helpers and command parsing, without any other program."""
from __future__ import annotations

import pytest

from pyqemu.block import open_image
from pyqemu.cli import io_commands as C


@pytest.mark.parametrize("value,text", [(0, "0 bytes"), (32, "32 bytes"), (1024, "1 KiB"), (1536, "1.500 KiB"),
                                        (65536, "64 KiB"), (1 << 20, "1 MiB"), (3080192, "2.938 MiB"),
                                        (2.381103, "2.381103 bytes"), (1 << 30, "1 GiB")])
def test_cvtstr(value, text):
    assert C.cvtstr(value) == text


def test_timestr():
    assert C.timestr(0.021) == "00.02 sec"
    assert C.timestr(0.0, fixed=True) == "0:00:00.00"
    assert C.timestr(3725.5) == "1:02:05.50"


def test_dump_format(capsys):
    C.dump(b"AB\x00c" + bytes(14), 16)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "00000010:  41 42 00 63 00 00 00 00 00 00 00 00 00 00 00 00  AB.c............"
    assert out[1] == "00000020:  00 00  .."


def session(tmp_path, read_only=False):
    p = tmp_path / "x.raw"
    p.write_bytes(bytes(1 << 20))
    s = C.IOSession(lambda name, fmt, ro, extra: open_image(name, fmt, readonly=ro))
    s.node = open_image(str(p), "raw", readonly=read_only)
    return s


def test_write_read_pattern_and_errors(tmp_path, capsys):
    s = session(tmp_path)
    assert s.run("write -P 0x5a 512 1k") == 0
    assert s.run("read -P 0x5a 512 1k") == 0
    assert s.run("read -P 0x5b 512 1k") < 0
    assert s.run("read 1M 1") < 0          # past the end: I/O error, no allocation
    assert s.run("read 0 4G") < 0          # absurd length refused before allocating
    assert s.run("read 0 8E") < 0
    assert s.run("read 0 12q") < 0
    assert s.run("nosuch") < 0
    out = capsys.readouterr()
    assert "wrote 1024/1024 bytes at offset 512" in out.out
    assert "Pattern verification failed at offset 512, 1024 bytes" in out.out
    assert "read failed: Input/output error" in out.out
    assert "length cannot exceed 2147483136, given 4G" in out.out
    assert "Parsing error: argument too large -- 8E" in out.out
    assert "non-numeric argument, or extraneous/unrecognized suffix -- 12q" in out.out
    assert 'command "nosuch" not found' in out.err
    s.node.close()


def test_read_only_session_refuses_writes(tmp_path, capsys):
    s = session(tmp_path, read_only=True)
    for cmd in ("write 0 1", "writev 0 1", "aio_write 0 1", "discard 0 1", "truncate 2M"):
        assert s.run(cmd) < 0
    assert capsys.readouterr().err.count("Block node is read-only") == 5
    s.node.close()
