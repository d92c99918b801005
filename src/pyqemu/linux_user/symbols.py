"""Function symbols of the loaded ELF images, for the ``IN: name`` line of
``-d in_asm``.

QEMU keeps, per image, the defined STT_FUNC symbols of .symtab (moved by the
load bias), sorted by address, and names a block after the symbol whose
[value, value + size) holds its first address; the image loaded last (the
interpreter) is searched first.  Which alias of several at one address wins
follows from how QEMU drops unwanted entries (the last entry takes the
dropped one's slot), the stable sort and glibc's bisection; this module
reproduces that order so the names match.
"""
from __future__ import annotations

import struct
from typing import List, Optional, Tuple

SHT_SYMTAB = 2
STT_FUNC = 2
SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00

_SHDR = {64: struct.Struct("<IIQQQQIIQQ"), 32: struct.Struct("<IIIIIIIIII")}
_SYM = {64: struct.Struct("<IBBHQQ"), 32: struct.Struct("<IIIBBH")}
MAX_SYMBOLS = 1 << 20        # a hostile file cannot make us build more


class SymbolTable:
    """Lazily parsed function symbols of one ELF image."""

    def __init__(self, data: bytes, bits: int, bias: int) -> None:
        self._data = data
        self._bits = bits
        self._bias = bias
        self._syms: Optional[List[Tuple[int, int, int]]] = None

    def _parse(self) -> List[Tuple[int, int, int]]:
        try:
            return self._read()
        except (struct.error, IndexError, ValueError):
            return []        # a malformed section table just means no names

    def _read(self) -> List[Tuple[int, int, int]]:
        data, bits = self._data, self._bits
        if bits == 64:
            shoff, = struct.unpack_from("<Q", data, 0x28)
            shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
        else:
            shoff, = struct.unpack_from("<I", data, 0x20)
            shentsize, shnum = struct.unpack_from("<HH", data, 0x2E)
        shdr = _SHDR[bits]
        if shoff == 0 or shentsize != shdr.size or shoff + shnum * shentsize > len(data):
            return []
        sections = [shdr.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
        for sh in sections:
            if sh[1] != SHT_SYMTAB:
                continue
            off, size, link = (sh[4], sh[5], sh[6]) if bits == 64 else (sh[4], sh[5], sh[6])
            if link >= shnum:
                return []
            stroff = sections[link][4]
            return self._symbols(off, size, stroff)
        return []

    def _symbols(self, off: int, size: int, stroff: int) -> List[Tuple[int, int, int]]:
        sym = _SYM[self._bits]
        n = min(size // sym.size, MAX_SYMBOLS)
        mask = (1 << self._bits) - 1
        raw = []
        for i in range(n):
            f = sym.unpack_from(self._data, off + i * sym.size)
            if self._bits == 64:
                name, info, _other, shndx, value, ssize = f
            else:
                name, value, ssize, info, _other, shndx = f
            raw.append((value, ssize, name, info, shndx))
        # Drop unwanted entries the way QEMU does: the last entry moves into
        # the hole, which decides the order of aliases below.
        i = 0
        while i < n:
            value, ssize, name, info, shndx = raw[i]
            if shndx == SHN_UNDEF or shndx >= SHN_LORESERVE or info & 15 != STT_FUNC:
                n -= 1
                if i < n:
                    raw[i] = raw[n]
            else:
                i += 1
        kept = [((r[0] + self._bias) & mask, r[1], stroff + r[2]) for r in raw[:n]]
        kept.sort(key=lambda s: s[0])         # stable, as glibc's merge sort
        return kept

    def lookup(self, addr: int) -> str:
        if self._syms is None:
            self._syms = self._parse()
        syms = self._syms
        lo, hi = 0, len(syms)
        while lo < hi:
            mid = (lo + hi) // 2
            value, size, name_off = syms[mid]
            if addr < value:
                hi = mid
            elif addr >= value + size:
                lo = mid + 1
            else:
                end = self._data.find(b"\0", name_off)
                return self._data[name_off:end if end >= 0 else len(self._data)].decode(
                    "utf-8", "replace")
        return ""
