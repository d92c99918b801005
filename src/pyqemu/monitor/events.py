"""QMP events: ``emit(name, data)`` sends ``{"event", "data", "timestamp"}`` to every QMP client.

Monitors subscribe with :func:`add_listener`; events can be emitted from any
thread (a KVM vCPU), so delivery happens in the main loop's thread.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Optional

Listener = Callable[[Dict[str, Any]], None]

_listeners: List[Listener] = []
_lock = threading.Lock()


def add_listener(cb: Listener) -> None:
    with _lock:
        _listeners.append(cb)


def remove_listener(cb: Listener) -> None:
    with _lock:
        if cb in _listeners:
            _listeners.remove(cb)


def make_event(name: str, data: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    now = time.time()
    secs = int(now)
    ev: Dict[str, Any] = {"timestamp": {"seconds": secs, "microseconds": int((now - secs) * 1e6)},
                          "event": name}
    if data is not None:
        ev["data"] = data
    return ev


def emit(name: str, data: Optional[Dict[str, Any]] = None) -> None:
    """Broadcast an event (STOP, RESUME, RESET, SHUTDOWN, POWERDOWN ...) to QMP clients."""
    ev = make_event(name, data)
    with _lock:
        targets = list(_listeners)
    from pyqemu.exec.main_loop import main_loop
    if main_loop().in_loop_thread():
        for cb in targets:
            cb(ev)
        return

    def deliver() -> None:
        for cb in targets:
            cb(ev)
    main_loop().bh_schedule(deliver)
