"""QEMU's JSON dialect, as the guest agent reads and writes it.

QEMU's reader is not a strict RFC 8259 parser, and QGA clients rely on its
quirks: single-quoted strings are accepted, values are cut out of a byte
stream by counting brackets (so several messages may share one read, and a
top-level scalar needs the next byte to end), any byte that cannot start or
continue a token (notably 0xFF, which ``guest-sync-delimited`` clients send)
turns into an error reply and resynchronises the stream, and each message
is bounded in size, token count and nesting.

The writer reproduces QEMU's output byte for byte: ``{"a": 1, "b": [2]}``
spacing, non-ASCII and DEL escaped as ``\\uXXXX`` in upper case, and object
members in the order QEMU's hash table yields them, so that answers compare
equal as bytes and not only as JSON.
"""
from __future__ import annotations

import re
from typing import Any, Callable, List, Optional, Tuple

MAX_TOKEN_SIZE = 64 << 20
MAX_TOKEN_COUNT = 2 << 20
MAX_NESTING = 1 << 10

# token kinds
T_LCURLY, T_RCURLY, T_LSQUARE, T_RSQUARE, T_COLON, T_COMMA = range(6)
T_STRING, T_INTEGER, T_FLOAT, T_KEYWORD, T_ERROR, T_OVERSIZE = range(6, 12)

_PUNCT = {0x7B: T_LCURLY, 0x7D: T_RCURLY, 0x5B: T_LSQUARE, 0x5D: T_RSQUARE,
          0x3A: T_COLON, 0x2C: T_COMMA}
_WS = (0x20, 0x09, 0x0D, 0x0A)

# lexer states
(S_START, S_DQ, S_DQ_ESC, S_SQ, S_SQ_ESC, S_ZERO, S_NONZERO, S_NEG, S_MANT,
 S_MANT_DIGITS, S_EXP, S_EXP_SIGN, S_EXP_DIGITS, S_KEYWORD, S_RECOVERY) = range(15)

# Inside a string: runs of plain bytes (printable, not a quote or backslash,
# not the two bytes that never occur in UTF-8) are consumed in one step.
_DQ_RUN = re.compile(rb'[\x20-\x21\x23-\x5b\x5d-\xfd]+')
_SQ_RUN = re.compile(rb'[\x20-\x26\x28-\x5b\x5d-\xfd]+')


class JsonParseError(Exception):
    """A message that is not valid JSON; ``str()`` is QEMU's description."""


class JsonLexer:
    """Split a byte stream into tokens, as QEMU's table-driven lexer does."""

    def __init__(self, emit: Callable[[int, bytes], None]) -> None:
        self.emit = emit
        self.state = S_START
        self.token = bytearray()

    def feed(self, data: bytes) -> None:
        i = 0
        n = len(data)
        tok = self.token
        while i < n:
            st = self.state
            if st == S_DQ or st == S_SQ:
                m = (_DQ_RUN if st == S_DQ else _SQ_RUN).match(data, i)
                if m:
                    tok += m.group()
                    i = m.end()
                    if len(tok) > MAX_TOKEN_SIZE:
                        self._overflow()
                    continue
            c = data[i]
            consumed = self._step(c)
            if consumed:
                i += 1

    def _overflow(self) -> None:
        # An over-long string is dropped here rather than buffered without
        # bound; the streamer reports the size limit.  Lexing restarts on the
        # next byte, which (being inside the old string) is usually stray.
        self.emit(T_OVERSIZE, b"")
        self.token.clear()
        self.state = S_START

    def _finish(self, kind: int) -> None:
        self.emit(kind, bytes(self.token))
        self.token.clear()
        self.state = S_START

    def _error(self, c: int) -> None:
        self.token.append(c)
        self.emit(T_ERROR, bytes(self.token))
        self.token.clear()
        self.state = S_RECOVERY

    def _step(self, c: int) -> bool:
        """Process byte ``c``; return False when it must be seen again."""
        st = self.state
        tok = self.token
        if st == S_START:
            if c in _PUNCT:
                tok.append(c)
                self._finish(_PUNCT[c])
            elif c in _WS:
                pass
            elif c == 0x22:
                tok.append(c)
                self.state = S_DQ
            elif c == 0x27:
                tok.append(c)
                self.state = S_SQ
            elif c == 0x30:
                tok.append(c)
                self.state = S_ZERO
            elif 0x31 <= c <= 0x39:
                tok.append(c)
                self.state = S_NONZERO
            elif c == 0x2D:
                tok.append(c)
                self.state = S_NEG
            elif 0x61 <= c <= 0x7A:
                tok.append(c)
                self.state = S_KEYWORD
            else:
                self._error(c)
            return True
        if st == S_RECOVERY:
            # Skip to a byte where a new message plausibly starts.
            if (c < 0x20 and c != 0x09) or c >= 0xFE or c in (0x5B, 0x5D, 0x7B, 0x7D, 0x2C, 0x3A):
                self.state = S_START
                return False
            return True
        if st == S_DQ or st == S_SQ:
            if c == 0x5C:
                tok.append(c)
                self.state = S_DQ_ESC if st == S_DQ else S_SQ_ESC
            elif (c == 0x22 and st == S_DQ) or (c == 0x27 and st == S_SQ):
                tok.append(c)
                self._finish(T_STRING)
            elif 0x20 <= c <= 0xFD:
                tok.append(c)
            else:
                self._error(c)
            return True
        if st == S_DQ_ESC or st == S_SQ_ESC:
            # Escapes are checked by the parser, which knows their meaning.
            if 0x20 <= c <= 0xFD:
                tok.append(c)
                self.state = S_DQ if st == S_DQ_ESC else S_SQ
            else:
                self._error(c)
            return True
        isdigit = 0x30 <= c <= 0x39
        if st == S_KEYWORD:
            if 0x61 <= c <= 0x7A:
                tok.append(c)
                return True
            self._finish(T_KEYWORD)
            return False
        if st == S_NEG:
            if c == 0x30:
                tok.append(c)
                self.state = S_ZERO
            elif isdigit:
                tok.append(c)
                self.state = S_NONZERO
            else:
                self._error(c)
            return True
        if st == S_ZERO or st == S_NONZERO:
            if isdigit and st == S_NONZERO:
                tok.append(c)
                return True
            if isdigit:
                self._error(c)
                return True
            if c == 0x2E:
                tok.append(c)
                self.state = S_MANT
                return True
            # QEMU allows an exponent after 1-9 digits but not after a lone 0
            if c in (0x65, 0x45) and st == S_NONZERO:
                tok.append(c)
                self.state = S_EXP
                return True
            self._finish(T_INTEGER)
            return False
        if st == S_MANT:
            if isdigit:
                tok.append(c)
                self.state = S_MANT_DIGITS
            else:
                self._error(c)
            return True
        if st == S_MANT_DIGITS:
            if isdigit:
                tok.append(c)
                return True
            if c in (0x65, 0x45):
                tok.append(c)
                self.state = S_EXP
                return True
            self._finish(T_FLOAT)
            return False
        if st == S_EXP:
            if c in (0x2B, 0x2D):
                tok.append(c)
                self.state = S_EXP_SIGN
            elif isdigit:
                tok.append(c)
                self.state = S_EXP_DIGITS
            else:
                self._error(c)
            return True
        if st == S_EXP_SIGN:
            if isdigit:
                tok.append(c)
                self.state = S_EXP_DIGITS
            else:
                self._error(c)
            return True
        # S_EXP_DIGITS
        if isdigit:
            tok.append(c)
            return True
        self._finish(T_FLOAT)
        return False


def _decode_string(raw: bytes) -> str:
    """The value of a string token (quotes included), or JsonParseError."""
    quote = raw[0]
    body = raw[1:-1] if len(raw) >= 2 and raw[-1] == quote else raw[1:]
    out: List[str] = []
    i = 0
    n = len(body)
    while i < n:
        j = body.find(b"\\", i)
        chunk = body[i:] if j < 0 else body[i:j]
        if chunk:
            try:
                out.append(chunk.decode("utf-8"))
            except UnicodeDecodeError:
                raise JsonParseError("invalid UTF-8 sequence in string") from None
        if j < 0:
            break
        i = j + 1
        e = body[i:i + 1]
        simple = {b'"': '"', b"'": "'", b"\\": "\\", b"/": "/", b"b": "\b",
                  b"f": "\f", b"n": "\n", b"r": "\r", b"t": "\t"}
        if e in simple:
            out.append(simple[e])
            i += 1
            continue
        if e != b"u":
            raise JsonParseError("invalid escape sequence in string")
        cp, i = _hex4(body, i + 1)
        if cp is not None and 0xD800 <= cp <= 0xDBFF:
            # A high surrogate must be followed by an escaped low surrogate.
            lo, k = _hex4(body, i + 2) if body[i:i + 2] == b"\\u" else (None, i)
            if lo is not None and 0xDC00 <= lo <= 0xDFFF:
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                i = k
            else:
                cp = None
        if cp is None or 0xDC00 <= cp <= 0xDFFF or cp == 0:
            # QEMU quotes six bytes of the token from the backslash on.
            shown = raw[1 + j:1 + j + 6]
            raise JsonParseError("%s is not a valid Unicode character" % shown.decode("utf-8", "replace"))
        out.append(chr(cp))
    return "".join(out)


def _hex4(body: bytes, i: int) -> Tuple[Optional[int], int]:
    """Four hex digits at ``i``: (value, next index), or (None, i) if malformed."""
    digits = body[i:i + 4]
    if len(digits) != 4 or any(c not in b"0123456789abcdefABCDEF" for c in digits):
        return None, i
    return int(digits, 16), i + 4


def _literal(kind: int, text: bytes) -> Any:
    if kind == T_STRING:
        return _decode_string(text)
    if kind == T_INTEGER:
        v = int(text)
        # Beyond 64 bits QEMU keeps the number as a double.
        if -(1 << 63) <= v < (1 << 64):
            return v
        return float(v)
    if kind == T_FLOAT:
        return float(text)
    if text == b"true":
        return True
    if text == b"false":
        return False
    if text == b"null":
        return None
    raise JsonParseError("invalid keyword '%s'" % text.decode("latin-1"))


_MISSING = object()


def parse_tokens(tokens: List[Tuple[int, bytes]]) -> Any:
    """Build the value of one complete message (iteratively: nesting may be deep)."""
    pos = 0
    n = len(tokens)

    def take() -> Tuple[int, bytes]:
        nonlocal pos
        if pos >= n:
            raise JsonParseError("premature EOI")
        tok = tokens[pos]
        pos += 1
        return tok

    # Stack frames: [container, pending_key]; container is a dict or list.
    stack: List[list] = []
    result: Any = _MISSING
    while True:
        # Parse one value (or open a container).
        kind, text = take()
        if kind == T_LCURLY or kind == T_LSQUARE:
            container: Any = {} if kind == T_LCURLY else []
            if pos < n and tokens[pos][0] == (T_RCURLY if kind == T_LCURLY else T_RSQUARE):
                pos += 1
                value = container
            else:
                if kind == T_LCURLY:
                    key = _object_key(take)
                    stack.append([container, key])
                else:
                    stack.append([container, None])
                continue
        elif kind in (T_STRING, T_INTEGER, T_FLOAT, T_KEYWORD):
            value = _literal(kind, text)
        else:
            raise JsonParseError("expecting value")
        # Attach the value and close finished containers.
        while True:
            if not stack:
                result = value
                break
            frame = stack[-1]
            container = frame[0]
            if isinstance(container, dict):
                if frame[1] in container:
                    raise JsonParseError("duplicate key")
                container[frame[1]] = value
                kind, _ = take()
                if kind == T_RCURLY:
                    stack.pop()
                    value = container
                    continue
                if kind != T_COMMA:
                    raise JsonParseError("expected separator in dict")
                frame[1] = _object_key(take)
            else:
                container.append(value)
                kind, _ = take()
                if kind == T_RSQUARE:
                    stack.pop()
                    value = container
                    continue
                if kind != T_COMMA:
                    raise JsonParseError("expected separator in list")
            break
        if result is not _MISSING:
            return result


def _object_key(take: Callable[[], Tuple[int, bytes]]) -> str:
    kind, text = take()
    if kind != T_STRING:
        # QEMU parses the key as any value first, so that value's own error
        # (no value at all, a bad keyword) wins over "not a string".
        if kind in (T_RCURLY, T_RSQUARE, T_COLON, T_COMMA):
            raise JsonParseError("expecting value")
        if kind == T_KEYWORD:
            _literal(kind, text)
        raise JsonParseError("key is not a string in object")
    key = _decode_string(text)
    kind, _ = take()
    if kind != T_COLON:
        raise JsonParseError("missing : in object pair")
    return key


class JsonStreamer:
    """Cut a byte stream into messages; call ``emit(value, error)`` for each.

    Exactly one of ``value`` and ``error`` is set; ``error`` is QEMU's text
    (``JSON parse error, ...``).
    """

    def __init__(self, emit: Callable[[Any, Optional[str]], None]) -> None:
        self.emit = emit
        self.lexer = JsonLexer(self._token)
        self._reset()

    def _reset(self) -> None:
        self.tokens: List[Tuple[int, bytes]] = []
        self.size = 0
        self.braces = 0
        self.brackets = 0

    def feed(self, data: bytes) -> None:
        self.lexer.feed(data)

    def _token(self, kind: int, text: bytes) -> None:
        if kind == T_OVERSIZE:
            self._reset()
            self.emit(None, "JSON token size limit exceeded")
            return
        if kind == T_ERROR:
            self._reset()
            # QEMU prints the token as a C string: it ends at a NUL byte
            text = text.split(b"\0", 1)[0]
            self.emit(None, "JSON parse error, stray '%s'" % text.decode("utf-8", "replace"))
            return
        if kind == T_LCURLY:
            self.braces += 1
        elif kind == T_RCURLY:
            self.braces -= 1
        elif kind == T_LSQUARE:
            self.brackets += 1
        elif kind == T_RSQUARE:
            self.brackets -= 1
        err = None
        if self.size + len(text) + 1 > MAX_TOKEN_SIZE:
            err = "JSON token size limit exceeded"
        elif len(self.tokens) + 1 > MAX_TOKEN_COUNT:
            err = "JSON token count limit exceeded"
        elif self.braces + self.brackets > MAX_NESTING:
            err = "JSON nesting depth limit exceeded"
        if err:
            self._reset()
            self.emit(None, err)
            return
        self.tokens.append((kind, text))
        self.size += len(text)
        if (self.braces > 0 or self.brackets > 0) and self.braces >= 0 and self.brackets >= 0:
            return
        tokens = self.tokens
        self._reset()
        try:
            value = parse_tokens(tokens)
        except JsonParseError as exc:
            self.emit(None, "JSON parse error, %s" % exc)
            return
        self.emit(value, None)


def parse(data: bytes) -> Any:
    """Parse one complete message (a convenience for tests and tools)."""
    out: List[Tuple[Any, Optional[str]]] = []
    s = JsonStreamer(lambda v, e: out.append((v, e)))
    s.feed(data + b"\n")
    if not out:
        raise JsonParseError("premature EOI")
    value, err = out[0]
    if err:
        raise JsonParseError(err)
    return value


# ---------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------

_BUCKETS = 512


def key_bucket(key: str) -> int:
    """The bucket of QEMU's QDict hash table that ``key`` lands in."""
    data = key.encode("utf-8")
    h = (0x238F13AF * len(data)) & 0xFFFFFFFF
    for i, c in enumerate(data):
        h = (h + (c << (i * 5 % 24))) & 0xFFFFFFFF
    return ((1103515243 * h + 12345) & 0xFFFFFFFF) % _BUCKETS


def qdict_order(keys: List[str]) -> List[str]:
    """Keys in QDict iteration order, given their insertion order.

    Buckets are walked in order; within a bucket the newest key comes first.
    """
    indexed = [(key_bucket(k), -i, k) for i, k in enumerate(keys)]
    indexed.sort()
    return [k for _, _, k in indexed]


_NAMED = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n",
          "\r": "\\r", "\t": "\\t"}
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f-\U0010ffff]')


def _escape_char(m: "re.Match[str]") -> str:
    ch = m.group()
    if ch in _NAMED:
        return _NAMED[ch]
    cp = ord(ch)
    if cp >= 0xD800 and cp <= 0xDFFF:
        cp = 0xFFFD
    if cp > 0xFFFF:
        cp -= 0x10000
        return "\\u%04X\\u%04X" % (0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF))
    return "\\u%04X" % cp


def quote(s: str) -> str:
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, s) + '"'


def to_json(obj: Any) -> str:
    """QEMU's compact-with-spaces JSON text of ``obj``."""
    parts: List[str] = []
    _write(obj, parts)
    return "".join(parts)


def _write(obj: Any, out: List[str]) -> None:
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, int):
        out.append(str(obj))
    elif isinstance(obj, float):
        out.append(_float(obj))
    elif isinstance(obj, str):
        out.append(quote(obj))
    elif isinstance(obj, dict):
        out.append("{")
        first = True
        for k in qdict_order(list(obj)):
            if not first:
                out.append(", ")
            first = False
            out.append(quote(k))
            out.append(": ")
            _write(obj[k], out)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for i, v in enumerate(obj):
            if i:
                out.append(", ")
            _write(v, out)
        out.append("]")
    else:
        raise TypeError("cannot write %r as JSON" % (obj,))


def _float(v: float) -> str:
    # QEMU prints the shortest %.17g form that reads back to the same double.
    for prec in range(1, 18):
        text = "%.*g" % (prec, v)
        if float(text) == v:
            return text
    return "%.17g" % v
