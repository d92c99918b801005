"""An in-process NBD server over a real raw file, for the NBD unit tests."""
from __future__ import annotations

import socket
import threading

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
