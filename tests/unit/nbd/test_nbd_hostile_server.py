"""The NBD client against a server that negotiates properly and then replies with garbage:
every outcome is data or an NBDError, never a hang, a crash or a huge allocation."""
from __future__ import annotations

import socket
import struct
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from pyqemu.nbd import protocol as P
from pyqemu.nbd.client import NBDClient, NBDError


def fake_server(sock: socket.socket, reply: bytes, negotiation_garbage: bytes = b"") -> None:
    try:
        sock.sendall(P.S_GREETING.pack(P.NBDMAGIC, P.IHAVEOPT, P.FLAG_FIXED_NEWSTYLE | P.FLAG_NO_ZEROES))
        sock.recv(4)
        if negotiation_garbage:
            sock.sendall(negotiation_garbage)
            return
        while True:
            hdr = sock.recv(16, socket.MSG_WAITALL)
            if len(hdr) < 16:
                return
            _, opt, ln = P.S_OPTION.unpack(hdr)
            if ln:
                sock.recv(ln, socket.MSG_WAITALL)
            if opt == P.OPT_GO:
                body = P.S_EXPORT_INFO.pack(P.INFO_EXPORT, 1 << 20, P.TF_HAS_FLAGS | P.TF_SEND_FLUSH)
                sock.sendall(P.S_OPT_REPLY.pack(P.REPLY_MAGIC_OPT, opt, P.REP_INFO, len(body)) + body)
                sock.sendall(P.S_OPT_REPLY.pack(P.REPLY_MAGIC_OPT, opt, P.REP_ACK, 0))
                break
            if opt == P.OPT_STRUCTURED_REPLY:
                sock.sendall(P.S_OPT_REPLY.pack(P.REPLY_MAGIC_OPT, opt, P.REP_ACK, 0))
            else:
                sock.sendall(P.S_OPT_REPLY.pack(P.REPLY_MAGIC_OPT, opt, P.REP_ERR_UNSUP, 0))
        sock.recv(28, socket.MSG_WAITALL)          # the client's request
        sock.sendall(reply)
    except OSError:
        pass
    finally:
        sock.close()


def exchange(reply: bytes, negotiation_garbage: bytes = b""):
    a, b = socket.socketpair()
    a.settimeout(10)
    t = threading.Thread(target=fake_server, args=(b, reply, negotiation_garbage), daemon=True)
    t.start()
    try:
        c = NBDClient(a, "")
        return c.pread(0, 4096)
    finally:
        a.close()
        t.join(10)


def test_valid_structured_reply_is_read():
    chunk = struct.pack(">IHHQI", P.STRUCTURED_REPLY_MAGIC, P.REPLY_FLAG_DONE, P.REPLY_TYPE_OFFSET_DATA, 1,
                        8 + 4096) + struct.pack(">Q", 0) + b"\x42" * 4096
    assert exchange(chunk) == b"\x42" * 4096


def test_chunk_claiming_huge_length_is_refused():
    chunk = struct.pack(">IHHQI", P.STRUCTURED_REPLY_MAGIC, P.REPLY_FLAG_DONE, P.REPLY_TYPE_OFFSET_DATA, 1,
                        0xFFFFFFFF)
    try:
        exchange(chunk)
    except NBDError as exc:
        assert "length" in exc.msg
    else:
        raise AssertionError("accepted a 4 GiB chunk for a 4 KiB read")


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=200),
                 st.builds(lambda t, f, n, body: struct.pack(">IHHQI", P.STRUCTURED_REPLY_MAGIC, f, t, 1, n) + body,
                           st.sampled_from([0, 1, 2, 5, 0x8001, 0x8002, 77]), st.integers(0, 3),
                           st.integers(0, (1 << 32) - 1), st.binary(max_size=64))))
def test_garbage_replies(reply):
    try:
        data = exchange(reply)
    except NBDError:
        return
    assert len(data) == 4096


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=100))
def test_garbage_during_negotiation(garbage):
    try:
        exchange(b"", negotiation_garbage=garbage)
    except NBDError:
        return
    raise AssertionError("negotiation garbage accepted")
