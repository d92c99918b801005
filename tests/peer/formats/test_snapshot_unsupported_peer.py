"""qemu-img snapshot on formats without internal snapshots: the same answers as qemu-img 7.2."""
from __future__ import annotations

import pytest
from conftest import QEMU_IMG, both, run

FORMATS = ["qcow", "qed", "vmdk", "vdi", "vpc", "vhdx", "parallels", "raw"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_snapshot_operations_refused_like_qemu(tmp_path, fmt):
    run(QEMU_IMG, "create", "-q", "-f", fmt, "img", "1M", cwd=tmp_path)
    for op in (["-l"], ["-c", "s1"], ["-a", "s1"], ["-d", "s1"], ["-l", "-U"]):
        if fmt == "raw" and op[0] == "-a":
            continue    # qemu-img prints the probing warning twice there (it reopens the image)
        # qemu-img 7.2's snapshot has no -f: the format is probed
        q, p, err = both("snapshot", *op, "img", cwd=tmp_path)
        assert (p.returncode, p.stdout, err) == (q.returncode, q.stdout, q.stderr), op
    assert run(QEMU_IMG, "check", "-f", fmt, "img", cwd=tmp_path, check=False).returncode in (0, 63)
