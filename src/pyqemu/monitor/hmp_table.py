"""The HMP command tables and argument parsing (QEMU's hmp-commands.hx + monitor_parse_arguments).

A command is registered with QEMU's ``args_type`` notation::

    register_hmp("ringbuf_read", "device:s,size:i", "device size",
                 "Read from a ring buffer character device", handler)

``args_type`` is a comma-separated list of ``name:T`` where ``T`` is

====  ==========================================================
s     a word (or a "quoted string" with \\ escapes)
S     the rest of the line
F     a file name (a word)
B     a block device name (a word)
O     QemuOpts-style options (a word)
i l   an integer expression (32 / 64 bit)
M     an integer expression, in MiB
o     a size with optional suffix
b     on or off
-x    a flag ``-x`` (True/False)
/     a format ``/[count][fmt][size]``: count, format and size keys
====  ==========================================================

a ``?`` after ``T`` makes the argument optional.  The handler is called as
``handler(mon, args)`` and prints through ``mon.printf``; it raises QemuError
for errors, which the monitor prints as ``Error: ...``.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from pyqemu.monitor.expr import ExprError, parse_expr
from pyqemu.util.error import QemuError
from pyqemu.util.opts import strtosz

Handler = Callable[[Any, Dict[str, Any]], None]


class HmpCommand:
    __slots__ = ("name", "args_type", "params", "help", "handler", "names", "args")

    def __init__(self, name: str, args_type: str, params: str, help: str,
                 handler: Optional[Handler]) -> None:
        self.name = name
        self.names = name.split("|")
        self.args_type = args_type
        self.params = params
        self.help = help
        self.handler = handler
        self.args = _parse_args_type(args_type)


def _parse_args_type(spec: str) -> List[Tuple[str, str, bool]]:
    out = []
    for item in filter(None, spec.split(",")):
        name, _, typ = item.partition(":")
        optional = typ.endswith("?")
        out.append((name, typ.rstrip("?"), optional))
    return out


commands: Dict[str, HmpCommand] = {}
info_commands: Dict[str, HmpCommand] = {}


def register_hmp(name: str, args_type: str, params: str, help: str, handler: Handler) -> None:
    cmd = HmpCommand(name, args_type, params, help, handler)
    commands[cmd.names[0]] = cmd


def register_info(name: str, args_type: str, params: str, help: str, handler: Handler) -> None:
    cmd = HmpCommand(name, args_type, params, help, handler)
    info_commands[cmd.names[0]] = cmd


def find(table: Dict[str, HmpCommand], name: str) -> Optional[HmpCommand]:
    for cmd in table.values():
        if name in cmd.names:
            return cmd
    return None


def sorted_commands(table: Dict[str, HmpCommand]) -> List[HmpCommand]:
    return sorted(table.values(), key=lambda c: c.name)


def help_line(cmd: HmpCommand, prefix: str = "") -> str:
    return "%s%s %s -- %s\n" % (prefix, cmd.name, cmd.params, cmd.help)


# ---------------------------------------------------------------------------
# Argument parsing
# ---------------------------------------------------------------------------

class ArgError(QemuError):
    """A malformed argument; the monitor adds 'Try "help CMD"'."""


def _skip(s: str, p: int) -> int:
    while p < len(s) and s[p].isspace():
        p += 1
    return p


def get_name(s: str, p: int) -> Tuple[Optional[str], int]:
    """A command or sub-command name: the characters up to the next space or '/'
    (so ``x/4xb`` is ``x`` with its format glued on, as in QEMU), quotes included."""
    p = _skip(s, p)
    start = p
    while p < len(s) and s[p] != "/" and not s[p].isspace():
        p += 1
    return (s[start:p] or None), p


def get_word(s: str, p: int) -> Tuple[Optional[str], int]:
    """A word or a double-quoted string; None at end of line."""
    p = _skip(s, p)
    if p >= len(s):
        return None, p
    if s[p] == '"':
        p += 1
        out = []
        while p < len(s) and s[p] != '"':
            if s[p] == "\\" and p + 1 < len(s):
                p += 1
                c = s[p]
                esc = {"n": "\n", "r": "\r", "\\": "\\", "'": "'", '"': '"'}.get(c)
                if esc is None:
                    raise ArgError("unsupported escape code: '\\%s'" % c)
                out.append(esc)
            else:
                out.append(s[p])
            p += 1
        if p >= len(s):
            raise ArgError("unterminated string")
        return "".join(out), p + 1
    start = p
    while p < len(s) and not s[p].isspace():
        p += 1
    return s[start:p], p


def _parse_format(s: str, p: int, cmdname: str) -> Tuple[Dict[str, Any], int]:
    p = _skip(s, p)
    count, fmt, size = 1, None, None
    if p < len(s) and s[p] == "/":
        p += 1
        start = p
        while p < len(s) and s[p].isdigit():
            p += 1
        if p > start:
            count = int(s[start:p])
        while p < len(s) and not s[p].isspace():
            c = s[p]
            if c in "oxudcis":
                fmt = c
            elif c in "bhwg":
                size = {"b": 1, "h": 2, "w": 4, "g": 8}[c]
            else:
                raise ArgError("invalid char in format: '%s'" % c)
            p += 1
    return {"count": count, "format": fmt, "size": size}, p


def parse_arguments(cmd: HmpCommand, line: str, p: int, typed_name: str) -> Dict[str, Any]:
    """Parse ``line[p:]`` against ``cmd``'s args_type (QEMU's wording for errors)."""
    args: Dict[str, Any] = {}
    for name, typ, optional in cmd.args:
        if typ == "/":
            fmt, p = _parse_format(line, p, cmd.name)
            args.update(fmt)
            continue
        if typ.startswith("-"):
            q = _skip(line, p)
            if line[q:q + 2] == typ and (q + 2 >= len(line) or line[q + 2].isspace()):
                args[name] = True
                p = q + 2
            else:
                args[name] = False
            continue
        q = _skip(line, p)
        if q >= len(line):
            if optional:
                continue
            if typ in "il" or typ == "M":
                raise ArgError("unexpected end of expression")
            what = {"F": "filename", "B": "block device name"}.get(typ, "string")
            raise ArgError("%s: %s expected" % (cmd.name, what))
        if typ == "S":
            args[name] = line[q:]
            p = len(line)
        elif typ in ("s", "F", "B", "O"):
            try:
                word, p = get_word(line, q)
            except ArgError as e:
                what = {"F": "filename", "B": "block device name"}.get(typ, "string")
                raise ArgError("%s\n%s: %s expected" % (e.msg, cmd.name, what)) from None
            args[name] = word
        elif typ in ("i", "l", "M"):
            try:
                val, p = parse_expr(line, q)
            except ExprError as e:
                raise ArgError(e.msg) from None
            if typ == "i":
                val &= 0xFFFFFFFF
                val = val - (1 << 32) if val & 0x80000000 else val
            elif typ == "M":
                val <<= 20
            args[name] = val
        elif typ == "o":
            word, p = get_word(line, q)
            try:
                args[name] = strtosz(word or "", "B")
            except (ValueError, OverflowError):
                raise ArgError("invalid size") from None
        elif typ == "b":
            word, p = get_word(line, q)
            if word not in ("on", "off"):
                raise ArgError("Expected 'on' or 'off'")
            args[name] = word == "on"
        else:
            raise ArgError("%s: unknown type '%s'" % (cmd.name, typ))
    if line[p:].strip():
        raise ArgError("%s: extraneous characters at the end of line" % cmd.name)
    return args
