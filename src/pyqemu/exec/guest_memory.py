"""A Linux user-mode guest address space.

Guest virtual memory is kept in 4 KiB pages, each a ``memoryview`` slice of an
anonymous ``mmap`` made for the mapping that created it (ARCHITECTURE.md
decision 3).  Translated code reaches memory through two dictionaries,
``rpages`` and ``wpages`` (page number -> page view), which hold only pages
whose protection allows the access; anything else takes the slow path here,
which either raises :class:`GuestFault` or handles the special case (an
access crossing a page, or a write to a page that holds translated code).

Pages holding translated code are removed from ``wpages`` so that the first
write to them comes here and invalidates the translations (self-modifying
code, the loader or ``mmap`` writing over code).
"""
from __future__ import annotations

import bisect
import ctypes
import mmap
import os
import struct
import threading
from typing import Callable, Dict, List, Optional, Set, Tuple

PROT_READ = 1
PROT_WRITE = 2
PROT_EXEC = 4

PAGE_BITS = 12
PAGE_SIZE = 1 << PAGE_BITS
PAGE_MASK = PAGE_SIZE - 1
# Guest addresses above this are never mapped (x86-64 user half, 47 bits).
ADDR_LIMIT = 1 << 47

_MAP_NORESERVE = 0x4000
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_FMT = {1: struct.Struct("<B"), 2: _U16, 4: _U32, 8: _U64}


class GuestFault(Exception):
    """A guest access to an unmapped page or one whose protection forbids it."""

    def __init__(self, addr: int, is_write: bool) -> None:
        super().__init__("guest fault at 0x%x (%s)" % (addr, "write" if is_write else "read"))
        self.addr = addr
        self.is_write = is_write


def _page_round(length: int) -> int:
    return (length + PAGE_MASK) & ~PAGE_MASK


class _Region:
    """A run of mapped guest pages [start, end) (page numbers) with one
    protection, backed by ``mm`` from page ``base`` of it on."""

    __slots__ = ("start", "end", "mm", "view", "base", "prot", "shared")

    def __init__(self, start: int, end: int, mm: mmap.mmap, view: memoryview, base: int,
                 prot: int, shared: bool) -> None:
        self.start = start
        self.end = end
        self.mm = mm
        self.view = view
        self.base = base
        self.prot = prot
        self.shared = shared

    def cut(self, at: int) -> "_Region":
        """Split at page ``at``: self keeps [start, at), returns [at, end)."""
        tail = _Region(at, self.end, self.mm, self.view, self.base + (at - self.start),
                       self.prot, self.shared)
        self.end = at
        return tail


class _Pages(dict):
    """page number -> memoryview of the page, filled on first use from the
    mappings (a mapped page that was never touched costs nothing)."""

    __slots__ = ("owner",)

    def get(self, pn, default=None):
        v = dict.get(self, pn)
        if v is None:
            v = self.owner._materialize(pn)
            if v is None:
                return default
        return v

    def __contains__(self, pn) -> bool:
        return dict.__contains__(self, pn) or self.owner._region(pn) is not None

    def __getitem__(self, pn):
        v = self.get(pn)
        if v is None:
            raise KeyError(pn)
        return v


class GuestMemory:
    """Guest address space with page protections (see module docstring).

    The mappings are a sorted list of regions; the per-page dictionaries the
    translated code uses (``rpages``/``wpages``, and ``pages``/``prot``) only
    hold pages that have been accessed, so the cost of a mapping is its
    touched pages, as the host kernel's is (huge reservations are cheap)."""

    def __init__(self) -> None:
        self.pages: Dict[int, memoryview] = _Pages()
        self.pages.owner = self
        self.prot: Dict[int, int] = {}
        self.rpages: Dict[int, memoryview] = {}
        self.wpages: Dict[int, memoryview] = {}
        # Pages holding translated code: page number -> callback invalidating them.
        self.code_pages: Set[int] = set()
        self.on_code_write: Optional[Callable[[int], None]] = None
        self.lock = threading.RLock()
        self._regions: List[_Region] = []
        self._starts: List[int] = []

    # -- regions ----------------------------------------------------------
    def _region(self, pn: int) -> Optional[_Region]:
        i = bisect.bisect_right(self._starts, pn) - 1
        if i >= 0:
            r = self._regions[i]
            if pn < r.end:
                return r
        return None

    def _materialize(self, pn: int) -> Optional[memoryview]:
        with self.lock:
            view = dict.get(self.pages, pn)
            if view is not None:
                return view
            r = self._region(pn)
            if r is None:
                return None
            off = (r.base + pn - r.start) << PAGE_BITS
            view = r.view[off:off + PAGE_SIZE]
            dict.__setitem__(self.pages, pn, view)
            self._set_prot(pn, r.prot)
            return view

    def _split_at(self, pn: int) -> None:
        """Make ``pn`` the start of a region if it is inside one."""
        i = bisect.bisect_right(self._starts, pn) - 1
        if i >= 0:
            r = self._regions[i]
            if r.start < pn < r.end:
                tail = r.cut(pn)
                self._regions.insert(i + 1, tail)
                self._starts.insert(i + 1, pn)

    def _span(self, first: int, last: int) -> range:
        """Indexes of the regions inside [first, last) (after splitting there)."""
        self._split_at(first)
        self._split_at(last)
        lo = bisect.bisect_left(self._starts, first)
        hi = bisect.bisect_left(self._starts, last)
        return range(lo, hi)

    def _touched(self, first: int, last: int):
        """Materialized page numbers in [first, last)."""
        pages = self.pages
        if last - first <= len(pages):
            return [pn for pn in range(first, last) if dict.__contains__(pages, pn)]
        return [pn for pn in list(dict.keys(pages)) if first <= pn < last]

    # -- mappings ---------------------------------------------------------
    def _check_range(self, addr: int, length: int) -> None:
        if addr & PAGE_MASK or length < 0 or addr < 0 or addr + length > ADDR_LIMIT:
            raise ValueError("bad guest range 0x%x+0x%x" % (addr, length))

    def _set_prot(self, pn: int, prot: int) -> None:
        self.prot[pn] = prot
        view = dict.get(self.pages, pn)
        if prot & PROT_READ or prot & PROT_EXEC:
            self.rpages[pn] = view
        else:
            self.rpages.pop(pn, None)
        if prot & PROT_WRITE and pn not in self.code_pages:
            self.wpages[pn] = view
        else:
            self.wpages.pop(pn, None)

    def map(self, addr: int, length: int, prot: int, data: bytes = b"",
            offset_in_page: int = 0, backing: Optional[mmap.mmap] = None,
            noreserve: bool = False) -> None:
        """Map zeroed pages [addr, addr+length), replacing what was there.

        ``backing`` is the host memory to use instead of fresh private pages
        (a shared mapping, see :func:`shared_backing`).  Only touched pages
        cost host memory; a PROT_NONE mapping (a reservation) or one the guest
        asked MAP_NORESERVE for is made without commitment, as qemu's host
        mapping of it is, and any other one is subject to the host's
        overcommit policy as qemu's is.
        Raises MemoryError if the host refuses."""
        length = _page_round(length)
        self._check_range(addr, length)
        if not length:
            return
        if len(data) + offset_in_page > length:
            raise ValueError("initial data larger than the mapping")
        with self.lock:
            if backing is not None:
                mm = backing
            else:
                try:
                    mm = mmap.mmap(-1, length, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS |
                                   (_MAP_NORESERVE if noreserve or not prot else 0))
                except (OSError, OverflowError, ValueError):
                    raise MemoryError("host refused %d bytes" % length) from None
            self.unmap(addr, length)
            if data:
                mm[offset_in_page:offset_in_page + len(data)] = data
            first = addr >> PAGE_BITS
            r = _Region(first, first + (length >> PAGE_BITS), mm, memoryview(mm), 0, prot,
                        backing is not None)
            i = bisect.bisect_left(self._starts, first)
            self._regions.insert(i, r)
            self._starts.insert(i, first)

    def remap(self, old: int, length: int, new: int) -> None:
        """Move the mappings of [old, old+length) to ``new`` (mremap): the
        same host pages, so the contents (and sharing) move without a copy."""
        length = _page_round(length)
        self._check_range(old, length)
        self._check_range(new, length)
        with self.lock:
            first, last = old >> PAGE_BITS, (old + length) >> PAGE_BITS
            moved = [self._regions[i] for i in self._span(first, last)]
            self.unmap(old, length)
            self.unmap(new, length)
            delta = (new >> PAGE_BITS) - first
            for r in moved:
                nr = _Region(r.start + delta, r.end + delta, r.mm, r.view, r.base, r.prot,
                             r.shared)
                i = bisect.bisect_left(self._starts, nr.start)
                self._regions.insert(i, nr)
                self._starts.insert(i, nr.start)

    def unmap(self, addr: int, length: int) -> None:
        length = _page_round(length)
        self._check_range(addr, length)
        with self.lock:
            first, last = addr >> PAGE_BITS, (addr + length) >> PAGE_BITS
            span = self._span(first, last)
            if len(span):
                del self._regions[span.start:span.stop]
                del self._starts[span.start:span.stop]
            for pn in self._touched(first, last):
                self._invalidate_code(pn)
                dict.__delitem__(self.pages, pn)
                del self.prot[pn]
                self.rpages.pop(pn, None)
                self.wpages.pop(pn, None)

    def protect(self, addr: int, length: int, prot: int) -> None:
        """Change protections; raises GuestFault if part of the range is unmapped."""
        length = _page_round(length)
        self._check_range(addr, length)
        with self.lock:
            first, last = addr >> PAGE_BITS, (addr + length) >> PAGE_BITS
            hole = self._first_hole(first, last)
            if hole is not None:
                raise GuestFault(hole << PAGE_BITS, False)
            for i in self._span(first, last):
                self._regions[i].prot = prot
            for pn in self._touched(first, last):
                if not prot & PROT_EXEC:
                    self._invalidate_code(pn)
                self._set_prot(pn, prot)

    def _first_hole(self, first: int, last: int) -> Optional[int]:
        """The first unmapped page in [first, last), or None."""
        pn = first
        i = bisect.bisect_right(self._starts, pn) - 1
        if i < 0:
            i = 0
        regions = self._regions
        while pn < last:
            while i < len(regions) and regions[i].end <= pn:
                i += 1
            if i == len(regions) or regions[i].start > pn:
                return pn
            pn = regions[i].end
        return None

    def get_prot(self, addr: int) -> Optional[int]:
        pn = addr >> PAGE_BITS
        p = self.prot.get(pn)
        if p is None:
            r = self._region(pn)
            return None if r is None else r.prot
        return p

    def is_mapped(self, addr: int, length: int) -> bool:
        first = addr >> PAGE_BITS
        if length <= 0:
            return self._region(first) is not None
        last = ((addr + length - 1) >> PAGE_BITS) + 1
        return self._first_hole(first, last) is None

    def is_free(self, addr: int, length: int) -> bool:
        """No page of [addr, addr+length) is mapped."""
        first = addr >> PAGE_BITS
        last = (addr + length + PAGE_MASK) >> PAGE_BITS
        i = bisect.bisect_right(self._starts, first) - 1
        if i >= 0 and self._regions[i].end > first:
            return False
        j = bisect.bisect_left(self._starts, first)
        return j == len(self._starts) or self._starts[j] >= last

    def host_address(self, addr: int) -> int:
        """The host address of mapped guest byte ``addr`` (for host futexes)."""
        view = self.pages.get(addr >> PAGE_BITS)
        if view is None:
            raise GuestFault(addr, False)
        cell = ctypes.c_char.from_buffer(view, addr & PAGE_MASK)
        try:
            return ctypes.addressof(cell)
        finally:
            del cell

    def is_shared(self, addr: int) -> bool:
        r = self._region(addr >> PAGE_BITS)
        return r is not None and r.shared

    def mappings(self) -> List[Tuple[int, int, int]]:
        """(start address, end address, protection) of each mapped run."""
        return [(r.start << PAGE_BITS, r.end << PAGE_BITS, r.prot) for r in self._regions]

    def find_free(self, length: int, hint: int = 0, top: Optional[int] = None) -> int:
        """Lowest free page-aligned range of ``length`` bytes at or above ``hint``."""
        npages = _page_round(length) >> PAGE_BITS
        limit = (top if top is not None else ADDR_LIMIT) >> PAGE_BITS
        pn = max(_page_round(hint), PAGE_SIZE * 16) >> PAGE_BITS
        i = max(0, bisect.bisect_right(self._starts, pn) - 1)
        regions = self._regions
        while pn + npages <= limit:
            while i < len(regions) and regions[i].end <= pn:
                i += 1
            if i == len(regions) or regions[i].start >= pn + npages:
                return pn << PAGE_BITS
            pn = regions[i].end
        raise MemoryError("no free guest range of %d bytes" % length)

    # -- code tracking (used by the translation-block cache) --------------
    def mark_code(self, pn: int) -> None:
        """Note that page ``pn`` holds translated code: route its writes here."""
        self.code_pages.add(pn)
        self.wpages.pop(pn, None)

    def _invalidate_code(self, pn: int) -> None:
        if pn in self.code_pages:
            self.code_pages.discard(pn)
            if dict.__contains__(self.pages, pn):
                self._set_prot(pn, self.prot[pn])
            cb = self.on_code_write
            if cb is not None:
                cb(pn)

    # -- accesses (with protection checks) ---------------------------------
    def _view(self, addr: int, is_write: bool) -> memoryview:
        pn = addr >> PAGE_BITS
        view = (self.wpages if is_write else self.rpages).get(pn)
        if view is None and not dict.__contains__(self.pages, pn) and self._materialize(pn):
            view = (self.wpages if is_write else self.rpages).get(pn)
        if view is None:
            if is_write and pn in self.code_pages and self.prot.get(pn, 0) & PROT_WRITE:
                self._invalidate_code(pn)
                return self.pages[pn]
            raise GuestFault(addr, is_write)
        return view

    def read(self, addr: int, length: int) -> bytes:
        if length <= 0:
            return b""
        out = []
        while length:
            off = addr & PAGE_MASK
            n = min(length, PAGE_SIZE - off)
            out.append(self._view(addr, False)[off:off + n].tobytes())
            addr += n
            length -= n
        return b"".join(out)

    def write(self, addr: int, data: bytes) -> None:
        data = memoryview(bytes(data))
        # Check every page first so that a faulting write changes nothing.
        pos, a, length = 0, addr, len(data)
        views = []
        while pos < length:
            off = a & PAGE_MASK
            n = min(length - pos, PAGE_SIZE - off)
            views.append((self._view(a, True), off, n))
            a += n
            pos += n
        pos = 0
        for view, off, n in views:
            view[off:off + n] = data[pos:pos + n]
            pos += n

    def read_cstring(self, addr: int, max: int = 4096) -> bytes:
        out = bytearray()
        while len(out) < max:
            off = addr & PAGE_MASK
            chunk = self._view(addr, False)[off:].tobytes()
            nul = chunk.find(b"\0")
            if nul >= 0:
                out += chunk[:nul]
                break
            out += chunk
            addr += len(chunk)
        return bytes(out[:max])

    def load(self, addr: int, size: int) -> int:
        """Little-endian unsigned load of 1/2/4/8/16 bytes (the translator's slow path)."""
        off = addr & PAGE_MASK
        if off + size <= PAGE_SIZE and size in _FMT:
            return _FMT[size].unpack_from(self._view(addr, False), off)[0]
        return int.from_bytes(self.read(addr, size), "little")

    def store(self, addr: int, value: int, size: int) -> None:
        off = addr & PAGE_MASK
        if off + size <= PAGE_SIZE and size in _FMT:
            _FMT[size].pack_into(self._view(addr, True), off, value & ((1 << (size * 8)) - 1))
        else:
            self.write(addr, (value & ((1 << (size * 8)) - 1)).to_bytes(size, "little"))

    def read_u8(self, addr: int) -> int:
        return self.load(addr, 1)

    def read_u16(self, addr: int) -> int:
        return self.load(addr, 2)

    def read_u32(self, addr: int) -> int:
        return self.load(addr, 4)

    def read_u64(self, addr: int) -> int:
        return self.load(addr, 8)

    def write_u8(self, addr: int, value: int) -> None:
        self.store(addr, value, 1)

    def write_u16(self, addr: int, value: int) -> None:
        self.store(addr, value, 2)

    def write_u32(self, addr: int, value: int) -> None:
        self.store(addr, value, 4)

    def write_u64(self, addr: int, value: int) -> None:
        self.store(addr, value, 8)

    def fetch(self, addr: int, length: int) -> bytes:
        """Instruction fetch: needs PROT_EXEC (PROT_READ is accepted as x86 does)."""
        return self.read(addr, length)


# -- shared host memory ----------------------------------------------------------------
_libc = None


def _host_mmap():
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(None, use_errno=True)      # the C library already loaded
        lib.mmap.restype = ctypes.c_void_p
        lib.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                             ctypes.c_int, ctypes.c_long]
        _libc = lib
    return _libc.mmap


def shared_backing(length: int, fd: int = -1, offset: int = 0, file_bytes: int = 0,
                   writable: bool = True) -> mmap.mmap:
    """Host memory for a guest MAP_SHARED mapping of ``length`` bytes.

    Anonymous: host MAP_SHARED|MAP_ANONYMOUS memory, so a forked child (a host
    fork) keeps sharing it with its parent.  File: the first ``file_bytes``
    (the part of the mapping the file covers, page-rounded by the kernel) are
    the file's pages mapped MAP_SHARED over the anonymous block, so writes
    reach the file and other processes.  Python's mmap refuses lengths beyond
    a file's end, hence the overlay; the mmap object owns the whole range and
    unmaps it (file part included) when it is released.  Pages wholly beyond
    the end of the file read as zeros (Linux would raise SIGBUS).
    """
    mm = mmap.mmap(-1, length, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
    if fd >= 0 and file_bytes > 0:
        buf = ctypes.c_char.from_buffer(mm)
        base = ctypes.addressof(buf)
        del buf
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        res = _host_mmap()(base, _page_round(file_bytes), prot,
                           mmap.MAP_SHARED | 0x10, fd, offset)    # 0x10: MAP_FIXED
        if res is None or res == ctypes.c_void_p(-1).value:
            err = ctypes.get_errno()
            mm.close()
            raise OSError(err, os.strerror(err))
    return mm
