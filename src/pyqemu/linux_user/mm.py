"""brk and mmap/munmap/mprotect/mremap on top of a GuestMemory.

MAP_PRIVATE mappings are private copies (a file mapping reads the file's
bytes at mmap time).  MAP_SHARED mappings are host shared memory: anonymous
ones stay shared with forked children (a guest fork is a host fork), file
ones are the file's pages, coherent with read/write on the file and with
other processes.
"""
from __future__ import annotations

import errno
import fcntl
import os

from pyqemu.exec.guest_memory import (PAGE_SIZE, PROT_READ, PROT_WRITE, GuestFault, GuestMemory,
                                      shared_backing)

MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_32BIT = 0x40
MAP_NORESERVE = 0x4000
MAP_FIXED_NOREPLACE = 0x100000
MREMAP_MAYMOVE = 1
MREMAP_FIXED = 2

_MASK = PAGE_SIZE - 1


def page_up(n: int) -> int:
    return (n + _MASK) & ~_MASK


class AddressSpace:
    """The process-wide memory bookkeeping (shared by all guest threads)."""

    def __init__(self, mem: GuestMemory, bits: int, brk: int, mmap_base: int, top: int) -> None:
        self.mem = mem
        self.bits = bits
        self.brk_start = brk
        self.brk = brk
        self.mmap_base = mmap_base
        self.top = top
        # page ranges of shared file mappings whose file is not open for writing
        self.ro_shared: list = []

    def do_brk(self, new: int) -> int:
        """Linux's brk: returns the new break, or the old one when it cannot move."""
        mem = self.mem
        if new < self.brk_start:
            return self.brk
        old_top = page_up(self.brk)
        new_top = page_up(new)
        if new_top > old_top:
            if new_top > self.top or not mem.is_free(old_top, new_top - old_top):
                return self.brk
            try:
                mem.map(old_top, new_top - old_top, PROT_READ | PROT_WRITE)
            except MemoryError:
                return self.brk
        elif new_top < old_top:
            mem.unmap(new_top, old_top - new_top)
        self.brk = new
        return new

    def do_mmap(self, addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
        mem = self.mem
        if length == 0 or offset & _MASK or (flags & MAP_FIXED and addr & _MASK):
            return -errno.EINVAL
        if not flags & (MAP_SHARED | MAP_PRIVATE):
            return -errno.EINVAL
        size = page_up(length)
        if size == 0 or size > self.top:
            return -errno.ENOMEM
        data = b""
        backing = None
        shared = flags & (MAP_SHARED | MAP_PRIVATE) == MAP_SHARED
        file_ro = False
        if not flags & MAP_ANONYMOUS:
            try:
                st = os.fstat(fd)
                if shared:
                    mode = fcntl.fcntl(fd, fcntl.F_GETFL) & 3     # O_ACCMODE
                    if mode == os.O_WRONLY:
                        return -errno.EACCES
                    file_ro = mode == os.O_RDONLY
                    if file_ro and prot & PROT_WRITE:
                        return -errno.EACCES
                    backing = shared_backing(size, fd, offset,
                                             max(0, min(size, st.st_size - offset)), not file_ro)
                else:
                    data = os.pread(fd, min(length, max(0, st.st_size - offset)), offset) \
                        if offset < st.st_size else b""
            except OSError as exc:
                return -(exc.errno or errno.EBADF)
        elif shared:
            backing = shared_backing(size)
        if flags & MAP_FIXED:
            if addr + size > self.top:
                return -errno.ENOMEM
            start = addr
        else:
            top = (1 << 31) if flags & MAP_32BIT and self.bits == 64 else self.top
            hint = addr & ~_MASK if addr else self.mmap_base
            if flags & MAP_FIXED_NOREPLACE:
                if not mem.is_free(hint, size):
                    return -errno.EEXIST
                start = hint
            else:
                try:
                    start = mem.find_free(size, hint=hint, top=top)
                except MemoryError:
                    try:
                        start = mem.find_free(size, hint=self.mmap_base, top=top)
                    except MemoryError:
                        return -errno.ENOMEM
        try:
            mem.map(start, size, prot & 7, data=data, backing=backing,
                    noreserve=bool(flags & MAP_NORESERVE))
        except MemoryError:
            return -errno.ENOMEM
        self._forget_ro(start, size)
        if file_ro:
            self.ro_shared.append((start, start + size))
        return start

    def _forget_ro(self, addr: int, size: int) -> None:
        if self.ro_shared:
            self.ro_shared = [(a, b) for a, b in self.ro_shared if b <= addr or a >= addr + size]

    def do_munmap(self, addr: int, length: int) -> int:
        if addr & _MASK or length == 0 or addr + length > self.top:
            return -errno.EINVAL
        self.mem.unmap(addr, page_up(length))
        self._forget_ro(addr, page_up(length))
        return 0

    def do_mprotect(self, addr: int, length: int, prot: int) -> int:
        if addr & _MASK:
            return -errno.EINVAL
        if length == 0:
            return 0
        end = addr + page_up(length)
        if prot & PROT_WRITE and any(a < end and addr < b for a, b in self.ro_shared):
            return -errno.EACCES
        try:
            self.mem.protect(addr, page_up(length), prot & 7)
        except GuestFault:
            return -errno.ENOMEM
        return 0

    def do_mremap(self, old: int, old_len: int, new_len: int, flags: int, new_addr: int) -> int:
        mem = self.mem
        if old & _MASK or new_len == 0:
            return -errno.EINVAL
        old_size, new_size = page_up(old_len), page_up(new_len)
        if new_size > self.top or old_size > self.top:
            return -errno.ENOMEM
        if not mem.is_mapped(old, old_size):
            return -errno.EFAULT
        if new_size <= old_size and not flags & MREMAP_FIXED:
            if new_size < old_size:
                mem.unmap(old + new_size, old_size - new_size)
            return old
        prot = mem.get_prot(old + old_size - PAGE_SIZE) or 0
        end = old + old_size
        try:
            if not flags & MREMAP_FIXED and old + new_size <= self.top and \
                    mem.is_free(end, new_size - old_size):
                mem.map(end, new_size - old_size, prot, noreserve=True)
                return old
            if not flags & MREMAP_MAYMOVE:
                return -errno.ENOMEM
            if flags & MREMAP_FIXED:
                dest = new_addr
            else:
                try:
                    dest = mem.find_free(new_size, hint=self.mmap_base, top=self.top)
                except MemoryError:
                    return -errno.ENOMEM
            # the same host pages move (contents, protections and sharing)
            keep = min(old_size, new_size)
            mem.remap(old, keep, dest)
            if old_size > keep:
                mem.unmap(old + keep, old_size - keep)
            if new_size > keep:
                mem.map(dest + keep, new_size - keep, prot, noreserve=True)
        except MemoryError:
            return -errno.ENOMEM
        return dest
