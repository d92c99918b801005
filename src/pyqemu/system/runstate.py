"""Run states and the shutdown / reset / powerdown requests (QEMU's runstate.c).

Requests come from anywhere (a device, a monitor command, a signal handler);
they are only recorded here and the main loop is woken, then
:meth:`RunState.process_requests` handles them in QEMU's order between
iterations, emitting SHUTDOWN / RESET / POWERDOWN / STOP / RESUME events.
``-no-reboot`` turns reset requests into shutdowns; ``-no-shutdown`` turns a
shutdown into a stop in the ``shutdown`` state (except for ``quit``).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from pyqemu.util.error import QemuError

STATES = ("debug", "inmigrate", "internal-error", "io-error", "paused", "postmigrate",
          "prelaunch", "finish-migrate", "restore-vm", "running", "save-vm", "shutdown",
          "suspended", "watchdog", "guest-panicked", "colo")

# Allowed transitions (from -> to), as QEMU's runstate_transitions_def.
_ALLOWED: Dict[str, tuple] = {
    "prelaunch": ("running", "inmigrate", "finish-migrate", "suspended"),
    "debug": ("running", "finish-migrate", "prelaunch"),
    "inmigrate": ("internal-error", "io-error", "paused", "running", "shutdown", "suspended",
                  "watchdog", "guest-panicked", "prelaunch", "postmigrate", "finish-migrate",
                  "colo"),
    "internal-error": ("paused", "running", "finish-migrate", "prelaunch"),
    "io-error": ("running", "finish-migrate", "prelaunch"),
    "paused": ("running", "finish-migrate", "postmigrate", "prelaunch", "colo"),
    "postmigrate": ("running", "finish-migrate", "prelaunch"),
    "finish-migrate": ("running", "paused", "postmigrate", "prelaunch", "colo", "internal-error",
                       "io-error", "shutdown", "suspended", "watchdog", "guest-panicked"),
    "restore-vm": ("running", "prelaunch"),
    "colo": ("running", "prelaunch", "shutdown"),
    "running": ("debug", "internal-error", "io-error", "paused", "finish-migrate", "restore-vm",
                "save-vm", "shutdown", "watchdog", "guest-panicked", "colo", "suspended"),
    "save-vm": ("running", "suspended"),
    "shutdown": ("paused", "finish-migrate", "prelaunch", "colo"),
    "suspended": ("running", "finish-migrate", "prelaunch", "colo"),
    "watchdog": ("running", "finish-migrate", "prelaunch", "colo"),
    "guest-panicked": ("running", "finish-migrate", "prelaunch"),
}

SHUTDOWN_CAUSES = ("none", "host-error", "host-qmp-quit", "host-qmp-system-reset", "host-signal",
                   "host-ui", "guest-shutdown", "guest-reset", "guest-panic", "subsystem-reset",
                   "snapshot-load")
# ShutdownCause values; the guest-initiated ones set "guest": true in events.
GUEST_CAUSES = ("guest-shutdown", "guest-reset", "guest-panic")


def emit_event(name: str, data: Optional[Dict[str, Any]] = None) -> None:
    """Send a QMP event if the monitor layer is present (it is in the emulator)."""
    try:
        from pyqemu.monitor.events import emit
    except ImportError:
        return
    emit(name, data)


def _wake() -> None:
    try:
        from pyqemu.exec.main_loop import main_loop
    except ImportError:
        return
    main_loop().notify()


class RunState:
    """The VM's state machine and pending requests; one per emulator process."""

    def __init__(self) -> None:
        self.state = "prelaunch"
        self.no_shutdown = False     # -no-shutdown: stop instead of exiting
        self.no_reboot = False       # -no-reboot: exit instead of resetting
        self.panic_pause = False     # -no-shutdown also pauses on a guest panic
        self.shutdown_requested: Optional[str] = None
        # Pending requests in arrival order: a monitor may queue several
        # (system_reset, system_powerdown, quit) before the loop handles them.
        self.pending: List[tuple] = []
        self.exit_status: Optional[int] = None
        self.reset_handler: Optional[Callable[[str], None]] = None
        self.state_listeners: List[Callable[[bool, str], None]] = []
        self.powerdown_notifiers: List[Callable[[], None]] = []
        # Called before the VM starts running; one may raise QemuError to refuse
        # (a board whose CPU cannot execute yet).
        self.start_checks: List[Callable[[], None]] = []
        self.kill_report: Optional[str] = None

    # -- states -------------------------------------------------------------
    def set(self, new: str) -> None:
        if new == self.state:
            return
        if new not in _ALLOWED.get(self.state, ()):
            raise QemuError("invalid runstate transition: '%s' -> '%s'" % (self.state, new))
        from pyqemu.system.trace import trace
        trace("runstate_set", STATES.index(self.state), self.state, STATES.index(new), new)
        self.state = new

    def is_running(self) -> bool:
        return self.state == "running"

    def needs_reset(self) -> bool:
        return self.state in ("internal-error", "shutdown")

    def status(self) -> Dict[str, Any]:
        return {"status": self.state, "singlestep": False, "running": self.is_running()}

    def _notify(self, running: bool) -> None:
        try:
            from pyqemu.exec.main_loop import main_loop
            if running:
                main_loop().resume_virtual_clock()
            else:
                main_loop().pause_virtual_clock()
        except ImportError:
            pass
        for cb in list(self.state_listeners):
            cb(running, self.state)

    def vm_stop(self, state: str = "paused") -> None:
        """Stop a running VM in ``state`` (nothing happens if it is not running)."""
        if self.is_running():
            self.set(state)
            self._notify(False)
            emit_event("STOP")
        elif state in ("shutdown", "guest-panicked") and self.state != state:
            # A stopped VM can still enter these states (e.g. -S then a panic).
            if state in _ALLOWED.get(self.state, ()):
                self.set(state)

    def vm_start(self) -> None:
        if self.is_running():
            return
        for check in list(self.start_checks):
            check()
        emit_event("RESUME")
        self.set("running")
        self._notify(True)

    def cont(self) -> None:
        """QMP ``cont``."""
        if self.needs_reset():
            raise QemuError("Resetting the Virtual Machine is required")
        self.vm_start()

    # -- requests -----------------------------------------------------------
    def request_shutdown(self, cause: str) -> None:
        from pyqemu.system.trace import trace
        trace("qemu_system_shutdown_request", SHUTDOWN_CAUSES.index(cause))
        self.shutdown_requested = cause
        self.pending.append(("shutdown", cause))
        _wake()

    def request_reset(self, cause: str) -> None:
        if self.no_reboot and cause != "subsystem-reset":
            self.shutdown_requested = cause
            self.pending.append(("shutdown", cause))
        else:
            self.pending.append(("reset", cause))
        _wake()

    def request_powerdown(self) -> None:
        from pyqemu.system.trace import trace
        trace("qemu_system_powerdown_request")
        self.pending.append(("powerdown", None))
        _wake()

    def request_vmstop(self, state: str = "paused") -> None:
        self.pending.append(("vmstop", state))
        _wake()

    def guest_panicked(self) -> None:
        """A guest panic device fired (pvpanic, or the test device)."""
        if self.panic_pause:
            emit_event("GUEST_PANICKED", {"action": "pause"})
            self.vm_stop("guest-panicked")
        else:
            emit_event("GUEST_PANICKED", {"action": "poweroff"})
            self.request_shutdown("guest-panic")

    def quit(self) -> None:
        """QMP ``quit``: always exits, even with -no-shutdown."""
        self.no_shutdown = False
        self.request_shutdown("host-qmp-quit")

    # -- the main loop's part -----------------------------------------------
    def process_requests(self) -> bool:
        """Handle pending requests in arrival order; True when the program must exit."""
        while self.pending:
            kind, arg = self.pending.pop(0)
            if kind == "shutdown":
                self.shutdown_requested = None
                if self.kill_report:
                    from pyqemu.util.error import error_report
                    error_report(self.kill_report)
                    self.kill_report = None
                emit_event("SHUTDOWN", {"guest": arg in GUEST_CAUSES, "reason": arg})
                if self.no_shutdown:
                    self.vm_stop("shutdown")
                else:
                    self.exit_status = 0
                    return True
            elif kind == "reset":
                if self.reset_handler is not None:
                    self.reset_handler(arg)
                if arg != "subsystem-reset":
                    emit_event("RESET", {"guest": arg in GUEST_CAUSES, "reason": arg})
                if self.state not in ("running", "inmigrate", "finish-migrate"):
                    self.set("prelaunch")
            elif kind == "powerdown":
                emit_event("POWERDOWN")
                for cb in list(self.powerdown_notifiers):
                    cb()
            elif kind == "vmstop":
                self.vm_stop(arg)
        return False


_runstate = RunState()


def runstate() -> RunState:
    return _runstate


def reset_runstate() -> RunState:
    """A fresh state machine (tests; one process runs one VM otherwise)."""
    global _runstate
    _runstate = RunState()
    return _runstate
