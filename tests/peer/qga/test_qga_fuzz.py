"""Differential fuzzing of the JSON reader: random byte soup, same answers.

Each input is followed by 0xFF and a guest-sync-delimited request, so both
agents resynchronise and every answer up to the sync is compared.
"""
import random
import socket

import pytest

PIECES = [b"{", b"}", b"[", b"]", b":", b",", b'"', b"'", b"\\", b"\\u", b"\\u00e9", b"\\ud83d",
          b"\\udc00", b"1", b"-", b"0", b"0.", b"e", b"E+", b".5", b"true", b"nul", b"null", b"false",
          b" ", b"\n", b"\t", b"\x00", b"\x01", b"\xc3", b"\xa9", b"\xfe", b"x", b"%", b"/", b"\x7f",
          b'"execute"', b'"guest-ping"', b'"arguments"', b'"id"', b'"guest-sync"',
          b"123456789012345678901234567890"]
SYNC = b'\xff{"execute":"guest-sync-delimited","arguments":{"id":4242}}'


def _exchange(c, data):
    c.send(data + SYNC)
    buf = b""
    while b'\xff{"return": 4242}\n' not in buf:
        try:
            chunk = c.s.recv(65536)
        except socket.timeout:
            return buf + b"<TIMEOUT>"
        if not chunk:
            return buf + b"<EOF>"
        buf += chunk
    return buf


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_input_same_answers(agents, seed):
    rng = random.Random(seed)
    conns = [a.connect() for a in agents]
    for c in conns:
        c.s.settimeout(5)
    for _ in range(200):
        data = b"".join(rng.choice(PIECES) for _ in range(rng.randrange(1, 12)))
        real, ours = (_exchange(c, data) for c in conns)
        assert ours == real, data


# Commands that cannot change anything whatever their arguments: no file is
# open, so handles are all invalid; the rest only read.
SAFE = {"guest-sync": ["id"], "guest-sync-delimited": ["id"], "guest-ping": [],
        "guest-file-read": ["handle", "count"], "guest-file-write": ["handle", "buf-b64", "count"],
        "guest-file-seek": ["handle", "offset", "whence"], "guest-file-flush": ["handle"],
        "guest-file-close": ["handle"], "guest-exec-status": ["pid"],
        "guest-ssh-get-authorized-keys": ["username"], "guest-fsfreeze-status": [],
        "guest-get-host-name": [], "guest-get-timezone": [], "guest-get-memory-block-info": []}


def _value(rng, depth=0):
    k = rng.randrange(12 if depth < 2 else 10)
    if k == 10:
        return [_value(rng, depth + 1)]
    if k == 11:
        return {"a": _value(rng, depth + 1)}
    return [0, -1, 1 << 63, (1 << 64) - 1, 1 << 70, 1.5, "set", "x", True, None][k]


@pytest.mark.parametrize("seed", [1, 2])
def test_random_arguments_same_answers(agents, seed):
    """Missing, extra and mistyped arguments: the same error, member for member."""
    import json
    rng = random.Random(seed)
    conns = [a.connect() for a in agents]
    for _ in range(400):
        name = rng.choice(sorted(SAFE))
        args = {k: _value(rng) for k in SAFE[name] + ["extra", "id"] if rng.random() < 0.6}
        req = {"execute": name}
        if rng.random() < 0.9:
            req["arguments"] = args
        if rng.random() < 0.2:
            req["id"] = _value(rng)
        for extra in ("control", "exec-oob", "zz"):
            if rng.random() < 0.05:
                req[extra] = _value(rng)
        data = json.dumps(req).encode()
        real, ours = (c.raw(data)[0] for c in conns)
        assert ours == real, data
