"""``udp``: datagrams to a remote address, received on an optional local one."""
from __future__ import annotations

import socket
from typing import Any, Dict, Optional

from pyqemu.chardev.char import CHR_EVENT_OPENED, Chardev
from pyqemu.util.error import QemuError


def _inet(addr: Optional[Dict[str, Any]], default_host: str) -> tuple:
    data = (addr or {}).get("data", {})
    host = data.get("host", "") or default_host
    port = str(data.get("port", "") or "0")
    try:
        info = socket.getaddrinfo(host, int(port), socket.AF_UNSPEC, socket.SOCK_DGRAM)
    except (socket.gaierror, ValueError) as e:
        msg = e.strerror if isinstance(e, socket.gaierror) else str(e)
        raise QemuError("address resolution failed for %s:%s: %s" % (host, port, msg)) from None
    return info[0][0], info[0][4]


class UdpChardev(Chardev):
    typename = "udp"

    def open(self) -> Dict[str, Any]:
        remote = self.data.get("remote")
        if not remote or not remote.get("data", {}).get("port"):
            raise QemuError("chardev: udp: remote port not specified")
        fam, raddr = _inet(remote, "localhost")
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            local = self.data.get("local")
            lhost = "0.0.0.0" if fam == socket.AF_INET else "::"
            _, laddr = _inet(local, lhost) if local else (fam, (lhost, 0))
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(laddr)
            self.sock.connect(raddr)
        except OSError as e:
            self.sock.close()
            raise QemuError("Failed to bind socket: %s" % e.strerror) from None
        self.sock.setblocking(False)
        self.set_input_fd(self.sock.fileno(), self._readable)
        self.be_event(CHR_EVENT_OPENED)
        return {}

    def _readable(self) -> None:
        if self.can_receive() <= 0:
            self._update_watch()
            return
        try:
            data = self.sock.recv(65536)
        except OSError:
            return
        if data:
            self.be_received(data)

    def _write(self, data: bytes) -> int:
        try:
            self.sock.send(data)
        except OSError:
            pass  # no listener: datagrams are lost, as with QEMU
        return len(data)

    def close(self) -> None:
        self.set_input_fd(None, None)
        self.sock.close()
        super().close()
