"""Fixtures of the user-mode system tests (helpers live in lu_support.py)."""
import pytest

from lu_support import Builder


@pytest.fixture(scope="session")
def builder(tmp_path_factory):
    return Builder(str(tmp_path_factory.mktemp("progs")))
