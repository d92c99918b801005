"""The monitor's line editor (QEMU's util/readline.c behaviour).

It echoes as QEMU does - every change redraws the line by moving the cursor
back, printing the buffer and ``ESC [ K`` - so terminals and scripts see the
same bytes.  Keys: printable characters insert; Backspace/DEL, C-a/Home,
C-e/End, C-d/Delete, C-w (delete word), Left/Right, Up/Down (history), TAB
(completion), Enter (CR or LF).
"""
from __future__ import annotations

from typing import Callable, List, Optional

MAX_HISTORY = 64
MAX_LINE = 4096

# Receives text with bare "\n" line ends; the monitor turns them into CR LF.
Output = Callable[[str], None]
Completer = Callable[[str], List[str]]  # the line up to the cursor -> full candidate words


class ReadLine:
    def __init__(self, out: Output, on_line: Callable[[str], None],
                 completer: Optional[Completer] = None) -> None:
        self.out = out
        self.on_line = on_line
        self.completer = completer
        self.prompt = "(qemu) "
        self.history: List[str] = []
        self.hist_index = -1
        self.buf = ""
        self.index = 0
        self.last_buf = ""
        self.last_index = 0
        self.esc_state = 0  # 0 normal, 1 after ESC, 2 after ESC [ or ESC O
        self.esc_param = 0

    # -- drawing -------------------------------------------------------------
    def show_prompt(self) -> None:
        self.out(self.prompt)
        self.last_buf = ""
        self.last_index = 0

    def restart(self) -> None:
        self.buf = ""
        self.index = 0

    def _update(self) -> None:
        parts = []
        if self.buf != self.last_buf:
            parts.append("\033[D" * self.last_index)
            parts.append(self.buf)
            parts.append("\033[K")
            self.last_buf = self.buf
            self.last_index = len(self.buf)
        if self.index != self.last_index:
            delta = self.index - self.last_index
            parts.append("\033[C" * delta if delta > 0 else "\033[D" * -delta)
            self.last_index = self.index
        if parts:
            self.out("".join(parts))

    # -- editing -------------------------------------------------------------
    def _insert(self, ch: str) -> None:
        if len(self.buf) < MAX_LINE - 1:
            self.buf = self.buf[:self.index] + ch + self.buf[self.index:]
            self.index += 1

    def _backspace(self) -> None:
        if self.index > 0:
            self.buf = self.buf[:self.index - 1] + self.buf[self.index:]
            self.index -= 1

    def _delete(self) -> None:
        if self.index < len(self.buf):
            self.buf = self.buf[:self.index] + self.buf[self.index + 1:]

    def _backword(self) -> None:
        i = self.index
        while i > 0 and self.buf[i - 1] == " ":
            i -= 1
        while i > 0 and self.buf[i - 1] != " ":
            i -= 1
        self.buf = self.buf[:i] + self.buf[self.index:]
        self.index = i

    def _history_move(self, up: bool) -> None:
        if not self.history:
            return
        if up:
            if self.hist_index == -1:
                self.hist_index = len(self.history) - 1
            elif self.hist_index > 0:
                self.hist_index -= 1
            else:
                return
            self.buf = self.history[self.hist_index]
        else:
            if self.hist_index == -1:
                return
            if self.hist_index < len(self.history) - 1:
                self.hist_index += 1
                self.buf = self.history[self.hist_index]
            else:
                self.hist_index = -1
                self.buf = ""
        self.index = len(self.buf)

    def add_history(self, line: str) -> None:
        if not line.strip():
            return
        if line in self.history:
            self.history.remove(line)  # a repeated command moves to the end
        self.history.append(line)
        if len(self.history) > MAX_HISTORY:
            del self.history[0]
        self.hist_index = -1

    def _complete(self) -> None:
        if self.completer is None:
            return
        head = self.buf[:self.index]
        word_start = head.rfind(" ") + 1
        word = head[word_start:]
        cands = sorted(set(c for c in self.completer(head) if c.startswith(word)))
        if not cands:
            return
        if len(cands) == 1:
            for ch in cands[0][len(word):]:
                self._insert(ch)
            if not cands[0].endswith("/"):
                self._insert(" ")
            return
        common = cands[0]
        for c in cands[1:]:
            while not c.startswith(common):
                common = common[:-1]
        for ch in common[len(word):]:
            self._insert(ch)
        width = max(len(c) for c in cands) + 2
        cols = max(1, 80 // width)
        lines = ["\n"]
        for i, c in enumerate(cands):
            lines.append(c.ljust(width))
            if (i + 1) % cols == 0 or i == len(cands) - 1:
                lines.append("\n")
        self.out("".join(lines))
        self.show_prompt()

    # -- input ---------------------------------------------------------------
    def feed(self, data: str) -> None:
        for ch in data:
            self.handle_char(ch)

    def handle_char(self, ch: str) -> None:
        c = ord(ch)
        if self.esc_state == 1:
            if ch in "[O":
                self.esc_state = 2
                self.esc_param = 0
            else:
                self.esc_state = 0
            self._update()
            return
        if self.esc_state == 2:
            if ch.isdigit():
                self.esc_param = self.esc_param * 10 + int(ch)
                return
            self.esc_state = 0
            if ch == "A":
                self._history_move(True)
            elif ch == "B":
                self._history_move(False)
            elif ch == "C":
                self.index = min(len(self.buf), self.index + 1)
            elif ch == "D":
                self.index = max(0, self.index - 1)
            elif ch == "H" or (ch == "~" and self.esc_param in (1, 7)):
                self.index = 0
            elif ch == "F" or (ch == "~" and self.esc_param in (4, 8)):
                self.index = len(self.buf)
            elif ch == "~" and self.esc_param == 3:
                self._delete()
            self._update()
            return
        if c in (10, 13):
            line = self.buf
            self.add_history(line)
            self.out("\n")
            self.buf = ""
            self.index = 0
            self.last_buf = ""
            self.last_index = 0
            self.on_line(line)
            return
        if c == 27:
            self.esc_state = 1
            return
        if c == 1:
            self.index = 0
        elif c == 5:
            self.index = len(self.buf)
        elif c == 4:
            self._delete()
        elif c in (8, 127):
            self._backspace()
        elif c == 9:
            self._complete()
        elif c == 23:
            self._backword()
        elif c >= 32:
            self._insert(ch)
        self._update()
