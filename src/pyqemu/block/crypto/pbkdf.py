"""PBKDF2 (hashlib) and the benchmark that turns ``iter-time`` into iterations."""
from __future__ import annotations

import hashlib
import time

from pyqemu.util.error import QemuError

# QEMU's hash algorithm names -> hashlib names and digest sizes
HASHES = {"md5": "md5", "sha1": "sha1", "sha224": "sha224", "sha256": "sha256",
          "sha384": "sha384", "sha512": "sha512", "ripemd160": "ripemd160"}


def digest_len(hash_alg: str) -> int:
    return hashlib.new(HASHES[hash_alg]).digest_size


def hash_bytes(hash_alg: str, data: bytes) -> bytes:
    try:
        return hashlib.new(HASHES[hash_alg], data).digest()
    except ValueError:
        raise QemuError("Hash algorithm %d not supported" % list(HASHES).index(hash_alg)) from None


def pbkdf2(hash_alg: str, password: bytes, salt: bytes, iterations: int, length: int) -> bytes:
    if iterations < 1:
        raise QemuError("Iterations %d must be a positive integer" % iterations)
    try:
        return hashlib.pbkdf2_hmac(HASHES[hash_alg], password, salt, iterations, length)
    except ValueError:
        raise QemuError("PBKDF does not support hash algorithm %s" % hash_alg) from None


def count_iters(hash_alg: str, password: bytes, salt: bytes, length: int) -> int:
    """Iterations of PBKDF2 that take one second of CPU time here.

    Like QEMU, run growing batches until one takes at least half a second of
    process CPU time and scale the count to a second.
    """
    iters = 1 << 15
    while True:
        start = time.process_time()
        pbkdf2(hash_alg, password, salt, iters, length)
        spent = time.process_time() - start
        if spent >= 0.5:
            return int(iters / spent)
        if iters > (1 << 31):
            raise QemuError("Unable to get accurate CPU usage")
        iters = iters * 2 if spent < 0.1 else int(iters * 0.6 / max(spent, 1e-3))
