"""pyqemu's NBD client against pyqemu's NBD server, in one process, over a unix socket."""
from __future__ import annotations

import errno

import pytest

from pyqemu.nbd import protocol as P
from pyqemu.nbd.client import NBDClient, NBDError

MiB = 1 << 20


def client(server, export="", **kw) -> NBDClient:
    return NBDClient(server.connect(), export, **kw)


def test_negotiation_results(server):
    c = client(server)
    assert c.size == 4 * MiB and c.structured and c.meta_context is not None
    assert c.flags & P.TF_SEND_TRIM and not c.read_only
    assert (c.min_block, c.pref_block, c.max_block) == (1, 4096, 32 * MiB)
    assert c.description == "unit"
    c.close()


@pytest.mark.parametrize("structured", [True, False])
def test_read_write_zero_trim_flush(server, raw_image, structured):
    c = client(server, want_structured=structured)
    assert c.pread(MiB, 4) == b"\x5a" * 4
    c.pwrite(100, b"hello", fua=True)
    c.pwrite_zeroes(MiB, 4096, may_unmap=True)
    c.discard(2 * MiB, 65536)
    c.flush()
    assert c.pread(98, 9) == b"\0\0hello\0\0"
    assert c.pread(MiB, 4097) == bytes(4096) + b"\x5a"
    c.close()
    with open(raw_image, "rb") as f:
        data = f.read()
    assert data[100:105] == b"hello" and data[MiB:MiB + 4096] == bytes(4096)


def test_block_status_extents(server):
    c = client(server)
    ext = c.block_status(0, 4 * MiB)
    assert ext[0] == (MiB, P.STATE_HOLE | P.STATE_ZERO)
    assert ext[1][1] == 0 and ext[1][0] >= 65536
    assert sum(n for n, _ in ext) == 4 * MiB
    c.close()


def test_out_of_range_and_errors_keep_connection(server):
    c = client(server)
    with pytest.raises(NBDError) as e:
        c.pread(4 * MiB - 2, 4)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(NBDError) as e:
        c.pwrite(4 * MiB, b"x")
    assert e.value.errno == errno.ENOSPC
    assert c.pread(MiB, 2) == b"\x5a\x5a"     # still usable
    c.close()


def test_second_export_and_unknown_export(server):
    c = client(server, "second")
    assert c.description == "two"
    c.close()
    with pytest.raises(NBDError) as e:
        client(server, "nope")
    assert e.value.msg == "Requested export not available"
    assert "export 'nope' not present" in e.value.hint


def test_list_exports(server):
    assert NBDClient.list_exports(server.connect()) == [("", "unit"), ("second", "two")]


def test_read_only_export_refuses_writes(tmp_path, raw_image):
    from nbd_unit_server import Running
    srv = Running(raw_image, tmp_path, read_only=True)
    try:
        c = NBDClient(srv.connect())
        assert c.read_only and not c.flags & P.TF_SEND_TRIM
        # Ask anyway, bypassing the client's own checks: the server says EPERM.
        h = c._request(P.CMD_WRITE, 0, 3, 0, b"abc")
        with pytest.raises(NBDError) as e:
            c._simple_or_done(h)
        assert e.value.errno == errno.EPERM
        c.close()
    finally:
        srv.stop()
    with open(raw_image, "rb") as f:
        assert f.read(3) == bytes(3)
