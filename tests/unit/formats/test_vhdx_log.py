"""The VHDX log: entries pyqemu writes are found and replayed; broken logs never crash the opener."""
from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyqemu.block import create_image, open_image
from pyqemu.block.vhdx_layout import LOG_ZERO, MiB, with_checksum
from pyqemu.block.vhdx_log import build_entry
from pyqemu.util.error import QemuError

LOG_OFF = MiB


def _dirty_image(path, entries_fn):
    """An image whose header names a log GUID and whose log holds ``entries_fn(guid)``."""
    create_image("vhdx", str(path), 20 << 20, {"block_size": "1M"})
    with open_image(str(path), "vhdx", readonly=False) as n:
        n.pwrite(0, b"\x11" * 4096)
        guid = bytes(range(16))
        n._update_headers(log_guid=guid)
        for pos, entry in entries_fn(guid):
            n.file.pwrite(LOG_OFF + pos, entry)
        n.file.flush()
        bat_off = n.bat_offset
    return bat_off


def test_read_only_open_refuses_a_log_to_replay(tmp_path):
    img = tmp_path / "d.vhdx"
    _dirty_image(img, lambda g: [(0, build_entry(1, g, 0, 10 << 20, [(5 << 20, b"\x22" * 4096)]))])
    with pytest.raises(QemuError, match="contains a log that needs to be replayed"):
        open_image(str(img), "vhdx")
    with open_image(str(img), "vhdx", readonly=False) as n:
        assert n.log_replayed_on_open
    with open(img, "rb") as f:
        f.seek(5 << 20)
        assert f.read(4096) == b"\x22" * 4096
    with open_image(str(img), "vhdx") as n:     # the log is gone now
        assert n.pread(0, 4096) == b"\x11" * 4096


def test_newest_complete_sequence_wins(tmp_path):
    img = tmp_path / "s.vhdx"

    def entries(g):
        e = 8192
        return [(0, build_entry(7, g, 0, 10 << 20, [(6 << 20, b"\x01" * 4096)])),
                (e, build_entry(8, g, 0, 10 << 20, [(6 << 20, b"\x02" * 4096)])),
                # tail names the entry itself: the sequence 8..9 is superseded by 9 alone
                (2 * e, build_entry(9, g, 2 * e, 10 << 20, [(7 << 20, b"\x03" * 4096)])),
                # a newer entry from another log GUID is not part of this log
                (3 * e, build_entry(10, bytes(16), 3 * e, 10 << 20, [(8 << 20, b"\x04" * 4096)]))]
    _dirty_image(img, entries)
    with open_image(str(img), "vhdx", readonly=False):
        pass
    data = img.read_bytes()
    assert data[7 << 20:(7 << 20) + 4096] == b"\x03" * 4096
    assert data[6 << 20:(6 << 20) + 4096] != b"\x02" * 4096
    assert data[8 << 20:(8 << 20) + 4096] != b"\x04" * 4096


def test_zero_descriptor_and_file_growth(tmp_path):
    img = tmp_path / "z.vhdx"

    def entries(g):
        buf = bytearray(4096)
        struct.pack_into("<4sIIIQII16sQQ", buf, 0, b"loge", 0, 4096, 0, 3, 1, 0, g, 40 << 20, 40 << 20)
        LOG_ZERO.pack_into(buf, 64, b"zero", 0, 8192, 6 << 20, 3)
        return [(0, with_checksum(buf, 4))]

    _dirty_image(img, entries)
    with open(img, "r+b") as f:
        f.seek(6 << 20)
        f.write(b"\xff" * 8192)
    with open_image(str(img), "vhdx", readonly=False):
        pass
    data = img.read_bytes()
    assert len(data) == 40 << 20        # the log's last file offset is restored
    assert data[6 << 20:(6 << 20) + 8192] == bytes(8192)


@pytest.mark.slow
def test_fuzzed_log_gives_clean_errors_or_a_working_image(tmp_path):
    img = tmp_path / "f.vhdx"
    _dirty_image(img, lambda g: [(0, build_entry(1, g, 0, 10 << 20, [(6 << 20, b"\x33" * 4096)])),
                                 (8192, build_entry(2, g, 0, 10 << 20, [(7 << 20, b"\x44" * 4096)]))])
    base = img.read_bytes()
    log = base[LOG_OFF:LOG_OFF + 16384]

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(st.sampled_from([0, 4, 8, 12, 16, 24, 28, 32, 48, 56, 64, 68, 72, 80, 88,
                                               4096, 8188, 8192 + 8, 8192 + 16, 8192 + 64 + 16]),
                              st.integers(0, 255)), min_size=1, max_size=4),
           st.booleans())
    def check(edits, fix_crc):
        b = bytearray(log)
        for pos, val in edits:
            b[pos] = val
        if fix_crc:
            for start in (0, 8192):
                length = struct.unpack_from("<I", b, start + 8)[0]
                if 0 < length <= 8192 and length % 4096 == 0:
                    b[start:start + length] = with_checksum(bytearray(b[start:start + length]), 4)
        with open(img, "r+b") as f:    # headers, log, BAT and metadata as they were, then the edits
            f.write(base[:4 * MiB])
            f.truncate(len(base))
            f.seek(LOG_OFF)
            f.write(b)
        try:
            n = open_image(str(img), "vhdx", readonly=False)
        except QemuError:
            return
        with n:
            assert len(n.pread(0, 8192)) == 8192
            n.pwrite(3 << 20, b"\x55" * 512)

    check()


@pytest.mark.slow
@pytest.mark.parametrize("opts", [{"block_size": "1M"}, {"subformat": "fixed", "block_size": "1M",
                                                         "block_state_zero": "off"}])
def test_fuzzed_metadata_of_created_images(tmp_path, opts):
    """Headers, region table, BAT and metadata items mutated (checksums recomputed)."""
    img = tmp_path / "m.vhdx"
    create_image("vhdx", str(img), 20 << 20, dict(opts))
    with open_image(str(img), "vhdx", readonly=False) as n:
        n.pwrite(0, b"\x07" * (1 << 20))
    base = img.read_bytes()
    spots = [(64 << 10, 80), (128 << 10, 80), (192 << 10, 80), (2 << 20, 64), (3 << 20, 224),
             ((3 << 20) + 65536, 48)]

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(st.integers(0, len(spots) - 1), st.integers(0, 223), st.integers(0, 255)),
                    min_size=1, max_size=6))
    def check(edits):
        b = bytearray(base[:4 * MiB])
        for spot, pos, val in edits:
            start, size = spots[spot]
            b[start + pos % size] = val
        for off, size in ((64 << 10, 4096), (128 << 10, 4096), (192 << 10, 65536)):
            b[off:off + size] = with_checksum(bytearray(b[off:off + size]), 4)
        with open(img, "r+b") as f:
            f.write(b)
            f.truncate(len(base))
        try:
            n = open_image(str(img), "vhdx", readonly=False)
        except QemuError:
            return
        with n:
            size = n.length()
            for off in (0, size // 2, max(0, size - 4096)):
                try:
                    assert len(n.pread(off, min(4096, size - off))) == min(4096, size - off)
                    n.pwrite(off, b"\x01" * min(4096, size - off))
                except QemuError:
                    pass

    check()


def test_log_offset_beyond_any_file_is_an_error(tmp_path):
    """A header whose log offset (a multiple of 1 MiB, as required) lies past what
    a file offset can hold: the first metadata write fails with an error, not an
    OverflowError from the system call (found by the fuzz test above)."""
    img = tmp_path / "m.vhdx"
    create_image("vhdx", str(img), 20 << 20, {"block_size": "1M"})
    b = bytearray(img.read_bytes())
    for off in (64 << 10, 128 << 10):
        struct.pack_into("<Q", b, off + 72, 1 << 63)          # log_offset
        b[off:off + 4096] = with_checksum(bytearray(b[off:off + 4096]), 4)
    img.write_bytes(bytes(b))
    try:
        n = open_image(str(img), "vhdx", readonly=False)
    except QemuError:
        return
    with n:
        with pytest.raises(QemuError, match="Invalid argument"):
            n.pwrite(0, b"\x01" * 4096)
