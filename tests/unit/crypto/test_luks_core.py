"""LUKS v1 building blocks: splitter, ciphers and IVs, header create/parse/unlock."""
from __future__ import annotations

import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher as _C
from cryptography.hazmat.primitives.ciphers import algorithms, modes

from pyqemu.block.crypto import afsplit
from pyqemu.block.crypto import luks
from pyqemu.block.crypto.cipher import Cipher, IVGen, SectorCrypto, essiv_cipher_alg
from pyqemu.util.error import QemuError


@pytest.fixture(autouse=True)
def fast_pbkdf(monkeypatch):
    # the benchmark would spend a second per key; 2000 iterations a "second" keeps tests fast
    monkeypatch.setattr(luks, "count_iters", lambda *a: 2000 * 8)


def test_afsplit_round_trip_and_diffusion():
    key = bytes(range(32))
    for h in ("sha1", "sha256", "sha512"):
        mat = afsplit.encode(h, key, 50)
        assert len(mat) == 32 * 50
        assert afsplit.decode(h, mat, 32, 50) == key
        broken = bytearray(mat)
        broken[5] ^= 1  # any damaged stripe loses the key
        assert afsplit.decode(h, bytes(broken), 32, 50) != key


def test_plain_plain64_essiv_ivs():
    key = bytes(range(32))
    assert IVGen("plain", "aes-256", None, key, 16).iv(0x1_0000_0002) == struct.pack("<I", 2) + bytes(12)
    assert IVGen("plain64", "aes-256", None, key, 16).iv(0x1_0000_0002) == struct.pack("<Q", 0x1_0000_0002) + bytes(8)
    salt = hashlib.sha256(key).digest()
    enc = _C(algorithms.AES(salt), modes.ECB()).encryptor()
    want = enc.update(struct.pack("<Q", 7) + bytes(8)) + enc.finalize()
    assert IVGen("essiv", "aes-256", "sha256", key, 16).iv(7) == want


def test_essiv_cipher_takes_the_digest_size():
    assert essiv_cipher_alg("aes-128", "sha256") == "aes-256"
    assert essiv_cipher_alg("aes-256", "md5") == "aes-128"
    with pytest.raises(QemuError, match="No AES cipher with key size 20 available"):
        essiv_cipher_alg("aes-128", "sha1")


@pytest.mark.parametrize("alg,mode", [("aes-128", "cbc"), ("aes-256", "xts"), ("aes-192", "ctr"),
                                      ("aes-256", "ecb"), ("cast5-128", "cbc")])
def test_sector_crypto_round_trip_and_per_sector_iv(alg, mode):
    from pyqemu.block.crypto.cipher import iv_len, key_len
    key = bytes(range(key_len(alg) * (2 if mode == "xts" else 1)))
    sc = SectorCrypto(Cipher(alg, mode, key), IVGen("plain64", alg, None, key, iv_len(alg, mode)))
    data = b"\x5a" * 2048
    ct = sc.encrypt(4096, data)
    assert ct != data and sc.decrypt(4096, ct) == data
    if mode != "ecb":  # the same plaintext in another sector encrypts differently
        assert ct[:512] != ct[512:1024]
    with pytest.raises(QemuError):
        sc.encrypt(100, data)


def test_unsupported_ciphers_use_qemus_wording():
    with pytest.raises(QemuError, match="Unsupported cipher algorithm twofish-256"):
        Cipher("twofish-256", "cbc", bytes(32))
    with pytest.raises(QemuError, match="Unsupported cipher mode xts"):
        Cipher("cast5-128", "xts", bytes(32))


def _make(password=b"123456", **over):
    o = luks.parse_create_options(dict({"key-secret": "s", "iter-time": "10"}, **over))
    h, material, payload = luks.create(o, password)
    disk = bytearray(h.payload_offset * 512)
    disk[:luks.HEADER_SIZE] = h.pack()
    off = h.slots[0].key_offset * 512
    disk[off:off + len(material)] = material
    return h, disk, payload


def _read(disk):
    return lambda off, n: bytes(disk[off:off + n])


@pytest.mark.parametrize("over", [{}, {"cipher-alg": "aes-128", "cipher-mode": "cbc", "ivgen-alg": "essiv"},
                                  {"cipher-alg": "aes-192", "cipher-mode": "cbc", "hash-alg": "sha1"}])
def test_create_parse_unlock(over):
    h, disk, payload = _make(**over)
    h2 = luks.LuksHeader.parse(bytes(disk[:luks.HEADER_SIZE]))
    assert h2.info() == h.info()
    got = h2.unlock(b"123456", _read(disk))
    assert got.decrypt(0, payload.encrypt(0, b"x" * 1024)) == b"x" * 1024
    with pytest.raises(QemuError, match="Invalid password, cannot unlock any keyslot"):
        h2.unlock(b"1234567", _read(disk))


def test_layout_matches_qemu():
    h, _disk, _p = _make()
    info = h.info()
    assert [s["key-offset"] for s in info["slots"]] == [4096 + 258048 * i for i in range(8)]
    assert info["payload-offset"] == 2068480
    assert [s["active"] for s in info["slots"]] == [True] + [False] * 7
    assert h.cipher_mode_spec == "xts-plain64" and h.key_bytes == 64


def test_corrupt_headers_give_clear_errors():
    h, disk, _p = _make()
    good = bytes(disk[:luks.HEADER_SIZE])
    cases = [(b"XXXX" + good[4:], "Volume is not in LUKS format"),
             (good[:6] + b"\0\2" + good[8:], "LUKS version 2 is not supported"),
             (good[:100], "LUKS payload is overlapping with the header"), (good[:300], r"Keyslot 1 is corrupted \(stripes 0 != 4000\)")]
    bad_mode = bytearray(good)
    bad_mode[40:72] = b"xts".ljust(32, b"\0")
    cases.append((bytes(bad_mode), "Unexpected cipher mode string format .xts."))
    stripes = bytearray(good)
    struct.pack_into(">I", stripes, 208 + 44, 7)
    cases.append((bytes(stripes), r"Keyslot 0 is corrupted \(stripes 7 != 4000\)"))
    overlap = bytearray(good)
    struct.pack_into(">I", overlap, 208 + 48 + 40, 8)
    cases.append((bytes(overlap), "Keyslots 0 and 1 are overlapping in the header"))
    for raw, msg in cases:
        with pytest.raises(QemuError, match=msg):
            luks.LuksHeader.parse(raw)


def test_bad_create_options():
    with pytest.raises(QemuError, match="Parameter 'cipher-alg' does not accept value 'bogus'"):
        luks.parse_create_options({"cipher-alg": "bogus"})
    with pytest.raises(QemuError, match="Parameter 'encrypt.cipher-mode' does not accept value 'x'"):
        luks.parse_create_options({"cipher-mode": "x"}, "encrypt.")
    with pytest.raises(QemuError, match="Algorithm 'des' not supported"):
        luks.create(luks.parse_create_options({"cipher-alg": "des"}), b"x")


@pytest.mark.parametrize("alg,klen", [("aes-128", 32), ("aes-256", 64)])
def test_xts_built_from_ecb_equals_openssl_xts(alg, klen):
    # AES-192-XTS (which OpenSSL lacks) uses this construction: check it where OpenSSL can answer
    from pyqemu.block.crypto import cipher as c
    key = bytes((i * 7 + 3) & 0xFF for i in range(klen))
    ref = c.Cipher(alg, "xts", key)
    ours = c.Cipher(alg, "xts", key)
    ours._xts_halves = (c._algorithm(alg, key[:klen // 2]), c._algorithm(alg, key[klen // 2:]))
    data, iv = bytes(range(256)) * 2, bytes(range(16))
    assert ours.run(data, iv, True) == ref.run(data, iv, True)
    assert ours.run(ours.run(data, iv, True), iv, False) == data


def test_aes_192_xts_round_trip():
    from pyqemu.block.crypto.cipher import Cipher
    ci = Cipher("aes-192", "xts", bytes(range(48)))
    assert ci.run(ci.run(b"a" * 512, bytes(16), True), bytes(16), False) == b"a" * 512


@pytest.mark.parametrize("alg,mode,ivalg,ivhash", [
    ("aes-256", "xts", "plain64", None), ("aes-128", "xts", "essiv", "sha256"), ("aes-192", "xts", "plain", None),
    ("aes-256", "cbc", "essiv", "sha256"), ("aes-128", "cbc", "plain64", None), ("aes-128", "cbc", "plain", None),
    ("cast5-128", "cbc", "plain64", None)])
def test_many_sectors_at_once_equal_sector_by_sector(alg, mode, ivalg, ivhash):
    """The batched XTS/CBC paths give exactly what one cipher call per sector gives."""
    from pyqemu.block.crypto.cipher import iv_len, key_len
    key = bytes((i * 13 + 5) & 0xFF for i in range(key_len(alg) * (2 if mode == "xts" else 1)))
    ivc = essiv_cipher_alg(alg, ivhash) if ivalg == "essiv" else alg
    sc = SectorCrypto(Cipher(alg, mode, key), IVGen(ivalg, ivc, ivhash, key, iv_len(alg, mode)))
    data = bytes((i * 7) & 0xFF for i in range(512 * 9))
    off = 512 * ((1 << 32) - 4)  # crosses the 32-bit wrap of the plain IV
    one_by_one = b"".join(sc.cipher.run(data[i:i + 512], sc.ivgen.iv(off // 512 + i // 512), True)
                          for i in range(0, len(data), 512))
    assert sc.encrypt(off, data) == one_by_one
    assert sc.decrypt(off, one_by_one) == data


def test_large_requests_are_split_without_changing_the_result():
    key = bytes(range(64))
    sc = SectorCrypto(Cipher("aes-256", "xts", key), IVGen("plain64", "aes-256", None, key, 16))
    data = bytes((i * 31) & 0xFF for i in range((1 << 20) + 1024))
    ct = sc.encrypt(4096, data)
    tail = sc.encrypt(4096 + (1 << 20), data[1 << 20:])
    assert ct[1 << 20:] == tail and sc.decrypt(4096, ct) == data
