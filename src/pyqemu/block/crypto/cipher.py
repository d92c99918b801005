"""Ciphers, IV generators and sector encryption, with QEMU's names and rules.

QEMU encrypts a disk in sectors (512 bytes for LUKS and qcow AES): each
sector gets its own IV from an IV generator fed with the sector number,
and the cipher is restarted with it.  The block ciphers come from the
``cryptography`` package; algorithms it lacks (serpent, twofish) are refused
with QEMU's wording for a cipher the crypto backend does not provide.
"""
from __future__ import annotations

import struct
from typing import Any, List, Optional

from pyqemu.block.crypto.pbkdf import digest_len, hash_bytes
from pyqemu.util.error import QemuError

# QAPI QCryptoCipherAlgorithm -> (LUKS cipher name, key bytes, block bytes)
CIPHER_ALGS = {
    "aes-128": ("aes", 16, 16), "aes-192": ("aes", 24, 16), "aes-256": ("aes", 32, 16),
    "des": (None, 8, 8), "3des": (None, 24, 8),
    "cast5-128": ("cast5", 16, 8),
    "serpent-128": ("serpent", 16, 16), "serpent-192": ("serpent", 24, 16),
    "serpent-256": ("serpent", 32, 16),
    "twofish-128": ("twofish", 16, 16), "twofish-192": ("twofish", 24, 16),
    "twofish-256": ("twofish", 32, 16),
}
CIPHER_MODES = ("ecb", "cbc", "xts", "ctr")
IVGEN_ALGS = ("plain", "plain64", "essiv")
HASH_ALGS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "ripemd160")


def key_len(alg: str) -> int:
    return CIPHER_ALGS[alg][1]


def block_len(alg: str) -> int:
    return CIPHER_ALGS[alg][2]


def iv_len(alg: str, mode: str) -> int:
    return 0 if mode == "ecb" else block_len(alg)


def _algorithm(alg: str, key: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers import algorithms
    family = CIPHER_ALGS[alg][0]
    if family == "aes":
        return algorithms.AES(key)
    if family == "cast5":
        try:
            from cryptography.hazmat.decrepit.ciphers.algorithms import CAST5
        except ImportError:  # older cryptography releases
            CAST5 = algorithms.CAST5  # type: ignore[attr-defined]  # noqa: N806
        return CAST5(key)
    raise QemuError("Unsupported cipher algorithm %s" % alg)


class Cipher:
    """One cipher (algorithm, mode, key) that QEMU's qcrypto_cipher_new would accept."""

    def __init__(self, alg: str, mode: str, key: bytes) -> None:
        if alg not in CIPHER_ALGS:
            raise QemuError("Unsupported cipher algorithm %s" % alg)
        if mode not in CIPHER_MODES:
            raise QemuError("Unsupported cipher mode %s" % mode)
        want = key_len(alg) * (2 if mode == "xts" else 1)
        if len(key) != want:
            raise QemuError("Cipher key length %d should be %d" % (len(key), want))
        if mode == "xts" and block_len(alg) != 16:
            raise QemuError("Unsupported cipher mode %s" % mode)
        self.alg, self.mode, self.key = alg, mode, key
        self.niv = iv_len(alg, mode)
        self._xts_halves: Optional[tuple] = None
        if mode == "xts" and CIPHER_ALGS[alg][0] == "aes" and len(key) != 48:
            from cryptography.hazmat.primitives.ciphers import algorithms
            self._alg = algorithms.AES(key)
        elif mode == "xts":
            # OpenSSL has XTS for AES-128/256 only: the others are built from ECB here
            half = len(key) // 2
            self._xts_halves = (_algorithm(alg, key[:half]), _algorithm(alg, key[half:]))
        else:
            self._alg = _algorithm(alg, key)

    def _mode(self, iv: bytes) -> Any:
        from cryptography.hazmat.primitives.ciphers import modes
        if self.mode == "ecb":
            return modes.ECB()
        if self.mode == "cbc":
            return modes.CBC(iv)
        if self.mode == "ctr":
            return modes.CTR(iv)
        return modes.XTS(iv)

    def _xts(self, data: bytes, iv: bytes, encrypt: bool) -> bytes:
        """IEEE 1619 XTS without ciphertext stealing (sectors are whole blocks)."""
        from cryptography.hazmat.primitives.ciphers import Cipher as _C
        from cryptography.hazmat.primitives.ciphers import modes
        assert self._xts_halves is not None
        k1, k2 = self._xts_halves
        if len(data) % 16:
            raise QemuError("Failed to %scrypt data: length is not a multiple of 16" % ("en" if encrypt else "de"))
        enc2 = _C(k2, modes.ECB()).encryptor()
        t = int.from_bytes(enc2.update(bytes(iv)) + enc2.finalize(), "little")
        tweaks = []
        for _ in range(len(data) // 16):
            tweaks.append(t.to_bytes(16, "little"))
            t = ((t << 1) ^ (0x87 if t >> 127 else 0)) & ((1 << 128) - 1)
        tw = int.from_bytes(b"".join(tweaks), "little")
        n = len(data)
        x = (int.from_bytes(data, "little") ^ tw).to_bytes(n, "little")
        c = _C(k1, modes.ECB())
        ctx = c.encryptor() if encrypt else c.decryptor()
        y = ctx.update(x) + ctx.finalize()
        return (int.from_bytes(y, "little") ^ tw).to_bytes(n, "little")

    def run(self, data: bytes, iv: bytes, encrypt: bool) -> bytes:
        if self._xts_halves is not None:
            return self._xts(data, iv, encrypt)
        from cryptography.hazmat.primitives.ciphers import Cipher as _C
        c = _C(self._alg, self._mode(iv))
        ctx = c.encryptor() if encrypt else c.decryptor()
        try:
            return ctx.update(data) + ctx.finalize()
        except ValueError as e:  # e.g. a length that is not a multiple of the block size
            raise QemuError("Failed to %scrypt data: %s" % ("en" if encrypt else "de", e)) from None


def essiv_cipher_alg(alg: str, hash_alg: str) -> str:
    """dm-crypt's ESSIV quirk: the IV cipher takes the key size of the hash digest."""
    dlen = digest_len(hash_alg)
    if dlen == key_len(alg):
        return alg
    family = CIPHER_ALGS[alg][0]
    names = {"aes": "AES", "serpent": "Serpent", "twofish": "Twofish"}
    if family in names:
        for cand in ("%s-128" % family, "%s-192" % family, "%s-256" % family):
            if key_len(cand) == dlen:
                return cand
        raise QemuError("No %s cipher with key size %d available" % (names[family], dlen))
    raise QemuError("Cipher %s not supported with essiv" % alg)


class IVGen:
    """plain (32-bit LE sector), plain64 (64-bit LE sector), essiv (sector encrypted
    with a key that is the hash of the data key)."""

    def __init__(self, alg: str, cipher_alg: str, hash_alg: Optional[str], key: bytes, niv: int) -> None:
        if alg not in IVGEN_ALGS:
            raise QemuError("Unknown block IV generator algorithm %s" % alg)
        self.alg = alg
        self.niv = niv
        self._essiv: Optional[Cipher] = None
        if alg == "essiv":
            if hash_alg is None:
                raise QemuError("Missing IV generator hash specification")
            salt = hash_bytes(hash_alg, key)
            self._essiv = Cipher(cipher_alg, "ecb", salt[:key_len(cipher_alg)])

    def ivs(self, first: int, count: int) -> bytes:
        """The IVs of ``count`` sectors from ``first``, back to back (one cipher call for essiv)."""
        n = self.niv
        if self.alg == "plain":
            pk = struct.Struct("<I%dx" % (n - 4) if n > 4 else "<I").pack
            raw = b"".join(pk(s & 0xFFFFFFFF) for s in range(first, first + count))
        else:
            pk = struct.Struct("<Q%dx" % (n - 8) if n > 8 else "<Q").pack
            raw = b"".join(pk(s & 0xFFFFFFFFFFFFFFFF) for s in range(first, first + count))
        if self._essiv is not None:
            if block_len(self._essiv.alg) != n:
                return b"".join(self.iv(s) for s in range(first, first + count))
            raw = self._essiv.run(raw, b"", True)
        return raw

    def iv(self, sector: int) -> bytes:
        n = self.niv
        if self.alg == "plain":
            raw = struct.pack("<I", sector & 0xFFFFFFFF)
        else:
            raw = struct.pack("<Q", sector & 0xFFFFFFFFFFFFFFFF)
        if self._essiv is not None:
            blk = block_len(self._essiv.alg)
            raw = self._essiv.run(raw.ljust(blk, b"\0")[:blk], b"", True)
        return raw[:n].ljust(n, b"\0")


class SectorCrypto:
    """Encrypt/decrypt whole sectors: the IV of each sector comes from its number."""

    def __init__(self, cipher: Cipher, ivgen: IVGen, sector_size: int = 512) -> None:
        self.cipher = cipher
        self.ivgen = ivgen
        self.sector_size = sector_size

    def _run(self, offset: int, data: bytes, encrypt: bool) -> bytes:
        ss = self.sector_size
        if offset % ss or len(data) % ss:
            raise QemuError("Input/output error: unaligned encrypted request", errno=5)
        c = self.cipher
        if c.niv == 0:
            return c.run(bytes(data), b"", encrypt)
        if len(data) > _PIECE:  # bounded memory: the batched paths hold a few copies of their input
            mv = memoryview(data)
            return b"".join(self._run(offset + i, mv[i:i + _PIECE], encrypt) for i in range(0, len(data), _PIECE))
        if len(data) >= 2 * ss and ss % 16 == 0 and c.niv == 16:
            if c.mode == "xts":
                return _xts_many(c, bytes(data), self.ivgen.ivs(offset // ss, len(data) // ss), ss, encrypt)
            if c.mode == "cbc" and not encrypt:
                return _cbc_decrypt_many(c, bytes(data), self.ivgen.ivs(offset // ss, len(data) // ss), ss)
        first = offset // ss
        mv = memoryview(data)
        gen = self.ivgen.iv
        run = c.run
        return b"".join(run(mv[i:i + ss], gen(first + i // ss), encrypt) for i in range(0, len(data), ss))

    def encrypt(self, offset: int, data: bytes) -> bytes:
        """``offset`` (bytes, sector aligned) chooses the IVs: QEMU's qcrypto_block_encrypt."""
        return self._run(offset, data, True)

    def decrypt(self, offset: int, data: bytes) -> bytes:
        return self._run(offset, data, False)


_PIECE = 1 << 20

# --- many sectors in a few C calls --------------------------------------------------------
# A cipher context per 512-byte sector costs more than the AES work itself.  XTS and CBC
# decryption only need ECB over the whole buffer plus XORs with per-block masks, and
# Python's big integers XOR and shift megabytes in C.

def _ecb(alg: Any, data: bytes, encrypt: bool) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher as _C
    from cryptography.hazmat.primitives.ciphers import modes
    c = _C(alg, modes.ECB())
    ctx = c.encryptor() if encrypt else c.decryptor()
    return ctx.update(data) + ctx.finalize()


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(len(a), "little")


def _interleave(lanes: List[bytes], ss: int, nsec: int) -> bytes:
    """Sector-major stream: for each sector, block j of it comes from ``lanes[j]``."""
    out = bytearray(nsec * ss)
    q = memoryview(out).cast("Q")  # 8-byte words: 2 slice copies per block position
    per = ss // 8
    for j, lane in enumerate(lanes):
        lq = memoryview(lane).cast("Q")
        q[j * 2::per] = lq[0::2]
        q[j * 2 + 1::per] = lq[1::2]
    return bytes(out)


def _xts_many(c: "Cipher", data: bytes, ivs: bytes, ss: int, encrypt: bool) -> bytes:
    half = len(c.key) // 2
    if c._xts_halves is not None:
        k1, k2 = c._xts_halves
    else:
        k1, k2 = _algorithm(c.alg, c.key[:half]), _algorithm(c.alg, c.key[half:])
    nsec = len(data) // ss
    width = 128 * nsec
    full = (1 << width) - 1
    ones = int.from_bytes(b"\x01" + bytes(15), "little") * (((1 << width) - 1) // ((1 << 128) - 1))
    keep = full ^ ones
    t = int.from_bytes(_ecb(k2, ivs, True), "little")  # every sector's first tweak, one lane each
    lanes = []
    for _ in range(ss // 16):
        lanes.append(t.to_bytes(16 * nsec, "little"))
        # multiply every 128-bit lane by x in GF(2^128) at once
        t = ((t << 1) & keep) ^ (((t >> 127) & ones) * 0x87)
    tw = _interleave(lanes, ss, nsec)
    return _xor(_ecb(k1, _xor(data, tw), encrypt), tw)


def _cbc_decrypt_many(c: "Cipher", data: bytes, ivs: bytes, ss: int) -> bytes:
    prev = bytearray(len(data))
    prev[16:] = data[:-16]  # each block is XORed with the ciphertext block before it ...
    for b in range(16):
        prev[b::ss] = ivs[b::16]  # ... or, first in its sector, with the sector's IV
    return _xor(_ecb(c._alg, data, False), bytes(prev))
