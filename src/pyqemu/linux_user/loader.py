"""Load an ELF program (and its interpreter) into a GuestMemory, build the stack.

The layout follows Linux's for the guest ABI: a PIE main program near the
bottom of the mmap area, the interpreter and later mmaps above it, the stack
at the top of the guest address space, and the initial stack holding argc,
argv, envp and the auxiliary vector (without a vDSO: no AT_SYSINFO_EHDR).
"""
from __future__ import annotations

import errno
import os
import struct
from typing import List, Optional, Sequence, Tuple

from pyqemu.linux_user.symbols import SymbolTable
from pyqemu.target.i386.disas import register_symbols
from pyqemu.util import log
from pyqemu.util.error import QemuError
from pyqemu.exec.guest_memory import PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE, GuestMemory
from pyqemu.linux_user.elf import (EM_386, EM_X86_64, ET_DYN, PF_R, PF_W, PF_X, PT_PHDR,
                                   ElfImage, InvalidElf, LoadError, parse_elf, read_program)

AT_NULL = 0
AT_PHDR = 3
AT_PHENT = 4
AT_PHNUM = 5
AT_PAGESZ = 6
AT_BASE = 7
AT_FLAGS = 8
AT_ENTRY = 9
AT_UID = 11
AT_EUID = 12
AT_GID = 13
AT_EGID = 14
AT_PLATFORM = 15
AT_HWCAP = 16
AT_CLKTCK = 17
AT_SECURE = 23
AT_RANDOM = 25
AT_HWCAP2 = 26
AT_EXECFN = 31

DEFAULT_STACK_SIZE = 8 * 1024 * 1024


class Layout:
    """Where things go in a guest address space of ``bits`` bits.

    With ``reserved_va`` (-R, i386 only: x86-64 refuses it as qemu does) the
    address space is [0, reserved_va): the stack at its top, mmaps from its
    middle, a PIE program low."""

    def __init__(self, bits: int, reserved_va: int = 0) -> None:
        self.bits = bits
        if reserved_va and bits == 32:
            top = reserved_va & ~(PAGE_SIZE - 1)
            self.pie_base = PAGE_SIZE * 16
            self.mmap_base = (top // 2) & ~(PAGE_SIZE - 1)
            self.stack_top = top
            self.top = top
        elif bits == 64:
            self.pie_base = 0x555555554000
            self.mmap_base = 0x7F0000000000
            self.stack_top = 0x7FFFFFFFF000
            self.top = 1 << 47
        else:
            self.pie_base = 0x56555000
            self.mmap_base = 0x40000000
            self.stack_top = 0xFFFDE000
            self.top = 1 << 32
        self.word = bits // 8


class ImageInfo:
    """What the CPU and the syscall layer need to know about a loaded program."""

    def __init__(self) -> None:
        self.entry = 0
        self.start_entry = 0          # the interpreter's entry when there is one
        self.load_bias = 0
        self.interp_bias = 0
        self.phdr = 0
        self.phnum = 0
        self.phent = 0
        self.brk = 0
        self.stack_low = 0
        self.stack_top = 0
        self.sp = 0
        self.path = ""
        self.interp: Optional[str] = None
        self.auxv = b""  # the auxiliary vector as the guest sees it (for gdb's qXfer:auxv)


def _prot_of(flags: int) -> int:
    prot = 0
    if flags & PF_R:
        prot |= PROT_READ
    if flags & PF_W:
        prot |= PROT_WRITE
    if flags & PF_X:
        prot |= PROT_EXEC
    return prot


def map_image(mem: GuestMemory, img: ElfImage, layout: Layout, base_hint: int) -> Tuple[int, int]:
    """Map the PT_LOAD segments of ``img``; returns (load bias, end of highest segment)."""
    loads = img.loads
    lo = min(p.vaddr for p in loads) & ~(PAGE_SIZE - 1)
    hi = max(p.vaddr + p.memsz for p in loads)
    span = ((hi - lo) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    if span == 0 or span > layout.top:
        raise InvalidElf(img.path, "Invalid PT_LOAD entry: segment outside the address space")
    bias = 0
    if img.etype == ET_DYN:
        try:
            start = mem.find_free(span, hint=max(base_hint, lo), top=layout.stack_top - (64 << 20))
        except MemoryError:
            raise InvalidElf(img.path, "Not enough memory to load the image") from None
        bias = start - lo
    elif hi > layout.stack_top - DEFAULT_STACK_SIZE:
        raise InvalidElf(img.path, "Invalid PT_LOAD entry: segment outside the address space")
    # Page intervals with the union of the protections of the segments that
    # touch them (segments may share a page), computed on boundaries so that
    # a huge bss costs nothing here.
    segs = []
    for p in loads:
        if p.memsz:
            segs.append(((p.vaddr + bias) // PAGE_SIZE,
                         (p.vaddr + bias + p.memsz - 1) // PAGE_SIZE + 1, _prot_of(p.flags)))
    cuts = sorted({c for a, b, _ in segs for c in (a, b)})
    pieces = []
    for a, b in zip(cuts, cuts[1:]):
        prot = 0
        covered = False
        for s0, s1, sp in segs:
            if s0 <= a and b <= s1:
                prot |= sp
                covered = True
        if covered:
            pieces.append((a, b, prot))
    try:
        run_start = None
        prev_end = None
        for a, b, _ in pieces + [(None, None, 0)]:
            if run_start is not None and a != prev_end:
                mem.map(run_start * PAGE_SIZE, (prev_end - run_start) * PAGE_SIZE,
                        PROT_READ | PROT_WRITE)
                run_start = None
            if a is None:
                break
            if run_start is None:
                run_start = a
            prev_end = b
    except MemoryError:
        raise InvalidElf(img.path, "Not enough memory to load the image") from None
    for p in loads:
        if p.filesz:
            mem.write(p.vaddr + bias, img.data[p.offset:p.offset + p.filesz])
    for a, b, prot in pieces:
        mem.protect(a * PAGE_SIZE, (b - a) * PAGE_SIZE, prot)
    return bias, hi + bias


def _phdr_addr(img: ElfImage, bias: int) -> int:
    for p in img.phdrs:
        if p.type == PT_PHDR:
            return p.vaddr + bias
    for p in img.loads:
        if p.offset <= img.phoff < p.offset + p.filesz:
            return p.vaddr + (img.phoff - p.offset) + bias
    return 0


def interp_path(interp: str, prefix: Optional[str]) -> str:
    """QEMU's path(): look under the -L prefix first, then the real path."""
    if prefix and prefix != "/":
        cand = os.path.join(prefix, interp.lstrip("/"))
        if os.path.exists(cand):
            return cand
    return interp


class AddressSpaceError(QemuError):
    """The program does not fit what -R/-B leave of the address space
    (qemu reports it with the program name and exit status 1)."""


# qemu keeps this much room for the heap above an image when it checks that
# the image fits a reserved address space
_BRK_RESERVE = {64: 32 << 20, 32: 16 << 20}
_HOST_MIN_ADDR = 0x10000          # the host's mmap_min_addr
_HOST_TOP = 1 << 47


def check_address_space(path: str, img: ElfImage, bits: int, reserved_va: int,
                        guest_base: int) -> None:
    """qemu's checks of -R and -B against the program's PT_LOAD segments."""
    loads = img.loads
    lo = min(p.vaddr for p in loads) & ~(PAGE_SIZE - 1)
    hi = max(p.vaddr + p.memsz for p in loads)
    needed = hi + _BRK_RESERVE[bits]
    if reserved_va and needed > reserved_va:
        raise AddressSpaceError("%s: requires more than reserved virtual address space "
                                "(0x%x > 0x%x)" % (path, needed, reserved_va))
    if guest_base:
        first = guest_base if reserved_va else guest_base + (lo if img.etype != ET_DYN else 0)
        end = guest_base + (reserved_va or needed)
        if first < _HOST_MIN_ADDR or end > _HOST_TOP:
            raise AddressSpaceError("%s: requires virtual address space that is in use (omit "
                                    "the -B option or choose a different value)" % path)
    if reserved_va and bits == 64:
        # the vsyscall page sits at the top of the 64-bit address space, which
        # no reservation can include
        raise AddressSpaceError("Cannot allocate vsyscall page")


def load_program(mem: GuestMemory, path: str, argv: Sequence[str], envp: Sequence[str],
                 bits: int = 64, prefix: Optional[str] = None, stack_size: int = DEFAULT_STACK_SIZE,
                 hwcap: int = 0, hwcap2: int = 0, random_bytes: Optional[bytes] = None,
                 execfn: Optional[str] = None, reserved_va: int = 0,
                 guest_base: int = 0) -> ImageInfo:
    """Load ``path`` for an x86 guest of ``bits`` bits and build its initial stack."""
    machine = EM_X86_64 if bits == 64 else EM_386
    layout = Layout(bits, reserved_va)
    img = parse_elf(path, read_program(path), machine)
    check_address_space(path, img, bits, reserved_va, guest_base)
    info = ImageInfo()
    info.path = path
    bias, end = map_image(mem, img, layout, layout.pie_base)
    info.load_bias = bias
    info.entry = img.entry + bias
    info.start_entry = info.entry
    info.phdr = _phdr_addr(img, bias)
    info.phnum = len(img.phdrs)
    info.phent = img.phentsize
    info.brk = (end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    if log.enabled("in_asm"):       # only then are names needed (and the file kept)
        register_symbols(SymbolTable(img.data, img.bits, bias).lookup)
    if img.interp is not None:
        ipath = interp_path(img.interp, prefix)
        info.interp = ipath
        iimg = parse_elf(ipath, read_program(ipath), machine)
        if iimg.interp is not None:
            raise InvalidElf(ipath)
        ibias, _iend = map_image(mem, iimg, layout, layout.mmap_base)
        info.interp_bias = ibias
        if log.enabled("in_asm"):
            register_symbols(SymbolTable(iimg.data, iimg.bits, ibias).lookup)
        info.start_entry = iimg.entry + ibias
    if stack_size < PAGE_SIZE * 4 or stack_size > layout.top // 4:
        raise InvalidElf(path, "Invalid stack size")
    stack_size = (stack_size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    info.stack_top = layout.stack_top
    info.stack_low = layout.stack_top - stack_size
    mem.map(info.stack_low, stack_size, PROT_READ | PROT_WRITE)
    info.sp = build_stack(mem, info, layout, argv, envp, hwcap, hwcap2,
                          random_bytes if random_bytes is not None else os.urandom(16),
                          execfn if execfn is not None else path)
    return info


def build_stack(mem: GuestMemory, info: ImageInfo, layout: Layout, argv: Sequence[str],
                envp: Sequence[str], hwcap: int, hwcap2: int, random_bytes: bytes,
                execfn: str) -> int:
    """Write strings, auxv, envp, argv and argc below ``info.stack_top``; returns sp."""
    w = layout.word
    sp = info.stack_top
    strings = sum(len(os.fsencode(x)) + 1 for x in list(argv) + list(envp) + [execfn])
    if strings + w * (len(argv) + len(envp) + 48) + 64 > info.stack_top - info.stack_low - PAGE_SIZE:
        raise LoadError(info.path, errno.E2BIG)

    def push_bytes(data: bytes) -> int:
        nonlocal sp
        sp -= len(data)
        mem.write(sp, data)
        return sp

    execfn_addr = push_bytes(os.fsencode(execfn) + b"\0")
    env_addrs = [push_bytes(os.fsencode(e) + b"\0") for e in reversed(envp)][::-1]
    arg_addrs = [push_bytes(os.fsencode(a) + b"\0") for a in reversed(argv)][::-1]
    platform = push_bytes(b"x86_64\0" if layout.bits == 64 else b"i686\0")
    sp &= ~15
    rand_addr = push_bytes(random_bytes[:16].ljust(16, b"\0"))
    auxv = [
        (AT_PHDR, info.phdr), (AT_PHENT, info.phent), (AT_PHNUM, info.phnum),
        (AT_PAGESZ, PAGE_SIZE), (AT_BASE, info.interp_bias if info.interp else 0),
        (AT_FLAGS, 0), (AT_ENTRY, info.entry), (AT_UID, os.getuid()), (AT_EUID, os.geteuid()),
        (AT_GID, os.getgid()), (AT_EGID, os.getegid()), (AT_HWCAP, hwcap), (AT_CLKTCK, 100),
        (AT_RANDOM, rand_addr), (AT_SECURE, 0), (AT_HWCAP2, hwcap2), (AT_EXECFN, execfn_addr),
        (AT_PLATFORM, platform), (AT_NULL, 0),
    ]
    words: List[int] = [len(argv)] + arg_addrs + [0] + env_addrs + [0]
    for key, val in auxv:
        words += [key, val]
    info.auxv = struct.pack("<%d%s" % (2 * len(auxv), "Q" if w == 8 else "I"),
                            *[x & ((1 << (8 * w)) - 1) for kv in auxv for x in kv])
    fmt = "<%d%s" % (len(words), "Q" if w == 8 else "I")
    blob = struct.pack(fmt, *[x & ((1 << (8 * w)) - 1) for x in words])
    sp = (sp - len(blob)) & ~15
    mem.write(sp, blob)
    return sp
