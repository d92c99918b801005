"""QEMU-style errors.

The library raises :class:`QemuError` (or a subclass) carrying the message a
user should read; only ``pyqemu.cli`` turns it into ``prog: location: message``
on stderr and an exit code.  A traceback reaches the user only when the
environment variable ``PYQEMU_DEBUG=1`` is set.
"""
from __future__ import annotations

import errno as _errno
import os
import sys
from typing import Callable, Optional, Sequence

_progname = "pyqemu"


class QemuError(Exception):
    """An error with a message in QEMU's wording.

    ``hint`` is printed on the lines after the message, as QEMU's
    ``error_append_hint`` does.  ``loc`` is the location (an option as typed
    on the command line, a file name, ...) printed before the message.
    """

    def __init__(self, msg: str, *, hint: str = "", loc: Optional[str] = None,
                 errno: Optional[int] = None, file_loc: bool = False) -> None:
        super().__init__(msg)
        self.msg = msg
        self.hint = hint
        self.loc = loc
        self.errno = errno
        # A location in a file ("cfg:3") is printed as "prog:cfg:3: msg",
        # a command-line location as "prog: -opt arg: msg", as QEMU does.
        self.file_loc = file_loc

    def __str__(self) -> str:
        return self.msg

    def prefixed(self, prefix: str) -> "QemuError":
        """Return this error with ``prefix: `` put before the message."""
        self.msg = "%s: %s" % (prefix, self.msg)
        self.args = (self.msg,)
        return self


class OptionError(QemuError):
    """A malformed or invalid option value."""


class UsageError(QemuError):
    """A command line that cannot be understood (unknown option, missing argument)."""


def strerror(err: int) -> str:
    """The C library's text for ``err``, as QEMU prints it."""
    return os.strerror(err)


def os_error(exc: OSError, what: str = "") -> QemuError:
    """Turn an :class:`OSError` into a QemuError: ``what: strerror``."""
    text = strerror(exc.errno) if exc.errno else str(exc)
    msg = "%s: %s" % (what, text) if what else text
    return QemuError(msg, errno=exc.errno or _errno.EIO)


def set_progname(name: str) -> None:
    global _progname
    _progname = name


def get_progname() -> str:
    return _progname


def error_report(msg: str, loc: Optional[str] = None, hint: str = "",
                 stream=None, file_loc: bool = False) -> None:
    """Print ``prog: [loc: ]msg`` (and the hint lines) to stderr."""
    stream = stream or sys.stderr
    if loc and file_loc:
        head = "%s:%s: " % (_progname, loc)
    elif loc:
        head = "%s: %s: " % (_progname, loc)
    else:
        head = "%s: " % _progname
    stream.write(head + msg + "\n")
    if hint:
        stream.write(hint if hint.endswith("\n") else hint + "\n")
    stream.flush()


def warn_report(msg: str, loc: Optional[str] = None, hint: str = "") -> None:
    error_report("warning: " + msg, loc=loc, hint=hint)


def report_exception(exc: QemuError) -> None:
    error_report(exc.msg, loc=exc.loc, hint=exc.hint, file_loc=exc.file_loc)


def debug_enabled() -> bool:
    return os.environ.get("PYQEMU_DEBUG", "") not in ("", "0")


def run_main(main: Callable[[Sequence[str]], int], progname: str,
             argv: Optional[Sequence[str]] = None) -> int:
    """Run a program's ``main(argv)`` and turn errors into QEMU-style exits.

    A QemuError is reported and gives exit status 1; any other exception is an
    internal error (reported in one line, with the traceback only when
    PYQEMU_DEBUG=1).  Returns the exit status.
    """
    set_progname(progname)
    if argv is None:
        argv = sys.argv[1:]
    try:
        status = main(list(argv))
    except QemuError as exc:
        if debug_enabled():
            raise
        report_exception(exc)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if debug_enabled():
            raise
        error_report("internal error: %s: %s (set PYQEMU_DEBUG=1 for a traceback)"
                     % (type(exc).__name__, exc))
        return 1
    return int(status or 0)
