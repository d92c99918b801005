"""The system call layer: guest syscall -> host action -> guest result.

Guest file descriptors are host file descriptors (as in QEMU).  Handlers take
the raw register arguments and return the guest result, or ``-errno``; a
GuestFault while touching guest memory becomes ``-EFAULT``.  A syscall with
no handler returns ``-ENOSYS``.
"""
from __future__ import annotations

import errno
import os
import struct
import time
from typing import Callable, Dict, List, Optional

from pyqemu.exec.guest_memory import GuestFault, GuestMemory
from pyqemu.linux_user import structs
from pyqemu.linux_user.host import buffer, host_syscall
from pyqemu.linux_user.execve import prepare_exec
from pyqemu.linux_user.mm import AddressSpace
from pyqemu.linux_user.signal import SignalState, ThreadSignals
from pyqemu.linux_user.syscalls_misc import MiscCalls
from pyqemu.linux_user.syscalls_net import NetCalls
from pyqemu.linux_user.syscalls_signal import NO_RESULT, SignalCalls
from pyqemu.linux_user.syscall_nr import I386_NAMES, X86_64_NAMES

AT_FDCWD = -100
ARCH_SET_GS = 0x1001
ARCH_SET_FS = 0x1002
ARCH_GET_FS = 0x1003
ARCH_GET_GS = 0x1004
TCGETS = 0x5401
TCSETS = 0x5402
TCSETSW = 0x5403
TCSETSF = 0x5404
TIOCGWINSZ = 0x5413
TIOCSWINSZ = 0x5414
FIONREAD = 0x541B
TIOCGPGRP = 0x540F
CLONE_VM = 0x100
CLONE_VFORK = 0x4000
CLONE_SETTLS = 0x80000
CLONE_PARENT_SETTID = 0x100000
CLONE_CHILD_CLEARTID = 0x200000
CLONE_CHILD_SETTID = 0x1000000
MAX_IO = 1 << 24  # bound one read/write so a guest cannot make us allocate gigabytes

# Arguments per ABI, as indices into cpu.regs (RAX RCX RDX RBX RSP RBP RSI RDI R8..R15).
ARG_REGS = {64: (7, 6, 2, 10, 8, 9), 32: (3, 1, 2, 6, 7, 5)}


class ThreadExit(Exception):
    """exit() of one guest thread while others run on."""


class GuestExit(Exception):
    """exit_group (or exit of the last thread): the emulator ends with ``status``."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Process:
    """What all threads of one guest process share."""

    def __init__(self, mem: GuestMemory, bits: int, aspace: AddressSpace, exe: str,
                 uname_machine: Optional[str] = None, uname_release: Optional[str] = None) -> None:
        self.mem = mem
        self.bits = bits
        self.aspace = aspace
        self.exe = os.path.abspath(exe)
        self.uname_machine = uname_machine or ("x86_64" if bits == 64 else "i686")
        self.uname_release = uname_release
        self.signals = SignalState(bits)
        self.tls_entries: Dict[int, int] = {}
        self.dir_cookies: Dict[int, int] = {}  # host directory offset -> 32-bit guest cookie
        self.threads = None   # ThreadManager, set by the emulator
        self.futexes = None   # Futexes, set by the emulator
        self.exec_options: List[str] = []  # emulator options an execve'd program inherits
        self.vfork_fd = -1


class Syscalls(NetCalls, SignalCalls, MiscCalls):
    """Per-thread syscall dispatcher."""

    def __init__(self, proc: Process, strace: Optional[Callable[..., None]] = None) -> None:
        self.proc = proc
        self.mem = proc.mem
        self.bits = proc.bits
        self.mask = (1 << proc.bits) - 1
        self.names = X86_64_NAMES if proc.bits == 64 else I386_NAMES
        self.strace = strace
        self.tid_address = 0
        self.sig = ThreadSignals(proc.signals, proc.mem, proc.bits)
        self.word = proc.bits // 8

    # -- helpers ----------------------------------------------------------
    def s(self, v: int) -> int:
        """An argument as a signed C int of the guest's word size."""
        v &= self.mask
        return v - (1 << self.bits) if v >> (self.bits - 1) else v

    @staticmethod
    def i32(v: int) -> int:
        v &= 0xFFFFFFFF
        return v - (1 << 32) if v & 0x80000000 else v

    def path(self, addr: int) -> bytes:
        p = self.mem.read_cstring(addr, 4096)
        if p == b"/proc/self/exe":
            return os.fsencode(self.proc.exe)
        return p

    def dirfd(self, v: int) -> int:
        return self.i32(v)

    def dispatch(self, cpu) -> None:
        """Run the syscall described by the CPU's registers; store the result in RAX."""
        regs = cpu.regs
        nr = regs[0] & self.mask
        args = [regs[i] & self.mask for i in ARG_REGS[self.bits]]
        name = self.names.get(nr)
        handler = getattr(self, "sys_" + name, None) if name else None
        if self.strace is not None:
            self.strace.before(nr, name if handler is not None else None, args)
        try:
            if handler is None:
                ret = -errno.ENOSYS
            else:
                ret = handler(cpu, *args)
        except GuestFault:
            ret = -errno.EFAULT
        except OSError as exc:
            ret = -(exc.errno or errno.EIO)
        except (ValueError, OverflowError, struct.error):
            # Arguments no kernel would accept (out-of-range values, bad sizes).
            ret = -errno.EINVAL
        if ret is NO_RESULT:
            return  # sigreturn: the registers are the restored ones
        if ret == -errno.EINTR and self.sig.has_deliverable() and self.sig.pending_restart():
            # SA_RESTART: run the syscall again once the handler has returned.
            cpu.rip -= 2
            regs[0] = nr
            return
        if self.strace is not None and handler is not None:
            self.strace.after(nr, name, args, ret)
        regs[0] = ret & self.mask

    # -- process ----------------------------------------------------------
    def sys_exit(self, cpu, status, *_):
        threads = self.proc.threads
        if threads is not None and getattr(cpu, "tid", None) not in (None, os.getpid()):
            raise ThreadExit()
        if threads is not None:
            # The main thread leaves; the process lives until its other threads have gone.
            while threads.alive():
                time.sleep(0.01)
        raise GuestExit(status & 0xFF)

    def sys_exit_group(self, cpu, status, *_):
        raise GuestExit(status & 0xFF)

    def sys_getpid(self, cpu, *_):
        return os.getpid()

    def sys_gettid(self, cpu, *_):
        return getattr(cpu, "tid", None) or os.getpid()

    def sys_getppid(self, cpu, *_):
        return os.getppid()

    def sys_getuid(self, cpu, *_):
        return os.getuid()

    def sys_geteuid(self, cpu, *_):
        return os.geteuid()

    def sys_getgid(self, cpu, *_):
        return os.getgid()

    def sys_getegid(self, cpu, *_):
        return os.getegid()

    sys_getuid32 = sys_getuid
    sys_geteuid32 = sys_geteuid
    sys_getgid32 = sys_getgid
    sys_getegid32 = sys_getegid

    def sys_set_tid_address(self, cpu, addr, *_):
        self.tid_address = addr
        return self.sys_gettid(cpu)

    def sys_arch_prctl(self, cpu, code, addr, *_):
        if code == ARCH_SET_FS:
            cpu.fs_base = addr
        elif code == ARCH_SET_GS:
            cpu.gs_base = addr
        elif code == ARCH_GET_FS:
            self.mem.write_u64(addr, cpu.fs_base)
        elif code == ARCH_GET_GS:
            self.mem.write_u64(addr, cpu.gs_base)
        else:
            return -errno.EINVAL
        return 0

    def sys_set_thread_area(self, cpu, uinfo, *_):
        # struct user_desc: entry_number, base_addr, limit, flags.
        entry = self.i32(self.mem.read_u32(uinfo))
        base = self.mem.read_u32(uinfo + 4)
        if entry == -1:
            entry = 12  # GDT_ENTRY_TLS_MIN on i386
            while entry in self.proc.tls_entries and entry < 14:
                entry += 1
            self.mem.write_u32(uinfo, entry)
        if not 12 <= entry <= 14:
            return -errno.EINVAL
        self.proc.tls_entries[entry] = base
        # The guest loads %gs with (entry << 3) | 3 next; its base is this one.
        cpu.gs_base = base
        if hasattr(cpu, "set_tls_entry"):
            cpu.set_tls_entry(entry, base)
        return 0

    def sys_uname(self, cpu, addr, *_):
        u = os.uname()
        release = self.proc.uname_release or u.release
        fields = [u.sysname, u.nodename, release, u.version, self.proc.uname_machine, "(none)"]
        self.mem.write(addr, structs.UTSNAME.pack(*[os.fsencode(f)[:64] for f in fields]))
        return 0

    def sys_prlimit64(self, cpu, pid, res, new, old, *_):
        if new:
            return -errno.EPERM if pid not in (0, os.getpid()) else self._setrlimit(res, structs.RLIMIT64, new)
        if old:
            buf = buffer(16)
            r = host_syscall("prlimit64", pid, res, None, buf)
            if r < 0:
                return r
            self.mem.write(old, buf.raw)
        return 0

    def _setrlimit(self, res: int, st: struct.Struct, addr: int) -> int:
        raw = self.mem.read(addr, st.size)
        cur, mx = st.unpack(raw)
        inf = (1 << (st.size * 4)) - 1
        buf = structs.RLIMIT64.pack(-1 & (2**64 - 1) if cur == inf else cur,
                                    -1 & (2**64 - 1) if mx == inf else mx)
        return host_syscall("prlimit64", 0, res, buf, None)

    def sys_getrlimit(self, cpu, res, addr, *_):
        buf = buffer(16)
        r = host_syscall("prlimit64", 0, res, None, buf)
        if r < 0:
            return r
        cur, mx = structs.RLIMIT64.unpack(buf.raw)
        if self.bits == 32:
            cur, mx = min(cur, 0xFFFFFFFF), min(mx, 0xFFFFFFFF)
        self.mem.write(addr, structs.RLIMIT[self.bits].pack(cur, mx))
        return 0

    sys_ugetrlimit = sys_getrlimit

    def sys_setrlimit(self, cpu, res, addr, *_):
        return self._setrlimit(res, structs.RLIMIT[self.bits], addr)

    def sys_getrandom(self, cpu, addr, length, flags, *_):
        length = min(length, MAX_IO)
        self.mem.write(addr, os.urandom(length))
        return length

    def sys_set_robust_list(self, cpu, *_):
        # QEMU 7.2 does not implement it either: glibc copes.
        return -errno.ENOSYS

    def sys_sched_yield(self, cpu, *_):
        time.sleep(0)
        return 0

    def sys_sched_getaffinity(self, cpu, pid, size, addr, *_):
        buf = buffer(size & 0xFFFF)
        r = host_syscall("sched_getaffinity", pid, size & 0xFFFF, buf)
        if r > 0:
            self.mem.write(addr, buf.raw[:r])
        return r

    def sys_umask(self, cpu, mask, *_):
        return os.umask(mask & 0o777)

    # -- memory -----------------------------------------------------------
    def sys_brk(self, cpu, addr, *_):
        a = self.proc.aspace
        return a.brk if addr == 0 else a.do_brk(addr)

    def sys_mmap(self, cpu, addr, length, prot, flags, fd, off):
        if self.bits == 32:
            # old_mmap: one pointer to six 32-bit arguments.
            addr, length, prot, flags, fd, off = struct.unpack("<6I", self.mem.read(addr, 24))
        return self.proc.aspace.do_mmap(addr, length, prot, flags, self.i32(fd), off)

    def sys_mmap2(self, cpu, addr, length, prot, flags, fd, pgoff):
        return self.proc.aspace.do_mmap(addr, length, prot, flags, self.i32(fd), pgoff * 4096)

    def sys_munmap(self, cpu, addr, length, *_):
        return self.proc.aspace.do_munmap(addr, length)

    def sys_mprotect(self, cpu, addr, length, prot, *_):
        return self.proc.aspace.do_mprotect(addr, length, prot)

    def sys_mremap(self, cpu, old, old_len, new_len, flags, new_addr, *_):
        return self.proc.aspace.do_mremap(old, old_len, new_len, flags, new_addr)

    def sys_madvise(self, cpu, *_):
        return 0

    # -- file descriptors -------------------------------------------------
    def sys_read(self, cpu, fd, addr, count, *_):
        count = min(count, MAX_IO)
        if count and not self.mem.is_mapped(addr, count):
            return -errno.EFAULT
        buf = buffer(max(count, 1))
        r = host_syscall("read", self.i32(fd), buf, count)
        if r > 0:
            self.mem.write(addr, buf.raw[:r])
        return r

    def sys_write(self, cpu, fd, addr, count, *_):
        count = min(count, MAX_IO)
        return os.write(self.i32(fd), self.mem.read(addr, count))

    def sys_pread64(self, cpu, fd, addr, count, off, off_hi, *_):
        if self.bits == 32:
            off = off | (off_hi << 32)
        data = os.pread(self.i32(fd), min(count, MAX_IO), off)
        self.mem.write(addr, data)
        return len(data)

    def sys_pwrite64(self, cpu, fd, addr, count, off, off_hi, *_):
        if self.bits == 32:
            off = off | (off_hi << 32)
        return os.pwrite(self.i32(fd), self.mem.read(addr, min(count, MAX_IO)), off)

    def _iov(self, addr: int, cnt: int) -> List[tuple]:
        if cnt > 1024:
            raise OSError(errno.EINVAL, "")
        st = structs.IOVEC[self.bits]
        return [st.unpack(self.mem.read(addr + i * st.size, st.size)) for i in range(cnt)]

    def sys_readv(self, cpu, fd, iov, cnt, *_):
        total = 0
        for base, length in self._iov(iov, cnt):
            if not length:
                continue
            data = os.read(self.i32(fd), min(length, MAX_IO))
            self.mem.write(base, data)
            total += len(data)
            if len(data) < length:
                break
        return total

    def sys_writev(self, cpu, fd, iov, cnt, *_):
        data = b"".join(self.mem.read(b, min(n, MAX_IO)) for b, n in self._iov(iov, cnt))
        return os.write(self.i32(fd), data)

    def sys_open(self, cpu, path, flags, mode, *_):
        return self.sys_openat(cpu, AT_FDCWD & self.mask, path, flags, mode)

    def sys_openat(self, cpu, dirfd, path, flags, mode, *_):
        if self.bits == 32:
            flags |= os.O_LARGEFILE
        # Straight to the kernel: Python's os.open would add O_CLOEXEC, and the
        # guest's descriptors must survive its execve unless it asked otherwise.
        return host_syscall("openat", self.i32(dirfd), self.path(path), flags & 0xFFFFFFFF, mode & 0o7777)

    def _dir(self, dirfd: int) -> Optional[int]:
        d = self.i32(dirfd)
        return None if d == AT_FDCWD else d

    def sys_close(self, cpu, fd, *_):
        os.close(self.i32(fd))
        return 0

    def sys_lseek(self, cpu, fd, off, whence, *_):
        return os.lseek(self.i32(fd), self._real_dir_offset(self.s(off)), whence)

    def sys__llseek(self, cpu, fd, hi, lo, result, whence, *_):
        pos = os.lseek(self.i32(fd), self._real_dir_offset(self.i32(hi) << 32 | lo), whence)
        self.mem.write_u64(result, pos)
        return 0

    def sys_dup(self, cpu, fd, *_):
        return host_syscall("dup", self.i32(fd))

    def sys_dup2(self, cpu, fd, fd2, *_):
        return host_syscall("dup2", self.i32(fd), self.i32(fd2))

    def sys_dup3(self, cpu, fd, fd2, flags, *_):
        return host_syscall("dup3", self.i32(fd), self.i32(fd2), flags)

    def sys_pipe(self, cpu, addr, *_):
        return self.sys_pipe2(cpu, addr, 0)

    def sys_pipe2(self, cpu, addr, flags, *_):
        fds = buffer(8)
        ret = host_syscall("pipe2", fds, flags)
        if ret < 0:
            return ret
        r, w = struct.unpack("<ii", fds.raw)
        try:
            self.mem.write(addr, struct.pack("<ii", r, w))
        except GuestFault:
            os.close(r)
            os.close(w)
            raise
        return 0

    def sys_fcntl(self, cpu, fd, cmd, arg, *_):
        if cmd in (5, 6, 7, 36, 37, 38):  # the lock commands take a struct flock
            return -errno.EINVAL
        return host_syscall("fcntl", self.i32(fd), cmd, arg)

    sys_fcntl64 = sys_fcntl

    def sys_ioctl(self, cpu, fd, req, arg, *_):
        fd = self.i32(fd)
        req &= 0xFFFFFFFF
        if req in (TCGETS, TIOCGWINSZ, FIONREAD, TIOCGPGRP):
            size = {TCGETS: structs.TERMIOS.size, TIOCGWINSZ: 8, FIONREAD: 4, TIOCGPGRP: 4}[req]
            buf = buffer(size)
            r = host_syscall("ioctl", fd, req, buf)
            if r >= 0:
                self.mem.write(arg, buf.raw)
            return r
        if req in (TCSETS, TCSETSW, TCSETSF, TIOCSWINSZ):
            size = structs.TERMIOS.size if req != TIOCSWINSZ else 8
            return host_syscall("ioctl", fd, req, self.mem.read(arg, size))
        return -errno.ENOTTY if req >> 8 & 0xFF == 0x54 else -errno.EINVAL

    # -- files and directories --------------------------------------------
    def _stat_to(self, addr: int, st: os.stat_result) -> int:
        self.mem.write(addr, structs.pack_stat(st, self.bits))
        return 0

    def sys_fstat(self, cpu, fd, addr, *_):
        return self._stat_to(addr, os.fstat(self.i32(fd)))

    def sys_stat(self, cpu, path, addr, *_):
        return self._stat_to(addr, os.stat(self.path(path)))

    def sys_lstat(self, cpu, path, addr, *_):
        return self._stat_to(addr, os.lstat(self.path(path)))

    sys_fstat64 = sys_fstat
    sys_stat64 = sys_stat
    sys_lstat64 = sys_lstat

    def sys_newfstatat(self, cpu, dirfd, path, addr, flags, *_):
        p = self.path(path)
        if not p and flags & 0x1000:  # AT_EMPTY_PATH
            return self._stat_to(addr, os.fstat(self.i32(dirfd)))
        return self._stat_to(addr, os.stat(p, dir_fd=self._dir(dirfd),
                                           follow_symlinks=not flags & 0x100))

    sys_fstatat64 = sys_newfstatat

    def sys_statx(self, cpu, dirfd, path, flags, mask, addr, *_):
        buf = buffer(256)
        r = host_syscall("statx", self.i32(dirfd), self.path(path), flags, mask, buf)
        if r == 0:
            self.mem.write(addr, buf.raw)
        return r

    def sys_access(self, cpu, path, mode, *_):
        return host_syscall("access", self.path(path), mode)

    def sys_faccessat(self, cpu, dirfd, path, mode, *_):
        return host_syscall("faccessat", self.i32(dirfd), self.path(path), mode)

    def sys_faccessat2(self, cpu, dirfd, path, mode, flags, *_):
        return host_syscall("faccessat2", self.i32(dirfd), self.path(path), mode, flags)

    def sys_readlink(self, cpu, path, buf, size, *_):
        return self.sys_readlinkat(cpu, AT_FDCWD, path, buf, size)

    def sys_readlinkat(self, cpu, dirfd, path, buf, size, *_):
        raw = self.mem.read_cstring(path, 4096)
        if raw in (b"/proc/self/exe", b"/proc/%d/exe" % os.getpid()):
            target = os.fsencode(self.proc.exe)
        else:
            target = os.readlink(raw, dir_fd=self._dir(dirfd))
        target = target[:min(size, 4096)]
        self.mem.write(buf, target)
        return len(target)

    def sys_getcwd(self, cpu, addr, size, *_):
        cwd = os.fsencode(os.getcwd()) + b"\0"
        if len(cwd) > size:
            return -errno.ERANGE
        self.mem.write(addr, cwd)
        return len(cwd)

    def sys_chdir(self, cpu, path, *_):
        os.chdir(self.path(path))
        return 0

    def sys_fchdir(self, cpu, fd, *_):
        os.fchdir(self.i32(fd))
        return 0

    def sys_mkdir(self, cpu, path, mode, *_):
        os.mkdir(self.path(path), mode & 0o7777)
        return 0

    def sys_mkdirat(self, cpu, dirfd, path, mode, *_):
        os.mkdir(self.path(path), mode & 0o7777, dir_fd=self._dir(dirfd))
        return 0

    def sys_rmdir(self, cpu, path, *_):
        os.rmdir(self.path(path))
        return 0

    def sys_unlink(self, cpu, path, *_):
        os.unlink(self.path(path))
        return 0

    def sys_unlinkat(self, cpu, dirfd, path, flags, *_):
        if flags & 0x200:  # AT_REMOVEDIR
            os.rmdir(self.path(path), dir_fd=self._dir(dirfd))
        else:
            os.unlink(self.path(path), dir_fd=self._dir(dirfd))
        return 0

    def sys_rename(self, cpu, old, new, *_):
        os.rename(self.path(old), self.path(new))
        return 0

    def sys_renameat(self, cpu, od, old, nd, new, *_):
        os.rename(self.path(old), self.path(new), src_dir_fd=self._dir(od), dst_dir_fd=self._dir(nd))
        return 0

    def sys_renameat2(self, cpu, od, old, nd, new, flags, *_):
        return host_syscall("renameat2", self.i32(od), self.path(old), self.i32(nd), self.path(new), flags)

    def sys_symlink(self, cpu, target, path, *_):
        os.symlink(self.path(target), self.path(path))
        return 0

    def sys_link(self, cpu, old, new, *_):
        os.link(self.path(old), self.path(new))
        return 0

    def sys_chmod(self, cpu, path, mode, *_):
        os.chmod(self.path(path), mode & 0o7777)
        return 0

    def sys_fchmod(self, cpu, fd, mode, *_):
        os.fchmod(self.i32(fd), mode & 0o7777)
        return 0

    def sys_fchmodat(self, cpu, dirfd, path, mode, *_):
        os.chmod(self.path(path), mode & 0o7777, dir_fd=self._dir(dirfd))
        return 0

    def sys_ftruncate(self, cpu, fd, length, *_):
        os.ftruncate(self.i32(fd), length)
        return 0

    def sys_fsync(self, cpu, fd, *_):
        os.fsync(self.i32(fd))
        return 0

    sys_fdatasync = sys_fsync

    def sys_utimensat(self, cpu, dirfd, path, times, flags, *_):
        ts = self.mem.read(times, 32) if times else None
        if ts is not None and self.bits == 32:
            a, an, m, mn = struct.unpack("<iiii", self.mem.read(times, 16))
            ts = struct.pack("<qqqq", a, an, m, mn)
        p = self.path(path) if path else None
        return host_syscall("utimensat", self.i32(dirfd), p, ts, flags)

    def sys_getdents64(self, cpu, fd, addr, count, *_):
        count = min(count, MAX_IO)
        buf = buffer(count)
        r = host_syscall("getdents64", self.i32(fd), buf, count)
        if r > 0:
            data = buf.raw[:r]
            if self.bits == 32:
                data = self._dirent_cookies(data)
            self.mem.write(addr, data)
        return r

    def _dirent_cookies(self, data: bytes) -> bytes:
        """Give a 32-bit guest directory offsets that fit its off_t.

        A 64-bit process gets 64-bit hash cookies from the kernel where a real
        32-bit one would get 32-bit ones; glibc would fail with EOVERFLOW.
        Small cookies stand in for them and lseek() maps them back.
        """
        out = bytearray(data)
        pos = 0
        cookies = self.proc.dir_cookies
        while pos + structs.DIRENT64_HEAD.size <= len(out):
            _ino, off, reclen, _typ = structs.DIRENT64_HEAD.unpack_from(out, pos)
            if reclen == 0:
                break
            if not 0 <= off < 1 << 31:
                cookie = cookies.setdefault(off, len(cookies) + 1 + (1 << 20))
                struct.pack_into("<q", out, pos + 8, cookie)
            pos += reclen
        return bytes(out)

    def _real_dir_offset(self, off: int) -> int:
        if self.bits == 32 and off > 1 << 20:
            for real, cookie in self.proc.dir_cookies.items():
                if cookie == off:
                    return real
        return off

    # -- file system information and extended attributes -----------------------
    def sys_statfs(self, cpu, path, addr, *_):
        return self._statfs("statfs", self.path(path), addr)

    def sys_fstatfs(self, cpu, fd, addr, *_):
        return self._statfs("fstatfs", self.i32(fd), addr)

    def _statfs(self, name: str, target, addr: int) -> int:
        buf = buffer(120)
        r = host_syscall(name, target, buf)
        if r == 0:
            data = buf.raw
            if self.bits == 32:
                # struct statfs with 32-bit words (f_blocks... are 32-bit too).
                v = struct.unpack("<qqQQQQQ2iqqq4q", data)
                words = [v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]]
                data = struct.pack("<12I", *[x & 0xFFFFFFFF for x in words]) + bytes(16)
            self.mem.write(addr, data)
        return r

    def sys_statfs64(self, cpu, path, size, addr, *_):
        return self._statfs64("statfs", self.path(path), addr)

    def sys_fstatfs64(self, cpu, fd, size, addr, *_):
        return self._statfs64("fstatfs", self.i32(fd), addr)

    def _statfs64(self, name: str, target, addr: int) -> int:
        buf = buffer(120)
        r = host_syscall(name, target, buf)
        if r == 0:
            v = struct.unpack("<qqQQQQQ2iqqq4q", buf.raw)
            # i386 struct statfs64: 32-bit type/bsize, 64-bit counts, packed to 4.
            self.mem.write(addr, struct.pack("<IIQQQQQiiIII4I", v[0] & 0xFFFFFFFF, v[1] & 0xFFFFFFFF,
                                             v[2], v[3], v[4], v[5], v[6], v[7], v[8],
                                             v[9] & 0xFFFFFFFF, v[10] & 0xFFFFFFFF, v[11] & 0xFFFFFFFF,
                                             0, 0, 0, 0))
        return r

    def _xattr_get(self, name: str, target, attr: int, value: int, size: int) -> int:
        size = min(size, 1 << 16)
        buf = buffer(max(size, 1))
        r = host_syscall(name, target, self.mem.read_cstring(attr, 256), buf if size else None, size)
        if r > 0 and size:
            self.mem.write(value, buf.raw[:r])
        return r

    def sys_getxattr(self, cpu, path, attr, value, size, *_):
        return self._xattr_get("getxattr", self.path(path), attr, value, size)

    def sys_lgetxattr(self, cpu, path, attr, value, size, *_):
        return self._xattr_get("lgetxattr", self.path(path), attr, value, size)

    def sys_fgetxattr(self, cpu, fd, attr, value, size, *_):
        return self._xattr_get("fgetxattr", self.i32(fd), attr, value, size)

    def _xattr_list(self, name: str, target, addr: int, size: int) -> int:
        size = min(size, 1 << 16)
        buf = buffer(max(size, 1))
        r = host_syscall(name, target, buf if size else None, size)
        if r > 0 and size:
            self.mem.write(addr, buf.raw[:r])
        return r

    def sys_listxattr(self, cpu, path, addr, size, *_):
        return self._xattr_list("listxattr", self.path(path), addr, size)

    def sys_llistxattr(self, cpu, path, addr, size, *_):
        return self._xattr_list("llistxattr", self.path(path), addr, size)

    def sys_flistxattr(self, cpu, fd, addr, size, *_):
        return self._xattr_list("flistxattr", self.i32(fd), addr, size)

    # -- time --------------------------------------------------------------
    def sys_clock_gettime(self, cpu, clk, addr, *_):
        buf = buffer(16)
        r = host_syscall("clock_gettime", self.i32(clk), buf)
        if r == 0:
            sec, nsec = structs.TIMESPEC64.unpack(buf.raw)
            self.mem.write(addr, structs.TIMESPEC[self.bits].pack(self._tclip(sec), nsec))
        return r

    def sys_clock_gettime64(self, cpu, clk, addr, *_):
        buf = buffer(16)
        r = host_syscall("clock_gettime", self.i32(clk), buf)
        if r == 0:
            self.mem.write(addr, buf.raw)
        return r

    def sys_clock_getres(self, cpu, clk, addr, *_):
        buf = buffer(16)
        r = host_syscall("clock_getres", self.i32(clk), buf)
        if r == 0 and addr:
            sec, nsec = structs.TIMESPEC64.unpack(buf.raw)
            self.mem.write(addr, structs.TIMESPEC[self.bits].pack(sec, nsec))
        return r

    def _tclip(self, sec: int) -> int:
        return sec if self.bits == 64 else self.i32(sec)

    def sys_gettimeofday(self, cpu, tv, tz, *_):
        ns = time.time_ns()
        if tv:
            self.mem.write(tv, structs.TIMEVAL[self.bits].pack(self._tclip(ns // 10**9), ns // 1000 % 10**6))
        if tz:
            self.mem.write(tz, bytes(8))
        return 0

    def sys_time(self, cpu, addr, *_):
        t = int(time.time())
        if addr:
            self.mem.write(addr, struct.pack("<q" if self.bits == 64 else "<i", self._tclip(t)))
        return t

    def _clock_sleep(self, clk: int, flags: int, req: int, rem: int, st: struct.Struct) -> int:
        """clock_nanosleep through the host, so that a signal interrupts it (EINTR, remaining time)."""
        sec, nsec = st.unpack(self.mem.read(req, st.size))
        remain = buffer(16)
        r = host_syscall("clock_nanosleep", clk, flags, structs.TIMESPEC64.pack(sec, nsec), remain)
        if r == -errno.EINTR and rem and not flags & 1:
            s2, n2 = structs.TIMESPEC64.unpack(remain.raw)
            self.mem.write(rem, st.pack(s2, n2))
        return r

    def sys_nanosleep(self, cpu, req, rem, *_):
        return self._clock_sleep(0, 0, req, rem, structs.TIMESPEC[self.bits])

    def sys_clock_nanosleep(self, cpu, clk, flags, req, rem, *_):
        return self._clock_sleep(self.i32(clk), flags, req, rem, structs.TIMESPEC[self.bits])

    def sys_clock_nanosleep_time64(self, cpu, clk, flags, req, rem, *_):
        return self._clock_sleep(self.i32(clk), flags, req, rem, structs.TIMESPEC64)

    def sys_futex(self, cpu, uaddr, op, val, timeout, uaddr2, val3):
        return self._futex(uaddr, op, val, timeout, uaddr2, val3, structs.TIMESPEC[self.bits])

    def sys_futex_time64(self, cpu, uaddr, op, val, timeout, uaddr2, val3):
        return self._futex(uaddr, op, val, timeout, uaddr2, val3, structs.TIMESPEC64)

    def _futex(self, uaddr, op, val, timeout, uaddr2, val3, st) -> int:
        from pyqemu.linux_user import threads as T

        fx = self.proc.futexes
        if fx is None:
            return -errno.ENOSYS
        cmd = op & 0x7F
        val = val & 0xFFFFFFFF
        if not op & T.FUTEX_PRIVATE_FLAG and self.mem.is_shared(uaddr):
            return self._host_futex(T, uaddr, op, cmd, val, timeout, uaddr2, val3, st)
        if cmd in (T.FUTEX_WAIT, T.FUTEX_WAIT_BITSET):
            tmo = None
            if timeout:
                sec, nsec = st.unpack(self.mem.read(timeout, st.size))
                tmo = sec + nsec / 1e9
                if cmd == T.FUTEX_WAIT_BITSET:
                    # An absolute time on the chosen clock.
                    now = time.time() if op & T.FUTEX_CLOCK_REALTIME else time.monotonic()
                    tmo = max(0.0, tmo - now)
            bitset = val3 & 0xFFFFFFFF if cmd == T.FUTEX_WAIT_BITSET else 0xFFFFFFFF
            if not bitset:
                return -errno.EINVAL
            return fx.wait(uaddr, val, tmo, bitset, self.sig.has_deliverable)
        if cmd in (T.FUTEX_WAKE, T.FUTEX_WAKE_BITSET):
            bitset = val3 & 0xFFFFFFFF if cmd == T.FUTEX_WAKE_BITSET else 0xFFFFFFFF
            return fx.wake(uaddr, min(val, 1 << 30), bitset)
        if cmd in (T.FUTEX_REQUEUE, T.FUTEX_CMP_REQUEUE):
            return fx.requeue(uaddr, min(val, 1 << 30), min(timeout, 1 << 30), uaddr2,
                              val3 if cmd == T.FUTEX_CMP_REQUEUE else None)
        if cmd == T.FUTEX_WAKE_OP:
            return self._futex_wake_op(fx, uaddr, val, timeout, uaddr2, val3)
        return -errno.ENOSYS

    def _host_futex(self, T, uaddr, op, cmd, val, timeout, uaddr2, val3, st) -> int:
        """A shared futex (see threads.HostFutex)."""
        hf = T.host_futex()
        try:
            haddr = self.mem.host_address(uaddr)
        except GuestFault:
            return -errno.EFAULT
        if cmd in (T.FUTEX_WAIT, T.FUTEX_WAIT_BITSET):
            tmo = None
            if timeout:
                sec, nsec = st.unpack(self.mem.read(timeout, st.size))
                tmo = sec + nsec / 1e9
                if cmd == T.FUTEX_WAIT_BITSET:
                    now = time.time() if op & T.FUTEX_CLOCK_REALTIME else time.monotonic()
                    tmo = max(0.0, tmo - now)
            bitset = val3 & 0xFFFFFFFF if cmd == T.FUTEX_WAIT_BITSET else 0xFFFFFFFF
            if not bitset:
                return -errno.EINVAL
            return hf.wait(haddr, val, tmo, bitset, self.sig.has_deliverable)
        if cmd not in (T.FUTEX_WAKE, T.FUTEX_WAKE_BITSET, T.FUTEX_REQUEUE, T.FUTEX_CMP_REQUEUE,
                       T.FUTEX_WAKE_OP):
            return -errno.ENOSYS
        haddr2 = 0
        if cmd in (T.FUTEX_REQUEUE, T.FUTEX_CMP_REQUEUE, T.FUTEX_WAKE_OP):
            if not self.mem.is_shared(uaddr2):
                return -errno.EINVAL
            try:
                haddr2 = self.mem.host_address(uaddr2)
            except GuestFault:
                return -errno.EFAULT
        return hf.op(haddr, cmd, val, timeout & 0xFFFFFFFF, haddr2, val3 & 0xFFFFFFFF)

    def _futex_wake_op(self, fx, uaddr, n1, n2, uaddr2, op3) -> int:
        # Atomically update *uaddr2 by the encoded operation, wake on uaddr and, if
        # the old *uaddr2 passes the encoded comparison, on uaddr2 too.
        opcode = (op3 >> 28) & 7
        cmp = (op3 >> 24) & 15
        oparg = (op3 >> 12) & 0xFFF
        cmparg = op3 & 0xFFF
        if (op3 >> 28) & 8:
            oparg = 1 << oparg
        with self.mem.lock:
            old = self.mem.read_u32(uaddr2)
            new = {0: oparg, 1: old + oparg, 2: old | oparg, 3: old & ~oparg, 4: old ^ oparg}.get(opcode)
            if new is None:
                return -errno.ENOSYS
            self.mem.write_u32(uaddr2, new & 0xFFFFFFFF)
        woken = fx.wake(uaddr, n1)
        sold = old - (1 << 32) if old & 0x80000000 else old
        ok = {0: sold == cmparg, 1: sold != cmparg, 2: sold < cmparg, 3: sold <= cmparg,
              4: sold > cmparg, 5: sold >= cmparg}.get(cmp, False)
        if ok:
            woken += fx.wake(uaddr2, n2 & 0x7FFFFFFF)
        return woken

    def sys_fork(self, cpu, *_):
        return self._fork(cpu, 0, 0, 0, 0, 0)

    def sys_vfork(self, cpu, *_):
        return self._fork(cpu, CLONE_VFORK | CLONE_VM, 0, 0, 0, 0)

    def sys_clone(self, cpu, flags, newsp, ptid, a4, a5, *_):
        # The two ABIs order the last two arguments differently.
        ctid, tls = (a4, a5) if self.bits == 64 else (a5, a4)
        if flags & CLONE_VM and not flags & CLONE_VFORK:
            threads = getattr(self.proc, "threads", None)
            if threads is None:
                return -errno.ENOSYS
            return threads.clone(cpu, self, flags, newsp, ptid, ctid, tls)
        return self._fork(cpu, flags, newsp, ptid, ctid, tls)

    def _fork(self, cpu, flags: int, newsp: int, ptid: int, ctid: int, tls: int) -> int:
        """fork, vfork and clone without CLONE_VM: a host process runs the copy.

        With CLONE_VFORK the parent waits until the child has called execve or
        exited, as the kernel makes it do; memory is copied, not shared.
        """
        rfd = wfd = -1
        if flags & CLONE_VFORK:
            rfd, wfd = os.pipe()  # both close-on-exec: EOF when the child execs or exits
        pid = os.fork()
        if pid == 0:
            if rfd >= 0:
                os.close(rfd)
                self.proc.vfork_fd = wfd
            cpu.regs[0] = 0
            if newsp:
                cpu.regs[4] = newsp
            me = os.getpid()
            if flags & CLONE_CHILD_SETTID and ctid:
                self.mem.write_u32(ctid, me)
            if flags & CLONE_CHILD_CLEARTID:
                self.tid_address = ctid
            if flags & CLONE_SETTLS:
                if self.bits == 64:
                    cpu.fs_base = tls
                else:
                    self.sys_set_thread_area(cpu, tls)
            return 0
        if flags & CLONE_PARENT_SETTID and ptid:
            self.mem.write_u32(ptid, pid)
        if rfd >= 0:
            os.close(wfd)
            try:
                os.read(rfd, 1)
            finally:
                os.close(rfd)
        return pid

    def sys_execve(self, cpu, path, argv, envp, *_):
        return self._execve(AT_FDCWD, path, argv, envp, 0)

    def sys_execveat(self, cpu, dirfd, path, argv, envp, flags, *_):
        return self._execve(self.i32(dirfd), path, argv, envp, flags)

    def _str_array(self, addr: int) -> List[bytes]:
        out: List[bytes] = []
        w = self.word
        while addr:
            ptr = self.mem.read_u64(addr) if w == 8 else self.mem.read_u32(addr)
            if not ptr:
                break
            out.append(self.mem.read_cstring(ptr, 1 << 17))
            addr += w
            if len(out) > 65536:
                raise OSError(errno.E2BIG, "")
        return out

    def _execve(self, dirfd: int, path_addr: int, argv_addr: int, envp_addr: int, flags: int) -> int:
        path = self.path(path_addr)  # /proc/self/exe is the guest program, not the emulator
        if dirfd != AT_FDCWD and not path.startswith(b"/"):
            path = b"/proc/self/fd/%d/%s" % (dirfd, path) if path else b"/proc/self/fd/%d" % dirfd
        argv = self._str_array(argv_addr)
        envp = self._str_array(envp_addr)
        cmd, err = prepare_exec(self.proc, path, argv)
        if err:
            return -err
        if self.strace is not None:
            self.strace.flush()
        os.execve(cmd[0], cmd, dict(e.split(b"=", 1) for e in envp if b"=" in e))
        return -errno.ENOEXEC  # not reached

    def sys_wait4(self, cpu, pid, status, options, rusage, *_):
        buf = buffer(4)
        r = host_syscall("wait4", self.i32(pid), buf, options, None)
        if r > 0 and status:
            self.mem.write(status, buf.raw)
        return r
