"""Disk and filesystem inventories with a scratch disk attached.

A 16 MiB ext4 image is loop-mounted inside each agent's private mount
namespace; both agents must then describe the same disks and filesystems
(the loop device number is normalised: each run may get another one).
"""
import json
import os
import re
import shutil
import subprocess

import pytest


from qgaclient import PYQEMU_GA, QEMU_GA, Agent


def test_loop_disk_inventory(tmp_path):
    for tool in ("mkfs.ext4", "unshare"):
        if not shutil.which(tool):
            pytest.fail("needs %s" % tool)
    if os.geteuid() != 0:
        pytest.fail("needs root")
    img = tmp_path / "disk.img"
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(img)], check=True)
    results = []
    for prog, d in ((QEMU_GA, "real"), (PYQEMU_GA, "ours")):
        w = tmp_path / d
        (w / "mnt").mkdir(parents=True)
        wrapper = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                   'set -e; mount -o loop "%s" "%s"; exec "$@"' % (img, w / "mnt"), "sandbox"]
        a = Agent(prog, w, wrapper=wrapper)
        try:
            c = a.connect()
            fsinfo = c.cmd("guest-get-fsinfo").replace(str(w).encode(), b"W")
            disks = c.cmd("guest-get-disks")
        finally:
            a.stop()
        fs = json.loads(fsinfo)["return"]
        # the scratch filesystem: compared in full; the others: sizes vary by nature
        for f in fs:
            if f["mountpoint"] != "W/mnt":
                f.pop("used-bytes", None)
                f.pop("total-bytes", None)
        results.append((re.sub(rb"loop\d+", b"loopN", disks), re.sub(r"loop\d+", "loopN", json.dumps(fs))))
    assert results[1] == results[0]
    assert b'"/dev/loopN"' in results[0][0]
    assert '"mountpoint": "W/mnt"' in results[0][1]
