"""dmg: images built per the UDIF format read back as the disk they hold; hostile ones fail cleanly."""
from __future__ import annotations

import struct

import pytest
from dmg_images import UDIG, UDRW, UDZE, UDZO, ULFO, build
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyqemu.block import open_image
from pyqemu.util.error import QemuError

RUNS = [(UDZO, bytes(range(256)) * 32), (UDZE, bytes(4096)), (UDRW, b"\x07" * 1536), (ULFO, b"lz" * 1024),
        (UDIG, bytes(512)), (UDZO, b"\x09" * 2048)]


@pytest.mark.parametrize("mode", ["xml", "rsrc"])
def test_reads_every_chunk_type(tmp_path, mode):
    img, disk = build(RUNS, mode=mode, tables=2)
    path = tmp_path / "t.dmg"
    path.write_bytes(img)
    with open_image(str(path)) as n:          # probed by the .dmg name, as QEMU does
        assert n.driver == "dmg" and n.length() == len(disk)
        assert n.pread(0, len(disk)) == disk
        assert n.pread(100, 5000) == disk[100:5100]
    with pytest.raises(QemuError, match="read-only"):
        open_image(str(path), "dmg", readonly=False)


def test_sector_outside_every_chunk_is_an_io_error(tmp_path):
    img, _ = build([(UDRW, b"\x01" * 512)])
    b = bytearray(img)
    struct.pack_into(">Q", b, len(b) - 512 + 0x1EC, 4)    # claims more sectors than the chunks hold
    (tmp_path / "s.dmg").write_bytes(bytes(b))
    with open_image(str(tmp_path / "s.dmg")) as n:
        assert n.pread(0, 512) == b"\x01" * 512
        with pytest.raises(QemuError, match="Input/output error"):
            n.pread(512, 512)


@pytest.mark.parametrize("mode", ["xml", "rsrc"])
def test_mutated_images(tmp_path, mode):
    img, _ = build(RUNS, mode=mode)
    path = tmp_path / "f.dmg"
    fork_len = struct.unpack_from(">Q", img, len(img) - 512 + 0x20)[0]

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(st.integers(fork_len, len(img) - 1), st.integers(0, 255)),
                    min_size=1, max_size=6),
           st.one_of(st.none(), st.integers(0, len(img))))
    def check(edits, cut):
        b = bytearray(img)
        for pos, val in edits:
            b[pos] = val
        if cut is not None:
            del b[cut:]
        path.write_bytes(bytes(b))
        try:
            n = open_image(str(path), "dmg")
        except QemuError:
            return
        with n:
            size = n.length()
            for off in (0, size // 2 // 512 * 512, max(0, size - 4096)):
                try:
                    assert len(n.pread(off, min(4096, size - off))) == min(4096, size - off)
                except QemuError:
                    pass

    check()


def test_lzfse_chunks(tmp_path):
    runs = [(ULFO, bytes(range(256)) * 64), (UDZO, b"\x05" * 1024), (ULFO, b"\x06" * 4096)]
    img, disk = build(runs)
    (tmp_path / "l.dmg").write_bytes(img)
    with open_image(str(tmp_path / "l.dmg")) as n:
        assert n.pread(0, len(disk)) == disk
    # a chunk whose LZFSE blocks declare more than the chunk's sectors is an I/O error, not a bomb
    b = bytearray(img)
    at = b.index(b"bvx")
    struct.pack_into("<I", b, at + 4, 1 << 30)
    (tmp_path / "bomb.dmg").write_bytes(bytes(b))
    with open_image(str(tmp_path / "bomb.dmg")) as n:
        with pytest.raises(QemuError, match="Input/output error"):
            n.pread(0, 512)
