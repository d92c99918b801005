"""The error every guest agent command raises, with its QMP error class."""
from __future__ import annotations

from pyqemu.util.error import QemuError


class QgaError(QemuError):
    """A command failure: ``{"error": {"class": cls, "desc": msg}}`` on the wire."""

    def __init__(self, msg: str, cls: str = "GenericError") -> None:
        super().__init__(msg)
        self.cls = cls


def errno_error(exc: OSError, what: str) -> QgaError:
    """``what: strerror`` as QEMU's error_setg_errno words it."""
    import os
    return QgaError("%s: %s" % (what, os.strerror(exc.errno or 5)))
