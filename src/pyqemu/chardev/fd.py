"""Backends over a pair of file descriptors: file, pipe, serial/tty, and the base of pty/stdio."""
from __future__ import annotations

import errno
import os
import select
from typing import Any, Dict, Optional

from pyqemu.chardev.char import CHR_EVENT_CLOSED, CHR_EVENT_OPENED, Chardev
from pyqemu.util.error import QemuError

READ_CHUNK = 4096


def open_path(path: str, flags: int) -> int:
    try:
        return os.open(path, flags | os.O_CLOEXEC, 0o666)
    except OSError as e:
        raise QemuError("Could not open '%s': %s" % (path, e.strerror)) from None


def write_all(fd: int, data: bytes, timeout: Optional[float] = None) -> int:
    """Write everything, waiting when a non-blocking fd is full (QEMU's chr_write blocks too).

    With ``timeout``, give up after that many seconds without progress and
    report the bytes written (a pty nobody reads must not hang the emulator).
    """
    view = memoryview(data)
    done = 0
    while done < len(view):
        try:
            done += os.write(fd, view[done:])
        except BlockingIOError:
            _, w, _ = select.select([], [fd], [], 1.0 if timeout is None else timeout)
            if not w and timeout is not None:
                return done
        except OSError as e:
            if e.errno == errno.EINTR:
                continue
            return done if done else -1
    return done


class FdChardev(Chardev):
    """Reads ``in_fd`` from the main loop, writes ``out_fd`` synchronously."""

    def __init__(self, label: str, data: Dict[str, Any], loop=None) -> None:
        super().__init__(label, data, loop)
        self.in_fd: Optional[int] = None
        self.out_fd: Optional[int] = None

    def attach_fds(self, in_fd: Optional[int], out_fd: Optional[int]) -> None:
        self.in_fd = in_fd
        self.out_fd = out_fd
        if in_fd is not None:
            os.set_blocking(in_fd, False)
            self.set_input_fd(in_fd, self._readable)
        self.be_event(CHR_EVENT_OPENED)

    def _readable(self) -> None:
        room = self.can_receive()
        if self.in_fd is None or room <= 0:
            self._update_watch()
            return
        try:
            data = os.read(self.in_fd, min(READ_CHUNK, room))
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._eof()
            return
        self.be_received(data)

    def _eof(self) -> None:
        self.set_input_fd(None, None)
        self.be_event(CHR_EVENT_CLOSED)

    def _write(self, data: bytes) -> int:
        if self.out_fd is None:
            return len(data)
        return write_all(self.out_fd, data)

    def close(self) -> None:
        fds = {self.in_fd, self.out_fd} - {None}
        self.set_input_fd(None, None)
        for fd in fds:
            if fd > 2:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.in_fd = self.out_fd = None
        super().close()


class FileChardev(FdChardev):
    """``file``: output to ``out`` (truncated unless append), optional input from ``in``."""

    typename = "file"

    def open(self) -> Dict[str, Any]:
        out = self.data.get("out")
        if not out:
            raise QemuError("chardev: file: no filename given")
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if self.data.get("append") else os.O_TRUNC)
        out_fd = open_path(out, flags)
        in_fd = None
        if self.data.get("in"):
            in_fd = open_path(self.data["in"], os.O_RDONLY)
        self.attach_fds(in_fd, out_fd)
        return {}


class PipeChardev(FdChardev):
    """``pipe``: the pair ``PATH.in``/``PATH.out`` when both exist, else ``PATH`` both ways."""

    typename = "pipe"

    def open(self) -> Dict[str, Any]:
        path = self.data.get("device")
        if not path:
            raise QemuError("chardev: pipe: no device path given")
        try:
            in_fd = os.open(path + ".in", os.O_RDWR | os.O_CLOEXEC)
            try:
                out_fd = os.open(path + ".out", os.O_RDWR | os.O_CLOEXEC)
            except OSError:
                os.close(in_fd)
                raise
        except OSError:
            in_fd = out_fd = open_path(path, os.O_RDWR)
        self.attach_fds(in_fd, out_fd)
        return {}


class SerialChardev(FdChardev):
    """``serial``/``tty``: a host character device opened read-write, put in raw mode."""

    typename = "serial"

    def open(self) -> Dict[str, Any]:
        path = self.data.get("device")
        if not path:
            raise QemuError("chardev: serial/tty: no device path given")
        fd = open_path(path, os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY)
        if os.isatty(fd):
            import tty
            tty.setraw(fd)
        self.attach_fds(fd, fd)
        return {}
