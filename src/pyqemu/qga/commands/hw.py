"""Processors and memory blocks (sysfs hot-plug interfaces), CPU statistics."""
from __future__ import annotations

import errno
import os
from typing import Any, Dict, List

from pyqemu.qga.errors import QgaError
from pyqemu.qga.qapi import ListOf, Member, arg

CPU_DIR = "/sys/devices/system/cpu"
MEM_DIR = "/sys/devices/system/memory"


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _write(path: str, text: str) -> None:
    # sysfs attributes take one write at offset 0; no truncation, as QEMU's pwrite
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.pwrite(fd, text.encode(), 0)
    finally:
        os.close(fd)


def _cpu(logical_id: int) -> Dict[str, Any]:
    d = "%s/cpu%d/" % (CPU_DIR, logical_id)
    if not os.path.isdir(d):
        raise QgaError('open("%s"): %s' % (d, os.strerror(errno.ENOENT)))
    online_path = d + "online"
    # Without an 'online' file the processor cannot be taken offline (cpu0).
    if os.path.exists(online_path):
        try:
            return {"logical-id": logical_id, "online": _read(online_path) == "1",
                    "can-offline": True, "_path": online_path}
        except OSError as exc:
            raise QgaError('pread("%s"): %s' % (online_path, os.strerror(exc.errno or 5))) from None
    return {"logical-id": logical_id, "online": True, "can-offline": False, "_path": None}


def get_vcpus(agent: Any) -> List[Dict[str, Any]]:
    out = []
    for i in range(os.sysconf("SC_NPROCESSORS_CONF")):
        c = _cpu(i)
        del c["_path"]
        out.append(c)
    out.reverse()
    return out


def set_vcpus(agent: Any, vcpus: List[Dict[str, Any]]) -> int:
    processed = 0
    for v in vcpus:
        try:
            c = _cpu(v["logical-id"])
            if c["online"] != v["online"]:
                if c["_path"] is None:
                    raise QgaError("logical processor #%d can't be offlined" % v["logical-id"])
                try:
                    _write(c["_path"], "1" if v["online"] else "0")
                except OSError as exc:
                    raise QgaError('pwrite("%s"): %s' % (c["_path"], os.strerror(exc.errno or 5))) from None
        except QgaError:
            # A partial success reports how far it got; only a first failure is an error.
            if processed == 0:
                raise
            break
        processed += 1
    return processed


def _mem_blocks() -> List[str]:
    try:
        return [n for n in os.listdir(MEM_DIR) if n.startswith("memory") and n[6:].isdigit()]
    except OSError as exc:
        raise QgaError('open("%s"): %s' % (MEM_DIR, os.strerror(exc.errno or 5))) from None


def get_memory_blocks(agent: Any) -> List[Dict[str, Any]]:
    out = []
    for name in _mem_blocks():
        d = os.path.join(MEM_DIR, name)
        blk: Dict[str, Any] = {"phys-index": int(name[6:])}
        try:
            blk["online"] = _read(d + "/state") != "offline"
        except OSError:
            blk["online"] = True
        try:
            blk["can-offline"] = _read(d + "/removable") == "1"
        except OSError:
            blk["can-offline"] = False
        out.append(blk)
    return out


def set_memory_blocks(agent: Any, mem_blks: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    out = []
    for b in mem_blks:
        idx = b["phys-index"]
        res: Dict[str, Any] = {"phys-index": idx}
        out.append(res)
        d = "%s/memory%d" % (MEM_DIR, idx)
        if not os.path.isdir(d):
            res["response"] = "not-found"
            res["error-code"] = errno.ENOENT
            continue
        try:
            online = _read(d + "/state") != "offline"
        except OSError as exc:
            # Kernels without a 'state' file cannot change it: nothing to do,
            # which QEMU's agent reports as success with the errno attached.
            res["response"] = "success" if exc.errno == errno.ENOENT else "operation-failed"
            res["error-code"] = exc.errno or errno.EIO
            continue
        if online != b["online"]:
            try:
                _write(d + "/state", "online" if b["online"] else "offline")
            except OSError as exc:
                res["response"] = "operation-failed"
                res["error-code"] = exc.errno or errno.EIO
                continue
        res["response"] = "success"
    return out


def get_memory_block_info(agent: Any) -> Dict[str, int]:
    try:
        return {"size": int(_read(MEM_DIR + "/block_size_bytes"), 16)}
    except (OSError, ValueError) as exc:
        raise QgaError("could not read memory block size: %s" % exc) from None


def get_cpustats(agent: Any) -> List[Dict[str, Any]]:
    tick_ms = 1000 // os.sysconf("SC_CLK_TCK")
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
             "guest", "guestnice")
    out = []
    try:
        lines = _read("/proc/stat").splitlines()
    except OSError as exc:
        raise QgaError("can't open /proc/stat: %s" % os.strerror(exc.errno or 5)) from None
    for line in lines:
        parts = line.split()
        if not parts or not parts[0].startswith("cpu") or parts[0] == "cpu":
            continue
        st: Dict[str, Any] = {"type": "linux", "cpu": int(parts[0][3:])}
        for n, v in zip(names, parts[1:]):
            st[n] = int(v) * tick_ms
        out.append(st)
    return out


def get_devices(agent: Any) -> List[Any]:
    raise QgaError("Command guest-get-devices has been disabled", "CommandNotFound")


_VCPU = [arg("logical-id", "int"), arg("online", "bool"), Member("can-offline", "bool", True)]
_MEMBLK = [arg("phys-index", "uint"), arg("online", "bool"), Member("can-offline", "bool", True)]

SPECS = {
    "guest-get-vcpus": (get_vcpus, [], True, True),
    "guest-set-vcpus": (set_vcpus, [arg("vcpus", ListOf(_VCPU))], True, True),
    "guest-get-memory-blocks": (get_memory_blocks, [], True, True),
    "guest-set-memory-blocks": (set_memory_blocks, [arg("mem-blks", ListOf(_MEMBLK))], True, True),
    "guest-get-memory-block-info": (get_memory_block_info, [], True, True),
    "guest-get-cpustats": (get_cpustats, [], True, True),
    # Windows-only in QEMU's agent: registered, listed, never enabled on Linux.
    "guest-get-devices": (get_devices, [], True, False),
}
