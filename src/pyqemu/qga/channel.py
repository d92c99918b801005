"""Transports and the main loop.

One client at a time: on a listening socket (unix, vsock) a second client
waits in the backlog until the first disconnects; on a serial port the host
side is whoever holds it.  Each client gets a fresh JSON stream, so garbage
left by a vanished client cannot poison the next one.
"""
from __future__ import annotations

import errno
import os
import selectors
import signal
import socket
import stat
import termios
from typing import Any, Optional

from pyqemu.qga import log
from pyqemu.qga.agent import Agent
from pyqemu.qga.qjson import JsonStreamer, to_json
from pyqemu.qga.dispatch import error_response
from pyqemu.qga.errors import QgaError
from pyqemu.util.error import QemuError

READ_SIZE = 4096


class ChannelError(QemuError):
    """The transport exists but could not be opened (as opposed to an unknown method)."""


RETRY_INTERVAL = 1.0
WRITE_TIMEOUT = 30.0


class Channel:
    """Runs the agent over one transport until stopped."""

    def __init__(self, agent: Agent, method: str, path: str, retry: bool = False) -> None:
        self.agent = agent
        self.method = method
        self.path = path
        self.retry = retry
        self.sel = selectors.DefaultSelector()
        self.listener: Optional[socket.socket] = None
        self.conn: Any = None          # socket, or fd (int) for serial ports
        self.streamer: Optional[JsonStreamer] = None
        self.running = True

    # -- set-up ---------------------------------------------------------
    def open_retrying(self) -> None:
        """Open the channel; with -r, wait for a missing device to appear."""
        import time
        while True:
            try:
                self.open()
                return
            except QemuError as exc:
                if not self.retry:
                    raise
                log.warning("%s; retrying" % exc)
            deadline = time.monotonic() + RETRY_INTERVAL
            while self.running and time.monotonic() < deadline:
                time.sleep(0.05)
            if not self.running:
                raise QemuError("stopped while waiting for %s" % self.path)

    def open(self) -> None:
        if self.method == "unix-listen":
            self._listen_unix()
        elif self.method == "vsock-listen":
            self._listen_vsock()
        elif self.method in ("virtio-serial", "isa-serial"):
            self._open_serial()
        else:
            raise QemuError("unsupported channel method/type: %s" % self.method)

    def _listen_unix(self) -> None:
        try:
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind(self.path)
            s.listen(1)
        except OSError as exc:
            s.close()
            raise ChannelError("Failed to bind socket to %s: %s" % (self.path, os.strerror(exc.errno or 5)))
        self._set_listener(s)

    def _listen_vsock(self) -> None:
        try:
            cid_s, port_s = self.path.split(":", 1)
            cid, port = int(cid_s), int(port_s)
        except ValueError:
            raise ChannelError("error parsing address '%s'" % self.path) from None
        try:
            s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
            s.bind((cid, port))
            s.listen(1)
        except OSError as exc:
            raise ChannelError("Failed to bind vsock socket %s: %s" % (self.path, os.strerror(exc.errno or 5)))
        self._set_listener(s)

    def _set_listener(self, s: socket.socket) -> None:
        s.setblocking(False)
        self.listener = s
        self.sel.register(s, selectors.EVENT_READ, "accept")

    def _open_serial(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as exc:
            raise ChannelError("error opening channel '%s': %s" % (self.path, os.strerror(exc.errno or 5)))
        if self.method == "isa-serial" and os.isatty(fd):
            # raw 8N1, no echo: the host speaks JSON, not a terminal
            attrs = termios.tcgetattr(fd)
            attrs[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP |
                          termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
            attrs[1] &= ~termios.OPOST
            attrs[2] = (attrs[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
            attrs[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
            attrs[4] = attrs[5] = termios.B38400
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
        self.conn = fd
        self._new_stream()
        self.sel.register(fd, selectors.EVENT_READ, "client")

    # -- clients ----------------------------------------------------------
    def _new_stream(self) -> None:
        self.streamer = JsonStreamer(self._on_message)

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        # a client that never reads must not hang the agent in sendall()
        conn.settimeout(WRITE_TIMEOUT)
        self.conn = conn
        self._new_stream()
        # Stop accepting until this client is gone: one client at a time.
        self.sel.unregister(self.listener)
        self.sel.register(conn, selectors.EVENT_READ, "client")
        log.debug("new client connected")

    def _drop_client(self) -> None:
        if self.conn is None:
            return
        try:
            self.sel.unregister(self.conn)
        except (KeyError, ValueError):
            pass
        if isinstance(self.conn, int):
            os.close(self.conn)
        else:
            self.conn.close()
        self.conn = None
        self.streamer = None
        log.debug("client disconnected")
        if self.listener is not None:
            self.sel.register(self.listener, selectors.EVENT_READ, "accept")

    def _read(self) -> None:
        try:
            if isinstance(self.conn, int):
                data = os.read(self.conn, READ_SIZE)
            else:
                data = self.conn.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.warning("error reading channel: %s" % os.strerror(exc.errno or errno.EIO))
            data = b""
        if not data:
            if isinstance(self.conn, int):
                self._serial_hangup()
            else:
                self._drop_client()
            return
        assert self.streamer is not None
        self.streamer.feed(data)

    def _serial_hangup(self) -> None:
        # A serial port has no "connection": the host end went away.  Reopen
        # it so the next host starts from a clean stream.
        self._drop_client()
        try:
            if self.retry:
                self.open_retrying()
            else:
                self._open_serial()
        except QemuError as exc:
            log.critical(str(exc))
            self.running = False
            return
        # avoid spinning on a port that stays hung up
        import time
        time.sleep(0.2)

    def _on_message(self, value: Any, err: Optional[str]) -> None:
        if err is not None:
            log.debug("failed to parse event: %s" % err)
            self._send(error_response(QgaError(err)))
            return
        log.debug("processing command")
        rsp = self.agent.handle(value)
        if rsp is None:
            return
        try:
            text = to_json(rsp)
        except (TypeError, ValueError) as exc:
            # a command returned something JSON cannot carry: a bug, not a crash
            log.critical("cannot encode response: %s" % exc)
            text = to_json(error_response(QgaError("internal error: cannot encode response")))
        self._send_text(text)

    def _send(self, rsp: Any) -> None:
        self._send_text(to_json(rsp))

    def _send_text(self, text: str) -> None:
        if self.conn is None:
            return
        payload = text.encode("ascii") + b"\n"
        if self.agent.delimit_response:
            self.agent.delimit_response = False
            payload = b"\xff" + payload
        try:
            if isinstance(self.conn, int):
                self._write_fd(payload)
            else:
                self.conn.sendall(payload)
        except OSError as exc:
            log.warning("error sending response: %s" % os.strerror(exc.errno or errno.EIO))
            if isinstance(self.conn, int):
                self._serial_hangup()       # a port is reopened, never abandoned
            else:
                self._drop_client()

    def _write_fd(self, payload: bytes) -> None:
        import select
        import time
        view = memoryview(payload)
        deadline = time.monotonic() + WRITE_TIMEOUT
        while view:
            try:
                n = os.write(self.conn, view)
            except BlockingIOError:
                # Nobody reads the port: give the host a while, then drop
                # the answer rather than hang the agent.
                if time.monotonic() > deadline or not self.running:
                    raise OSError(errno.ETIMEDOUT, "write timed out") from None
                select.select([], [self.conn], [], 0.1)
                continue
            view = view[n:]

    # -- loop ---------------------------------------------------------------
    def stop(self, *_: Any) -> None:
        self.running = False

    def install_signals(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self.stop)

    def run(self) -> None:
        self.install_signals()
        while self.running:
            # Reap finished guest-exec children now, as GLib's child watch
            # does, so none lingers as a zombie until the host asks.
            for child in list(self.agent.children.values()):
                child.proc.poll()
            for key, _ in self.sel.select(timeout=0.5):
                if key.data == "accept":
                    self._accept()
                elif self.conn is not None:
                    self._read()
                if not self.running:
                    break

    def close(self) -> None:
        self._drop_client()
        if self.listener is not None:
            try:
                self.sel.unregister(self.listener)
            except (KeyError, ValueError):
                pass
            self.listener.close()
            self.listener = None
            if self.method == "unix-listen":
                try:
                    os.unlink(self.path)
                except OSError:
                    pass
        self.sel.close()
