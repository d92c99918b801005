"""Malformed and hostile clients: the server answers with the protocol's error or hangs up,
and stays up for everyone else, with the image untouched by rejected requests."""
from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyqemu.nbd import protocol as P
from pyqemu.nbd.client import NBDClient

MiB = 1 << 20


def digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def recv_all(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return buf
        buf += chunk
    return buf


def handshake(s, structured=False):
    """Negotiate by hand up to transmission (NBD_OPT_GO on the default export)."""
    greet = recv_all(s, 18)
    assert struct.unpack(">QQH", greet)[:2] == (P.NBDMAGIC, P.IHAVEOPT)
    s.sendall(struct.pack(">I", P.FLAG_C_FIXED_NEWSTYLE | P.FLAG_C_NO_ZEROES))
    if structured:
        s.sendall(P.S_OPTION.pack(P.IHAVEOPT, P.OPT_STRUCTURED_REPLY, 0))
        _, _, rtype, ln = P.S_OPT_REPLY.unpack(recv_all(s, 20))
        assert rtype == P.REP_ACK
    s.sendall(P.S_OPTION.pack(P.IHAVEOPT, P.OPT_GO, 6) + struct.pack(">IH", 0, 0))
    while True:
        _, _, rtype, ln = P.S_OPT_REPLY.unpack(recv_all(s, 20))
        recv_all(s, ln)
        if rtype == P.REP_ACK:
            return


def closed(s) -> bool:
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def still_serving(server):
    c = NBDClient(server.connect())
    assert c.pread(MiB, 2) == b"\x5a\x5a"
    c.close()


def test_bad_option_magic_drops_connection(server):
    s = server.connect()
    recv_all(s, 18)
    s.sendall(struct.pack(">I", 1) + struct.pack(">QII", 0x1234, 7, 0))
    assert closed(s)
    still_serving(server)


def test_unknown_client_flags_drop_connection(server):
    s = server.connect()
    recv_all(s, 18)
    s.sendall(struct.pack(">I", 0xFF))
    assert closed(s)
    still_serving(server)


def test_huge_option_length_is_not_allocated(server):
    s = server.connect()
    recv_all(s, 18)
    s.sendall(struct.pack(">I", 1) + P.S_OPTION.pack(P.IHAVEOPT, P.OPT_GO, 0xFFFFFFFF))
    assert closed(s)
    still_serving(server)


def test_unknown_option_gets_unsup_and_continues(server):
    s = server.connect()
    recv_all(s, 18)
    s.sendall(struct.pack(">I", 1) + P.S_OPTION.pack(P.IHAVEOPT, 99, 3) + b"abc")
    _, opt, rtype, ln = P.S_OPT_REPLY.unpack(recv_all(s, 20))
    assert (opt, rtype) == (99, P.REP_ERR_UNSUP)
    recv_all(s, ln)
    s.sendall(P.S_OPTION.pack(P.IHAVEOPT, P.OPT_ABORT, 0))
    _, opt, rtype, _ = P.S_OPT_REPLY.unpack(recv_all(s, 20))
    assert (opt, rtype) == (P.OPT_ABORT, P.REP_ACK)
    assert closed(s)


def test_request_before_negotiation_is_dropped(server, raw_image):
    before = digest(raw_image)
    s = server.connect()
    recv_all(s, 18)
    s.sendall(struct.pack(">I", 1) + P.S_REQUEST.pack(P.REQUEST_MAGIC, 0, P.CMD_WRITE, 1, 0, 4) + b"evil")
    assert closed(s)
    assert digest(raw_image) == before
    still_serving(server)


def test_oversized_and_out_of_range_requests(server, raw_image):
    before = digest(raw_image)
    s = server.connect()
    handshake(s)
    # A read beyond the end: EINVAL, connection kept.
    s.sendall(P.S_REQUEST.pack(P.REQUEST_MAGIC, 0, P.CMD_READ, 1, 4 * MiB - 1, 2))
    assert P.S_SIMPLE_REPLY.unpack(recv_all(s, 16)) == (P.SIMPLE_REPLY_MAGIC, P.NBD_EINVAL, 1)
    # A write past the end: payload consumed, ENOSPC, nothing written.
    s.sendall(P.S_REQUEST.pack(P.REQUEST_MAGIC, 0, P.CMD_WRITE, 2, 2 ** 63, 8) + b"12345678")
    assert P.S_SIMPLE_REPLY.unpack(recv_all(s, 16)) == (P.SIMPLE_REPLY_MAGIC, P.NBD_ENOSPC, 2)
    # A huge read: EINVAL, no allocation.
    s.sendall(P.S_REQUEST.pack(P.REQUEST_MAGIC, 0, P.CMD_READ, 3, 0, 0xFFFFFFFF))
    assert P.S_SIMPLE_REPLY.unpack(recv_all(s, 16)) == (P.SIMPLE_REPLY_MAGIC, P.NBD_EINVAL, 3)
    # Unknown command and unknown flags: EINVAL.
    s.sendall(P.S_REQUEST.pack(P.REQUEST_MAGIC, 0, 42, 4, 0, 0))
    assert P.S_SIMPLE_REPLY.unpack(recv_all(s, 16))[1] == P.NBD_EINVAL
    s.sendall(P.S_REQUEST.pack(P.REQUEST_MAGIC, 0x8000, P.CMD_FLUSH, 5, 0, 0))
    assert P.S_SIMPLE_REPLY.unpack(recv_all(s, 16))[1] == P.NBD_EINVAL
    # Block status without structured replies: EINVAL.
    s.sendall(P.S_REQUEST.pack(P.REQUEST_MAGIC, 0, P.CMD_BLOCK_STATUS, 6, 0, 512))
    assert P.S_SIMPLE_REPLY.unpack(recv_all(s, 16))[1] == P.NBD_EINVAL
    # A write bigger than the server's limit: the connection goes.
    s.sendall(P.S_REQUEST.pack(P.REQUEST_MAGIC, 0, P.CMD_WRITE, 7, 0, 64 * MiB))
    assert closed(s)
    assert digest(raw_image) == before
    still_serving(server)


def test_client_vanishing_mid_write_leaves_image(server, raw_image):
    before = digest(raw_image)
    s = server.connect()
    handshake(s)
    s.sendall(P.S_REQUEST.pack(P.REQUEST_MAGIC, 0, P.CMD_WRITE, 1, 0, 65536) + b"x" * 1000)
    s.close()
    still_serving(server)
    assert digest(raw_image) == before


def test_bad_request_magic_drops_connection(server):
    s = server.connect()
    handshake(s, structured=True)
    s.sendall(P.S_REQUEST.pack(0xDEADBEEF, 0, P.CMD_READ, 1, 0, 512))
    assert closed(s)
    still_serving(server)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(negotiate=st.booleans(), garbage=st.binary(max_size=300))
def test_fuzz_random_bytes(server, raw_image, negotiate, garbage):
    """Random bytes after (or instead of) negotiation never hurt the server or the image."""
    before = digest(raw_image)
    s = server.connect()
    try:
        if negotiate:
            handshake(s, structured=True)
        else:
            recv_all(s, 18)
        s.sendall(garbage)
        s.shutdown(1)
        s.settimeout(5)
        while s.recv(65536):
            pass
    except OSError:
        pass
    finally:
        s.close()
    assert digest(raw_image) == before
    still_serving(server)


_cmds = st.sampled_from([P.CMD_READ, P.CMD_FLUSH, P.CMD_CACHE, P.CMD_BLOCK_STATUS, P.CMD_TRIM,
                         P.CMD_WRITE_ZEROES, 9, 200])


@pytest.fixture(scope="module")
def ro_server(tmp_path_factory):
    from nbd_unit_server import Running
    d = tmp_path_factory.mktemp("ro")
    path = str(d / "ro.raw")
    with open(path, "wb") as f:
        f.truncate(4 * MiB)
        f.seek(MiB)
        f.write(b"\x5a" * 65536)
    srv = Running(path, d, read_only=True)
    yield srv
    srv.stop()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reqs=st.lists(st.tuples(st.integers(0, 0xFFFF), _cmds, st.integers(0, 2 ** 64 - 1),
                               st.integers(0, 2 ** 32 - 1)), min_size=1, max_size=8))
def test_fuzz_well_framed_requests_on_read_only_export(ro_server, reqs):
    """Any well-framed request on a read-only export gets exactly one answer, the image stays."""
    before = digest(ro_server.path)
    s = ro_server.connect()
    handshake(s, structured=True)
    for handle, (flags, cmd, off, ln) in enumerate(reqs):
        s.sendall(P.S_REQUEST.pack(P.REQUEST_MAGIC, flags, cmd, handle, off, ln))
        magic = struct.unpack(">I", recv_all(s, 4))[0]
        if magic == P.SIMPLE_REPLY_MAGIC:
            err, h = struct.unpack(">IQ", recv_all(s, 12))
            assert h == handle
            if cmd == P.CMD_READ and err == 0:
                recv_all(s, ln)
            continue
        assert magic == P.STRUCTURED_REPLY_MAGIC
        while True:
            fl, typ, h, n = P.S_CHUNK_REST.unpack(recv_all(s, 16))
            assert h == handle
            recv_all(s, n)
            if fl & P.REPLY_FLAG_DONE:
                break
            assert struct.unpack(">I", recv_all(s, 4))[0] == P.STRUCTURED_REPLY_MAGIC
    s.close()
    still_serving(ro_server)
    assert digest(ro_server.path) == before
