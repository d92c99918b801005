"""``qemu-img create -f vhdx``: the layout, defaults and checks of QEMU 7.2.

File identifier, two headers, two region tables, then (1 MiB aligned) the
log, the BAT and a 1 MiB metadata region; payload blocks start 5 MiB after
the BAT.  Block size defaults by image size (8 MiB up to 1 GiB, 16 MiB up to
100 GiB, 32 MiB up to 32 TiB, 64 MiB beyond), as qemu-img chooses it.
With ``block_state_zero`` (the default) every BAT entry says "reads as
zeroes"; a fixed image without it has every block present at its place.
GUIDs and the header sequence number are random, as in QEMU.
"""
from __future__ import annotations

import random
import struct
from typing import Any, Dict

from pyqemu import QEMU_VERSION
from pyqemu.block.file import FileNode, create_file
from pyqemu.block.vhdx_layout import (GUID_BAT, GUID_META, HEADER_OFFSETS, HEADER_SECTION_END,
                                      MAX_DISK_SIZE, MAX_SECTORS_PER_BLOCK, META_DISK_SIZE, META_ENTRY,
                                      META_FILE_PARAMS, META_HEAD, META_IS_REQUIRED,
                                      META_IS_VIRTUAL_DISK, META_LOGICAL, META_PAGE83, META_PHYSICAL,
                                      PARAMS_LEAVE_BLOCKS_ALLOCATED, PAYLOAD_FULLY_PRESENT, PAYLOAD_ZERO,
                                      REGION_ENTRY, REGION_HEAD, REGION_OFFSETS, REGION_SIZE, ZERO_GUID,
                                      Header, MiB, bat_entries, new_guid, with_checksum)
from pyqemu.util.error import QemuError
from pyqemu.util.opts import parse_bool, strtosz

GiB, TiB = 1 << 30, 1 << 40
BLOCK_SIZE_MAX = 256 * MiB
SECTOR = 512

PRINT_ORDER = [("size", None), ("log_size", "1048576"), ("block_size", "0"), ("subformat", None),
               ("block_state_zero", None), ("nocow", None), ("preallocation", None),
               ("extent_size_hint", None)]
CREATE_HELP = [
    ("block_size", "<size>", "Block Size; min 1MB, max 256MB. 0 means auto-calculate based on image size."),
    ("block_state_zero", "<bool (on/off)>", "Force use of payload blocks of type 'ZERO'. Non-standard, "
     "but default.  Do not set to 'off' when using 'qemu-img convert' with subformat=dynamic."),
    ("log_size", "<size>", "Log size; min 1MB."),
    ("size", "<size>", "Virtual disk size; max of 64TB."),
    ("subformat", "<str>", "VHDX format type, can be either 'dynamic' or 'fixed'. Default is 'dynamic'."),
]
_KEYS = ("log_size", "block_size", "subformat", "block_state_zero", "preallocation", "nocow",
         "extent_size_hint")
_SIZE_KEYS = ("log_size", "block_size", "extent_size_hint")


def _size_opt(key: str, value: Any) -> int:
    try:
        n = strtosz(str(value), "B")
    except (ValueError, OverflowError, QemuError):
        n = -1
    if n < 0:
        raise QemuError("Parameter '%s' expects a non-negative number below 2^64\n"
                        "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
                        "and exabytes, respectively." % key)
    return n


def validate_create_options(options: Dict[str, Any]) -> None:
    """What qemu-img checks before it prints ``Formatting``; size options become byte counts."""
    for k in options:
        if k not in _KEYS:
            raise QemuError("Invalid parameter '%s'" % k)
    for k in _SIZE_KEYS:
        if k in options:
            options[k] = str(_size_opt(k, options[k]))
    for k in ("block_state_zero", "nocow"):
        if k in options:
            parse_bool(k, str(options[k]))


def _round_up(n: int, m: int) -> int:
    return (n + m - 1) // m * m


def _default_block_size(size: int) -> int:
    if size > 32 * TiB:
        return 64 * MiB
    if size > 100 * GiB:
        return 32 * MiB
    if size > GiB:
        return 16 * MiB
    return 8 * MiB


def create(filename: str, size: int, options: Dict[str, Any]) -> None:
    opts = dict(options)
    validate_create_options(opts)
    sub = str(opts.get("subformat", "dynamic"))
    if sub not in ("dynamic", "fixed"):
        raise QemuError("Parameter 'subformat' does not accept value '%s'" % sub)
    prealloc = str(opts.get("preallocation", "off"))
    if prealloc not in ("off", "falloc", "full", "metadata"):
        raise QemuError("invalid parameter value: %s" % prealloc)
    if prealloc == "metadata":
        raise QemuError("Unsupported preallocation mode: metadata")
    fixed = sub == "fixed"
    zero_blocks = parse_bool("block_state_zero", str(opts.get("block_state_zero", "on")))
    size = _round_up(size, SECTOR)
    if size > MAX_DISK_SIZE:
        raise QemuError("Image size too large; max of 64TB", errno=22)
    # the create-options interface rounds sizes up to whole MiB before QEMU checks them
    log_size = _round_up(int(opts.get("log_size", MiB)), MiB)
    block_size = min(_round_up(int(opts.get("block_size", 0)), MiB), BLOCK_SIZE_MAX)
    if log_size >= 1 << 32:
        raise QemuError("Log size must be smaller than 4 GB", errno=22)
    if log_size < MiB:
        raise QemuError("Log size must be a multiple of 1 MB", errno=22)
    if block_size == 0:
        block_size = _default_block_size(size)
    if block_size & (block_size - 1):
        raise QemuError("Block size must be a power of two", errno=22)
    create_file(filename, 0)
    f = FileNode({"filename": filename}, False)
    try:
        _write_image(f, size, log_size, block_size, fixed, zero_blocks)
        f.flush()
    finally:
        f.close()


def _write_image(f: FileNode, size: int, log_size: int, block_size: int, fixed: bool,
                 zero_blocks: bool) -> None:
    creator = ("QEMU v" + QEMU_VERSION).encode("utf-16-le")
    f.pwrite(0, b"vhdxfile" + creator)
    seq = random.getrandbits(32)
    header = Header(seq, new_guid(), new_guid(), ZERO_GUID, 0, 1, log_size, HEADER_SECTION_END)
    f.pwrite(HEADER_OFFSETS[0], header.pack())
    f.pwrite(HEADER_OFFSETS[1], header._replace(sequence=seq + 1).pack())

    chunk_ratio = MAX_SECTORS_PER_BLOCK * SECTOR // block_size
    entries = bat_entries(size, block_size, chunk_ratio)
    bat_len = _round_up(entries * 8, MiB)
    bat_off = _round_up(HEADER_SECTION_END + log_size, MiB)
    meta_off = _round_up(bat_off + bat_len, MiB)
    data_off = bat_off + bat_len + 5 * MiB
    f.truncate(data_off + size if fixed else data_off)

    if fixed or zero_blocks:
        state = PAYLOAD_ZERO if zero_blocks else PAYLOAD_FULLY_PRESENT
        blocks = (size + block_size - 1) // block_size
        bat = bytearray((blocks + (blocks - 1) // chunk_ratio) * 8 if blocks else 0)
        for i in range(blocks):
            # a zero block has no file offset, even in a fixed image whose space exists
            off = 0 if state == PAYLOAD_ZERO else _round_up(data_off + i * block_size, MiB)
            struct.pack_into("<Q", bat, (i + i // chunk_ratio) * 8, off | state)
        f.pwrite(bat_off, bytes(bat))

    region = bytearray(REGION_SIZE)
    REGION_HEAD.pack_into(region, 0, b"regi", 0, 2, 0)
    REGION_ENTRY.pack_into(region, 16, GUID_BAT, bat_off, bat_len, 0)
    REGION_ENTRY.pack_into(region, 48, GUID_META, meta_off, MiB, 0)
    table = with_checksum(region, 4)
    for off in REGION_OFFSETS:
        f.pwrite(off, table)

    meta = bytearray(64 * 1024)
    META_HEAD.pack_into(meta, 0, b"metadata", 0, 5, bytes(20))
    items = ((META_FILE_PARAMS, struct.pack("<II", block_size,
                                            PARAMS_LEAVE_BLOCKS_ALLOCATED if fixed else 0),
              META_IS_REQUIRED),
             (META_DISK_SIZE, struct.pack("<Q", size), META_IS_REQUIRED | META_IS_VIRTUAL_DISK),
             (META_PAGE83, new_guid(), META_IS_REQUIRED | META_IS_VIRTUAL_DISK),
             (META_LOGICAL, struct.pack("<I", SECTOR), META_IS_REQUIRED | META_IS_VIRTUAL_DISK),
             (META_PHYSICAL, struct.pack("<I", SECTOR), META_IS_REQUIRED | META_IS_VIRTUAL_DISK))
    at = 64 * 1024
    data = b""
    for i, (guid, item, flags) in enumerate(items):
        META_ENTRY.pack_into(meta, 32 + 32 * i, guid, at + len(data), len(item), flags, 0)
        data += item
    f.pwrite(meta_off, bytes(meta) + data)
