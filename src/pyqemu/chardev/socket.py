"""``socket`` backend: tcp or unix, client or server, telnet, reconnect, nodelay."""
from __future__ import annotations

import os
import socket
import sys
from typing import Any, Dict, Optional, Tuple

from pyqemu.chardev.char import CHR_EVENT_BREAK, CHR_EVENT_CLOSED, CHR_EVENT_OPENED, Chardev
from pyqemu.chardev.fd import write_all
from pyqemu.exec.main_loop import QEMU_CLOCK_REALTIME
from pyqemu.util.error import QemuError, error_report

# What QEMU's telnet server says first: WILL ECHO, WILL SUPPRESS-GO-AHEAD,
# WILL BINARY, DO BINARY - the client then sends characters one at a time.
TELNET_INIT = b"\xff\xfb\x01\xff\xfb\x03\xff\xfb\x00\xff\xfd\x00"
IAC = 0xFF
IAC_BREAK = 0xF3


class TelnetFilter:
    """Strips telnet commands from received bytes; reports IAC BREAK."""

    def __init__(self) -> None:
        self.state = 0  # 0 data, 1 after IAC, 2 option byte follows
        self.breaks = 0

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            if self.state == 0:
                if b == IAC:
                    self.state = 1
                else:
                    out.append(b)
            elif self.state == 1:
                if b == IAC:
                    out.append(IAC)
                    self.state = 0
                elif 251 <= b <= 254:  # WILL WONT DO DONT take an option byte
                    self.state = 2
                else:
                    if b == IAC_BREAK:
                        self.breaks += 1
                    self.state = 0
            else:
                self.state = 0
        return bytes(out)


def _addr_desc(addr: Dict[str, Any]) -> Tuple[str, str]:
    """(kind, text) for messages: ('tcp', 'host:port') or ('unix', path)."""
    kind = addr.get("type")
    data = addr.get("data", {})
    if kind == "unix":
        return "unix", data.get("path", "")
    if kind == "inet":
        return "tcp", "%s:%s" % (data.get("host", ""), data.get("port", ""))
    if kind == "fd":
        return "fd", str(data.get("str", ""))
    raise QemuError("Parameter 'addr.type' does not accept value '%s'" % kind)


def _resolve(host: str, port: str, ipv4: bool, ipv6: bool, passive: bool):
    family = socket.AF_UNSPEC
    if ipv4 and not ipv6:
        family = socket.AF_INET
    elif ipv6 and not ipv4:
        family = socket.AF_INET6
    if not port.isdigit() or int(port) > 65535:
        try:
            portnum = socket.getservbyname(port)
        except OSError:
            raise QemuError("address resolution failed for %s:%s: Servname not supported for ai_socktype"
                            % (host, port)) from None
    else:
        portnum = int(port)
    try:
        return socket.getaddrinfo(host or None, portnum, family, socket.SOCK_STREAM, 0,
                                  socket.AI_PASSIVE if passive else 0)
    except socket.gaierror as e:
        raise QemuError("address resolution failed for %s:%s: %s" % (host, port, e.strerror)) from None


class SocketChardev(Chardev):
    typename = "socket"

    def __init__(self, label: str, data: Dict[str, Any], loop=None) -> None:
        super().__init__(label, data, loop)
        self.addr = data.get("addr") or {}
        self.is_server = bool(data.get("server", True))
        self.wait = bool(data.get("wait", True))
        self.telnet = bool(data.get("telnet", False))
        self.nodelay = bool(data.get("nodelay", False))
        self.reconnect = int(data.get("reconnect", 0) or 0)
        self.listener: Optional[socket.socket] = None
        self.conn: Optional[socket.socket] = None
        self.peer = ""
        self.telnet_filter = TelnetFilter()
        self._timer = None
        self.kind, self.where = _addr_desc(self.addr)
        if self.telnet:
            self.kind = "telnet"
        if self.reconnect and self.is_server:
            raise QemuError("'reconnect' option is incompatible with socket in server listen mode")
        self._update_filename()

    # -- naming ----------------------------------------------------------------
    def _update_filename(self) -> None:
        suffix = ",server=on" if self.is_server else ""
        if self.conn is None:
            self.filename = "disconnected:%s:%s%s" % (self.kind, self.where, suffix)
        elif self.kind == "unix":
            self.filename = "unix:%s%s" % (self.where, suffix)
        else:
            self.filename = "%s:%s%s <-> %s" % (self.kind, self.where, suffix, self.peer)

    # -- opening ---------------------------------------------------------------
    def open(self) -> Dict[str, Any]:
        if self.addr.get("type") == "fd":
            return self._open_fd()
        if self.is_server:
            self.listener = self._listen()
            self._update_filename()
            if self.wait:
                sys.stderr.write("QEMU waiting for connection on: %s\n" % self.filename)
                sys.stderr.flush()
                self.listener.setblocking(True)
                conn, peer = self.listener.accept()
                self.listener.setblocking(False)
                self._connected(conn, peer)
            else:
                self.loop.set_fd_handler(self.listener.fileno(), self._accept)
        else:
            try:
                sock, peer = self._connect()
            except QemuError as e:
                if not self.reconnect:
                    raise
                error_report("Unable to connect character device %s: %s" % (self.label, e.msg))
                self._schedule_reconnect()
                return {}
            self._connected(sock, peer)
        return {}

    def _open_fd(self) -> Dict[str, Any]:
        """``fd=N``: a socket inherited from the parent, listening or connected."""
        text = str(self.addr.get("data", {}).get("str", ""))
        try:
            sock = socket.socket(fileno=int(text))
        except (ValueError, OSError):
            raise QemuError("File descriptor '%s' is not a socket" % text) from None
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            self.listener = sock
            sock.setblocking(False)
            self.is_server = True
            self._update_filename()
            self.loop.set_fd_handler(sock.fileno(), self._accept)
        else:
            self._connected(sock, "fd")
        return {}

    def _listen(self) -> socket.socket:
        data = self.addr.get("data", {})
        if self.addr.get("type") == "unix":
            path = data.get("path", "")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                try:
                    os.unlink(path)
                except OSError:
                    pass
                # Listen under a temporary name and rename: the path appears only
                # once connections are accepted (a client that waits for the file
                # and connects at once is never refused).
                tmp = "%s.%d~" % (path, os.getpid())
                if path and not data.get("abstract") and len(tmp.encode()) < 108:
                    try:
                        os.unlink(tmp)
                    except OSError:
                        pass
                    s.bind(tmp)
                    s.listen(1)
                    os.rename(tmp, path)
                else:
                    s.bind(path)
                    s.listen(1)
            except OSError as e:
                s.close()
                raise QemuError("Failed to bind socket to %s: %s" % (path, e.strerror)) from None
        elif self.addr.get("type") == "inet":
            host = data.get("host", "") or "0.0.0.0"
            port = str(data.get("port", ""))
            last: Optional[OSError] = None
            s = None
            for fam, typ, proto, _, sa in _resolve(host, port, data.get("ipv4", False),
                                                  data.get("ipv6", False), True):
                s = socket.socket(fam, typ, proto)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(sa)
                    s.listen(1)
                    break
                except OSError as e:
                    last = e
                    s.close()
                    s = None
            if s is None:
                err = last.strerror if last else "unknown error"
                raise QemuError("Failed to bind socket: %s" % err) from None
            if self.where.startswith(":"):
                self.where = "0.0.0.0" + self.where
            if str(port) == "0":
                # Port 0 picks a free port; QEMU names the one it got.
                self.where = "%s:%d" % (self.where.rpartition(":")[0], s.getsockname()[1])
        else:
            raise QemuError("Parameter 'addr.type' does not accept value '%s'" % self.addr.get("type"))
        s.setblocking(False)
        return s

    def _connect(self) -> Tuple[socket.socket, str]:
        data = self.addr.get("data", {})
        if self.addr.get("type") == "unix":
            path = data.get("path", "")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
            except OSError as e:
                s.close()
                raise QemuError("Failed to connect to '%s': %s" % (path, e.strerror)) from None
            return s, path
        host = data.get("host", "")
        port = str(data.get("port", ""))
        last = "Connection refused"
        for fam, typ, proto, _, sa in _resolve(host, port, data.get("ipv4", False),
                                              data.get("ipv6", False), False):
            s = socket.socket(fam, typ, proto)
            try:
                s.connect(sa)
                return s, "%s:%s" % (sa[0], sa[1])
            except OSError as e:
                last = e.strerror or str(e)
                s.close()
        raise QemuError("Failed to connect to '%s:%s': %s" % (host, port, last))

    def _accept(self) -> None:
        if self.listener is None:
            return
        try:
            conn, peer = self.listener.accept()
        except (BlockingIOError, OSError):
            return
        self._connected(conn, peer)

    def _connected(self, conn: socket.socket, peer: Any) -> None:
        conn.setblocking(False)
        if self.nodelay and conn.family in (socket.AF_INET, socket.AF_INET6):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = conn
        if isinstance(peer, tuple):
            self.peer = "%s:%s" % (peer[0], peer[1])
        else:
            self.peer = str(peer)
        self._update_filename()
        if self.listener is not None:
            # One client at a time, as QEMU: further ones wait in the backlog.
            self.loop.set_fd_handler(self.listener.fileno(), None)
        self.telnet_filter = TelnetFilter()
        if self.telnet:
            write_all(conn.fileno(), TELNET_INIT)
        self.set_input_fd(conn.fileno(), self._readable)
        self.be_event(CHR_EVENT_OPENED)

    def _readable(self) -> None:
        room = self.can_receive()
        if self.conn is None or room <= 0:
            self._update_watch()
            return
        try:
            data = self.conn.recv(min(4096, room))
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._disconnect()
            return
        if self.telnet:
            data = self.telnet_filter.feed(data)
            while self.telnet_filter.breaks:
                self.telnet_filter.breaks -= 1
                self.be_event(CHR_EVENT_BREAK)
        if data:
            self.be_received(data)

    def _disconnect(self) -> None:
        if self.conn is None:
            return
        self.set_input_fd(None, None)
        self.conn.close()
        self.conn = None
        self._update_filename()
        self.be_event(CHR_EVENT_CLOSED)
        if self.listener is not None:
            self.loop.set_fd_handler(self.listener.fileno(), self._accept)
        elif self.reconnect:
            self._schedule_reconnect()

    def _schedule_reconnect(self) -> None:
        if self._timer is None:
            self._timer = self.loop.timer_new(QEMU_CLOCK_REALTIME, self._try_reconnect)
        self._timer.mod(self.loop.clock_get_ns(QEMU_CLOCK_REALTIME) + self.reconnect * 1000000000)

    def _try_reconnect(self) -> None:
        try:
            sock, peer = self._connect()
        except QemuError as e:
            error_report("Unable to connect character device %s: %s" % (self.label, e.msg))
            self._schedule_reconnect()
            return
        self._connected(sock, peer)

    # -- data ----------------------------------------------------------------
    def _write(self, data: bytes) -> int:
        if self.conn is None:
            return len(data)  # nobody listens: the bytes are dropped, as in QEMU
        n = write_all(self.conn.fileno(), data)
        if n < 0:
            self._disconnect()
            return len(data)
        return n

    def close(self) -> None:
        if self._timer is not None:
            self._timer.delete()
        if self.conn is not None:
            self.set_input_fd(None, None)
            self.conn.close()
            self.conn = None
        if self.listener is not None:
            self.loop.set_fd_handler(self.listener.fileno(), None)
            if self.addr.get("type") == "unix":
                try:
                    os.unlink(self.addr["data"]["path"])
                except OSError:
                    pass
            self.listener.close()
            self.listener = None
        super().close()
