"""vvfat: a directory read back through the FAT it is presented as (boot sector, FAT chain, entries)."""
from __future__ import annotations

import struct

import pytest

from pyqemu.block import open_image
from pyqemu.util.error import QemuError


def _files(node, bs_sector):
    """(name, first cluster, size) of the root entries and the geometry, read like a FAT driver."""
    boot = node.pread(bs_sector * 512, 512)
    assert boot[510:] == b"\x55\xaa" and boot[3:11] == b"MSWIN4.1"
    spc, reserved, nfats, root_entries = struct.unpack_from("<BHBH", boot, 13)
    spf = struct.unpack_from("<H", boot, 22)[0]
    fat_at = (bs_sector + reserved) * 512
    root_at = fat_at + nfats * spf * 512
    root = node.pread(root_at, root_entries * 32)
    out = {}
    for i in range(0, len(root), 32):
        e = root[i:i + 32]
        if e[0] in (0, 0xE5) or e[11] in (0x0F, 0x28):
            continue
        name = e[:8].rstrip(b" ") + (b"." + e[8:11].rstrip(b" ") if e[8:11].strip() else b"")
        out[name.decode()] = (struct.unpack_from("<H", e, 26)[0], struct.unpack_from("<I", e, 28)[0])
    data_at = root_at + root_entries * 32
    return out, spc, data_at, fat_at


@pytest.mark.parametrize("spec,bs_sector", [("fat:floppy:%s", 0), ("fat:12:%s", 63)])
def test_files_read_back_through_the_fat(tmp_path, spec, bs_sector):
    d = tmp_path / "dir"
    d.mkdir()
    (d / "hello.txt").write_bytes(b"hello world\n")
    (d / "big.bin").write_bytes(bytes(range(256)) * 100)     # 25600 bytes: a chain of 4 clusters
    (d / "Some Long Name.dat").write_bytes(b"x")
    with open_image(spec % d) as node:
        files, spc, data_at, fat_at = _files(node, bs_sector)
        assert set(files) == {"HELLO.TXT", "BIG.BIN", "SOMELO~1.DAT"}
        cluster, size = files["BIG.BIN"]
        data = b""
        fat = node.pread(fat_at, 512)
        while True:
            data += node.pread(data_at + (cluster - 2) * spc * 512, spc * 512)
            off = cluster * 3 // 2
            v = struct.unpack_from("<H", fat, off)[0]
            cluster = (v >> 4) if cluster & 1 else (v & 0xFFF)
            if cluster >= 0xFF8:
                break
        assert data[:size] == bytes(range(256)) * 100
        c, size = files["HELLO.TXT"]
        assert node.pread(data_at + (c - 2) * spc * 512, size) == b"hello world\n"


def test_refusals(tmp_path):
    with pytest.raises(QemuError, match="read-only"):
        open_image("fat:%s" % tmp_path, readonly=False)
    with pytest.raises(QemuError, match="Valid FAT types"):
        open_image({"driver": "raw", "file": {"driver": "vvfat", "dir": str(tmp_path), "fat-type": 13}})
    with pytest.raises(QemuError, match="Could not read directory"):
        open_image("fat:%s/missing" % tmp_path)


def test_rw_commits_consistent_writes_to_the_directory(tmp_path):
    d = tmp_path / "dir"
    d.mkdir()
    (d / "hello.txt").write_bytes(b"hello world\n")
    (d / "keep.bin").write_bytes(b"k" * 9000)
    with open_image("fat:floppy:rw:%s" % d, "raw", readonly=False) as node:
        files, spc, data_at, fat_at = _files(node, 0)
        c, size = files["HELLO.TXT"]
        where = data_at + (c - 2) * spc * 512
        node.pwrite(where, b"HELLO")               # same size, new bytes: the host file follows
        assert (d / "hello.txt").read_bytes() == b"HELLO world\n"
        assert node.pread(where, 12) == b"HELLO world\n"
        # a FAT entry pointing at a free cluster makes the tree inconsistent: nothing is committed
        c2, _ = files["KEEP.BIN"]
        fat = bytearray(node.pread(fat_at, 512))
        off = c2 * 3 // 2
        v = fat[off] | fat[off + 1] << 8
        v = (v & 0x000F) | (0x100 << 4) if c2 & 1 else (v & 0xF000) | 0x100
        fat[off], fat[off + 1] = v & 0xFF, v >> 8
        node.pwrite(fat_at, bytes(fat))
        node.pwrite(where, b"J")
        assert (d / "hello.txt").read_bytes() == b"HELLO world\n"
        assert (d / "keep.bin").read_bytes() == b"k" * 9000
    with pytest.raises(QemuError, match="when drive is read-only"):
        open_image("fat:rw:%s" % d)
