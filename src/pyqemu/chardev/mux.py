"""The multiplexer (``mux=on``): several frontends share one backend.

Input goes to the frontend that has the focus; ``C-a`` (the escape key)
followed by a letter controls the mux itself:

====== =============================================
C-a h  print the key help
C-a x  exit the emulator
C-a s  save disk data back to file (if -snapshot)
C-a t  toggle timestamps on output
C-a b  send a break to the focused frontend
C-a c  switch the focus to the next frontend
C-a C-a send a literal C-a
====== =============================================
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional

from pyqemu.chardev.char import (CHR_EVENT_BREAK, CHR_EVENT_CLOSED, CHR_EVENT_MUX_IN, CHR_EVENT_MUX_OUT,
                                  CHR_EVENT_OPENED, CanReadCb, Chardev, EventCb, ReadCb)
from pyqemu.util.error import QemuError

MAX_MUX = 4
ESCAPE = 0x01  # C-a

_HELP = ["% h    print this help\n\r",
         "% x    exit emulator\n\r",
         "% s    save disk data back to file (if -snapshot)\n\r",
         "% t    toggle console timestamps\n\r",
         "% b    send break (magic sysrq)\n\r",
         "% c    switch between console and monitor\n\r",
         "% %  sends %\n\r"]


def _default_quit() -> None:
    from pyqemu.exec.main_loop import main_loop
    main_loop().request_exit()


# The machine core replaces these: C-a x asks for a clean exit, C-a s commits disks.
quit_handler: Callable[[], None] = _default_quit
save_handler: Callable[[], None] = lambda: None


def set_quit_handler(cb: Callable[[], None]) -> None:
    global quit_handler
    quit_handler = cb


def set_save_handler(cb: Callable[[], None]) -> None:
    global save_handler
    save_handler = cb


class _Frontend:
    __slots__ = ("owner", "can_read", "read", "event")

    def __init__(self, owner: object, can_read: Optional[CanReadCb], read: ReadCb,
                 event: Optional[EventCb]) -> None:
        self.owner = owner
        self.can_read = can_read
        self.read = read
        self.event = event


class MuxChardev(Chardev):
    typename = "mux"

    def __init__(self, label: str, data: Dict[str, Any], loop=None) -> None:
        super().__init__(label, data, loop)
        self.frontends: List[_Frontend] = []
        self.focus = -1
        self.escape_pending = False
        self.timestamps = False
        self.ts_start = -1.0
        self.linestart = True
        self.base: Optional[Chardev] = None
        self._inbuf = bytearray()

    def open(self) -> Dict[str, Any]:
        from pyqemu.chardev.char import chardev_find
        name = self.data.get("chardev")
        if not name:
            raise QemuError("chardev: mux: no chardev given")
        base = chardev_find(name)
        if base is None:
            raise QemuError("mux: base chardev %s not found" % name)
        if base.has_frontend():
            raise QemuError("Chardev '%s' is busy" % name)
        self.base = base
        base.set_handlers(lambda: 4096, self._base_read, self._base_event, owner=self, fe_open=False)
        if base.be_open:
            self.be_open = True
        return {}

    # -- frontends -----------------------------------------------------------
    def set_handlers(self, can_read: Optional[CanReadCb], read: Optional[ReadCb],
                     event: Optional[EventCb] = None, owner: Optional[object] = None,
                     fe_open: bool = True) -> None:
        key = owner if owner is not None else read
        idx = next((i for i, f in enumerate(self.frontends) if f.owner is key), -1)
        if read is None:
            if idx >= 0:
                del self.frontends[idx]
                if self.focus >= len(self.frontends):
                    self.focus = len(self.frontends) - 1
            self.fe_open = bool(self.frontends)
            self._read = None if not self.frontends else self._read
            return
        if idx >= 0:
            self.frontends[idx] = _Frontend(key, can_read, read, event)
        else:
            if len(self.frontends) >= MAX_MUX:
                raise QemuError("too many uses of multiplexed chardev '%s' (maximum is %d)"
                                % (self.label, MAX_MUX))
            self.frontends.append(_Frontend(key, can_read, read, event))
            idx = len(self.frontends) - 1
        self.fe_open = True
        self._read = read  # marks the mux busy (has_frontend) while anyone is attached
        if event is not None and self.be_open:
            self.loop.bh_schedule(lambda: self._opened_later(key))
        self.set_focus(idx)

    def _opened_later(self, key: object) -> None:
        for f in self.frontends:
            if f.owner is key and f.event is not None and self.be_open:
                f.event(CHR_EVENT_OPENED)

    def set_focus(self, idx: int) -> None:
        if not self.frontends:
            return
        if 0 <= self.focus < len(self.frontends):
            self._send_event(self.focus, CHR_EVENT_MUX_OUT)
        self.focus = idx
        self._send_event(idx, CHR_EVENT_MUX_IN)
        self._flush_input()

    def _send_event(self, idx: int, event: int) -> None:
        f = self.frontends[idx]
        if f.event is not None:
            f.event(event)

    # -- output --------------------------------------------------------------
    def _write(self, data: bytes) -> int:
        if self.base is None:
            return len(data)
        if not self.timestamps:
            self.base.write(data)
            return len(data)
        out = bytearray()
        for b in data:
            if self.linestart:
                ms = int((time.monotonic() - self.ts_start) * 1000)
                secs, ms = divmod(ms, 1000)
                mins, secs = divmod(secs, 60)
                hours, mins = divmod(mins, 60)
                out += b"[%02d:%02d:%02d.%03d] " % (hours % 24, mins, secs, ms)
                self.linestart = False
            out.append(b)
            if b == 0x0A:
                self.linestart = True
        self.base.write(bytes(out))
        return len(data)

    def _print_help(self) -> None:
        text = "\n\r" + "".join(line.replace("%", "C-a") for line in _HELP)
        if self.base is not None:
            self.base.write(text.encode())

    # -- input ---------------------------------------------------------------
    def _base_event(self, event: int) -> None:
        if event == CHR_EVENT_OPENED:
            if self.be_open:
                return  # frontends already heard it when they attached
            self.be_open = True
        elif event == CHR_EVENT_CLOSED:
            self.be_open = False
        for f in list(self.frontends):
            if f.event is not None:
                f.event(event)

    def _base_read(self, data: bytes) -> None:
        for b in data:
            if self._process_byte(b):
                self._inbuf.append(b)
        self._flush_input()

    def _process_byte(self, b: int) -> bool:
        """Handle escape keys; True when ``b`` is input for the focused frontend."""
        if not self.escape_pending:
            if b == ESCAPE:
                self.escape_pending = True
                return False
            return True
        self.escape_pending = False
        if b == ESCAPE:
            return True
        key = chr(b)
        if key in "h?":
            self._print_help()
        elif key == "x":
            if self.base is not None:
                self.base.write(b"QEMU: Terminated\n\r")
            quit_handler()
        elif key == "s":
            save_handler()
        elif key == "b":
            self._flush_input()
            if 0 <= self.focus < len(self.frontends):
                self._send_event(self.focus, CHR_EVENT_BREAK)
        elif key == "c":
            self._flush_input()
            if self.frontends:
                self.set_focus((self.focus + 1) % len(self.frontends))
        elif key == "t":
            self.timestamps = not self.timestamps
            self.ts_start = time.monotonic() if self.ts_start < 0 else self.ts_start
            self.linestart = False
        return False

    def _flush_input(self) -> None:
        if not self._inbuf or not (0 <= self.focus < len(self.frontends)):
            return
        f = self.frontends[self.focus]
        while self._inbuf:
            n = len(self._inbuf) if f.can_read is None else min(f.can_read(), len(self._inbuf))
            if n <= 0:
                break
            chunk = bytes(self._inbuf[:n])
            del self._inbuf[:n]
            f.read(chunk)

    def accept_input(self) -> None:
        self._flush_input()

    def info(self) -> Dict[str, Any]:
        return {"frontend-open": self.fe_open, "filename": "mux", "label": self.label}

    def close(self) -> None:
        if self.base is not None:
            self.base.set_handlers(None, None, None, owner=self)
            self.base = None
        super().close()
