"""Random command sequences through pyqemu's client and server, checked against a byte model.

The export is a qcow2 image opened by the block layer (so the export adapter,
the server, the client and qcow2 are exercised together) or a raw file."""
from __future__ import annotations

import socket
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyqemu.block import create_image, open_image
from pyqemu.nbd.blockexport import BlockNodeBackend
from pyqemu.nbd.client import NBDClient
from pyqemu.nbd.export import Export, LockedBackend
from pyqemu.nbd.server import NBDServer

SIZE = 1 << 20
_offsets = st.integers(0, SIZE - 1)
_ops = st.lists(st.tuples(st.sampled_from(["write", "zero", "zero_unmap", "trim", "read", "flush"]),
                          _offsets, st.integers(1, 200000), st.integers(0, 255)), min_size=1, max_size=12)


@pytest.fixture(scope="module", params=["qcow2", "raw"])
def served(request, tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    path = str(d / ("m." + request.param))
    create_image(request.param, path, SIZE)
    node = open_image(path, request.param, readonly=False)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(d / "m.sock"))
    listener.listen(4)
    server = NBDServer([Export("", LockedBackend(BlockNodeBackend(node)))], max_connections=0, persistent=True)
    t = threading.Thread(target=server.serve_forever, args=([listener],), daemon=True)
    t.start()
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(d / "m.sock"))
    client = NBDClient(sock)
    model = bytearray(client.pread(0, SIZE))
    yield client, model
    client.close()
    server.stop()
    t.join(10)
    node.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_ops)
def test_random_commands_match_model(served, ops):
    client, model = served
    for op, off, n, byte in ops:
        n = min(n, SIZE - off)
        if op == "write":
            client.pwrite(off, bytes([byte]) * n, fua=bool(byte & 1))
            model[off:off + n] = bytes([byte]) * n
        elif op in ("zero", "zero_unmap"):
            client.pwrite_zeroes(off, n, may_unmap=(op == "zero_unmap"))
            model[off:off + n] = bytes(n)
        elif op == "trim":
            client.discard(off, n)
            # Trimmed bytes have unspecified contents: learn what the server now returns.
            model[off:off + n] = client.pread(off, n)
        elif op == "flush":
            client.flush()
        else:
            assert client.pread(off, n) == bytes(model[off:off + n])
    assert client.pread(0, SIZE) == bytes(model)
    # Block status agrees with the data: a range said to read as zeroes does.
    pos = 0
    while pos < SIZE:
        for length, flags in client.block_status(pos, SIZE - pos):
            if flags & 2:
                assert not any(model[pos:pos + length])
            pos += length
