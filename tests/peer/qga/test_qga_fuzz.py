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
