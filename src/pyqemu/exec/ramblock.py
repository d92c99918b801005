"""RAM blocks: guest RAM as ``mmap`` memory (anonymous, or a file for -mem-path
and memory-backend-file), laid out in one ``ram_addr`` space like QEMU's
ram_list, and ``info ramblock``.
"""
from __future__ import annotations

import mmap
import os
from typing import List, Optional

from pyqemu.util.error import QemuError
from pyqemu.util.units import size_to_str

TARGET_PAGE_SIZE = 4096


class RAMBlock:
    """One contiguous piece of guest RAM backed by an ``mmap``."""

    def __init__(self, idstr: str, size: int, *, path: Optional[str] = None, share: bool = False,
                 readonly: bool = False, prealloc: bool = False) -> None:
        if size <= 0:
            raise QemuError("cannot allocate a RAM block of size 0")
        self.idstr = idstr
        self.used_length = size
        self.max_length = size
        self.page_size = TARGET_PAGE_SIZE
        self.path = path
        self.fd = -1
        self.offset = 0
        if path is None:
            self.mem = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        else:
            self.mem = self._map_file(path, size, share, readonly)
        if prealloc:
            # Touch each page so that allocation failures happen now.
            for off in range(0, size, self.page_size):
                self.mem[off] = self.mem[off]

    def _map_file(self, path: str, size: int, share: bool, readonly: bool) -> mmap.mmap:
        try:
            if os.path.isdir(path):
                # -mem-path DIR: an unlinked temporary file inside it, as QEMU makes.
                fd = os.open(path, os.O_TMPFILE | os.O_RDWR, 0o600)
            else:
                fd = os.open(path, (os.O_RDONLY if readonly else os.O_RDWR) | os.O_CREAT, 0o644)
        except OSError as e:
            raise QemuError("can't open backing store %s for guest RAM: %s" % (path, e.strerror))
        try:
            st = os.fstat(fd)
            if st.st_size < size and not readonly:
                os.ftruncate(fd, size)
            elif st.st_size < size:
                raise QemuError("backing store size 0x%x does not match 'size' option 0x%x"
                                % (st.st_size, size))
            flags = mmap.MAP_SHARED if share else mmap.MAP_PRIVATE
            prot = mmap.PROT_READ | (0 if readonly else mmap.PROT_WRITE)
            mem = mmap.mmap(fd, size, flags=flags, prot=prot)
        except OSError as e:
            os.close(fd)
            raise QemuError("unable to map backing store for guest RAM: %s" % e.strerror)
        self.fd = fd
        # hugetlbfs reports its huge page size here, as QEMU's PSize column shows.
        self.page_size = max(TARGET_PAGE_SIZE, os.fstatvfs(fd).f_bsize)
        return mem

    def close(self) -> None:
        try:
            self.mem.close()
        except (BufferError, ValueError):
            pass
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class RAMList:
    """All RAM blocks, each at its own offset in the ram_addr space."""

    def __init__(self) -> None:
        self.blocks: List[RAMBlock] = []

    def add(self, block: RAMBlock) -> RAMBlock:
        if block.idstr and any(b.idstr == block.idstr for b in self.blocks):
            raise QemuError("RAMBlock \"%s\" already registered" % block.idstr)
        # First fit on page-aligned boundaries, like find_ram_offset.
        end = 0
        for b in sorted(self.blocks, key=lambda b: b.offset):
            end = max(end, b.offset + b.max_length)
        block.offset = (end + TARGET_PAGE_SIZE - 1) & ~(TARGET_PAGE_SIZE - 1)
        self.blocks.append(block)
        return block

    def remove(self, block: RAMBlock) -> None:
        if block in self.blocks:
            self.blocks.remove(block)
            block.close()

    def clear(self) -> None:
        for b in self.blocks:
            b.close()
        del self.blocks[:]

    def find(self, idstr: str) -> Optional[RAMBlock]:
        for b in self.blocks:
            if b.idstr == idstr:
                return b
        return None

    def format_info(self) -> str:
        """The text of HMP ``info ramblock``."""
        lines = ["%24s %8s  %18s %18s %18s" % ("Block Name", "PSize", "Offset", "Used", "Total")]
        for b in self.blocks:
            lines.append("%24s %8s  0x%016x 0x%016x 0x%016x" % (
                b.idstr, size_to_str(b.page_size), b.offset, b.used_length, b.max_length))
        return "\n".join(lines) + "\n"


ram_list = RAMList()
