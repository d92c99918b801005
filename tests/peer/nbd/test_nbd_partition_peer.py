"""pyqemu-nbd -P on partition tables written by sfdisk (MBR primary/logical and GPT).

QEMU 7.2's qemu-nbd has no -P (it was removed upstream); the issue asks for
it, so it is checked against the partitioning tool instead of qemu-nbd."""
from __future__ import annotations

import pytest
from nbd_peer_util import PYQEMU_NBD, need, run

SECTOR = 512


def make_disk(tmp_path, script, marks):
    img = str(tmp_path / "p.img")
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    run([need("sfdisk"), "-q", img], input=script)
    with open(img, "r+b") as f:
        for lba, tag in marks:
            f.seek(lba * SECTOR)
            f.write(tag * 256)
    return img


MBR = ("label: dos\nstart=2048, size=8192, type=83\nstart=10240, size=20480, type=5\n"
       "start=12288, size=4096, type=83\nstart=18432, size=6144, type=83\n")
GPT = "label: gpt\nstart=2048, size=8192\nstart=16384, size=4096\n"


@pytest.mark.parametrize("script,part,lba,sectors,tag", [
    (MBR, 1, 2048, 8192, b"P1"), (MBR, 5, 12288, 4096, b"L5"), (MBR, 6, 18432, 6144, b"L6"),
    (GPT, 1, 2048, 8192, b"G1"), (GPT, 2, 16384, 4096, b"G2")])
def test_partition_window(tmp_path, nbd_server, script, part, lba, sectors, tag):
    img = make_disk(tmp_path, script, [(lba, tag)])
    srv = nbd_server("py", img, ["-f", "raw", "-P", str(part)])
    assert run([need("nbdinfo"), "--size", srv.uri]).stdout.strip() == str(sectors * SECTOR)
    out = str(tmp_path / "part.raw")
    run([need("nbdcopy"), srv.uri, out])
    with open(out, "rb") as a, open(img, "rb") as b:
        b.seek(lba * SECTOR)
        assert a.read() == b.read(sectors * SECTOR)
    # Writes stay inside the partition.
    run([need("qemu-io"), "-f", "raw", "-c", "write -P 0xee 0 4k", srv.uri])
    p = run([need("qemu-io"), "-f", "raw", "-c", "write -P 0xee %d 1" % (sectors * SECTOR), srv.uri], check=False)
    assert "write failed" in p.stdout
    srv.stop()
    with open(img, "rb") as f:
        f.seek(lba * SECTOR - 1)
        assert f.read(4098) == b"\0" + b"\xee" * 4096 + b"\0"


@pytest.mark.parametrize("script,part,msg", [(MBR, 3, "Could not find partition 3"),
                                             (MBR, 7, "Could not find partition 7"),
                                             (GPT, 3, "Could not find partition 3"),
                                             (None, 1, "Could not find partition 1: no partition table"),
                                             (MBR, 0, "Invalid partition '0'")])
def test_missing_partitions(tmp_path, script, part, msg):
    if script is None:
        img = str(tmp_path / "blank.img")
        with open(img, "wb") as f:
            f.truncate(1 << 20)
    else:
        img = make_disk(tmp_path, script, [])
    p = run([PYQEMU_NBD, "-f", "raw", "-P", str(part), "-k", str(tmp_path / "s.sock"), img], check=False)
    assert p.returncode == 1 and p.stderr == "pyqemu-nbd: %s\n" % msg
