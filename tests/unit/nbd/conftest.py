"""Fixtures of the NBD unit tests."""
from __future__ import annotations

import pytest
from nbd_unit_server import MiB, Running


@pytest.fixture
def raw_image(tmp_path):
    p = tmp_path / "disk.raw"
    with open(p, "wb") as f:
        f.truncate(4 * MiB)
        f.seek(MiB)
        f.write(b"\x5a" * 65536)
    return str(p)


@pytest.fixture
def server(tmp_path, raw_image):
    srv = Running(raw_image, tmp_path)
    yield srv
    srv.stop()
