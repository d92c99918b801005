"""``-g port``: wait for gdb before the first guest instruction."""
from __future__ import annotations

import os
import signal
import socket

from pyqemu.gdbstub.server import GdbDisconnected, GdbKill, GdbStub
from pyqemu.target.i386 import gdbstub as x86_gdb
from pyqemu.util.error import QemuError


def listen(spec: str) -> socket.socket:
    """A listening socket for ``-g``: a TCP port number, or a Unix socket path."""
    if spec.isdigit():
        port = int(spec)
        if not 0 < port < 65536:
            raise QemuError("qemu: could not open gdbserver on %s" % spec)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            sock.close()
            raise QemuError("could not open gdbserver on %s" % spec) from None
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if os.path.exists(spec):
                os.unlink(spec)
            sock.bind(spec)
        except OSError:
            sock.close()
            raise QemuError("could not open gdbserver on %s" % spec) from None
    sock.listen(1)
    return sock


def attach_gdb(emu, spec: str) -> None:
    """Block until gdb connects, then let it inspect the program before it starts."""
    server = listen(spec)
    try:
        conn, _addr = server.accept()
    finally:
        server.close()
    if conn.family == socket.AF_INET:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stub = GdbStub(conn, emu.cpu, emu.mem, x86_gdb, emu.bits, auxv=emu.info.auxv, osabi="GNU/Linux",
                   load_bias=emu.info.load_bias)
    emu.gdb = stub
    try:
        deliver = stub.stopped(signal.SIGTRAP, announce=False)
    except GdbDisconnected:
        emu._detach_gdb()
        return
    except GdbKill:
        stub.close()
        os._exit(0)
    if deliver:
        stub.killed_by(deliver)
        emu.gdb = None
        emu.fatal_signal(deliver)
