"""qemu-img create with bad options: the same messages, exit codes and Formatting lines."""
from __future__ import annotations

import pytest
from conftest import PYQEMU_IMG, QEMU_IMG, run

CASES = ["-f vpc -o subformat=bad x 10M", "-f vpc -o foo=1 x 10M", "-f vpc x 3000G",
         "-f vpc -o force_size=on x 2041G", "-f vdi -o static=maybe x 10M", "-f vdi -o static=on x 10P",
         "-f vmdk -o subformat=bad x 10M", "-f vmdk -o adapter_type=scsi x 10M",
         "-f vmdk -o compat6=on,hwversion=7 x 10M", "-f vmdk -b base -F raw x 10M",
         "-f qed -o cluster_size=3k x 10M", "-f qed -o table_size=3 x 1M",
         "-f parallels -o cluster_size=1000 x 10M", "-f parallels -o cluster_size=3G x 10M",
         # formats QEMU cannot create: refused before the Formatting line, -o help too
         "-f cloop x 10M", "-f bochs x 10M", "-f dmg x 10M", "-f cloop -o foo=bar x 1M",
         "-f cloop -o help", "-f bochs -o help", "-f dmg -o help", "-f vpc -o help",
         # -b for formats without backing files
         "-f vpc -b base -F raw x 1M", "-f vdi -b base -F raw x", "-f vhdx -b base -F raw x 1M",
         "-f parallels -b base -F raw x 1M", "-f vpc -o backing_file=base x 1M",
         "-f dmg -b base -F raw x 1M", "-f luks -b base -F raw x 1M",
         "-f vvfat x 1M", "-f vvfat -o help", "-f vvfat -o foo=1 x 1M"]


@pytest.mark.parametrize("args", CASES)
def test_create_errors_match(tmp_path, args):
    for d, tool in (("q", QEMU_IMG), ("p", PYQEMU_IMG)):
        (tmp_path / d).mkdir()
        r = run(tool, "create", *args.split(), cwd=tmp_path / d, check=False)
        if d == "q":
            q = r
    assert (r.returncode, r.stdout, r.stderr.replace("pyqemu-img", "qemu-img")) == \
        (q.returncode, q.stdout, q.stderr)
