"""``-strace``: one line per guest system call, in qemu-user's format.

``PID name(args) = result`` on stderr; failures read
``= -1 errno=N (text)``; calls that do not return (exit, exit_group) end
after the arguments; a syscall the emulator does not know prints
``PID Unknown syscall N``.  The argument is printed first and the result
after the call, so output the call itself writes comes in between, as in QEMU.
"""
from __future__ import annotations

import os
import sys
from typing import Callable, Dict, List, Optional

from pyqemu.exec.guest_memory import GuestFault

# Per-syscall argument kinds: d signed int, u unsigned, x hex (%#x), p pointer,
# s string, o open flags, P mmap prot, M mmap flags, D dirfd, F at-flags.
# Syscalls not listed print six arguments as signed decimals.
ARGS: Dict[str, str] = {
    "read": "ixd", "write": "ixd", "open": "sod", "openat": "Dsod", "close": "i",
    "brk": "p", "mmap": "pdPMix", "mmap2": "pdPMix", "munmap": "pd", "mprotect": "pdP",
    "exit": "d", "exit_group": "d", "readlink": "spd", "readlinkat": "Dspd",
    "getrandom": "xdd", "lseek": "ddd", "newfstatat": "dspx", "fstat": "dp",
    "stat": "sp", "lstat": "sp", "access": "sa", "faccessat": "Dsa",
    "getpid": "", "gettid": "", "getppid": "", "getuid": "", "geteuid": "", "getgid": "",
    "getegid": "", "dup": "d", "dup2": "dd", "dup3": "ddd", "pipe": "p", "pipe2": "pd",
    "chdir": "s", "mkdir": "sd", "unlink": "s", "rmdir": "s", "rename": "ss",
    "getcwd": "pd", "uname": "p", "set_thread_area": "x", "wait4": "dpdp",
    "kill": "dd", "tgkill": "ddd", "nanosleep": "pp", "sched_yield": "",
    "statx": "DsAXp", "statfs": "sp", "futex": "pFdppd", "getdents64": "dpd", "fcntl": "ddd", "fcntl64": "ddd", "ioctl": "dIx",
}
RET_PTR = {"brk", "mmap", "mmap2", "mremap"}
NORETURN = {"exit", "exit_group"}

_OPEN_FLAGS = [
    (0o2000, "O_APPEND"), (0o100, "O_CREAT"), (0o200000, "O_DIRECTORY"), (0o200, "O_EXCL"),
    (0o100000, "O_LARGEFILE"), (0o400, "O_NOCTTY"), (0o400000, "O_NOFOLLOW"), (0o4000, "O_NONBLOCK"),
    (0o4010000, "O_SYNC"), (0o10000, "O_DSYNC"), (0o1000, "O_TRUNC"), (0o40000, "O_DIRECT"),
    (0o1000000, "O_NOATIME"), (0o2000000, "O_CLOEXEC"), (0o10000000, "O_PATH"), (0o20000, "O_ASYNC"),
]
_FUTEX_CMDS = {0: "FUTEX_WAIT", 1: "FUTEX_WAKE", 2: "FUTEX_FD", 3: "FUTEX_REQUEUE", 4: "FUTEX_CMP_REQUEUE",
               5: "FUTEX_WAKE_OP", 6: "FUTEX_LOCK_PI", 7: "FUTEX_UNLOCK_PI", 8: "FUTEX_TRYLOCK_PI",
               9: "FUTEX_WAIT_BITSET", 10: "FUTEX_WAKE_BITSET"}
_AT = [(0x1000, "AT_EMPTY_PATH"), (0x100, "AT_SYMLINK_NOFOLLOW"), (0x200, "AT_REMOVEDIR"),
       (0x400, "AT_SYMLINK_FOLLOW"), (0x800, "AT_NO_AUTOMOUNT")]
_IOCTLS = {0x5401: "TCGETS", 0x5402: "TCSETS", 0x5403: "TCSETSW", 0x5404: "TCSETSF",
           0x540F: "TIOCGPGRP", 0x5410: "TIOCSPGRP", 0x5413: "TIOCGWINSZ", 0x5414: "TIOCSWINSZ",
           0x541B: "FIONREAD", 0x5421: "FIONBIO"}
# Flag names in the order qemu-user prints them.
_PROT = [(4, "PROT_EXEC"), (1, "PROT_READ"), (2, "PROT_WRITE")]
_MAP = [(0x20, "MAP_ANONYMOUS"), (0x800, "MAP_DENYWRITE"), (0x10, "MAP_FIXED"),
        (0x100000, "MAP_FIXED_NOREPLACE"), (0x100, "MAP_GROWSDOWN"), (0x1000, "MAP_EXECUTABLE"),
        (0x2000, "MAP_LOCKED"), (0x10000, "MAP_NONBLOCK"), (0x4000, "MAP_NORESERVE"),
        (0x8000, "MAP_POPULATE"), (0x20000, "MAP_STACK"), (0x40000, "MAP_HUGETLB"), (0x40, "MAP_32BIT")]
_ACCESS = [(4, "R_OK"), (2, "W_OK"), (1, "X_OK")]


def _flags(value: int, table, zero: str) -> str:
    names = []
    for bit, name in table:
        if value & bit == bit:
            names.append(name)
            value &= ~bit
    if value:
        names.append("%#x" % value)
    return "|".join(names) if names else zero


def _open_flags(v: int) -> str:
    acc = ("O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE")[v & 3]
    rest = _flags(v & ~3, _OPEN_FLAGS, "")
    return acc + ("|" + rest if rest else "")


def _map_flags(v: int) -> str:
    kind = {1: "MAP_SHARED", 2: "MAP_PRIVATE", 3: "MAP_SHARED_VALIDATE"}.get(v & 3, "")
    rest = _flags(v & ~3, _MAP, "")
    return "|".join(x for x in (kind, rest) if x) or "0"


class Strace:
    """Formats and writes syscall lines for one emulated process."""

    def __init__(self, mem, bits: int, write: Optional[Callable[[str], None]] = None,
                 pid: Optional[Callable[[], int]] = None) -> None:
        self.mem = mem
        self.bits = bits
        self.mask = (1 << bits) - 1
        self._write = write or self._stderr
        self._pid = pid or os.getpid

    @staticmethod
    def _stderr(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    def flush(self) -> None:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass

    def _signed(self, v: int) -> int:
        v &= self.mask
        return v - (1 << self.bits) if v >> (self.bits - 1) else v

    def _ptr(self, v: int) -> str:
        return ("0x%016x" if self.bits == 64 else "0x%08x") % (v & self.mask)

    def _string(self, addr: int) -> str:
        if not addr:
            return "NULL"
        try:
            raw = self.mem.read_cstring(addr, 4096)
        except GuestFault:
            return self._ptr(addr)
        return '"%s"' % raw.decode("latin-1")

    def format_arg(self, kind: str, v: int) -> str:
        if kind == "d":
            return "%d" % self._signed(v)
        if kind == "u":
            return "%d" % (v & self.mask)
        if kind == "x":
            return "%#x" % (v & self.mask) if v & self.mask else "0"  # C's %#x prints 0 bare
        if kind == "p":
            return "NULL" if v == 0 else self._ptr(v)
        if kind == "s":
            return self._string(v)
        if kind == "o":
            return _open_flags(v & 0xFFFFFFFF)
        if kind == "P":
            return _flags(v & 7, _PROT, "PROT_NONE")
        if kind == "M":
            return _map_flags(v & 0xFFFFFFFF)
        if kind == "D":
            # qemu-x86_64 7.2 prints the raw -100, qemu-i386 the name.
            sv = v & 0xFFFFFFFF
            sv = sv - (1 << 32) if sv >> 31 else sv
            return "AT_FDCWD" if sv == -100 and self.bits == 32 else "%d" % sv
        if kind == "i":
            v &= 0xFFFFFFFF
            return "%d" % (v - (1 << 32) if v >> 31 else v)
        if kind == "F":
            v &= 0xFFFFFFFF
            head = ("FUTEX_PRIVATE_FLAG|" if v & 128 else "") + ("FUTEX_CLOCK_REALTIME|" if v & 256 else "")
            return head + _FUTEX_CMDS.get(v & 0x7F, "%d" % (v & 0x7F))
        if kind == "a":
            return _flags(v & 7, _ACCESS, "F_OK")
        if kind == "I":
            return _IOCTLS.get(v & 0xFFFFFFFF, "%#x" % (v & 0xFFFFFFFF))
        if kind == "A":
            return _flags(v & 0xFFFFFFFF, _AT, "0")
        if kind == "X":
            return "STATX_BASIC_STATS" if v & 0xFFFFFFFF == 0x7FF else "%#x" % (v & 0xFFFFFFFF)
        if kind == "m":
            return "%#o" % (v & 0o7777)
        return "%d" % self._signed(v)

    def format_call(self, name: str, args: List[int]) -> str:
        kinds = ARGS.get(name, "dddddd")
        if kinds.endswith("od"):
            # The mode is only printed when the flags create a file.
            flags = args[len(kinds) - 2]
            kinds = kinds[:-1] + ("m" if flags & 0o20000000 or flags & 0o100 else "")
        return "%s(%s)" % (name, ",".join(self.format_arg(k, a) for k, a in zip(kinds, args)))

    def format_result(self, name: str, ret: int) -> str:
        ret = self._signed(ret)
        if -4096 < ret < 0:
            return " = -1 errno=%d (%s)\n" % (-ret, os.strerror(-ret))
        if name in RET_PTR:
            return " = %s\n" % self._ptr(ret)
        return " = %d\n" % ret

    def before(self, nr: int, name: Optional[str], args: List[int]) -> None:
        if name is None:
            self._write("%d Unknown syscall %d\n" % (self._pid(), nr))
            return
        line = "%d %s" % (self._pid(), self.format_call(name, args))
        self._write(line + ("\n" if name in NORETURN else ""))

    def after(self, nr: int, name: str, args: List[int], ret: int) -> None:
        if name not in NORETURN:
            self._write(self.format_result(name, ret))
