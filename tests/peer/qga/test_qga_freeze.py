"""FIFREEZE/FITHAW for real, on a scratch ext4 filesystem.

The filesystem is a 16 MiB image loop-mounted inside a private mount
namespace that only the agent under test lives in; the freeze list names
only that mount point, so nothing else on the machine is ever frozen.
"""
import os
import shutil
import subprocess

import pytest

from qgaclient import PYQEMU_GA, QEMU_GA, Agent


@pytest.fixture
def scratch_image(tmp_path):
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("mkfs.ext4"):
        pytest.fail("needs root, unshare and mkfs.ext4 (e2fsprogs)")
    img = tmp_path / "scratch.img"
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(img)], check=True)
    return img


def _agent(prog, workdir, img, hook):
    workdir.mkdir(parents=True)
    mnt = workdir / "mnt"
    mnt.mkdir()
    script = 'set -e; mount -o loop "%s" "%s"; exec "$@"' % (img, mnt)
    wrapper = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sandbox"]
    return Agent(prog, workdir, ["-F%s" % hook], wrapper=wrapper), str(mnt)


def test_freeze_and_thaw_scratch_fs(tmp_path, scratch_image):
    hook = tmp_path / "hook.sh"
    hook_log = tmp_path / "hook.log"
    hook.write_text('#!/bin/sh\necho "$1" >> %s\n' % hook_log)
    hook.chmod(0o755)
    results = []
    for prog, d in ((QEMU_GA, "real"), (PYQEMU_GA, "ours")):
        hook_log.write_text("")
        agent, mnt = _agent(prog, tmp_path / d, scratch_image, hook)
        c = agent.connect()
        try:
            seq = [c.cmd("guest-fsfreeze-freeze-list", mountpoints=[mnt]),
                   c.cmd("guest-fsfreeze-status"),
                   c.cmd("guest-file-open", path="/x"),
                   c.cmd("guest-ping"),
                   c.cmd("guest-info"),
                   c.cmd("guest-fsfreeze-freeze-list", mountpoints=[mnt])]
        finally:
            seq_thaw = [c.cmd("guest-fsfreeze-thaw"), c.cmd("guest-fsfreeze-status"),
                        c.cmd("guest-fsfreeze-thaw")]
            agent.stop()
        results.append((seq + seq_thaw, hook_log.read_text()))
    assert results[1] == results[0]
    seq, hooks = results[0]
    assert seq[0] == b'{"return": 1}\n' and seq[1] == b'{"return": "frozen"}\n'
    assert b"the agent is in frozen state" in seq[2]
    assert seq[6] == b'{"return": 1}\n' and seq[8] == b'{"return": 0}\n'
    assert hooks == "freeze\nthaw\nthaw\n"
