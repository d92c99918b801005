"""Fixtures of the NBD peer tests."""
from __future__ import annotations

import pytest
from nbd_peer_util import PYQEMU_NBD, Server, need


@pytest.fixture
def nbd_server(tmp_path):
    """``nbd_server(which, image, args=(), tcp=False)`` -> Server; which is 'py' or 'qemu'."""
    started = []

    def start(which: str, image: str, args=(), tcp: bool = False, export: str = "") -> Server:
        prog = PYQEMU_NBD if which == "py" else need("qemu-nbd")
        d = tmp_path / ("srv%d" % len(started))
        d.mkdir()
        s = Server(prog, image, d, args, tcp, export)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


