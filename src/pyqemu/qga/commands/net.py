"""guest-network-get-interfaces: addresses from getifaddrs(3), MAC addresses
from SIOCGIFHWADDR and counters from /proc/net/dev."""
from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import socket
import struct
from typing import Any, Dict, List, Optional

from pyqemu.qga.errors import QgaError

SIOCGIFHWADDR = 0x8927


class _Sockaddr(ctypes.Structure):
    _fields_ = [("sa_family", ctypes.c_ushort), ("sa_data", ctypes.c_ubyte * 14)]


class _Sockaddr6(ctypes.Structure):
    _fields_ = [("sin6_family", ctypes.c_ushort), ("sin6_port", ctypes.c_ushort),
                ("sin6_flowinfo", ctypes.c_uint32), ("sin6_addr", ctypes.c_ubyte * 16),
                ("sin6_scope_id", ctypes.c_uint32)]


class _Ifaddrs(ctypes.Structure):
    pass


_Ifaddrs._fields_ = [("ifa_next", ctypes.POINTER(_Ifaddrs)), ("ifa_name", ctypes.c_char_p),
                     ("ifa_flags", ctypes.c_uint), ("ifa_addr", ctypes.POINTER(_Sockaddr)),
                     ("ifa_netmask", ctypes.POINTER(_Sockaddr)), ("ifa_ifu", ctypes.c_void_p),
                     ("ifa_data", ctypes.c_void_p)]


def _addr_bytes(sa: Any, family: int) -> bytes:
    if family == socket.AF_INET:
        return bytes(sa.contents.sa_data[2:6])
    return bytes(ctypes.cast(sa, ctypes.POINTER(_Sockaddr6)).contents.sin6_addr)


def _prefix(mask: bytes) -> int:
    return sum(bin(b).count("1") for b in mask)


def _hwaddr(name: str) -> Optional[str]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("16s16x", name.encode()[:15])
        res = fcntl.ioctl(s.fileno(), SIOCGIFHWADDR, req)
    except OSError:
        return None
    finally:
        s.close()
    return ":".join("%02x" % b for b in res[18:24])


def _stats() -> Dict[str, Dict[str, int]]:
    out: Dict[str, Dict[str, int]] = {}
    try:
        with open("/proc/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return out
    for line in lines:
        name, _, rest = line.partition(":")
        v = [int(x) for x in rest.split()]
        if len(v) < 16:
            continue
        out[name.strip()] = {"rx-bytes": v[0], "rx-packets": v[1], "rx-errs": v[2],
                             "rx-dropped": v[3], "tx-bytes": v[8], "tx-packets": v[9],
                             "tx-errs": v[10], "tx-dropped": v[11]}
    return out


def get_interfaces(agent: Any) -> List[Dict[str, Any]]:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    head = ctypes.POINTER(_Ifaddrs)()
    if libc.getifaddrs(ctypes.byref(head)) != 0:
        import os
        raise QgaError("getifaddrs failed: %s" % os.strerror(ctypes.get_errno()))
    ifaces: Dict[str, Dict[str, Any]] = {}
    stats = _stats()
    try:
        p = head
        while p:
            ifa = p.contents
            p = ifa.ifa_next
            name = ifa.ifa_name.decode("utf-8", "replace")
            info = ifaces.get(name)
            if info is None:
                info = ifaces[name] = {"name": name}
                hw = _hwaddr(name)
                if hw is not None:
                    info["hardware-address"] = hw
            if not ifa.ifa_addr:
                continue
            family = ifa.ifa_addr.contents.sa_family
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            addr = socket.inet_ntop(family, _addr_bytes(ifa.ifa_addr, family))
            entry: Dict[str, Any] = {
                "ip-address": addr,
                "ip-address-type": "ipv4" if family == socket.AF_INET else "ipv6"}
            if ifa.ifa_netmask:
                entry["prefix"] = _prefix(_addr_bytes(ifa.ifa_netmask, family))
            info.setdefault("ip-addresses", []).append(entry)
            # Counters are reported for interfaces with an address, as QEMU does.
            if "statistics" not in info and name in stats:
                info["statistics"] = stats[name]
    finally:
        libc.freeifaddrs(head)
    return list(ifaces.values())


SPECS = {
    "guest-network-get-interfaces": (get_interfaces, [], True, True),
}
