"""Differential fuzzing of guest-file-*: random operation sequences on two
scratch files (one handle each), the same answers and file contents.

Reads go only to readable handles and writes only to writable ones: qemu-ga
reports such misuse through stdio's sticky error flag with whatever errno
is left over, which is not reproducible by design.
"""
import base64
import json
import random

import pytest

READABLE = ["r", "rb", "r+", "rb+", "r+b", "w+", "wb+", "w+b", "a+", "ab+", "a+b"]
WRITABLE = ["w", "wb", "a", "ab", "r+", "rb+", "r+b", "w+", "wb+", "w+b", "a+", "ab+", "a+b"]


@pytest.mark.parametrize("seed", range(1, 7))
def test_file_operation_sequences(agents, tmp_path, seed):
    rng = random.Random(seed)
    modes = [rng.choice(READABLE + WRITABLE) for _ in range(2)]
    dirs = []
    conns = []
    for i, agent in enumerate(agents):
        d = tmp_path / ("files%d" % i)
        d.mkdir()
        (d / "a").write_bytes(b"0123456789" * 5)
        (d / "b").write_bytes(b"abc")
        dirs.append(d)
        c = agent.connect()
        for name, mode in zip("ab", modes):
            assert "return" in c.call("guest-file-open", path=str(d / name), mode=mode)
        conns.append(c)
    for _ in range(300):
        k = rng.randrange(2)
        h, mode = 1000 + k, modes[k]
        op = rng.choice(["read", "write", "seek", "seek", "flush"])
        if op == "read" and mode in READABLE:
            req = {"execute": "guest-file-read", "arguments": {"handle": h, "count": rng.choice([0, 1, 3, 7, 100])}}
        elif op == "write" and mode in WRITABLE:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(9)))
            req = {"execute": "guest-file-write", "arguments": {"handle": h, "buf-b64": base64.b64encode(data).decode()}}
        elif op == "seek":
            req = {"execute": "guest-file-seek", "arguments": {
                "handle": h, "offset": rng.choice([-3, 0, 2, 5, 60]), "whence": rng.choice(["set", "cur", "end", 0, 1, 2])}}
        else:
            req = {"execute": "guest-file-flush", "arguments": {"handle": h}}
        data = json.dumps(req).encode()
        real, ours = (c.raw(data)[0] for c in conns)
        assert ours == real, (modes, req)
    for c in conns:
        c.cmd("guest-file-close", handle=1000)
        c.cmd("guest-file-close", handle=1001)
    contents = [sorted((p.name, p.read_bytes()) for p in d.iterdir()) for d in dirs]
    assert contents[1] == contents[0]
