"""Sockets, poll, select and epoll system calls (a mixin of Syscalls).

Socket addresses, pollfd, fd_set bits and epoll_event have the same bytes on
the x86_64 and i386 ABIs, so they pass through; msghdr, iovec and timeouts
are converted per ABI.  i386's socketcall multiplexer unpacks its argument
block into the same handlers.
"""
from __future__ import annotations

import ctypes
import errno
import struct

from pyqemu.linux_user import structs
from pyqemu.linux_user.host import buffer, host_syscall

MAX_ADDR = 512
MAX_EVENTS = 4096
_SOCKETCALL = {
    1: ("socket", 3), 2: ("bind", 3), 3: ("connect", 3), 4: ("listen", 2), 5: ("accept", 3),
    6: ("getsockname", 3), 7: ("getpeername", 3), 8: ("socketpair", 4), 9: ("send", 4),
    10: ("recv", 4), 11: ("sendto", 6), 12: ("recvfrom", 6), 13: ("shutdown", 2),
    14: ("setsockopt", 5), 15: ("getsockopt", 5), 16: ("sendmsg", 3), 17: ("recvmsg", 3),
    18: ("accept4", 4),
}


class _IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.POINTER(_IOVec)), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class NetCalls:
    """Socket and polling syscalls; expects Syscalls' mem/bits/i32 helpers."""

    def _opt_bytes(self, addr: int, length: int):
        if not addr:
            return None
        return self.mem.read(addr, min(length, MAX_ADDR))

    def _addr_out(self, name: str, fd: int, addr: int, lenp: int, *extra) -> int:
        if not addr:
            return host_syscall(name, fd, None, None, *extra)
        size = min(self.mem.read_u32(lenp), MAX_ADDR)
        buf = buffer(size)
        ln = ctypes.c_uint32(size)
        r = host_syscall(name, fd, buf, ctypes.byref(ln), *extra)
        if r >= 0:
            self.mem.write(addr, buf.raw[:min(size, ln.value)])
            self.mem.write_u32(lenp, ln.value)
        return r

    def sys_socket(self, cpu, domain, typ, proto, *_):
        return host_syscall("socket", domain, typ, proto)

    def sys_socketpair(self, cpu, domain, typ, proto, sv, *_):
        buf = buffer(8)
        r = host_syscall("socketpair", domain, typ, proto, buf)
        if r == 0:
            self.mem.write(sv, buf.raw)
        return r

    def sys_bind(self, cpu, fd, addr, length, *_):
        return host_syscall("bind", self.i32(fd), self._opt_bytes(addr, length), length)

    def sys_connect(self, cpu, fd, addr, length, *_):
        return host_syscall("connect", self.i32(fd), self._opt_bytes(addr, length), length)

    def sys_listen(self, cpu, fd, backlog, *_):
        return host_syscall("listen", self.i32(fd), self.i32(backlog))

    def sys_accept(self, cpu, fd, addr, lenp, *_):
        return self._addr_out("accept4", self.i32(fd), addr, lenp, 0)

    def sys_accept4(self, cpu, fd, addr, lenp, flags, *_):
        return self._addr_out("accept4", self.i32(fd), addr, lenp, flags)

    def sys_getsockname(self, cpu, fd, addr, lenp, *_):
        return self._addr_out("getsockname", self.i32(fd), addr, lenp)

    def sys_getpeername(self, cpu, fd, addr, lenp, *_):
        return self._addr_out("getpeername", self.i32(fd), addr, lenp)

    def sys_shutdown(self, cpu, fd, how, *_):
        return host_syscall("shutdown", self.i32(fd), how)

    def sys_sendto(self, cpu, fd, buf, length, flags, addr, alen, *_):
        data = self.mem.read(buf, min(length, 1 << 24))
        return host_syscall("sendto", self.i32(fd), data, len(data), flags,
                            self._opt_bytes(addr, alen), alen if addr else 0)

    def sys_send(self, cpu, fd, buf, length, flags, *_):
        return self.sys_sendto(cpu, fd, buf, length, flags, 0, 0)

    def sys_recvfrom(self, cpu, fd, buf, length, flags, addr, lenp, *_):
        length = min(length, 1 << 24)
        data = buffer(max(length, 1))
        if addr:
            size = min(self.mem.read_u32(lenp), MAX_ADDR)
            abuf = buffer(size)
            ln = ctypes.c_uint32(size)
            r = host_syscall("recvfrom", self.i32(fd), data, length, flags, abuf, ctypes.byref(ln))
        else:
            r = host_syscall("recvfrom", self.i32(fd), data, length, flags, None, None)
        if r >= 0:
            self.mem.write(buf, data.raw[:r])
            if addr:
                self.mem.write(addr, abuf.raw[:min(size, ln.value)])
                self.mem.write_u32(lenp, ln.value)
        return r

    def sys_recv(self, cpu, fd, buf, length, flags, *_):
        return self.sys_recvfrom(cpu, fd, buf, length, flags, 0, 0)

    def sys_setsockopt(self, cpu, fd, level, name, val, length, *_):
        return host_syscall("setsockopt", self.i32(fd), level, name,
                            self._opt_bytes(val, length), min(length, MAX_ADDR))

    def sys_getsockopt(self, cpu, fd, level, name, val, lenp, *_):
        size = min(self.mem.read_u32(lenp), MAX_ADDR)
        buf = buffer(max(size, 1))
        ln = ctypes.c_uint32(size)
        r = host_syscall("getsockopt", self.i32(fd), level, name, buf, ctypes.byref(ln))
        if r == 0:
            self.mem.write(val, buf.raw[:min(size, ln.value)])
            self.mem.write_u32(lenp, ln.value)
        return r

    def _msghdr(self, addr: int):
        if self.bits == 64:
            name, namelen, iov, iovlen, control, controllen, flags = struct.unpack(
                "<QI4xQQQQi4x", self.mem.read(addr, 56))
        else:
            name, namelen, iov, iovlen, control, controllen, flags = struct.unpack(
                "<7I", self.mem.read(addr, 28))
        return name, namelen, self._iov(iov, iovlen), control, controllen, flags

    def _host_msg(self, name, namelen, iovs, control, controllen, recv: bool):
        bufs = []
        arr = (_IOVec * max(1, len(iovs)))()
        for i, (base, length) in enumerate(iovs):
            length = min(length, 1 << 24)
            b = buffer(max(length, 1))
            if not recv:
                b.raw = self.mem.read(base, length).ljust(max(length, 1), b"\0")
            bufs.append(b)
            arr[i].base = ctypes.cast(b, ctypes.c_void_p)
            arr[i].len = length
        msg = _MsgHdr()
        namebuf = buffer(max(1, min(namelen, MAX_ADDR)))
        if name:
            if not recv:
                namebuf.raw = self.mem.read(name, min(namelen, MAX_ADDR)).ljust(len(namebuf), b"\0")
            msg.name = ctypes.cast(namebuf, ctypes.c_void_p)
            msg.namelen = min(namelen, MAX_ADDR)
        msg.iov = arr
        msg.iovlen = len(iovs)
        ctl = buffer(max(1, min(controllen, 1 << 16)))
        # Control messages keep their layout only between 64-bit ABIs.
        if control and controllen and self.bits == 64:
            if not recv:
                ctl.raw = self.mem.read(control, min(controllen, 1 << 16)).ljust(len(ctl), b"\0")
            msg.control = ctypes.cast(ctl, ctypes.c_void_p)
            msg.controllen = min(controllen, 1 << 16)
        return msg, bufs, namebuf, ctl

    def sys_sendmsg(self, cpu, fd, addr, flags, *_):
        name, namelen, iovs, control, controllen, _f = self._msghdr(addr)
        msg, _b, _n, _c = self._host_msg(name, namelen, iovs, control, controllen, False)
        return host_syscall("sendmsg", self.i32(fd), ctypes.byref(msg), flags)

    def sys_recvmsg(self, cpu, fd, addr, flags, *_):
        name, namelen, iovs, control, controllen, _f = self._msghdr(addr)
        msg, bufs, namebuf, ctl = self._host_msg(name, namelen, iovs, control, controllen, True)
        r = host_syscall("recvmsg", self.i32(fd), ctypes.byref(msg), flags)
        if r < 0:
            return r
        left = r
        for (base, length), b in zip(iovs, bufs):
            n = min(left, length)
            if n:
                self.mem.write(base, b.raw[:n])
            left -= n
        if self.bits == 64:
            if name:
                self.mem.write(name, namebuf.raw[:msg.namelen])
            self.mem.write(addr + 8, struct.pack("<I", msg.namelen))
            if control and controllen:
                self.mem.write(control, ctl.raw[:msg.controllen])
            self.mem.write(addr + 40, struct.pack("<Qi", msg.controllen if control else 0, msg.flags))
        else:
            if name:
                self.mem.write(name, namebuf.raw[:msg.namelen])
            self.mem.write(addr + 4, struct.pack("<I", msg.namelen))
            self.mem.write(addr + 20, struct.pack("<Ii", 0, msg.flags))
        return r

    def sys_socketcall(self, cpu, call, args, *_):
        entry = _SOCKETCALL.get(call)
        if entry is None:
            return -errno.EINVAL
        name, nargs = entry
        vals = struct.unpack("<%dI" % nargs, self.mem.read(args, 4 * nargs))
        return getattr(self, "sys_" + name)(cpu, *vals)

    # -- polling --------------------------------------------------------------
    def _timespec_in(self, addr: int, st: struct.Struct):
        if not addr:
            return None
        sec, nsec = st.unpack(self.mem.read(addr, st.size))
        return structs.TIMESPEC64.pack(sec, nsec)

    def sys_poll(self, cpu, fds, nfds, timeout, *_):
        if nfds > 65536:
            return -errno.EINVAL
        buf = buffer(max(1, 8 * nfds))
        buf.raw = self.mem.read(fds, 8 * nfds).ljust(len(buf), b"\0")
        t = self.i32(timeout)
        ts = None if t < 0 else structs.TIMESPEC64.pack(t // 1000, t % 1000 * 1000000)
        r = host_syscall("ppoll", buf, nfds, ts, None, 8)
        if r >= 0:
            self.mem.write(fds, buf.raw[:8 * nfds])
        return r

    def _ppoll(self, fds, nfds, tsp, st: struct.Struct) -> int:
        if nfds > 65536:
            return -errno.EINVAL
        buf = buffer(max(1, 8 * nfds))
        buf.raw = self.mem.read(fds, 8 * nfds).ljust(len(buf), b"\0")
        r = host_syscall("ppoll", buf, nfds, self._timespec_in(tsp, st), None, 8)
        if r >= 0:
            self.mem.write(fds, buf.raw[:8 * nfds])
        return r

    def sys_ppoll(self, cpu, fds, nfds, tsp, sigmask, size, *_):
        return self._ppoll(fds, nfds, tsp, structs.TIMESPEC[self.bits])

    def sys_ppoll_time64(self, cpu, fds, nfds, tsp, sigmask, size, *_):
        return self._ppoll(fds, nfds, tsp, structs.TIMESPEC64)

    def _select(self, n: int, rd: int, wr: int, ex: int, ts) -> int:
        n = self.i32(n)
        if not 0 <= n <= 4096:
            return -errno.EINVAL
        gsize = (n + self.bits - 1) // self.bits * (self.bits // 8)
        hsize = (n + 63) // 64 * 8
        sets = []
        for addr in (rd, wr, ex):
            if addr:
                b = buffer(max(hsize, 8))
                b.raw = self.mem.read(addr, gsize).ljust(len(b), b"\0")
                sets.append(b)
            else:
                sets.append(None)
        r = host_syscall("pselect6", n, sets[0], sets[1], sets[2], ts, None)
        if r >= 0:
            for addr, b in zip((rd, wr, ex), sets):
                if addr:
                    self.mem.write(addr, b.raw[:gsize])
        return r

    def sys_select(self, cpu, n, rd, wr, ex, tv, *_):
        if self.bits == 32:
            # old_select: one pointer to the five arguments.
            n, rd, wr, ex, tv = struct.unpack("<5I", self.mem.read(n, 20))
        ts = None
        if tv:
            sec, usec = structs.TIMEVAL[self.bits].unpack(self.mem.read(tv, structs.TIMEVAL[self.bits].size))
            ts = structs.TIMESPEC64.pack(sec, usec * 1000)
        return self._select(n, rd, wr, ex, ts)

    def sys__newselect(self, cpu, n, rd, wr, ex, tv, *_):
        ts = None
        if tv:
            sec, usec = structs.TIMEVAL[32].unpack(self.mem.read(tv, 8))
            ts = structs.TIMESPEC64.pack(sec, usec * 1000)
        return self._select(n, rd, wr, ex, ts)

    def sys_pselect6(self, cpu, n, rd, wr, ex, tsp, sig, *_):
        return self._select(n, rd, wr, ex, self._timespec_in(tsp, structs.TIMESPEC[self.bits]))

    def sys_pselect6_time64(self, cpu, n, rd, wr, ex, tsp, sig, *_):
        return self._select(n, rd, wr, ex, self._timespec_in(tsp, structs.TIMESPEC64))

    def sys_epoll_create(self, cpu, size, *_):
        return host_syscall("epoll_create1", 0) if self.i32(size) > 0 else -errno.EINVAL

    def sys_epoll_create1(self, cpu, flags, *_):
        return host_syscall("epoll_create1", flags)

    def sys_epoll_ctl(self, cpu, epfd, op, fd, event, *_):
        ev = self.mem.read(event, 12) if event else None
        return host_syscall("epoll_ctl", self.i32(epfd), op, self.i32(fd), ev)

    def sys_epoll_wait(self, cpu, epfd, events, maxevents, timeout, *_):
        return self.sys_epoll_pwait(cpu, epfd, events, maxevents, timeout, 0)

    def sys_epoll_pwait(self, cpu, epfd, events, maxevents, timeout, sigmask, *_):
        maxevents = self.i32(maxevents)
        if not 0 < maxevents <= MAX_EVENTS:
            return -errno.EINVAL
        buf = buffer(12 * maxevents)
        r = host_syscall("epoll_pwait", self.i32(epfd), buf, maxevents, self.i32(timeout), None, 8)
        if r > 0:
            self.mem.write(events, buf.raw[:12 * r])
        return r

    def sys_eventfd2(self, cpu, initval, flags, *_):
        return host_syscall("eventfd2", initval & 0xFFFFFFFF, flags)

    def sys_eventfd(self, cpu, initval, *_):
        return host_syscall("eventfd2", initval & 0xFFFFFFFF, 0)
