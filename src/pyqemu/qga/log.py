"""The agent's log lines: ``seconds.micro: level: message`` (QEMU's format)."""
from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

_stream: TextIO = sys.stderr
_verbose = False


def setup(logfile: Optional[str], verbose: bool) -> None:
    global _stream, _verbose
    _verbose = verbose
    if logfile:
        _stream = open(logfile, "a", buffering=1)


def log(level: str, msg: str) -> None:
    if level == "debug" and not _verbose:
        return
    t = time.time()
    try:
        _stream.write("%d.%06d: %s: %s\n" % (int(t), int((t % 1) * 1000000), level, msg))
        _stream.flush()
    except (OSError, ValueError):
        pass


def debug(msg: str) -> None:
    log("debug", msg)


def warning(msg: str) -> None:
    log("warning", msg)


def critical(msg: str) -> None:
    log("critical", msg)
