"""Splitting a QMP byte stream into JSON values, and QEMU's JSON output style.

QMP clients may send several values in one write or one value over many; the
streamer finds where each top-level value ends (braces, brackets, strings,
bare scalars) and decodes it.  Input that is not JSON yields an error in
QEMU's wording and the stream carries on with the next value.
"""
from __future__ import annotations

import json
import re
from typing import Any, List, Tuple

MAX_TOKEN_SIZE = 64 << 20
MAX_NESTING = 1024

_WS = b" \t\r\n"
_KEYWORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class JsonError(Exception):
    """A value that could not be decoded; str() is QMP's error description."""


def _describe(text: str, err: json.JSONDecodeError) -> str:
    m = _KEYWORD.match(text, err.pos)
    if m and m.group(0) not in ("true", "false", "null"):
        return "JSON parse error, invalid keyword '%s'" % m.group(0)
    if "delimiter" in err.msg:
        # Find whether the innermost open container at err.pos is an object.
        depth: List[str] = []
        in_str = esc = False
        for ch in text[:err.pos]:
            if in_str:
                if esc:
                    esc = False
                elif ch == "\\":
                    esc = True
                elif ch == '"':
                    in_str = False
            elif ch == '"':
                in_str = True
            elif ch in "{[":
                depth.append(ch)
            elif ch in "}]" and depth:
                depth.pop()
        where = "dict" if depth and depth[-1] == "{" else "array"
        return "JSON parse error, expected separator in %s" % where
    if "Expecting property name" in err.msg:
        return "JSON parse error, key is not a string in object"
    if "Unterminated string" in err.msg or "Invalid control character" in err.msg:
        return "JSON parse error, missing terminating double quote"
    if "Invalid \\escape" in err.msg or "Invalid \\u" in err.msg:
        return "JSON parse error, invalid escape sequence in string"
    return "JSON parse error, expecting value"


class JsonStreamer:
    """Feed bytes; get back decoded values (or JsonError instances) in order."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.depth = 0
        self.in_str = False
        self.quote = 0x22
        self.esc = False
        self.scalar = False

    def _emit(self, out: List[Any]) -> None:
        raw = bytes(self.buf)
        self.buf.clear()
        self.depth = 0
        self.scalar = False
        text = raw.decode("utf-8", "replace")
        if "'" in text:
            text = _single_quotes_to_json(text)
        try:
            out.append(json.loads(text))
        except json.JSONDecodeError as e:
            out.append(JsonError(_describe(text, e)))
        except (RecursionError, ValueError):
            out.append(JsonError("JSON parse error, expecting value"))

    def feed(self, data: bytes) -> List[Any]:
        out: List[Any] = []
        for b in data:
            if self.in_str:
                self.buf.append(b)
                if self.esc:
                    self.esc = False
                elif b == 0x5C:
                    self.esc = True
                elif b == self.quote:
                    self.in_str = False
                    if self.depth == 0:
                        self._emit(out)
                continue
            if self.scalar and (b in _WS or b in b"{}[],:\"'"):
                self._emit(out)
            if b in _WS and self.depth == 0 and not self.scalar:
                continue
            if b in (0x22, 0x27):  # QEMU also takes 'single-quoted' strings
                self.in_str = True
                self.quote = b
                self.buf.append(b)
            elif b in b"{[":
                self.depth += 1
                self.buf.append(b)
                if self.depth > MAX_NESTING:
                    self._reset(out, "JSON parse error, too many nested containers")
            elif b in b"}]":
                if self.depth == 0:
                    out.append(JsonError("JSON parse error, expecting value"))
                    continue
                self.depth -= 1
                self.buf.append(b)
                if self.depth == 0:
                    self._emit(out)
            else:
                if self.depth == 0:
                    self.scalar = True
                self.buf.append(b)
            if len(self.buf) > MAX_TOKEN_SIZE:
                self._reset(out, "JSON parse error, token too large")
        return out

    def _reset(self, out: List[Any], msg: str) -> None:
        self.buf.clear()
        self.depth = 0
        self.in_str = self.esc = self.scalar = False
        out.append(JsonError(msg))


_ESCAPE_RE = re.compile(r"(\\\\)|\\u([0-9a-f]{4})|\x7f")


def _qemu_escapes(text: str) -> str:
    # QEMU writes \uXXXX in upper case and escapes DEL too; Python does neither.
    def fix(m: "re.Match[str]") -> str:
        if m.group(1):
            return m.group(1)
        if m.group(2):
            return "\\u" + m.group(2).upper()
        return "\\u007F"
    return _ESCAPE_RE.sub(fix, text)


def _single_quotes_to_json(text: str) -> str:
    """Rewrite QEMU's 'single-quoted' strings (and \\' escapes) as standard JSON."""
    out: List[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c not in "\"'":
            out.append(c)
            i += 1
            continue
        quote = c
        i += 1
        body: List[str] = []
        while i < n and text[i] != quote:
            ch = text[i]
            if ch == "\\" and i + 1 < n:
                nxt = text[i + 1]
                body.append("'" if nxt == "'" else ch + nxt)
                i += 2
                continue
            body.append('\\"' if ch == '"' else ch)
            i += 1
        i += 1
        out.append('"' + "".join(body) + '"')
    return "".join(out)


def to_json(obj: Any, pretty: bool = False) -> str:
    """QEMU's JSON text: ``", "`` and ``": "`` separators; pretty uses 4-space indents."""
    if not pretty:
        return _qemu_escapes(json.dumps(obj, ensure_ascii=True))
    parts: List[str] = []
    _pretty(obj, 0, parts)
    return _qemu_escapes("".join(parts))


def _pretty(obj: Any, level: int, out: List[str]) -> None:
    pad = "    " * (level + 1)
    end = "    " * level
    if isinstance(obj, dict):
        out.append("{\n")
        items: List[Tuple[str, Any]] = list(obj.items())
        for i, (k, v) in enumerate(items):
            out.append(pad + json.dumps(str(k)) + ": ")
            _pretty(v, level + 1, out)
            out.append(",\n" if i + 1 < len(items) else "\n")
        out.append(end + "}")
    elif isinstance(obj, list):
        out.append("[\n")
        for i, v in enumerate(obj):
            out.append(pad)
            _pretty(v, level + 1, out)
            out.append(",\n" if i + 1 < len(obj) else "\n")
        out.append(end + "]")
    else:
        out.append(json.dumps(obj))
