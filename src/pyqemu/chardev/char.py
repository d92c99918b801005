"""The character-device core: the Chardev base class and the id registry.

A chardev has one *backend* side (a socket, a file, a pty ...) and at most one
*frontend* (a serial port, a monitor, the mux).  Bytes the frontend writes go
out through :meth:`Chardev.write`; bytes the backend receives go to the
frontend's ``read`` callback, as much as its ``can_read`` callback accepts, the
rest waiting in a buffer until the frontend calls :meth:`Chardev.accept_input`.
Events (opened, closed, break, mux focus) go to the frontend's ``event``
callback.

Backends are created from a QMP-shaped description (``type`` + ``data``) so
that ``-chardev``, the ``-serial`` short forms and QMP ``chardev-add`` share one
path (see :mod:`pyqemu.chardev.create`).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional

from pyqemu.exec.main_loop import MainLoop, main_loop
from pyqemu.util.error import QemuError

CHR_EVENT_BREAK = 0
CHR_EVENT_OPENED = 1
CHR_EVENT_MUX_IN = 2
CHR_EVENT_MUX_OUT = 3
CHR_EVENT_CLOSED = 4

CanReadCb = Callable[[], int]
ReadCb = Callable[[bytes], None]
EventCb = Callable[[int], None]


class Chardev:
    """Base class of every backend; subclasses override the ``_open``/``_write`` hooks."""

    #: the backend name as QMP and ``-chardev`` spell it
    typename = ""

    def __init__(self, label: str, data: Dict[str, Any], loop: Optional[MainLoop] = None) -> None:
        self.label = label
        self.data = data
        self.loop = loop or main_loop()
        self.filename = self.typename
        self.be_open = False  # the backend is connected (sockets: a peer is there)
        self._can_read: Optional[CanReadCb] = None
        self._read: Optional[ReadCb] = None
        self._event: Optional[EventCb] = None
        self.fe_open = False
        self.fe_owner: Optional[object] = None
        self._pending = bytearray()
        # Flow control as in QEMU: the input fd is watched only while the
        # frontend can take bytes, so a busy or absent frontend pushes back.
        self._input_fd: Optional[int] = None
        self._input_cb: Optional[Callable[[], None]] = None
        self._watching = False
        self._opening = False
        self._logfd: Optional[int] = None
        logfile = data.get("logfile")
        if logfile:
            flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if data.get("logappend") else os.O_TRUNC)
            try:
                self._logfd = os.open(logfile, flags, 0o666)
            except OSError as e:
                raise QemuError("Unable to open logfile %s: %s" % (logfile, e.strerror)) from None

    # -- lifetime -----------------------------------------------------------
    def open(self) -> Dict[str, Any]:
        """Open the backend; returns the extra QMP fields of chardev-add (pty path)."""
        return {}

    def close(self) -> None:
        if self._logfd is not None:
            os.close(self._logfd)
            self._logfd = None

    # -- frontend side --------------------------------------------------------
    def set_handlers(self, can_read: Optional[CanReadCb], read: Optional[ReadCb],
                     event: Optional[EventCb] = None, owner: Optional[object] = None,
                     fe_open: bool = True) -> None:
        """Attach a frontend (qemu_chr_fe_set_handlers); all None detaches it.

        ``fe_open`` is what query-chardev reports as "frontend-open"; the mux
        attaches to its base without opening it, as in QEMU.
        """
        self._can_read = can_read
        self._read = read
        self._event = event
        self.fe_owner = owner if read is not None else None
        self.fe_open = read is not None and fe_open
        if read is not None and self.be_open and event is not None:
            # A frontend attached to an already-connected backend hears "opened"
            # from the loop; its input waits until then.
            self._opening = True
            self.loop.bh_schedule(lambda: self._fire_opened_if_still_open(event))
        self.accept_input()

    def _fire_opened_if_still_open(self, event: EventCb) -> None:
        self._opening = False
        if self._event is event and self.be_open:
            event(CHR_EVENT_OPENED)
        self.accept_input()

    def has_frontend(self) -> bool:
        """A frontend is attached: the chardev is busy and cannot be removed."""
        return self._read is not None

    def write(self, data: bytes) -> int:
        """Frontend -> backend; returns the bytes taken (all, for blocking backends)."""
        n = self._write(bytes(data))
        if self._logfd is not None and n > 0:
            try:
                os.write(self._logfd, data[:n])
            except OSError:
                pass
        return n

    def _write(self, data: bytes) -> int:
        return len(data)

    def accept_input(self) -> None:
        """The frontend can take more: deliver what waits (qemu_chr_fe_accept_input)."""
        if self._pending:
            self._deliver()
        self._update_watch()

    def set_input_fd(self, fd: Optional[int], cb: Optional[Callable[[], None]]) -> None:
        """Backends name the fd whose readability means input (None: no input now)."""
        if self._watching and self._input_fd is not None:
            self.loop.set_fd_handler(self._input_fd, None)
        self._watching = False
        self._input_fd, self._input_cb = fd, cb
        self._update_watch()

    def _update_watch(self) -> None:
        want = self._input_fd is not None and not self._pending and self.can_receive() > 0
        if want != self._watching and self._input_fd is not None:
            self.loop.set_fd_handler(self._input_fd, self._input_cb if want else None)
            self._watching = want

    # -- backend side --------------------------------------------------------
    def can_receive(self) -> int:
        """How many bytes the frontend takes now (0 when none is attached)."""
        if self._read is None or self._opening:
            return 0
        if self._can_read is None:
            return 1 << 16
        return max(0, self._can_read())

    def be_received(self, data: bytes) -> None:
        """Bytes from the backend for the frontend; what it cannot take waits."""
        self._pending += data
        self._deliver()
        self._update_watch()

    def _deliver(self) -> None:
        while self._pending and self._read is not None:
            n = min(self.can_receive(), len(self._pending))
            if n <= 0:
                break
            chunk = bytes(self._pending[:n])
            del self._pending[:n]
            self._read(chunk)

    def be_event(self, event: int) -> None:
        if event == CHR_EVENT_OPENED:
            self.be_open = True
        elif event == CHR_EVENT_CLOSED:
            self.be_open = False
        if self._event is not None:
            self._event(event)

    # -- introspection -------------------------------------------------------
    def info(self) -> Dict[str, Any]:
        # Member order as QEMU prints it.
        return {"frontend-open": self.fe_open, "filename": self.filename, "label": self.label}


# ---------------------------------------------------------------------------
# Registry of live chardevs (QEMU keeps them under /chardevs in the QOM tree)
# ---------------------------------------------------------------------------

_chardevs: Dict[str, Chardev] = {}


def chardev_find(label: str) -> Optional[Chardev]:
    return _chardevs.get(label)


def chardev_get(label: str) -> Chardev:
    chr = _chardevs.get(label)
    if chr is None:
        raise QemuError("Chardev '%s' not found" % label)
    return chr


def chardev_list() -> List[Chardev]:
    return list(_chardevs.values())


def chardev_register(chr: Chardev) -> None:
    if chr.label in _chardevs:
        raise QemuError("attempt to add duplicate property '%s' to object (type 'container')"
                        % chr.label)
    _chardevs[chr.label] = chr


def chardev_replace(old: Chardev, new: Chardev) -> None:
    """Put ``new`` in ``old``'s place, its frontend moving over (chardev-change)."""
    can_read, read, event, owner, fe_open = old._can_read, old._read, old._event, old.fe_owner, old.fe_open
    old.set_handlers(None, None, None, owner=owner)
    _chardevs[old.label] = new
    old.close()
    if read is not None:
        new.set_handlers(can_read, read, event, owner=owner, fe_open=fe_open)
        changed = getattr(owner, "chardev_changed", None)
        if changed is not None:
            changed(new)


def chardev_unregister(label: str) -> None:
    chr = _chardevs.pop(label, None)
    if chr is not None:
        chr.close()


def chardev_reset_all() -> None:
    """Close and forget every chardev (process exit, test isolation)."""
    for label in list(_chardevs):
        chardev_unregister(label)
