"""Process attributes, ownership, resource usage and other small syscalls (a Syscalls mixin).

Calls whose arguments are all integers go to the host unchanged (with the
i386 ABI's 32-bit arguments sign-extended); the others convert their structs.
"""
from __future__ import annotations

import ctypes
import errno
import struct

from pyqemu.linux_user.host import buffer, host_syscall

# Guest syscall name -> host syscall name, for all-integer arguments.
INT_CALLS = {
    "setpgid": "setpgid", "getpgid": "getpgid", "getpgrp": "getpgrp", "setsid": "setsid",
    "getsid": "getsid", "setuid": "setuid", "setgid": "setgid", "setreuid": "setreuid",
    "setregid": "setregid", "setresuid": "setresuid", "setresgid": "setresgid",
    "setfsuid": "setfsuid", "setfsgid": "setfsgid", "getpriority": "getpriority",
    "setpriority": "setpriority", "flock": "flock", "fchown": "fchown", "syncfs": "syncfs",
    "sync": "sync", "fadvise64": "fadvise64", "sched_getscheduler": "sched_getscheduler",
    "personality": "personality", "setuid32": "setuid", "setgid32": "setgid",
    "setreuid32": "setreuid", "setregid32": "setregid", "setresuid32": "setresuid",
    "setresgid32": "setresgid", "setfsuid32": "setfsuid", "setfsgid32": "setfsgid",
    "fchown32": "fchown", "sched_get_priority_max": "sched_get_priority_max",
    "sched_get_priority_min": "sched_get_priority_min", "close_range": "close_range",
    "memfd_create": None, "inotify_init1": "inotify_init1",
}
PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2
PR_SET_NAME = 15
PR_GET_NAME = 16
# prctl options that take and return plain integers only.
PRCTL_INT = {3, 4, 23, 24, 27, 28, 36, 38, 39}


class MiscCalls:
    def _int_call(self, name: str, args) -> int:
        host = INT_CALLS[name]
        vals = [self.i32(a) if self.bits == 32 else a for a in args]
        return host_syscall(host, *vals)

    def __getattr__(self, attr: str):
        # sys_<name> for the all-integer calls, generated on first use.
        if attr.startswith("sys_") and INT_CALLS.get(attr[4:]):
            name = attr[4:]
            return lambda cpu, *args: self._int_call(name, args)
        raise AttributeError(attr)

    def sys_memfd_create(self, cpu, name, flags, *_):
        return host_syscall("memfd_create", self.mem.read_cstring(name, 250), flags)

    def sys_chown(self, cpu, path, uid, gid, *_):
        return host_syscall("chown", self.path(path), self.i32(uid), self.i32(gid))

    def sys_lchown(self, cpu, path, uid, gid, *_):
        return host_syscall("lchown", self.path(path), self.i32(uid), self.i32(gid))

    sys_chown32 = sys_chown
    sys_lchown32 = sys_lchown

    def sys_fchownat(self, cpu, dirfd, path, uid, gid, flags, *_):
        return host_syscall("fchownat", self.i32(dirfd), self.path(path), self.i32(uid), self.i32(gid), flags)

    def sys_truncate(self, cpu, path, length, *_):
        return host_syscall("truncate", self.path(path), self.s(length))

    def sys_mknodat(self, cpu, dirfd, path, mode, dev, *_):
        return host_syscall("mknodat", self.i32(dirfd), self.path(path), mode, dev)

    def sys_mknod(self, cpu, path, mode, dev, *_):
        return host_syscall("mknodat", -100, self.path(path), mode, dev)

    def sys_fallocate(self, cpu, fd, mode, off, length, *rest):
        if self.bits == 32:
            # i386 passes the two 64-bit values as register pairs.
            off, length = off | length << 32, rest[0] | rest[1] << 32
        return host_syscall("fallocate", self.i32(fd), mode, off, length)

    def _groups(self, size: int, addr: int, width: int) -> int:
        size = self.i32(size)
        if size < 0:
            return -errno.EINVAL
        buf = buffer(max(4, 4 * min(size, 65536)))
        r = host_syscall("getgroups", min(size, 65536), buf if size else None)
        if r > 0 and size:
            gids = struct.unpack("<%dI" % r, buf.raw[:4 * r])
            self.mem.write(addr, struct.pack("<%d%s" % (r, "I" if width == 4 else "H"),
                                             *[g if width == 4 else min(g, 0xFFFF) for g in gids]))
        return r

    def sys_getgroups(self, cpu, size, addr, *_):
        return self._groups(size, addr, 4 if self.bits == 64 else 2)

    def sys_getgroups32(self, cpu, size, addr, *_):
        return self._groups(size, addr, 4)

    def _getres(self, name: str, a: int, b: int, c: int) -> int:
        vals = [ctypes.c_uint32() for _ in range(3)]
        r = host_syscall(name, *[ctypes.byref(v) for v in vals])
        if r == 0:
            for addr, v in zip((a, b, c), vals):
                if addr:
                    self.mem.write_u32(addr, v.value)
        return r

    def sys_getresuid(self, cpu, a, b, c, *_):
        return self._getres("getresuid", a, b, c)

    def sys_getresgid(self, cpu, a, b, c, *_):
        return self._getres("getresgid", a, b, c)

    sys_getresuid32 = sys_getresuid
    sys_getresgid32 = sys_getresgid

    def sys_times(self, cpu, addr, *_):
        buf = buffer(32)
        r = host_syscall("times", buf)
        if addr:
            vals = struct.unpack("<4q", buf.raw)
            self.mem.write(addr, struct.pack("<4q" if self.bits == 64 else "<4i",
                                             *[v if self.bits == 64 else self.i32(v) for v in vals]))
        return r if self.bits == 64 else r & 0xFFFFFFFF

    def sys_getrusage(self, cpu, who, addr, *_):
        buf = buffer(144)
        r = host_syscall("getrusage", self.i32(who), buf)
        if r == 0:
            vals = struct.unpack("<18q", buf.raw)
            if self.bits == 64:
                self.mem.write(addr, buf.raw)
            else:
                self.mem.write(addr, struct.pack("<18i", *[self.i32(v) for v in vals]))
        return r

    def sys_sysinfo(self, cpu, addr, *_):
        buf = buffer(112)
        r = host_syscall("sysinfo", buf)
        if r == 0:
            if self.bits == 64:
                self.mem.write(addr, buf.raw)
            else:
                up, l1, l2, l3, tot, free, shared, bufr, stot, sfree, procs, htot, hfree, unit = \
                    struct.unpack("<q3Q6QH6xQQI4x", buf.raw[:112])
                if tot >> 32 or stot >> 32:
                    # As the kernel does for 32-bit callers: count memory in bigger units.
                    shift = 0
                    while unit < 4096:
                        unit <<= 1
                        shift += 1
                    tot, free, shared, bufr, stot, sfree, htot, hfree = (
                        x >> shift for x in (tot, free, shared, bufr, stot, sfree, htot, hfree))
                vals = [up, l1, l2, l3, tot, free, shared, bufr, stot, sfree]
                self.mem.write(addr, struct.pack("<10IHH2II8x", *[v & 0xFFFFFFFF for v in vals], procs, 0,
                                                 htot & 0xFFFFFFFF, hfree & 0xFFFFFFFF, unit))
        return r

    def sys_sched_getparam(self, cpu, pid, addr, *_):
        buf = buffer(4)
        r = host_syscall("sched_getparam", self.i32(pid), buf)
        if r == 0:
            self.mem.write(addr, buf.raw)
        return r

    def _sendfile(self, out_fd: int, in_fd: int, offp: int, count: int, wide: bool) -> int:
        off = None
        if offp:
            raw = self.mem.read(offp, 8 if wide else 4)
            off = ctypes.c_long(struct.unpack("<q" if wide else "<i", raw)[0])
        r = host_syscall("sendfile", self.i32(out_fd), self.i32(in_fd),
                         ctypes.byref(off) if off is not None else None, min(count, 1 << 30))
        if r >= 0 and offp:
            self.mem.write(offp, struct.pack("<q" if wide else "<i", off.value))
        return r

    def sys_sendfile(self, cpu, out_fd, in_fd, offp, count, *_):
        return self._sendfile(out_fd, in_fd, offp, count, self.bits == 64)

    def sys_sendfile64(self, cpu, out_fd, in_fd, offp, count, *_):
        return self._sendfile(out_fd, in_fd, offp, count, True)

    def sys_prctl(self, cpu, option, a2, a3, a4, a5, *_):
        option = self.i32(option)
        if option == PR_SET_NAME:
            return host_syscall("prctl", option, self.mem.read_cstring(a2, 16)[:15], 0, 0, 0)
        if option == PR_GET_NAME:
            buf = buffer(16)
            r = host_syscall("prctl", option, buf, 0, 0, 0)
            if r == 0:
                self.mem.write(a2, buf.raw)
            return r
        if option == PR_SET_PDEATHSIG:
            return host_syscall("prctl", option, a2, 0, 0, 0)
        if option == PR_GET_PDEATHSIG:
            v = ctypes.c_int()
            r = host_syscall("prctl", option, ctypes.byref(v), 0, 0, 0)
            if r == 0:
                self.mem.write(a2, struct.pack("<i", v.value))
            return r
        if option in PRCTL_INT:
            return host_syscall("prctl", option, a2, a3, a4, a5)
        return -errno.EINVAL
