"""Partition-table parsing for -P on hostile tables: an error or a window inside the disk."""
from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from pyqemu.nbd.partition import find_partition
from pyqemu.util.error import QemuError

SIZE = 1 << 20


def disk_from(mbr_entries, extra=b""):
    buf = bytearray(SIZE)
    for i, (ptype, lba, count) in enumerate(mbr_entries):
        struct.pack_into("<B3sB3sII", buf, 446 + 16 * i, 0, b"", ptype, b"", lba, count)
    buf[510:512] = b"\x55\xaa"
    buf[512:512 + len(extra)] = extra
    return bytes(buf)


def reader(data):
    return lambda off, n: data[off:off + n]


def test_ebr_chain_pointing_at_itself_terminates():
    data = bytearray(disk_from([(0x05, 100, 1000)]))
    # EBR at sector 100: a logical partition and a "next" link back to itself.
    struct.pack_into("<B3sB3sII", data, 100 * 512 + 446, 0, b"", 0x83, b"", 1, 10)
    struct.pack_into("<B3sB3sII", data, 100 * 512 + 462, 0, b"", 0x05, b"", 0, 1000)
    data[100 * 512 + 510:100 * 512 + 512] = b"\x55\xaa"
    assert find_partition(reader(bytes(data)), SIZE, 5) == (101 * 512, 10 * 512)
    try:
        find_partition(reader(bytes(data)), SIZE, 100)
    except QemuError as exc:
        assert "Could not find partition 100" in exc.msg


def test_partition_beyond_the_disk_is_refused():
    data = disk_from([(0x83, 2000, 100000)])
    try:
        find_partition(reader(data), SIZE, 1)
    except QemuError as exc:
        assert "beyond the end" in exc.msg
    else:
        raise AssertionError("window outside the disk accepted")


@settings(max_examples=300, deadline=None)
@given(entries=st.lists(st.tuples(st.sampled_from([0, 0x05, 0x0F, 0x83, 0xEE]), st.integers(0, 2 ** 32 - 1),
                                  st.integers(0, 2 ** 32 - 1)), min_size=4, max_size=4),
       extra=st.binary(max_size=600), index=st.integers(1, 12))
def test_random_tables(entries, extra, index):
    data = disk_from(entries, extra)
    try:
        off, length = find_partition(reader(data), SIZE, index)
    except QemuError:
        return
    assert 0 <= off and length > 0 and off + length <= SIZE
