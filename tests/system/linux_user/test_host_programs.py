"""Real programs from the host: busybox-static and dynamic binaries under -L /."""
import os
import shutil
import subprocess

import pytest

from lu_support import pypy_heavy, emulator

SCRIPT = r'''
set -e
mkdir -p data/sub
i=0
while [ $i -lt 40 ]; do echo "line $i $((i * i % 17))" >> data/a.txt; i=$((i + 1)); done
printf 'zeta\nalpha\nbeta\nalpha\n' > data/sub/words
sort data/sub/words | uniq -c
awk '{ s += $3 } END { print "sum", s }' data/a.txt
sed -n 's/line \([0-9]*5\) .*/five:\1/p' data/a.txt
grep -c 1 data/a.txt
wc -l data/a.txt
tar cf - data | gzip -9 > data.tgz
gzip -dc data.tgz | tar tf - | sort
mkdir out && cd out && gzip -dc ../data.tgz | tar xf - && cd ..
md5sum out/data/a.txt data/sub/words
gzip -c data/a.txt | gzip -dc | cmp - data/a.txt && echo roundtrip ok
echo done
'''


def _run(cmd, cwd, stdin=None):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=900, input=stdin)


@pytest.mark.slow
@pypy_heavy
def test_busybox_shell_pipeline(tmp_path):
    busybox = shutil.which("busybox")
    assert busybox, "busybox-static must be installed (make peer-tools)"
    (tmp_path / "n").mkdir()
    (tmp_path / "e").mkdir()
    (tmp_path / "script.sh").write_text(SCRIPT)
    native = _run([busybox, "sh", str(tmp_path / "script.sh")], tmp_path / "n")
    emu = _run(emulator("static64") + [busybox, "sh", str(tmp_path / "script.sh")], tmp_path / "e")
    assert emu.returncode == native.returncode == 0, emu.stderr
    assert emu.stdout == native.stdout
    assert b"roundtrip ok" in emu.stdout


@pytest.mark.slow
@pypy_heavy
@pytest.mark.parametrize("cmd,stdin", [
    (["/bin/ls", "-la", "/usr/share/doc/busybox-static"], None),
    (["/bin/bash", "-c", "for i in 1 2 3; do echo $((i * 7)); done | tac; echo ${BASH_VERSINFO[0]}"], None),
    (["/usr/bin/sha256sum"], b"some data\n" * 1000),
    (["/bin/gzip", "-9c"], b"compress me " * 500),
])
def test_dynamic_host_programs(tmp_path, cmd, stdin):
    native = _run(cmd, tmp_path, stdin)
    emu = _run(emulator("static64") + ["-L", "/"] + cmd, tmp_path, stdin)
    assert emu.returncode == native.returncode, emu.stderr
    assert emu.stdout == native.stdout
    assert os.path.exists(cmd[0])
