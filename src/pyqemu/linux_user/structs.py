"""Guest struct layouts for the x86_64 and i386 Linux ABIs.

Each function packs a host value into the guest's bytes; the layouts are the
kernel's (asm/stat.h, linux/time_types.h, asm-generic/termbits.h ...).
"""
from __future__ import annotations

import os
import struct

# struct stat on x86_64 (144 bytes).
STAT64_X86_64 = struct.Struct("<QQQIIIIQqqqqqqqqq24x")
# struct stat64 on i386 (96 bytes, long long aligned to 4).
STAT64_I386 = struct.Struct("<Q4xIIIIIQ4xqIQIIIIIIQ")
TIMESPEC = {64: struct.Struct("<qq"), 32: struct.Struct("<ii")}
TIMESPEC64 = struct.Struct("<qq")  # __kernel_timespec, same on both ABIs
TIMEVAL = {64: struct.Struct("<qq"), 32: struct.Struct("<ii")}
IOVEC = {64: struct.Struct("<QQ"), 32: struct.Struct("<II")}
WINSIZE = struct.Struct("<HHHH")
# struct termios as the kernel's TCGETS fills it: 4 flags, c_line, 19 control chars.
TERMIOS = struct.Struct("<IIIIB19s")
# struct rlimit: two unsigned longs; prlimit64 always uses 64-bit values.
RLIMIT = {64: struct.Struct("<QQ"), 32: struct.Struct("<II")}
RLIMIT64 = struct.Struct("<QQ")
# struct utsname: six 65-byte fields.
UTSNAME = struct.Struct("<65s65s65s65s65s65s")
# struct linux_dirent64: d_ino, d_off, d_reclen, d_type, name.
DIRENT64_HEAD = struct.Struct("<QqHB")
# struct sysinfo on x86_64 (112 bytes).
SYSINFO_64 = struct.Struct("<q3QQQQQQQHH4xQQI4x")
# struct sigaction: handler, flags, restorer, mask (x86_64 order);
# i386 rt_sigaction uses the same order with 32-bit words.
SIGACTION = {64: struct.Struct("<QQQQ"), 32: struct.Struct("<IIIQ")}
# stack_t: ss_sp, ss_flags, ss_size.
STACK_T = {64: struct.Struct("<Qi4xQ"), 32: struct.Struct("<IiI")}


def pack_stat(st: os.stat_result, bits: int) -> bytes:
    at, mt, ct = st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns
    if bits == 64:
        return STAT64_X86_64.pack(
            st.st_dev, st.st_ino, st.st_nlink, st.st_mode, st.st_uid, st.st_gid, 0,
            st.st_rdev, st.st_size, st.st_blksize, st.st_blocks,
            at // 10**9, at % 10**9, mt // 10**9, mt % 10**9, ct // 10**9, ct % 10**9)
    return STAT64_I386.pack(
        st.st_dev, st.st_ino & 0xFFFFFFFF, st.st_mode, st.st_nlink, st.st_uid, st.st_gid,
        st.st_rdev, st.st_size, st.st_blksize, st.st_blocks,
        (at // 10**9) & 0xFFFFFFFF, at % 10**9, (mt // 10**9) & 0xFFFFFFFF, mt % 10**9,
        (ct // 10**9) & 0xFFFFFFFF, ct % 10**9, st.st_ino)


def pack_dirent64(ino: int, off: int, dtype: int, name: bytes) -> bytes:
    reclen = (DIRENT64_HEAD.size + len(name) + 1 + 7) & ~7
    rec = DIRENT64_HEAD.pack(ino, off, reclen, dtype) + name + b"\0"
    return rec.ljust(reclen, b"\0")
