"""vCPU and memory-block hot-plug against a fake sysfs.

/sys/devices/system/memory and /sys/devices/system/cpu are replaced by tmpfs
trees inside each agent's private mount namespace, so the agents really
read and write 'state' and 'online' files -- of the fake tree, never of
this machine.
"""
import json
import os
import shutil
import subprocess

import pytest

from qgaclient import PYQEMU_GA, QEMU_GA, Agent

SETUP = r"""set -e
M=/sys/devices/system/memory
mount -t tmpfs none $M
for b in 5:offline:0 7:online:1 8:online:0 9:offline:1; do
    i=${b%%:*}; r=${b##*:}; s=${b#*:}; s=${s%%:*}
    mkdir $M/memory$i; echo $s > $M/memory$i/state; echo $r > $M/memory$i/removable
done
mkdir $M/memory10
printf 8000000 > $M/block_size_bytes
C=/sys/devices/system/cpu
mount -t tmpfs none $C
mkdir $C/cpu0 $C/cpu1 $C/cpu2
echo 1 > $C/cpu1/online; echo 0 > $C/cpu2/online
echo 0-2 > $C/possible; echo 0-2 > $C/present; echo 0-1 > $C/online
exec "$@"
"""


def test_fake_sysfs_hotplug(tmp_path):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.fail("needs root and unshare")
    results = []
    for prog, d in ((QEMU_GA, "real"), (PYQEMU_GA, "ours")):
        w = ["unshare", "-m", "--propagation", "private", "sh", "-c", SETUP, "sandbox"]
        a = Agent(prog, tmp_path / d, wrapper=w)
        try:
            c = a.connect()
            seq = [c.cmd("guest-get-memory-blocks"),
                   c.cmd("guest-get-memory-block-info"),
                   c.cmd("guest-set-memory-blocks", mem_blks=[
                       {"phys-index": 5, "online": True}, {"phys-index": 7, "online": False},
                       {"phys-index": 8, "online": False}, {"phys-index": 9, "online": False},
                       {"phys-index": 10, "online": True}, {"phys-index": 11, "online": True}]),
                   c.cmd("guest-get-memory-blocks"),
                   c.cmd("guest-get-vcpus"),
                   c.cmd("guest-set-vcpus", vcpus=[{"logical-id": 2, "online": True},
                                                   {"logical-id": 1, "online": False}]),
                   c.cmd("guest-get-vcpus"),
                   c.cmd("guest-set-vcpus", vcpus=[{"logical-id": 2, "online": False},
                                                   {"logical-id": 0, "online": False}]),
                   c.cmd("guest-get-vcpus")]
            # what ended up in the fake files, read from inside the sandbox
            pid = c.call("guest-exec", path="/bin/sh", capture_output=True, arg=[
                "-c", "cat /sys/devices/system/memory/memory*/state /sys/devices/system/cpu/cpu*/online"])
            for _ in range(100):
                st = c.call("guest-exec-status", pid=pid["return"]["pid"])["return"]
                if st["exited"]:
                    break
                subprocess.run(["sleep", "0.05"])
            seq.append(st)
        finally:
            a.stop()
        results.append(seq)
    assert results[1] == results[0]
    assert json.loads(results[0][5]) == {"return": 2}
    assert json.loads(results[0][7]) == {"return": 1}
