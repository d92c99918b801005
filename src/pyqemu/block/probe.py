"""Format probing by magic, with ``raw`` as the fallback."""
from __future__ import annotations

import struct

# (format, check) pairs; formats pyqemu does not implement are still probed so
# that the user gets "unknown driver" rather than silently raw access to them.
_QCOW_MAGIC = b"QFI\xfb"
_CLOOP_MAGIC = b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"


def probe_format(head: bytes, filename: str = "") -> str:
    """The format name whose magic ``head`` (the image's first bytes) carries."""
    if len(head) >= 8 and head[:4] == _QCOW_MAGIC:
        version = struct.unpack_from(">I", head, 4)[0]
        return "qcow2" if version >= 2 else "qcow"
    if head[:6] == b"LUKS\xba\xbe" and head[6:8] == b"\0\1":  # version 1 only, as QEMU
        return "luks"
    if head[:4] in (b"KDMV", b"COWD") or head[:20] == b"# Disk DescriptorFile"[:20]:
        return "vmdk"
    if head[:8] == b"conectix":
        return "vpc"
    if len(head) >= 0x44 and struct.unpack_from("<I", head, 0x40)[0] == 0xBEDA107F:
        return "vdi"
    if head[:8] == b"vhdxfile":
        return "vhdx"
    if head[:4] == b"QED\0":
        return "qed"
    if head[:4] == b"WithoutFreeSpace"[:4] or head[:16] == b"WithouFreSpacExt":
        return "parallels"
    if head.startswith(_CLOOP_MAGIC):
        return "cloop"
    if head[:32].split(b"\0", 1)[0] == b"Bochs Virtual HD Image" and \
            head[32:48].split(b"\0", 1)[0] == b"Redolog" and head[48:64].split(b"\0", 1)[0] == b"Growing":
        return "bochs"
    if filename.endswith(".dmg") and len(filename) > 4:
        return "dmg"  # QEMU's dmg probe goes by the name alone, below every magic
    return "raw"
