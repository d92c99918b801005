"""Filesystems and disks: freeze/thaw (FIFREEZE, FITHAW and the hook),
fstrim, and the fsinfo/disks/diskstats inventories."""
from __future__ import annotations

import fcntl
import os
import re
import struct
from typing import Any, Dict, List, Optional

from pyqemu.qga.errors import QgaError
from pyqemu.qga.mounts import block_mounts, sysfs_dev
from pyqemu.qga.qapi import ListOf, opt

FIFREEZE = 0xC0045877
FITHAW = 0xC0045878
FITRIM = 0xC0185879
_RANGE = struct.Struct("=QQQ")


def run_hook(agent: Any, action: str) -> None:
    hook = agent.config.fsfreeze_hook
    if not hook:
        return
    if not os.access(hook, os.X_OK):
        import errno as _e
        err = _e.ENOENT if not os.path.exists(hook) else _e.EACCES
        raise QgaError("can't access fsfreeze hook '%s': %s" % (hook, os.strerror(err)))
    from pyqemu.qga import runner
    status = runner.run([hook, action], search_path=False)
    if status < 0:
        raise QgaError("failed to create child process")
    if not os.WIFEXITED(status):
        raise QgaError("fsfreeze hook has terminated abnormally")
    if os.WEXITSTATUS(status):
        raise QgaError("fsfreeze hook has failed with status %d" % os.WEXITSTATUS(status))


def fsfreeze_status(agent: Any) -> str:
    return "frozen" if agent.frozen else "thawed"


def _ioctl_dir(path: str, req: int, arg: Any) -> Any:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return fcntl.ioctl(fd, req, arg)
    finally:
        os.close(fd)


def fsfreeze_freeze_list(agent: Any, mountpoints: Optional[List[str]] = None) -> int:
    run_hook(agent, "freeze")
    # Refuse other commands first: a write to a frozen filesystem would hang us.
    agent.set_frozen(True)
    count = 0
    try:
        # Newest mounts first, so nothing is frozen under a frozen parent.
        for m in reversed(block_mounts()):
            if mountpoints is not None and m.dirname not in mountpoints:
                continue
            try:
                fd = os.open(m.dirname, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError as exc:
                raise QgaError("failed to open %s: %s" % (m.dirname, os.strerror(exc.errno or 5))) from None
            try:
                fcntl.ioctl(fd, FIFREEZE, 0)
            except OSError as exc:
                import errno as _e
                if exc.errno != _e.EOPNOTSUPP:
                    raise QgaError("failed to freeze %s: %s"
                                   % (m.dirname, os.strerror(exc.errno or 5))) from None
                continue
            finally:
                os.close(fd)
            count += 1
    except QgaError:
        fsfreeze_thaw(agent)
        raise
    if count == 0:
        agent.set_frozen(False)
    return count


def fsfreeze_freeze(agent: Any) -> int:
    return fsfreeze_freeze_list(agent, None)


def fsfreeze_thaw(agent: Any) -> int:
    count = 0
    for m in block_mounts():
        thawed = False
        try:
            fd = os.open(m.dirname, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            # A filesystem frozen several times needs as many thaws.
            while True:
                try:
                    fcntl.ioctl(fd, FITHAW, 0)
                except OSError:
                    break
                thawed = True
        finally:
            os.close(fd)
        count += thawed
    agent.set_frozen(False)
    run_hook(agent, "thaw")
    return count


def fstrim(agent: Any, minimum: Optional[int] = None) -> Dict[str, Any]:
    paths = []
    for m in block_mounts():
        entry: Dict[str, Any] = {"path": m.dirname}
        try:
            fd = os.open(m.dirname, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            entry["error"] = "failed to open: %s" % os.strerror(exc.errno or 5)
            paths.append(entry)
            continue
        try:
            buf = bytearray(_RANGE.pack(0, (1 << 64) - 1, (minimum or 0) & ((1 << 64) - 1)))
            fcntl.ioctl(fd, FITRIM, buf)
            _, length, minlen = _RANGE.unpack(bytes(buf))
            entry["trimmed"] = length
            entry["minimum"] = minlen
        except OSError as exc:
            entry["error"] = "failed to trim: %s" % os.strerror(exc.errno or 5)
        finally:
            os.close(fd)
        paths.append(entry)
    return {"paths": paths}


# --- inventories -----------------------------------------------------------

_PCI = re.compile(r"/([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])/")


def _disk_address(sysdir: str, devname: str) -> Dict[str, Any]:
    """Where a disk sits, as far as sysfs tells (PCI function, bus type)."""
    real = os.path.realpath(sysdir)
    pcis = _PCI.findall(real)
    bus_type = "unknown"
    if "/virtio" in real:
        bus_type = "virtio"
    elif "/ata" in real:
        bus_type = "sata"
    elif "/host" in real and "/target" in real:
        bus_type = "scsi"
    elif "/nvme/" in real:
        bus_type = "nvme"
    elif "/usb" in real:
        bus_type = "usb"
    addr: Dict[str, Any] = {"bus-type": bus_type, "bus": 0, "unit": 0, "target": 0,
                            "dev": "/dev/" + devname}
    if pcis:
        d, b, s, f = pcis[-1]
        addr["pci-controller"] = {"domain": int(d, 16), "bus": int(b, 16),
                                  "slot": int(s, 16), "function": int(f, 16)}
    else:
        addr["pci-controller"] = {"domain": -1, "bus": -1, "slot": -1, "function": -1}
    return addr


def _disks_of(sysdir: str) -> List[str]:
    """The whole disks under a block device (through dm/md slaves, partitions)."""
    name = os.path.basename(sysdir)
    slaves = os.path.join(sysdir, "slaves")
    if os.path.isdir(slaves) and os.listdir(slaves):
        out: List[str] = []
        for s in sorted(os.listdir(slaves)):
            out += _disks_of(os.path.realpath(os.path.join(slaves, s)))
        return out
    if os.path.exists(os.path.join(sysdir, "partition")):
        return [os.path.basename(os.path.dirname(sysdir))]
    return [name]


def get_fsinfo(agent: Any) -> List[Dict[str, Any]]:
    out = []
    for m in block_mounts():
        sysdir = sysfs_dev(m.major, m.minor)
        info: Dict[str, Any] = {"name": os.path.basename(sysdir), "mountpoint": m.dirname,
                                "type": m.devtype}
        disks = []
        for d in _disks_of(sysdir):
            dsys = "/sys/block/" + d
            if os.path.exists(os.path.join(dsys, "device")):
                disks.append(_disk_address(os.path.join(dsys, "device"), d))
        info["disk"] = disks
        try:
            st = os.statvfs(m.dirname)
            used = st.f_blocks - st.f_bfree
            # Sizes as an unprivileged user sees them: root's reserve left out.
            info["total-bytes"] = st.f_frsize * (used + st.f_bavail)
            info["used-bytes"] = st.f_frsize * used
        except OSError:
            pass
        out.append(info)
    # QEMU lists newest mounts first.
    out.reverse()
    return out


def _dev_node(sysdir: str, fallback: str) -> str:
    """The /dev node of a sysfs block device, found through its major:minor."""
    try:
        with open(os.path.join(sysdir, "dev")) as f:
            majmin = f.read().strip()
        node = os.path.realpath("/dev/block/" + majmin)
        if os.path.exists(node):
            return node
    except OSError:
        pass
    return "/dev/" + fallback


def _size_nonzero(sysdir: str) -> bool:
    try:
        with open(os.path.join(sysdir, "size")) as f:
            return f.read().strip() != "0"
    except OSError:
        return False


def get_disks(agent: Any) -> List[Dict[str, Any]]:
    out: List[Dict[str, Any]] = []
    try:
        names = os.listdir("/sys/block")
    except OSError:
        return out
    # Walked in directory order and collected by prepending, like QEMU's
    # agent, so the answer lists the last disk (and its partitions) first.
    for name in names:
        sysdir = "/sys/block/" + name
        if not os.path.islink(sysdir) or not _size_nonzero(sysdir):
            continue
        dev = _dev_node(sysdir, name)
        disk: Dict[str, Any] = {"name": dev, "partition": False}
        try:
            with open(os.path.join(sysdir, "dm", "name")) as f:
                disk["alias"] = f.read().strip()
        except OSError:
            pass
        slaves = os.path.join(sysdir, "slaves")
        deps = []
        if os.path.isdir(slaves):
            for sl in os.listdir(slaves):
                deps.insert(0, _dev_node(os.path.realpath(os.path.join(slaves, sl)), sl))
        disk["dependencies"] = deps
        if os.path.exists(os.path.join(sysdir, "device")):
            disk["address"] = _disk_address(os.path.join(sysdir, "device"), name)
        out.insert(0, disk)
        for part in os.listdir(sysdir):
            psys = os.path.join(sysdir, part)
            if part.startswith(name) and os.path.exists(os.path.join(psys, "partition")):
                out.insert(0, {"name": _dev_node(psys, part), "partition": True,
                               "dependencies": [dev]})
    return out


_DISKSTAT_FIELDS = ("read-ios", "read-merges", "read-sectors", "read-ticks", "write-ios",
                    "write-merges", "write-sectors", "write-ticks", "ios-pgr", "total-ticks",
                    "weight-ticks", "discard-ios", "discard-merges", "discard-sectors",
                    "discard-ticks", "flush-ios", "flush-ticks")


def get_diskstats(agent: Any) -> List[Dict[str, Any]]:
    out = []
    try:
        with open("/proc/diskstats") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise QgaError("can't open /proc/diskstats: %s" % os.strerror(exc.errno or 5)) from None
    for line in lines:
        parts = line.split()
        if len(parts) < 14:
            continue
        vals = [int(x) for x in parts[3:]]
        stats = dict(zip(_DISKSTAT_FIELDS, vals))
        out.append({"name": parts[2], "major": int(parts[0]), "minor": int(parts[1]),
                    "stats": stats})
    return out


SPECS = {
    "guest-fsfreeze-status": (fsfreeze_status, [], True, True),
    "guest-fsfreeze-freeze": (fsfreeze_freeze, [], True, True),
    "guest-fsfreeze-freeze-list": (fsfreeze_freeze_list, [opt("mountpoints", ListOf("str"))], True, True),
    "guest-fsfreeze-thaw": (fsfreeze_thaw, [], True, True),
    "guest-fstrim": (fstrim, [opt("minimum", "int")], True, True),
    "guest-get-disks": (get_disks, [], True, True),
    "guest-get-fsinfo": (get_fsinfo, [], True, True),
    "guest-get-diskstats": (get_diskstats, [], True, True),
}
