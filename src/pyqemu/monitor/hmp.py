"""The human monitor (HMP): a readline prompt on a chardev, commands from :mod:`hmp_table`."""
from __future__ import annotations

from typing import Any, List, Optional

from pyqemu import QEMU_VERSION
from pyqemu.chardev.char import (CHR_EVENT_CLOSED, CHR_EVENT_MUX_IN, CHR_EVENT_MUX_OUT,
                                  CHR_EVENT_OPENED, Chardev)
from pyqemu.monitor import hmp_table
from pyqemu.monitor.hmp_table import ArgError, HmpCommand, find, parse_arguments
from pyqemu.monitor.readline import ReadLine
from pyqemu.util.error import QemuError


# QEMU's quit suspends its monitor before the emulator exits: no prompt follows.
SUSPENDING_COMMANDS = {"quit"}


# The monitor whose command is running: machine code asks it for its CPU.
current_monitor = None


class HmpMonitor:
    """One HMP instance: on a chardev (``-monitor``), or detached to capture output
    (``human-monitor-command``)."""

    def __init__(self, chr: Optional[Chardev] = None) -> None:
        self.chr = chr
        self.cpu_index = 0        # the CPU of x, info registers, $reg ... ('cpu N')
        self.captured: Optional[List[str]] = None if chr is not None else []
        # The line editor works on bytes (as latin-1 text) so that its echo and
        # cursor moves are QEMU's byte for byte, whatever the encoding typed.
        self.rs = ReadLine(self._echo, self._line_bytes, self.complete)
        self.reset_seen = False
        self.mux_out = False
        # As QEMU: a count of reasons not to read input (a command running, quit,
        # focus elsewhere on a mux); the prompt shows when it drops to zero.
        self.suspend_cnt = 0
        # Output waits here while a mux has the focus elsewhere.
        self._outbuf: List[bytes] = []
        self._held = ""
        if chr is not None:
            chr.set_handlers(self._can_read, self._read, self._event, owner=self)

    # -- output --------------------------------------------------------------
    @property
    def suspended(self) -> bool:
        return self.suspend_cnt > 0

    def _emit(self, data: bytes, text: str) -> None:
        if self.captured is not None:
            self.captured.append(text)
            return
        self._outbuf.append(data)
        self.flush()

    def flush(self) -> None:
        if self.mux_out or self.chr is None or not self._outbuf:
            return
        data = b"".join(self._outbuf)
        self._outbuf = []
        self.chr.write(data)

    def _out_raw(self, text: str) -> None:
        self._emit(text.encode("utf-8", "surrogateescape"), text)

    def _echo(self, text: str) -> None:
        text = text.replace("\n", "\r\n")
        self._emit(text.encode("latin-1"), text)

    def _line_bytes(self, line: str) -> None:
        self.handle_line(line.encode("latin-1").decode("utf-8", "surrogateescape"))

    def printf(self, text: str) -> None:
        """Monitor output: ``\\n`` becomes ``\\r\\n`` as on QEMU's monitor."""
        self._out_raw(text.replace("\n", "\r\n"))

    def error(self, msg: str) -> None:
        self.printf("Error: %s\n" % msg)

    # -- chardev frontend ------------------------------------------------------
    def _can_read(self) -> int:
        return 0 if self.suspended else 4096

    def _read(self, data: bytes) -> None:
        text = self._held + data.decode("latin-1")
        self._held = ""
        for i, ch in enumerate(text):
            if self.suspended:
                # Input after a command that suspended the monitor waits for resume().
                self._held = text[i:]
                return
            self.rs.handle_char(ch)

    def _event(self, event: int) -> None:
        if event == CHR_EVENT_OPENED:
            self.printf("QEMU %s monitor - type 'help' for more information\n" % QEMU_VERSION)
            if not self.mux_out:
                self.rs.restart()
                self.rs.show_prompt()
            self.reset_seen = True
        elif event == CHR_EVENT_MUX_IN:
            self.mux_out = False
            if self.reset_seen:
                self.rs.restart()
                self.resume()
                self.flush()
            else:
                self.suspend_cnt = 0
        elif event == CHR_EVENT_MUX_OUT:
            if self.reset_seen:
                if self.suspend_cnt == 0:
                    self.printf("\n")
                self.flush()
                self.suspend()
            else:
                self.suspend_cnt += 1
            self.mux_out = True
        elif event == CHR_EVENT_CLOSED:
            pass

    # -- commands --------------------------------------------------------------
    def suspend(self) -> None:
        """Stop reading input and showing prompts (``quit`` does this before exiting)."""
        self.suspend_cnt += 1

    def resume(self) -> None:
        """Undo one suspend(); at zero the prompt shows and input flows again."""
        if self.suspend_cnt == 0:
            return
        self.suspend_cnt -= 1
        if self.suspend_cnt == 0 and self.chr is not None:
            self.rs.show_prompt()
            if self._held:
                self._read(b"")
            self.chr.accept_input()

    def handle_line(self, line: str) -> None:
        # As QEMU: suspended while the command runs; resuming shows the next prompt
        # unless the command suspended the monitor itself (quit).
        self.suspend()
        self.execute(line)
        self.resume()

    def execute(self, line: str) -> None:
        """Run one command line, printing its output or error."""
        p = 0
        while p < len(line) and line[p].isspace():
            p += 1
        if p >= len(line):
            return
        table = hmp_table.commands
        start = p
        word, p = hmp_table.get_name(line, p)
        if word is None:
            # a name cut short by '/': QEMU names the line up to there
            self.printf("unknown command: '%s'\n" % line[start:p])
            return
        cmd = find(table, word)
        typed = word
        if cmd is not None and cmd.names[0] == "info":
            sub, q = hmp_table.get_name(line, p)
            if sub is None and q < len(line):
                self.printf("unknown command: '%s'\n" % line[start:q])
                return
            if sub is not None:
                info_cmd = find(hmp_table.info_commands, sub)
                if info_cmd is None:
                    self.printf("unknown command: 'info %s'\n" % sub)
                    return
                cmd, p, typed = info_cmd, q, "info " + sub
        if cmd is None:
            self.printf("unknown command: '%s'\n" % word)
            return
        try:
            args = parse_arguments(cmd, line, p, typed)
        except ArgError as e:
            self.printf("%s\nTry \"help %s\" for more information\n" % (e.msg, typed))
            return
        self.run(cmd, args)

    def run(self, cmd: HmpCommand, args: Any) -> None:
        global current_monitor
        if cmd.handler is None:
            return
        outer, current_monitor = current_monitor, self
        try:
            cmd.handler(self, args)
        except QemuError as e:
            self.error(e.msg)
            return
        finally:
            current_monitor = outer
        if cmd.names[0] in SUSPENDING_COMMANDS:
            self.suspend()

    # -- completion ------------------------------------------------------------
    def complete(self, head: str) -> List[str]:
        words = head.split(" ")
        if len(words) <= 1:
            return [n for c in hmp_table.commands.values() for n in c.names]
        if len(words) == 2 and words[0] == "info":
            return [n for c in hmp_table.info_commands.values() for n in c.names]
        if len(words) == 2 and words[0] in ("help", "?"):
            return [n for c in hmp_table.commands.values() for n in c.names]
        if len(words) == 2 and words[0] in ("chardev-remove", "chardev-send-break", "ringbuf_read",
                                             "ringbuf_write"):
            from pyqemu.chardev.char import chardev_list
            return [c.label for c in chardev_list()]
        return []

    def close(self) -> None:
        if self.chr is not None:
            self.chr.set_handlers(None, None, None, owner=self)
            self.chr = None


def run_hmp_command(line: str, cpu_index: int = 0) -> str:
    """``human-monitor-command``: run one line on a scratch monitor, return its output."""
    mon = HmpMonitor(None)
    mon.cpu_index = cpu_index
    mon.execute(line)
    return "".join(mon.captured or [])
