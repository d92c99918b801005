"""Run states and requests: QEMU's transitions, -no-reboot and -no-shutdown."""
from __future__ import annotations

import pytest

from pyqemu.system import runstate as R
from pyqemu.util.error import QemuError


@pytest.fixture
def rs(monkeypatch):
    events = []
    monkeypatch.setattr(R, "emit_event", lambda name, data=None: events.append((name, data)))
    r = R.reset_runstate()
    r.events = events
    yield r
    R.reset_runstate()


def test_start_stop_cont_and_events(rs):
    assert rs.status() == {"status": "prelaunch", "singlestep": False, "running": False}
    rs.vm_stop()                                # not running: nothing happens
    assert rs.state == "prelaunch" and rs.events == []
    rs.vm_start()
    rs.vm_stop()
    rs.cont()
    assert rs.state == "running"
    assert [e[0] for e in rs.events] == ["RESUME", "STOP", "RESUME"]
    with pytest.raises(QemuError, match="invalid runstate transition"):
        rs.set("prelaunch")


def test_shutdown_exits_by_default(rs):
    rs.vm_start()
    rs.request_shutdown("guest-shutdown")
    assert rs.process_requests() is True
    assert rs.events[-1] == ("SHUTDOWN", {"guest": True, "reason": "guest-shutdown"})


def test_no_shutdown_stops_then_needs_reset(rs):
    rs.no_shutdown = True
    rs.vm_start()
    rs.request_shutdown("guest-shutdown")
    assert rs.process_requests() is False
    assert rs.state == "shutdown"
    with pytest.raises(QemuError, match="Resetting the Virtual Machine is required"):
        rs.cont()
    rs.request_reset("host-qmp-system-reset")
    rs.process_requests()
    assert rs.state == "prelaunch"
    rs.cont()
    assert rs.state == "running"
    rs.quit()                                   # quit exits even with -no-shutdown
    assert rs.process_requests() is True


def test_no_reboot_turns_reset_into_shutdown(rs):
    resets = []
    rs.reset_handler = resets.append
    rs.vm_start()
    rs.request_reset("guest-reset")
    assert rs.process_requests() is False and resets == ["guest-reset"]
    assert rs.events[-1] == ("RESET", {"guest": True, "reason": "guest-reset"})
    rs.no_reboot = True
    rs.request_reset("guest-reset")
    assert rs.process_requests() is True
    assert rs.events[-1] == ("SHUTDOWN", {"guest": True, "reason": "guest-reset"})


def test_powerdown_and_panic(rs):
    rs.vm_start()
    rs.request_powerdown()
    assert rs.process_requests() is False
    assert rs.events[-1] == ("POWERDOWN", None)
    rs.panic_pause = True
    rs.guest_panicked()
    assert rs.state == "guest-panicked"
    assert ("GUEST_PANICKED", {"action": "pause"}) in rs.events
