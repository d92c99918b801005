"""Disk encryption as QEMU's block layer does it: LUKS v1 and legacy qcow AES.

* :mod:`.cipher` -- QEMU's cipher algorithm/mode names over the
  ``cryptography`` package, IV generators (plain, plain64, essiv) and the
  sector-by-sector encrypt/decrypt that every format uses;
* :mod:`.afsplit` -- the LUKS anti-forensic splitter;
* :mod:`.pbkdf` -- PBKDF2 and the iteration-count benchmark behind ``iter-time``;
* :mod:`.luks` -- the LUKS v1 header, key slots, create/open/info;
* :mod:`.qcowaes` -- the legacy qcow/qcow2 AES-128-CBC scheme.

``qemu-img info`` opens images without their keys (QEMU's BDRV_O_NO_IO):
code that only wants the headers wraps the open in :func:`header_only`.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

_state = threading.local()


@contextlib.contextmanager
def header_only() -> Iterator[None]:
    """Opens inside this block read encryption headers but unlock no key."""
    old = getattr(_state, "no_io", False)
    _state.no_io = True
    try:
        yield
    finally:
        _state.no_io = old


def no_io() -> bool:
    """True inside :func:`header_only`."""
    return bool(getattr(_state, "no_io", False))


def tree_option(tree: dict, group: str, key: str) -> object:
    """``group.key`` of an options tree, flat (``encrypt.key-secret``) or nested."""
    v = tree.get("%s.%s" % (group, key))
    if v is None and isinstance(tree.get(group), dict):
        v = tree[group].get(key)
    return v
