"""LUKS version 1 (cryptsetup's on-disk format 1.2), as QEMU reads and writes it.

The 592-byte big-endian header names the cipher (``aes``), the mode and IV
generator (``xts-plain64``, ``cbc-essiv:sha256``), the hash, the payload
offset and 8 key slots.  Each active slot holds the master key, split by
the anti-forensic splitter and encrypted with a key derived from the
passphrase by PBKDF2; a PBKDF2 digest of the master key tells whether a
passphrase unlocked the right key.

The layout QEMU creates (and so do we): slot material from 4 KiB on, each
slot rounded up to 4 KiB, payload after the eighth slot.
"""
from __future__ import annotations

import os
import struct
import uuid as _uuid
from typing import Any, Callable, Dict, List, Optional

from pyqemu.block.crypto import afsplit
from pyqemu.block.crypto.cipher import (CIPHER_ALGS, CIPHER_MODES, HASH_ALGS, IVGEN_ALGS, Cipher, IVGen,
                                        SectorCrypto, essiv_cipher_alg, iv_len, key_len)
from pyqemu.block.crypto.pbkdf import count_iters, pbkdf2
from pyqemu.util.error import QemuError

MAGIC = b"LUKS\xba\xbe"
VERSION = 1
SECTOR = 512
DIGEST_LEN = 20
SALT_LEN = 32
NUM_SLOTS = 8
STRIPES = 4000
MIN_ITERS = 1000
SLOT_ALIGN = 4096
SLOT_ENABLED = 0x00AC71F3
SLOT_DISABLED = 0x0000DEAD

HEADER = struct.Struct(">6sH32s32s32sII20s32sI40s")
SLOT = struct.Struct(">II32sII")
HEADER_SIZE = HEADER.size + NUM_SLOTS * SLOT.size  # 592

ReadFunc = Callable[[int, int], bytes]
WriteFunc = Callable[[int, bytes], None]


def has_format(buf: bytes) -> bool:
    return len(buf) >= 8 and buf[:6] == MAGIC and struct.unpack(">H", buf[6:8])[0] == VERSION


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


class Slot:
    def __init__(self, active: int, iterations: int, salt: bytes, key_offset: int, stripes: int) -> None:
        self.active, self.iterations, self.salt = active, iterations, salt
        self.key_offset, self.stripes = key_offset, stripes  # key_offset in sectors

    def pack(self) -> bytes:
        return SLOT.pack(self.active, self.iterations, self.salt, self.key_offset, self.stripes)


class LuksHeader:
    """The parsed header plus the algorithms it names (QEMU's enum names)."""

    def __init__(self) -> None:
        self.cipher_name = "aes"
        self.cipher_mode_spec = ""
        self.hash_spec = "sha256"
        self.payload_offset = 0  # sectors
        self.key_bytes = 0
        self.mk_digest = bytes(DIGEST_LEN)
        self.mk_salt = bytes(SALT_LEN)
        self.mk_iters = 0
        self.uuid = ""
        self.slots: List[Slot] = []
        # decoded
        self.cipher_alg = ""
        self.cipher_mode = ""
        self.ivgen_alg = ""
        self.ivgen_hash_alg: Optional[str] = None
        self.hash_alg = ""

    # --- on-disk form ---------------------------------------------------------------
    def pack(self) -> bytes:
        head = HEADER.pack(MAGIC, VERSION, self.cipher_name.encode(), self.cipher_mode_spec.encode(),
                           self.hash_spec.encode(), self.payload_offset, self.key_bytes, self.mk_digest,
                           self.mk_salt, self.mk_iters, self.uuid.encode())
        return head + b"".join(s.pack() for s in self.slots)

    @classmethod
    def parse(cls, buf: bytes) -> "LuksHeader":
        # a short file reads as zeroes past its end, as QEMU's reads do
        buf = bytes(buf).ljust(HEADER_SIZE, b"\0")
        if buf[:6] != MAGIC:
            raise QemuError("Volume is not in LUKS format", errno=22)
        (_m, version, cname, cmode, hspec, payload, key_bytes, digest, salt, iters,
         uid) = HEADER.unpack_from(buf, 0)
        if version != VERSION:
            raise QemuError("LUKS version %d is not supported" % version, errno=95)
        h = cls()
        h.cipher_name, h.cipher_mode_spec, h.hash_spec = _cstr(cname), _cstr(cmode), _cstr(hspec)
        h.payload_offset, h.key_bytes, h.mk_digest, h.mk_salt, h.mk_iters = payload, key_bytes, digest, salt, iters
        h.uuid = _cstr(uid)
        h.slots = [Slot(*SLOT.unpack_from(buf, HEADER.size + i * SLOT.size)) for i in range(NUM_SLOTS)]
        h._check_layout()
        h._decode_algorithms()
        return h

    def _decode_algorithms(self) -> None:
        spec = self.cipher_mode_spec
        if "-" not in spec:
            raise QemuError("Unexpected cipher mode string format '%s'" % spec, errno=22)
        mode, ivgen = spec.split("-", 1)
        ivhash = None
        if ":" in ivgen:
            ivgen, ivhash = ivgen.split(":", 1)
            if ivhash not in HASH_ALGS:
                raise QemuError("Hash algorithm %s not supported" % ivhash, errno=95)
        if mode not in CIPHER_MODES:
            raise QemuError("Cipher mode %s not supported" % mode, errno=95)
        kb = self.key_bytes // 2 if mode == "xts" else self.key_bytes
        alg = None
        for name, (family, klen, _blk) in CIPHER_ALGS.items():
            if family == self.cipher_name and klen == kb:
                alg = name
        if alg is None:
            raise QemuError("Algorithm %s with key size %d bytes not supported" % (self.cipher_name, kb),
                            errno=95)
        if self.hash_spec not in HASH_ALGS:
            raise QemuError("Hash algorithm %s not supported" % self.hash_spec, errno=95)
        if ivgen not in IVGEN_ALGS:
            raise QemuError("IV generator %s not supported" % ivgen, errno=95)
        if ivgen == "essiv":
            if ivhash is None:
                raise QemuError("Missing IV generator hash specification", errno=22)
            essiv_cipher_alg(alg, ivhash)
        self.cipher_alg, self.cipher_mode, self.ivgen_alg = alg, mode, ivgen
        self.ivgen_hash_alg, self.hash_alg = ivhash, self.hash_spec

    def _check_layout(self) -> None:
        """Slots must lie between the header and the payload and not overlap."""
        header_sectors = -(-HEADER_SIZE // SECTOR)
        if self.payload_offset < header_sectors:
            raise QemuError("LUKS payload is overlapping with the header", errno=22)
        spans = []
        for i, s in enumerate(self.slots):
            if s.stripes != STRIPES:
                raise QemuError("Keyslot %d is corrupted (stripes %d != %d)" % (i, s.stripes, STRIPES),
                                errno=22)
            if s.key_offset < header_sectors:
                raise QemuError("Keyslot %d is overlapping with the LUKS header" % i, errno=22)
            length = -(-(self.key_bytes * s.stripes) // SECTOR)
            if s.key_offset + length > self.payload_offset:
                raise QemuError("Keyslot %d is overlapping with the encrypted payload" % i, errno=22)
            for j, (start, ln) in enumerate(spans):
                if s.key_offset < start + ln and start < s.key_offset + length:
                    raise QemuError("Keyslots %d and %d are overlapping in the header" % (j, i), errno=22)
            spans.append((s.key_offset, length))
            if s.active == SLOT_ENABLED and s.iterations == 0:
                raise QemuError("Keyslot %d iteration count is zero" % i, errno=22)

    # --- keys -----------------------------------------------------------------------
    def _crypto_for(self, key: bytes) -> SectorCrypto:
        cipher = Cipher(self.cipher_alg, self.cipher_mode, key)
        ivalg = essiv_cipher_alg(self.cipher_alg, self.ivgen_hash_alg) if self.ivgen_alg == "essiv" \
            else self.cipher_alg
        ivgen = IVGen(self.ivgen_alg, ivalg, self.ivgen_hash_alg, key, iv_len(self.cipher_alg, self.cipher_mode))
        return SectorCrypto(cipher, ivgen, SECTOR)

    def _try_slot(self, slot: Slot, password: bytes, read: ReadFunc) -> Optional[bytes]:
        if slot.active != SLOT_ENABLED:
            return None
        n = self.key_bytes
        slot_key = pbkdf2(self.hash_alg, password, slot.salt, slot.iterations, n)
        material = read(slot.key_offset * SECTOR, n * slot.stripes)
        if len(material) < n * slot.stripes:
            raise QemuError("Cannot read key slot material: file too short", errno=5)
        pad = -len(material) % SECTOR
        split = self._crypto_for(slot_key).decrypt(0, material + bytes(pad))[:n * slot.stripes]
        master = afsplit.decode(self.hash_alg, split, n, slot.stripes)
        digest = pbkdf2(self.hash_alg, master, self.mk_salt, self.mk_iters, DIGEST_LEN)
        return master if digest == self.mk_digest else None

    def unlock(self, password: bytes, read: ReadFunc) -> SectorCrypto:
        """The payload cipher, from the first slot the passphrase opens."""
        for slot in self.slots:
            master = self._try_slot(slot, password, read)
            if master is not None:
                self.master_key = master  # kept for amend (adding key slots)
                return self._crypto_for(master)
        raise QemuError("Invalid password, cannot unlock any keyslot", errno=13)

    # --- information ---------------------------------------------------------------
    def info(self) -> Dict[str, Any]:
        """QEMU's QCryptoBlockInfoLUKS (without the format key)."""
        d: Dict[str, Any] = {"cipher-alg": self.cipher_alg, "cipher-mode": self.cipher_mode,
                             "ivgen-alg": self.ivgen_alg}
        if self.ivgen_alg == "essiv":
            d["ivgen-hash-alg"] = self.ivgen_hash_alg
        d["hash-alg"] = self.hash_alg
        slots = []
        for s in self.slots:
            e: Dict[str, Any] = {"active": s.active == SLOT_ENABLED}
            if e["active"]:
                e["iters"] = s.iterations
                e["stripes"] = s.stripes
            e["key-offset"] = s.key_offset * SECTOR
            slots.append(e)
        d["payload-offset"] = self.payload_offset * SECTOR
        d["master-key-iters"] = self.mk_iters
        d["uuid"] = self.uuid
        d["slots"] = slots
        return d


# --- creation ------------------------------------------------------------------------
CREATE_KEYS = ("key-secret", "cipher-alg", "cipher-mode", "ivgen-alg", "ivgen-hash-alg", "hash-alg",
               "iter-time")


def _enum(opts: Dict[str, Any], prefix: str, key: str, allowed: Any, default: Optional[str]) -> Optional[str]:
    v = opts.get(key)
    if v is None:
        return default
    if str(v) not in allowed:
        raise QemuError("Parameter '%s%s' does not accept value '%s'" % (prefix, key, v))
    return str(v)


def parse_create_options(opts: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """Check ``-o`` values (without the ``encrypt.`` prefix) and fill QEMU's defaults."""
    o: Dict[str, Any] = {}
    o["cipher-alg"] = _enum(opts, prefix, "cipher-alg", CIPHER_ALGS, "aes-256")
    o["cipher-mode"] = _enum(opts, prefix, "cipher-mode", CIPHER_MODES, "xts")
    o["ivgen-alg"] = _enum(opts, prefix, "ivgen-alg", IVGEN_ALGS, "plain64")
    o["ivgen-hash-alg"] = _enum(opts, prefix, "ivgen-hash-alg", HASH_ALGS, None)
    o["hash-alg"] = _enum(opts, prefix, "hash-alg", HASH_ALGS, "sha256")
    if o["ivgen-alg"] == "essiv" and o["ivgen-hash-alg"] is None:
        o["ivgen-hash-alg"] = "sha256"
    it = opts.get("iter-time")
    if it is None:
        o["iter-time"] = 2000
    else:
        try:
            o["iter-time"] = int(str(it), 0)
            if o["iter-time"] < 0:
                raise ValueError
        except ValueError:
            raise QemuError("Parameter '%siter-time' expects a number" % prefix) from None
    o["key-secret"] = opts.get("key-secret")
    return o


def secret_password(key_secret: Optional[str], prefix: str) -> bytes:
    """The passphrase of a ``secret`` object, as QEMU's qcrypto_secret_lookup_as_utf8."""
    if not key_secret:
        raise QemuError("Parameter '%skey-secret' is required for cipher" % prefix)
    from pyqemu.system.secret import secret_bytes
    data = secret_bytes(str(key_secret))
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise QemuError("Data from secret %s is not valid UTF-8" % key_secret) from None
    # QEMU hands the passphrase on as a C string: it ends at the first NUL
    return data.split(b"\0", 1)[0]


def create(o: Dict[str, Any], password: bytes) -> "tuple[LuksHeader, bytes, SectorCrypto]":
    """A new header, slot 0's material (to write at its key offset) and the payload cipher.

    ``o`` is :func:`parse_create_options`' result.
    """
    alg, mode = o["cipher-alg"], o["cipher-mode"]
    family = CIPHER_ALGS[alg][0]
    if family is None:
        raise QemuError("Algorithm '%s' not supported" % alg)
    h = LuksHeader()
    h.cipher_name = family
    if o["ivgen-hash-alg"] is not None:
        h.cipher_mode_spec = "%s-%s:%s" % (mode, o["ivgen-alg"], o["ivgen-hash-alg"])
    else:
        h.cipher_mode_spec = "%s-%s" % (mode, o["ivgen-alg"])
    h.hash_spec = o["hash-alg"]
    h.cipher_alg, h.cipher_mode, h.ivgen_alg = alg, mode, o["ivgen-alg"]
    h.ivgen_hash_alg, h.hash_alg = o["ivgen-hash-alg"], o["hash-alg"]
    if h.ivgen_alg == "essiv":
        essiv_cipher_alg(alg, h.ivgen_hash_alg)
    h.key_bytes = key_len(alg) * (2 if mode == "xts" else 1)
    h.uuid = str(_uuid.uuid4())
    h.mk_salt = os.urandom(SALT_LEN)
    master = os.urandom(h.key_bytes)
    payload = h._crypto_for(master)  # refuses ciphers we cannot run before any slow work
    iter_time = o["iter-time"]
    iters = count_iters(h.hash_alg, master, h.mk_salt, DIGEST_LEN) * iter_time // 1000 // 8
    if iters > 0xFFFFFFFF:
        raise QemuError("PBKDF iterations %d larger than %d" % (iters, 0xFFFFFFFF))
    h.mk_iters = max(iters, MIN_ITERS)
    h.mk_digest = pbkdf2(h.hash_alg, master, h.mk_salt, h.mk_iters, DIGEST_LEN)
    split_len = h.key_bytes * STRIPES
    slot_sectors = -(-(-(-split_len // SECTOR)) // (SLOT_ALIGN // SECTOR)) * (SLOT_ALIGN // SECTOR)
    base = SLOT_ALIGN // SECTOR
    h.slots = [Slot(SLOT_ENABLED if i == 0 else SLOT_DISABLED, 0, bytes(SALT_LEN),
                    base + slot_sectors * i, STRIPES) for i in range(NUM_SLOTS)]
    s0 = h.slots[0]
    s0.salt = os.urandom(SALT_LEN)
    iters = count_iters(h.hash_alg, password, s0.salt, h.key_bytes) * iter_time // 1000
    if iters > 0xFFFFFFFF:
        raise QemuError("PBKDF iterations %d larger than %d" % (iters, 0xFFFFFFFF))
    s0.iterations = max(iters, MIN_ITERS)
    slot_key = pbkdf2(h.hash_alg, password, s0.salt, s0.iterations, h.key_bytes)
    split = afsplit.encode(h.hash_alg, master, STRIPES)
    pad = -len(split) % SECTOR
    material = h._crypto_for(slot_key).encrypt(0, split + bytes(pad))[:split_len]
    h.payload_offset = base + slot_sectors * NUM_SLOTS
    return h, material, payload


def header_bytes(opts: Dict[str, Any], prefix: str = "") -> int:
    """Bytes the LUKS header and key slots take for these create options (``measure``).

    As QEMU, the options are checked and the secret must exist, but no key is derived.
    """
    o = parse_create_options(opts)
    secret_password(o["key-secret"], prefix)
    alg = o["cipher-alg"]
    if CIPHER_ALGS[alg][0] is None:
        raise QemuError("Algorithm '%s' not supported" % alg)
    key_bytes = key_len(alg) * (2 if o["cipher-mode"] == "xts" else 1)
    align = SLOT_ALIGN // SECTOR
    slot_sectors = -(-(-(-(key_bytes * STRIPES) // SECTOR)) // align) * align
    return (align + slot_sectors * NUM_SLOTS) * SECTOR


# --- amend: adding and erasing key slots -----------------------------------------------------
AMEND_HELP = [
    ("iter-time", "<num>", "Time to spend in PBKDF in milliseconds"),
    ("keyslot", "<num>", "Select a single keyslot to modify explicitly"),
    ("new-secret", "<str>", "New secret to set in the matching keyslots. Empty string to erase"),
    ("old-secret", "<str>", "Select all keyslots that match this password"),
    ("state", "<str>", "Select new state of affected keyslots (active/inactive)"),
]
AMEND_KEYS = tuple(k for k, _t, _h in AMEND_HELP)


def _parse_amend(opts: Dict[str, Any]) -> Dict[str, Any]:
    o: Dict[str, Any] = {}
    state = opts.get("state")
    if state is None:
        raise QemuError("Parameter 'state' is missing")
    if state not in ("active", "inactive"):
        raise QemuError("Parameter 'state' does not accept value '%s'" % state)
    o["state"] = state
    for key in ("keyslot", "iter-time"):
        if key in opts:
            try:
                o[key] = int(str(opts[key]), 0)
            except ValueError:
                raise QemuError("Parameter '%s' expects a number" % key) from None
    if "keyslot" in o:
        o["keyslot"] &= 0xFFFFFFFF  # an unsigned option in QEMU: -1 reads as 4294967295
        if o["keyslot"] >= NUM_SLOTS:
            raise QemuError("Invalid keyslot %d specified, must be between 0 and %d"
                            % (o["keyslot"], NUM_SLOTS - 1))
    o["old-secret"] = opts.get("old-secret")
    o["new-secret"] = opts.get("new-secret")
    return o


def amend(header: LuksHeader, opts: Dict[str, Any], read: ReadFunc, write: WriteFunc, force: bool) -> None:
    """``qemu-img amend -o state=...`` on an unlocked volume: add or erase key slots.

    ``read``/``write`` address the LUKS area (header at 0).  Key material is
    written before the header that makes a slot active, and wiped after the
    header that disables it.
    """
    o = _parse_amend(opts)
    master = getattr(header, "master_key", None)
    if master is None:
        raise QemuError("Cannot amend a LUKS volume that was opened without its key")
    if o["state"] == "active":
        _add_slot(header, o, master, write, force)
    else:
        _erase_slots(header, o, read, write, force)


def _add_slot(h: LuksHeader, o: Dict[str, Any], master: bytes, write: WriteFunc, force: bool) -> None:
    if o["old-secret"] is not None:
        raise QemuError("'old-secret' must not be given when activating keyslots")
    if o["new-secret"] is None:
        raise QemuError("'new-secret' is required to activate a keyslot")
    if "keyslot" in o:
        idx = o["keyslot"]
        if h.slots[idx].active == SLOT_ENABLED and not force:
            raise QemuError("Refusing to overwrite active keyslot %d - please erase it first" % idx)
    else:
        free = [i for i, s in enumerate(h.slots) if s.active != SLOT_ENABLED]
        if not free:
            raise QemuError("Can't add a keyslot - all keyslots are in use")
        idx = free[0]
    password = secret_password(str(o["new-secret"]), "")
    slot = h.slots[idx]
    salt = os.urandom(SALT_LEN)
    iters = count_iters(h.hash_alg, password, salt, h.key_bytes) * o.get("iter-time", 2000) // 1000
    if iters > 0xFFFFFFFF:
        raise QemuError("PBKDF iterations %d larger than %d" % (iters, 0xFFFFFFFF))
    slot_key = pbkdf2(h.hash_alg, password, salt, max(iters, MIN_ITERS), h.key_bytes)
    split = afsplit.encode(h.hash_alg, master, slot.stripes)
    pad = -len(split) % SECTOR
    material = h._crypto_for(slot_key).encrypt(0, split + bytes(pad))[:len(split)]
    write(slot.key_offset * SECTOR, material)
    slot.active, slot.iterations, slot.salt = SLOT_ENABLED, max(iters, MIN_ITERS), salt
    write(0, h.pack())


def _erase_slots(h: LuksHeader, o: Dict[str, Any], read: ReadFunc, write: WriteFunc, force: bool) -> None:
    if o["new-secret"] is not None:
        raise QemuError("'new-secret' must not be given when erasing keyslots")
    active = [i for i, s in enumerate(h.slots) if s.active == SLOT_ENABLED]
    old = secret_password(str(o["old-secret"]), "") if o["old-secret"] is not None else None
    if "keyslot" in o:
        idx = o["keyslot"]
        if old is not None and h._try_slot(h.slots[idx], old, read) is None:
            raise QemuError("Given keyslot %d doesn't contain the given old password for erase operation" % idx)
        if idx not in active:
            raise QemuError("Given keyslot %d is already erased (inactive) " % idx)
        if active == [idx] and not force:
            raise QemuError("Attempt to erase the only active keyslot %d which will erase all the data in "
                            "the image irreversibly - refusing operation" % idx)
        victims = [idx]
    elif old is not None:
        victims = [i for i in active if h._try_slot(h.slots[i], old, read) is not None]
        if not victims:
            raise QemuError("No keyslots match given (old) password for erase operation")
        if len(victims) == len(active) and not force:
            raise QemuError("All the active keyslots match the (old) password that was given and erasing "
                            "them will erase all the data in the image irreversibly - refusing operation")
    else:
        raise QemuError("To erase keyslot(s), either explicit keyslot index or the password currently "
                        "contained in them must be given")
    for i in victims:
        s = h.slots[i]
        s.active, s.iterations, s.salt = SLOT_DISABLED, 0, bytes(SALT_LEN)
    write(0, h.pack())
    for i in victims:  # the material goes after the header stops pointing at it
        s = h.slots[i]
        write(s.key_offset * SECTOR, os.urandom(h.key_bytes * s.stripes))
