"""ELF executable parsing and validation for the user-mode loader.

Only what loading needs is parsed: the file header, the program headers and
the PT_INTERP path.  Every field read from the file is checked before it is
used, so a truncated or hostile file gives a :class:`LoadError` in QEMU's
words instead of a traceback or a huge allocation.
"""
from __future__ import annotations

import errno
import os
import struct
from typing import List, Optional

from pyqemu.util.error import QemuError

ELFMAG = b"\x7fELF"
ELFCLASS32 = 1
ELFCLASS64 = 2
ELFDATA2LSB = 1
ET_EXEC = 2
ET_DYN = 3
EM_386 = 3
EM_X86_64 = 62

PT_LOAD = 1
PT_DYNAMIC = 2
PT_INTERP = 3
PT_PHDR = 6
PT_GNU_STACK = 0x6474E551

PF_X = 1
PF_W = 2
PF_R = 4

# A real program never has more program headers than this; the bound keeps a
# hostile e_phnum from making us read megabytes.
MAX_PHNUM = 4096
MAX_INTERP = 4096

_EHDR64 = struct.Struct("<16sHHIQQQIHHHHHH")
_EHDR32 = struct.Struct("<16sHHIIIIIHHHHHH")
_PHDR64 = struct.Struct("<IIQQQQQQ")
_PHDR32 = struct.Struct("<IIIIIIII")


class LoadError(QemuError):
    """The program cannot be executed: printed as ``Error while loading``."""

    def __init__(self, path: str, err: int) -> None:
        super().__init__("Error while loading %s: %s" % (path, os.strerror(err)), errno=err)
        self.path = path


class InvalidElf(QemuError):
    """A well-formed ELF file that is wrong for this target, or a broken one."""

    def __init__(self, path: str, what: str = "Invalid ELF image for this architecture") -> None:
        super().__init__("%s: %s" % (path, what))
        self.path = path


class ProgramHeader:
    __slots__ = ("type", "flags", "offset", "vaddr", "filesz", "memsz", "align")

    def __init__(self, type: int, flags: int, offset: int, vaddr: int, filesz: int,
                 memsz: int, align: int) -> None:
        self.type = type
        self.flags = flags
        self.offset = offset
        self.vaddr = vaddr
        self.filesz = filesz
        self.memsz = memsz
        self.align = align


class ElfImage:
    """A parsed, validated ELF executable (the file's bytes are kept)."""

    def __init__(self, path: str, data: bytes, bits: int, etype: int, machine: int,
                 entry: int, phoff: int, phentsize: int, phdrs: List[ProgramHeader],
                 interp: Optional[str]) -> None:
        self.path = path
        self.data = data
        self.bits = bits
        self.etype = etype
        self.machine = machine
        self.entry = entry
        self.phoff = phoff
        self.phentsize = phentsize
        self.phdrs = phdrs
        self.interp = interp

    @property
    def loads(self) -> List[ProgramHeader]:
        return [p for p in self.phdrs if p.type == PT_LOAD]

    def exec_stack(self) -> bool:
        for p in self.phdrs:
            if p.type == PT_GNU_STACK:
                return bool(p.flags & PF_X)
        return True


def read_program(path: str, max_size: int = 1 << 31) -> bytes:
    """Read an executable as execve(2) would judge it (exists, file, +x)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise LoadError(path, exc.errno or errno.ENOENT) from None
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise LoadError(path, errno.EACCES)
    if st.st_size > max_size:
        raise LoadError(path, errno.ENOMEM)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise LoadError(path, exc.errno or errno.EIO) from None


def parse_elf(path: str, data: bytes, machine: int) -> ElfImage:
    """Parse and validate ``data`` as an executable for ``machine``."""
    if len(data) < 4 or data[:4] != ELFMAG:
        raise LoadError(path, errno.ENOEXEC)
    if len(data) < 16:
        raise LoadError(path, errno.ENOEXEC)
    bits = 64 if machine == EM_X86_64 else 32
    want_class = ELFCLASS64 if bits == 64 else ELFCLASS32
    if data[4] != want_class or data[5] != ELFDATA2LSB:
        raise InvalidElf(path)
    ehdr = _EHDR64 if bits == 64 else _EHDR32
    if len(data) < ehdr.size:
        raise LoadError(path, errno.ENOEXEC)
    (_ident, etype, emach, _ver, entry, phoff, _shoff, _flags, _ehsize,
     phentsize, phnum, _shentsize, _shnum, _shstrndx) = ehdr.unpack_from(data, 0)
    if emach != machine or etype not in (ET_EXEC, ET_DYN):
        raise InvalidElf(path)
    phdr = _PHDR64 if bits == 64 else _PHDR32
    if phentsize != phdr.size or phnum == 0 or phnum > MAX_PHNUM:
        raise InvalidElf(path)
    if phoff + phnum * phentsize > len(data):
        raise InvalidElf(path, "Incomplete read of file header")
    limit = 1 << bits
    phdrs = []
    for i in range(phnum):
        fields = phdr.unpack_from(data, phoff + i * phentsize)
        if bits == 64:
            ptype, flags, off, vaddr, _paddr, filesz, memsz, align = fields
        else:
            ptype, off, vaddr, _paddr, filesz, memsz, flags, align = fields
        ph = ProgramHeader(ptype, flags, off, vaddr, filesz, memsz, align)
        if ptype == PT_LOAD:
            _check_load(path, ph, len(data), limit)
        phdrs.append(ph)
    if not any(p.type == PT_LOAD for p in phdrs):
        raise InvalidElf(path)
    interp = None
    for p in phdrs:
        if p.type == PT_INTERP:
            if p.filesz < 2 or p.filesz > MAX_INTERP or p.offset + p.filesz > len(data):
                raise InvalidElf(path, "Invalid PT_INTERP entry")
            raw = data[p.offset:p.offset + p.filesz]
            if raw[-1:] != b"\0" or b"\0" in raw[:-1]:
                raise InvalidElf(path, "Invalid PT_INTERP entry")
            interp = os.fsdecode(raw[:-1])
    return ElfImage(path, data, bits, etype, emach, entry, phoff, phentsize, phdrs, interp)


def _check_load(path: str, ph: ProgramHeader, size: int, limit: int) -> None:
    if ph.filesz > ph.memsz:
        raise InvalidElf(path, "Invalid PT_LOAD entry: file size larger than memory size")
    if ph.offset + ph.filesz > size:
        raise InvalidElf(path, "Invalid PT_LOAD entry: segment outside the file")
    if ph.vaddr + ph.memsz > limit or ph.vaddr + ph.memsz < ph.vaddr:
        raise InvalidElf(path, "Invalid PT_LOAD entry: segment outside the address space")
    if (ph.vaddr - ph.offset) & 0xFFF:
        raise InvalidElf(path, "Invalid PT_LOAD entry: misaligned segment")
