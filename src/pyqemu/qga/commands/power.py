"""Commands that act on the whole guest: shutdown, suspend, user passwords.

Like QEMU's agent they hand the work to the guest's own programs
(/sbin/shutdown, systemctl, pm-utils, chpasswd), so the guest's policy applies.
"""
from __future__ import annotations

import os
from typing import Any, List, Optional

from pyqemu.qga import b64, runner
from pyqemu.qga.errors import QgaError
from pyqemu.qga.qapi import arg, opt

SHUTDOWN = "/sbin/shutdown"
_SHUTDOWN_FLAGS = {"powerdown": "-P", "halt": "-H", "reboot": "-r"}


def shutdown(agent: Any, mode: Optional[str] = None) -> None:
    flag = _SHUTDOWN_FLAGS.get("powerdown" if mode is None else mode)
    if flag is None:
        raise QgaError("mode is invalid (valid values are: halt|powerdown|reboot")
    status = runner.run([SHUTDOWN, "-h", flag, "+0", "hypervisor initiated shutdown"],
                        search_path=False)
    if status < 0:
        # exec failing in the child looks like a failed exit to QEMU's agent
        status = 1 << 8
    runner.check_status(status, "child process has failed to shutdown")


# suspend: disk, ram, hybrid
_SYSTEMD = {"disk": "hibernate", "ram": "suspend", "hybrid": "hybrid-sleep"}
_PM_FLAG = {"disk": "--hibernate", "ram": "--suspend", "hybrid": "--suspend-hybrid"}
_PM_PROG = {"disk": "pm-hibernate", "ram": "pm-suspend", "hybrid": "pm-suspend-hybrid"}
_SYSFS = {"disk": "disk", "ram": "mem"}


def _exit_code(status: int) -> int:
    if status < 0:
        return -1
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1


def _suspend(mode: str) -> None:
    supported = False
    error: Optional[QgaError] = None
    # systemd: 'systemctl status' follows LSB codes; 1..3 mean the unit exists.
    st = _exit_code(runner.run(["systemctl", "status", "systemd-" + _SYSTEMD[mode]]))
    if 0 < st < 4:
        supported = True
        st = _exit_code(runner.run(["systemctl", _SYSTEMD[mode]]))
        if st == 0:
            return
        error = QgaError("the helper program 'systemctl %s' returned an unexpected exit "
                         "status code (%d)" % (_SYSTEMD[mode], st))
    st = _exit_code(runner.run(["pm-is-supported", _PM_FLAG[mode]]))
    if st == 0:
        supported = True
        st = _exit_code(runner.run([_PM_PROG[mode]]))
        if st == 0:
            return
        error = QgaError("the helper program '%s' returned an unexpected exit status code (%d)"
                         % (_PM_PROG[mode], st))
    word = _SYSFS.get(mode)
    if word:
        try:
            with open("/sys/power/state") as f:
                states = f.read().split()
        except OSError:
            states = []
        if word in states:
            supported = True
            try:
                with open("/sys/power/state", "w") as f:
                    f.write(word)
                return
            except OSError as exc:
                error = QgaError("suspend: cannot write to '/sys/power/state': %s"
                                 % os.strerror(exc.errno or 5))
    if not supported:
        raise QgaError("the requested suspend mode is not supported by the guest")
    assert error is not None
    raise error


def suspend_disk(agent: Any) -> None:
    _suspend("disk")


def suspend_ram(agent: Any) -> None:
    _suspend("ram")


def suspend_hybrid(agent: Any) -> None:
    _suspend("hybrid")


def set_user_password(agent: Any, username: str, password: str, crypted: bool) -> None:
    raw = b64.decode(password)
    if b"\n" in raw:
        raise QgaError("forbidden characters in raw password")
    if "\n" in username or ":" in username:
        raise QgaError("forbidden characters in username")
    prog = runner.find("chpasswd")
    if not prog:
        raise QgaError("cannot find 'passwd' program in PATH")
    argv: List[str] = [prog] + (["-e"] if crypted else [])
    line = username.encode() + b":" + raw.split(b"\0", 1)[0] + b"\n"
    status = runner.run(argv, search_path=False, stdin=line)
    runner.check_status(status, "child process has failed to set user password")


SPECS = {
    "guest-shutdown": (shutdown, [opt("mode")], False, True),
    "guest-suspend-disk": (suspend_disk, [], False, True),
    "guest-suspend-ram": (suspend_ram, [], False, True),
    "guest-suspend-hybrid": (suspend_hybrid, [], False, True),
    "guest-set-user-password": (set_user_password,
                                [arg("username"), arg("password"), arg("crypted", "bool")], True, True),
}
