"""Trace events (``-trace``) with QEMU's "log" backend output.

Code declares an event once with :func:`declare` and fires it with
:func:`trace`; a fired event that is enabled prints
``name text`` to the log (stderr or ``-D``/``file=``), the format of QEMU's
log trace backend.  ``-trace help`` lists the events.

Python 3.9 syntax: the memory API fires events.
"""
from __future__ import annotations

import fnmatch
import os
import time
from typing import Dict, List, Optional

from pyqemu.util.error import QemuError, warn_report

_events: Dict[str, str] = {}
# -msg timestamp=on puts "PID@SECONDS.MICROS:" before each line.
with_timestamp = False
_enabled: Dict[str, bool] = {}


def declare(name: str, fmt: str) -> None:
    _events[name] = fmt
    _enabled.setdefault(name, False)


for _n, _f in (
        ("runstate_set", "current_run_state %d (%s) new_state %d (%s)"),
        ("qemu_system_shutdown_request", "reason=%d"),
        ("qemu_system_powerdown_request", ""),
        ("memory_region_ops_read", "cpu %d mr %s addr 0x%x value 0x%x size %u name '%s'"),
        ("memory_region_ops_write", "cpu %d mr %s addr 0x%x value 0x%x size %u name '%s'"),
):
    declare(_n, _f)


def list_events() -> str:
    return "".join("%s\n" % n for n in _events)


def enable(pattern: str, loc: Optional[str] = None) -> None:
    """Enable (or with a leading '-' disable) every event matching ``pattern``."""
    on = not pattern.startswith("-")
    pat = pattern.lstrip("-")
    hits = [n for n in _events if fnmatch.fnmatchcase(n, pat)]
    if not hits:
        if any(c in pat for c in "*?["):
            return
        warn_report("trace event '%s' does not exist" % pat, loc=loc)
        return
    for n in hits:
        _enabled[n] = on


def enable_from_file(path: str, loc: Optional[str] = None) -> None:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise QemuError("Cannot open file %s: %s" % (path, e.strerror))
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            enable(line, loc)


def is_enabled(name: str) -> bool:
    return _enabled.get(name, False)


def enabled_events() -> List[str]:
    return [n for n, on in _enabled.items() if on]


def trace(name: str, *args: object) -> None:
    if not _enabled.get(name):
        return
    from pyqemu.util import log
    text = _events[name] % args if args else _events[name]
    if with_timestamp:
        now = time.time()
        log.log("%d@%d.%06d:%s %s\n" % (os.getpid(), int(now), int(now * 1e6) % 1000000, name, text))
    else:
        log.log("%s %s\n" % (name, text))
