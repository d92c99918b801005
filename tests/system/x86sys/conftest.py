import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture
def real_qemu():
    path = shutil.which("qemu-system-x86_64")
    if path is None:
        pytest.fail("qemu-system-x86_64 (Debian qemu-system-x86) is needed for this test")
    return path


@pytest.fixture
def binutils():
    for tool in ("as", "ld"):
        if shutil.which(tool) is None:
            pytest.fail("%s (Debian binutils) is needed for this test" % tool)
