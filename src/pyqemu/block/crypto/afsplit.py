"""The LUKS anti-forensic information splitter (LUKS on-disk format, section 2.4).

A key of ``n`` bytes is stored as ``stripes`` blocks of ``n`` bytes: all but
the last are random, each folded into a running value through the hash
"diffuse" function; the last block is that value XOR the key.  Losing any
part of the stored material loses the key.
"""
from __future__ import annotations

import hashlib
import os
import struct

from pyqemu.block.crypto.pbkdf import HASHES


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(len(a), "little")


def _diffuse(hash_alg: str, block: bytes) -> bytes:
    name = HASHES[hash_alg]
    dlen = hashlib.new(name).digest_size
    out = []
    for i in range(0, len(block), dlen):
        piece = block[i:i + dlen]
        out.append(hashlib.new(name, struct.pack(">I", i // dlen) + piece).digest()[:len(piece)])
    return b"".join(out)


def encode(hash_alg: str, key: bytes, stripes: int) -> bytes:
    n = len(key)
    rand = os.urandom(n * (stripes - 1))
    acc = bytes(n)
    for i in range(stripes - 1):
        acc = _diffuse(hash_alg, _xor(acc, rand[i * n:(i + 1) * n]))
    return rand + _xor(acc, key)


def decode(hash_alg: str, material: bytes, key_len: int, stripes: int) -> bytes:
    n = key_len
    acc = bytes(n)
    for i in range(stripes - 1):
        acc = _diffuse(hash_alg, _xor(acc, material[i * n:(i + 1) * n]))
    return _xor(acc, material[(stripes - 1) * n:stripes * n])
