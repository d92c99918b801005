"""Hostile ELF files: loading either works or fails with a QEMU-style error, never a traceback."""
import os
import shutil

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyqemu.exec.guest_memory import GuestMemory
from pyqemu.linux_user import loader
from pyqemu.linux_user.elf import InvalidElf, LoadError

TRUE = shutil.which("true") or "/bin/true"
HEADER = open(TRUE, "rb").read()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 64 + 56 * 13 - 1), st.integers(0, 255)), min_size=1, max_size=12),
       cut=st.one_of(st.none(), st.integers(0, len(HEADER))))
def test_mutated_headers(tmp_path, edits, cut):
    data = bytearray(HEADER)
    for off, val in edits:
        data[off] = val
    if cut is not None:
        data = data[:cut]
    path = tmp_path / "prog"
    path.write_bytes(bytes(data))
    os.chmod(path, 0o755)
    try:
        loader.load_program(GuestMemory(), str(path), [str(path)], [], bits=64, prefix="/nonexistent-prefix")
    except (LoadError, InvalidElf) as e:
        assert str(e)
