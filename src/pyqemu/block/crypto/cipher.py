"""Ciphers, IV generators and sector encryption, with QEMU's names and rules.

QEMU encrypts a disk in sectors (512 bytes for LUKS and qcow AES): each
sector gets its own IV from an IV generator fed with the sector number,
and the cipher is restarted with it.  The block ciphers come from the
``cryptography`` package; algorithms it lacks (serpent, twofish) are refused
with QEMU's wording for a cipher the crypto backend does not provide.
"""
from __future__ import annotations

import struct
from typing import Any, Optional

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
