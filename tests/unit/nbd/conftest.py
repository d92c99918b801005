"""An in-process NBD server over a real raw file, for the unit tests."""
from __future__ import annotations

import socket
import threading

import pytest

from pyqemu.nbd.export import Export, LockedBackend, RawFileBackend
from pyqemu.nbd.server import NBDServer

MiB = 1 << 20


class Running:
    def __init__(self, path: str, tmp_path, read_only: bool = False, exports=None, tls=None) -> None:
        self.path = path
        self.sock_path = str(tmp_path / "s.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.sock_path)
        self.listener.listen(8)
        backend = LockedBackend(RawFileBackend(path, read_only=read_only))
        self.exports = exports or [Export("", backend, description="unit"),
                                   Export("second", backend, description="two")]
        self.server = NBDServer(self.exports, max_connections=0, persistent=True, tls=tls)
        self.thread = threading.Thread(target=self.server.serve_forever, args=([self.listener],), daemon=True)
        self.thread.start()

    def connect(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(self.sock_path)
        return s

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def raw_image(tmp_path):
    p = tmp_path / "disk.raw"
    with open(p, "wb") as f:
        f.truncate(4 * MiB)
        f.seek(MiB)
        f.write(b"\x5a" * 65536)
    return str(p)


@pytest.fixture
def server(tmp_path, raw_image):
    srv = Running(raw_image, tmp_path)
    yield srv
    srv.stop()
