"""guest-file-*: host access to guest files through numbered handles."""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

from pyqemu.qga import b64
from pyqemu.qga.errors import QgaError
from pyqemu.qga.qapi import Alternate, Enum, arg, opt

READ_COUNT_DEFAULT = 4096
READ_COUNT_MAX = 48 << 20

# fopen() modes and the open(2) flags they mean.
_MODES = {
    "r": os.O_RDONLY, "rb": os.O_RDONLY,
    "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND, "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "r+": os.O_RDWR, "rb+": os.O_RDWR, "r+b": os.O_RDWR,
    "w+": os.O_RDWR | os.O_CREAT | os.O_TRUNC, "wb+": os.O_RDWR | os.O_CREAT | os.O_TRUNC,
    "w+b": os.O_RDWR | os.O_CREAT | os.O_TRUNC,
    "a+": os.O_RDWR | os.O_CREAT | os.O_APPEND, "ab+": os.O_RDWR | os.O_CREAT | os.O_APPEND,
    "a+b": os.O_RDWR | os.O_CREAT | os.O_APPEND,
}


class GuestFile:
    """An open handle.

    QEMU's agent reads through stdio but clears the stream's indicators
    after every read, so end of file is reported only by the read that hit
    it, and writes and seeks never report it.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        os.close(self.fd)


def _get(agent: Any, handle: int) -> GuestFile:
    f = agent.files.get(handle)
    if f is None:
        raise QgaError("handle '%d' has not been found" % handle)
    return f


def file_open(agent: Any, path: str, mode: Optional[str] = None) -> int:
    mode = "r" if mode is None else mode
    flags = _MODES.get(mode)
    if flags is None:
        raise QgaError("invalid file open mode '%s'" % mode)
    try:
        fd = os.open(path, flags | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise QgaError("failed to open file '%s' (mode: '%s'): %s"
                       % (path, mode, os.strerror(exc.errno or 5))) from None
    handle = agent.new_handle()
    agent.files[handle] = GuestFile(fd)
    return handle


def file_close(agent: Any, handle: int) -> None:
    f = _get(agent, handle)
    del agent.files[handle]
    try:
        f.close()
    except OSError as exc:
        raise QgaError("failed to close handle: %s" % os.strerror(exc.errno or 5)) from None


def file_read(agent: Any, handle: int, count: Optional[int] = None) -> Dict[str, Any]:
    f = _get(agent, handle)
    if count is None:
        count = READ_COUNT_DEFAULT
    elif count < 0 or count > READ_COUNT_MAX:
        raise QgaError("value '%d' is invalid for argument count" % count)
    chunks = []
    got = 0
    eof = False
    try:
        # Like fread(): keep reading until count bytes or end of file.
        while got < count:
            data = os.read(f.fd, count - got)
            if not data:
                eof = True
                break
            chunks.append(data)
            got += len(data)
    except OSError as exc:
        raise QgaError("failed to read file: %s" % os.strerror(exc.errno or 5)) from None
    return {"count": got, "buf-b64": b64.encode(b"".join(chunks)), "eof": eof}


def file_write(agent: Any, handle: int, buf_b64: str, count: Optional[int] = None) -> Dict[str, Any]:
    f = _get(agent, handle)
    data = b64.decode(buf_b64)
    if count is None:
        count = len(data)
    elif count < 0 or count > len(data):
        raise QgaError("value '%d' is invalid for argument count" % count)
    done = 0
    try:
        while done < count:
            done += os.write(f.fd, data[done:count])
    except OSError as exc:
        raise QgaError("failed to write to file: %s" % os.strerror(exc.errno or 5)) from None
    return {"count": done, "eof": False}


_WHENCE = {"set": os.SEEK_SET, "cur": os.SEEK_CUR, "end": os.SEEK_END}


def file_seek(agent: Any, handle: int, offset: int, whence: Any) -> Dict[str, Any]:
    f = _get(agent, handle)
    if isinstance(whence, str):
        how = _WHENCE[whence]
    elif whence in (0, 1, 2):
        how = whence
    else:
        raise QgaError("invalid whence code %d" % whence)
    try:
        pos = os.lseek(f.fd, offset, how)
    except OSError as exc:
        raise QgaError("failed to seek file: %s" % os.strerror(exc.errno or 5)) from None
    return {"position": pos, "eof": False}


def file_flush(agent: Any, handle: int) -> None:
    _get(agent, handle)
    # Writes go straight to the file descriptor: nothing is buffered here.


_SEEK = Alternate("GuestFileWhence", Enum(("set", "cur", "end")))

SPECS = {
    "guest-file-open": (file_open, [arg("path"), opt("mode")], True, True),
    "guest-file-close": (file_close, [arg("handle", "int")], True, True),
    "guest-file-read": (file_read, [arg("handle", "int"), opt("count", "int")], True, True),
    "guest-file-write": (file_write, [arg("handle", "int"), arg("buf-b64"), opt("count", "int")],
                         True, True),
    "guest-file-seek": (file_seek, [arg("handle", "int"), arg("offset", "int"), arg("whence", _SEEK)],
                        True, True),
    "guest-file-flush": (file_flush, [arg("handle", "int")], True, True),
}
