"""HMP integer expressions (QEMU's get_expr), for ``p``, ``x``, ``ringbuf_read`` sizes ...

Grammar, loosest first - note that QEMU binds ``& | ^`` tighter than ``+ -``
but looser than ``* / %`` (``8-2|1`` is 5, ``2*3|1`` is 7)::

    sum   := logic (('+' | '-') logic)*
    logic := prod (('&' | '|' | '^') prod)*
    prod  := unary (('*' | '/' | '%') unary)*
    unary := '+' unary | '-' unary | '~' unary | '(' sum ')' | '$' REG
           | "'" CHAR "'" | '.' | NUMBER

Numbers are C literals (decimal, ``0x`` hex, ``0`` octal); arithmetic wraps
at 64 bits.  ``$reg`` asks the hook installed with :func:`set_register_hook`
(the CPU side provides it once a CPU exists).
"""
from __future__ import annotations

from typing import Callable, Optional

from pyqemu.util.error import QemuError

MASK = (1 << 64) - 1

# name -> value or None when the register does not exist
RegisterHook = Callable[[str], Optional[int]]
_register_hook: Optional[RegisterHook] = None


def set_register_hook(hook: Optional[RegisterHook]) -> None:
    global _register_hook
    _register_hook = hook


class ExprError(QemuError):
    pass


class _Parser:
    def __init__(self, text: str, pos: int) -> None:
        self.s = text
        self.p = pos

    def skip(self) -> None:
        while self.p < len(self.s) and self.s[self.p].isspace():
            self.p += 1

    def peek(self) -> str:
        return self.s[self.p] if self.p < len(self.s) else ""

    def sum(self) -> int:
        val = self.logic()
        while True:
            op = self.peek()
            if op not in ("+", "-") or not op:
                return val
            self.p += 1
            self.skip()
            rhs = self.logic()
            val = (val + rhs if op == "+" else val - rhs) & MASK

    def prod(self) -> int:
        val = self.unary()
        while True:
            op = self.peek()
            if op not in ("*", "/", "%") or not op:
                return val
            self.p += 1
            self.skip()
            rhs = self.unary()
            if op == "*":
                val = (val * rhs) & MASK
            else:
                if rhs == 0:
                    raise ExprError("division by zero")
                # C semantics on int64: truncating division, remainder with the dividend's sign.
                a, b = _signed(val), _signed(rhs)
                q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
                val = (q if op == "/" else a - q * b) & MASK

    def logic(self) -> int:
        val = self.prod()
        while True:
            op = self.peek()
            if op not in ("&", "|", "^") or not op:
                return val
            self.p += 1
            self.skip()
            rhs = self.prod()
            val = val & rhs if op == "&" else (val | rhs if op == "|" else val ^ rhs)

    def unary(self) -> int:
        c = self.peek()
        if c == "+":
            self.p += 1
            self.skip()
            return self.unary()
        if c == "-":
            self.p += 1
            self.skip()
            return (-self.unary()) & MASK
        if c == "~":
            self.p += 1
            self.skip()
            return (~self.unary()) & MASK
        if c == "(":
            self.p += 1
            self.skip()
            val = self.sum()
            if self.peek() != ")":
                raise ExprError("')' expected")
            self.p += 1
            self.skip()
            return val
        if c == "'":
            self.p += 1
            if self.p >= len(self.s):
                raise ExprError("character constant expected")
            val = ord(self.s[self.p])
            self.p += 1
            if self.peek() != "'":
                raise ExprError("missing terminating ' character")
            self.p += 1
            self.skip()
            return val
        if c == "$":
            self.p += 1
            start = self.p
            while self.p < len(self.s) and (self.s[self.p].isalnum() or self.s[self.p] in "_."):
                self.p += 1
            name = self.s[start:self.p]
            val = _register_hook(name) if _register_hook is not None else None
            if val is None:
                raise ExprError("unknown register")
            self.skip()
            return val & MASK
        if c == "":
            raise ExprError("unexpected end of expression")
        if c == ".":
            raise ExprError("unknown register")  # '.' is the current address: needs a CPU
        if not c.isdigit():
            raise ExprError("invalid char '%s' in expression" % c)
        return self.number()

    def number(self) -> int:
        s, p = self.s, self.p
        if s.startswith(("0x", "0X"), p) and p + 2 < len(s) and s[p + 2] in "0123456789abcdefABCDEF":
            base, p = 16, p + 2
        elif s[p] == "0":
            base = 8
        else:
            base = 10
        digits = "0123456789abcdef"[:base]
        start = p
        while p < len(s) and s[p].lower() in digits:
            p += 1
        val = int(s[start:p], base) if p > start else 0
        if val > MASK:
            raise ExprError("number too large")
        self.p = p
        self.skip()
        return val


def _signed(v: int) -> int:
    return v - (1 << 64) if v & (1 << 63) else v


def parse_expr(text: str, pos: int = 0) -> tuple:
    """Evaluate the expression starting at ``pos``; returns (value as u64, end position).

    Spaces inside the expression are allowed only after a complete operand,
    as in QEMU: ``1 + 2`` is 3.
    """
    p = _Parser(text, pos)
    p.skip()
    val = p.sum()
    return val, p.p


def eval_expr(text: str) -> int:
    """A whole string as one expression."""
    val, end = parse_expr(text)
    if text[end:].strip():
        raise ExprError("extraneous characters at the end of line")
    return val
