"""Protocol housekeeping and facts about the guest: sync, ping, info, time,
host name, time zone, OS release and logged-in users."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import struct
import time
from typing import Any, Dict, List, Optional

from pyqemu.qga.errors import QgaError
from pyqemu.qga.qapi import arg, opt
from pyqemu.qga import runner


def sync_delimited(agent: Any, id: int) -> int:
    # The reply is preceded by 0xFF so the host can discard stale bytes.
    agent.delimit_response = True
    return id


def sync(agent: Any, id: int) -> int:
    return id


def ping(agent: Any) -> None:
    return None


def get_time(agent: Any) -> int:
    # gettimeofday() resolution, as QEMU's agent reports it.
    return time.time_ns() // 1000 * 1000


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


def set_time(agent: Any, time: Optional[int] = None) -> None:
    if time is not None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        tv = _Timeval(time // 1000000000, (time % 1000000000) // 1000)
        if libc.settimeofday(ctypes.byref(tv), None) != 0:
            raise QgaError("Failed to set time to guest: %s" % os.strerror(ctypes.get_errno()))
    hwclock = "/sbin/hwclock"
    if not os.path.exists(hwclock):
        raise QgaError("hwclock not found. cannot set time")
    # With a time the RTC follows the system clock; without, the reverse.
    status = runner.run([hwclock, "-w" if time is not None else "-s"], search_path=False)
    runner.check_status(status, "hwclock failed to set hardware clock to system time")


def info(agent: Any) -> Dict[str, Any]:
    reg = agent.registry
    cmds = [{"name": n, "enabled": reg.enabled(n),
             "success-response": reg.commands[n].success_response}
            for n in reversed(reg.names())]
    from pyqemu.qga.agent import VERSION
    return {"version": VERSION, "supported_commands": cmds}


def get_host_name(agent: Any) -> Dict[str, str]:
    return {"host-name": socket.gethostname() or "localhost"}


def get_timezone(agent: Any) -> Dict[str, Any]:
    now = time.localtime()
    offset = now.tm_gmtoff
    out: Dict[str, Any] = {"offset": offset}
    if now.tm_zone:
        out["zone"] = now.tm_zone
    return out


def _os_release_value(raw: str) -> str:
    """A value as QEMU's agent reads it: a double-quoted string loses its quotes
    and the backslashes before $ " ` and backslash; anything else stops at the first blank
    (single quotes are not special)."""
    raw = raw.strip()
    if raw.startswith('"'):
        out = []
        i = 1
        while i < len(raw) and raw[i] != '"':
            if raw[i] == "\\" and i + 1 < len(raw) and raw[i + 1] in '$"`\\':
                i += 1
            out.append(raw[i])
            i += 1
        return "".join(out)
    return raw.split()[0] if raw.split() else ""


def _os_release() -> Dict[str, str]:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        out = {}
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            k, v = line.split("=", 1)
            out[k.strip()] = _os_release_value(v)
        return out
    return {}


def get_osinfo(agent: Any) -> Dict[str, Any]:
    u = os.uname()
    info: Dict[str, Any] = {"kernel-release": u.release, "kernel-version": u.version,
                            "machine": u.machine}
    rel = _os_release()
    for key, field in (("ID", "id"), ("NAME", "name"), ("PRETTY_NAME", "pretty-name"),
                       ("VERSION", "version"), ("VERSION_ID", "version-id"),
                       ("VARIANT", "variant"), ("VARIANT_ID", "variant-id")):
        if key in rel:
            info[field] = rel[key]
    return info


# struct utmp of x86-64 glibc: 384 bytes, 32-bit time fields
_UTMP = struct.Struct("<h2xi32s4s32s256shhiii4i20s")
USER_PROCESS = 7


def get_users(agent: Any) -> List[Dict[str, Any]]:
    """Users with a login session, from utmp; earliest login time per user."""
    users: Dict[str, float] = {}
    order: List[str] = []
    try:
        with open("/var/run/utmp", "rb") as f:
            data = f.read()
    except OSError:
        data = b""
    for off in range(0, len(data) - _UTMP.size + 1, _UTMP.size):
        rec = _UTMP.unpack_from(data, off)
        if rec[0] != USER_PROCESS:
            continue
        name = rec[4].split(b"\0", 1)[0].decode("utf-8", "replace")
        login = rec[9] + rec[10] / 1000000.0
        if name in users:
            users[name] = min(users[name], login)
        else:
            users[name] = login
            order.append(name)
    return [{"user": n, "login-time": users[n]} for n in order]


SPECS = {
    "guest-sync-delimited": (sync_delimited, [arg("id", "int")], True, True),
    "guest-sync": (sync, [arg("id", "int")], True, True),
    "guest-ping": (ping, [], True, True),
    "guest-get-time": (get_time, [], True, True),
    "guest-set-time": (set_time, [opt("time", "int")], True, True),
    "guest-info": (info, [], True, True),
    "guest-get-host-name": (get_host_name, [], True, True),
    "guest-get-users": (get_users, [], True, True),
    "guest-get-timezone": (get_timezone, [], True, True),
    "guest-get-osinfo": (get_osinfo, [], True, True),
}
