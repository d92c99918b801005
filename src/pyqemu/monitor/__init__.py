"""The monitor: QMP (JSON, for programs) and HMP (readline, for people) on any chardev.

``start_monitor(chr, mode="readline"|"control", pretty=False)`` is what the
command line calls for ``-monitor``, ``-qmp``, ``-qmp-pretty`` and ``-mon``.
"""
from __future__ import annotations

from typing import List, Union

from pyqemu.chardev.char import Chardev

_registered = False
monitors: List[object] = []


def register_builtin_commands() -> None:
    """Register the monitor side's QMP and HMP commands (once)."""
    global _registered
    if _registered:
        return
    _registered = True
    from pyqemu.monitor import hmp_cmds, qmp_cmds
    qmp_cmds.register_all()
    hmp_cmds.register_all()


def start_monitor(chr: Chardev, mode: str = "readline", pretty: bool = False) -> object:
    """Attach a monitor to ``chr``: HMP for mode ``readline``, QMP for ``control``."""
    register_builtin_commands()
    mon: Union[object]
    if mode == "control":
        from pyqemu.monitor.qmp import QmpMonitor
        mon = QmpMonitor(chr, pretty=pretty)
    elif mode == "readline":
        from pyqemu.monitor.hmp import HmpMonitor
        mon = HmpMonitor(chr)
    else:
        from pyqemu.util.error import QemuError
        raise QemuError("Parameter 'mode' does not accept value '%s'" % mode)
    monitors.append(mon)
    return mon


def stop_all_monitors() -> None:
    while monitors:
        mon = monitors.pop()
        mon.close()  # type: ignore[attr-defined]
