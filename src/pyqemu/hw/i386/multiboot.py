"""Multiboot v1 kernels for ``-kernel`` on the PC, loaded as QEMU 7.2 does.

The image (an ELF32 kernel through its program headers, or any file through
the header's address fields, the "a.out kludge", flag bit 16) is laid out in
one buffer starting at its load address; after it, page-aligned, come the
module descriptors, the command lines and the boot loader name, then every
``-initrd "file args,file2"`` module, each page-aligned. The buffer is handed
over as the fw_cfg kernel items and the 88-byte multiboot information
structure as the initrd items at 0x9500; the option ROM multiboot_dma.bin
copies both into place, fills in the memory fields and the e820 map at
0x9000 from the BIOS, and enters the kernel with EAX=0x2BADB002.
Facts from the Multiboot Specification 0.6.96 and QEMU 7.2's behaviour.
"""
from __future__ import annotations

import struct
from typing import Any, Callable, List, Optional, Tuple

from pyqemu.hw.nvram import fw_cfg as F
from pyqemu.util.error import QemuError, error_report

MULTIBOOT_MAGIC = 0x1BADB002
MULTIBOOT_ROM = "multiboot_dma.bin"
HEADER_SEARCH = 8192          # the header must lie in the first 8 KiB
MBI_ADDR = 0x9000 + 0x500      # after the room the ROM uses for the e820 map
MMAP_ADDR = 0x9000
MBI_SIZE = 88
MOD_DESC_SIZE = 16
PAGE = 4096
BOOT_LOADER_NAME = b"qemu"
# flags: memory, boot device, cmdline, modules, memory map, boot loader name
MBI_FLAGS = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 6) | (1 << 9)
HAS_ADDR = 0x00010000
HAS_VBE = 0x00000004
EM_386, EM_X86_64 = 3, 62
PT_LOAD = 1
# a guest image spans at most 4 GiB; more is a malformed header, not a kernel
MAX_SPAN = 1 << 32


def _page_align(n: int) -> int:
    return (n + PAGE - 1) & ~(PAGE - 1)


def find_header(image: bytes) -> Optional[Tuple[int, int]]:
    """Offset and flags of a valid multiboot header in the first 8 KiB."""
    head = image[:HEADER_SEARCH].ljust(HEADER_SEARCH, b"\0")
    for i in range(0, HEADER_SEARCH - 48, 4):
        if struct.unpack_from("<I", head, i)[0] != MULTIBOOT_MAGIC:
            continue
        flags, checksum = struct.unpack_from("<II", head, i + 4)
        if (MULTIBOOT_MAGIC + flags + checksum) & 0xFFFFFFFF == 0:
            return i, flags
    return None


def _elf_image(image: bytes) -> Tuple[int, int, bytearray]:
    """(entry, lowest physical address, memory image) of an ELF32 kernel."""
    bad = QemuError("Error while loading elf kernel")
    if image[:4] != b"\x7fELF" or len(image) < 52 or image[4] != 1 or image[5] != 1:
        raise bad
    (e_type, machine, _ver, entry, phoff, _shoff, _flags, _ehsize, phentsize,
     phnum) = struct.unpack_from("<HHIIIIIHHH", image, 16)
    if machine not in (EM_386, EM_X86_64) or phentsize < 32 or phoff + phnum * phentsize > len(image):
        raise bad
    segs = []
    for n in range(phnum):
        p_type, off, _vaddr, paddr, filesz, memsz = struct.unpack_from("<IIIIII", image, phoff + n * phentsize)
        if p_type != PT_LOAD or memsz == 0:
            continue
        if filesz > memsz or off + filesz > len(image):
            raise bad
        segs.append((paddr, off, filesz, memsz))
    if not segs:
        raise bad
    low = min(s[0] for s in segs)
    high = max(s[0] + s[3] for s in segs)
    if high - low > MAX_SPAN:
        raise bad
    mem = bytearray(high - low)
    for paddr, off, filesz, _memsz in segs:
        mem[paddr - low:paddr - low + filesz] = image[off:off + filesz]
    return entry, low, mem


def _kludge_image(image: bytes, i: int) -> Tuple[int, int, bytearray]:
    """(entry, load address, memory image) from the header's address fields."""
    header_addr, load_addr, load_end, bss_end, entry = struct.unpack_from("<IIIII", image, i + 12)
    if header_addr < load_addr:
        raise QemuError("invalid load_addr address")
    text_offset = i - (header_addr - load_addr)
    if text_offset < 0:
        raise QemuError("invalid load_addr address")
    if load_end:
        if load_end < load_addr:
            raise QemuError("invalid load_end_addr address")
        load_size = load_end - load_addr
    else:
        if len(image) < text_offset:
            raise QemuError("invalid kernel_file_size")
        load_size = len(image) - text_offset
    if bss_end:
        if bss_end < load_addr + load_size:
            raise QemuError("invalid bss_end_addr address")
        size = bss_end - load_addr
    else:
        size = load_size
    data = image[text_offset:text_offset + load_size]
    if len(data) != load_size:
        raise QemuError("fread() failed")
    return entry, load_addr, bytearray(data).ljust(size, b"\0")


def _split_modules(spec: str) -> List[str]:
    """-initrd "a args,b": modules separated by commas (",," is a comma)."""
    mods, cur, k = [], [], 0
    while k < len(spec):
        c = spec[k]
        if c == ",":
            if spec[k + 1:k + 2] == ",":
                cur.append(",")
                k += 2
                continue
            mods.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        k += 1
    mods.append("".join(cur))
    return mods


def load_multiboot(fw: Any, kernel_path: str, image: bytes, initrd: Optional[str],
                   cmdline: str, rom: Callable[[], bytes]) -> bool:
    """Fill fw_cfg for a multiboot kernel; False if ``image`` is not one."""
    found = find_header(image)
    if found is None:
        return False
    i, flags = found
    if flags & HAS_VBE:
        error_report("multiboot knows VBE. we don't")
    if not flags & HAS_ADDR:
        if image[:4] == b"\x7fELF" and len(image) >= 20 and struct.unpack_from("<H", image, 18)[0] == EM_X86_64 \
                and image[4] == 2:
            raise QemuError("Cannot load x86-64 image, give a 32bit one.")
        entry, load_addr, buf = _elf_image(image)
    else:
        entry, load_addr, buf = _kludge_image(image, i)

    mods = _split_modules(initrd) if initrd is not None else []
    kname = kernel_path.encode()
    kcmd = kname + b" " + cmdline.encode()
    mod_strings = [m.encode() for m in mods]
    # descriptors, then the module command lines, the kernel's, the loader name
    info_off = _page_align(len(buf))
    cmdlines_len = len(kname) + 1 + len(cmdline.encode()) + 1
    if initrd is not None:
        cmdlines_len += len(initrd.encode()) + 1
    tail = cmdlines_len + MOD_DESC_SIZE * len(mods) + len(BOOT_LOADER_NAME) + 1
    size = _page_align(info_off + tail)
    buf.extend(bytes(size - len(buf)))
    str_off = info_off + MOD_DESC_SIZE * len(mods)

    def add_string(s: bytes) -> int:
        nonlocal str_off
        buf[str_off:str_off + len(s) + 1] = s + b"\0"
        addr = load_addr + str_off
        str_off += len(s) + 1
        return addr

    for n, (spec, raw) in enumerate(zip(mods, mod_strings)):
        string_addr = add_string(raw)
        path = spec.split(" ", 1)[0]
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_SPAN + 1)
        except OSError:
            raise QemuError("Failed to open file '%s'" % path) from None
        start = len(buf)
        if start + len(data) > MAX_SPAN:
            raise QemuError("multiboot module '%s' does not fit below 4 GiB" % path)
        buf.extend(data)
        buf.extend(bytes(_page_align(len(buf)) - len(buf)))
        struct.pack_into("<III", buf, info_off + MOD_DESC_SIZE * n,
                         load_addr + start, load_addr + start + len(data), string_addr)
    mbi = bytearray(MBI_SIZE)
    struct.pack_into("<I", mbi, 16, add_string(kcmd))
    # the loader name sits after the room reserved for all command lines
    name_off = info_off + MOD_DESC_SIZE * len(mods) + cmdlines_len
    buf[name_off:name_off + len(BOOT_LOADER_NAME) + 1] = BOOT_LOADER_NAME + b"\0"
    struct.pack_into("<I", mbi, 64, load_addr + name_off)
    struct.pack_into("<II", mbi, 20, len(mods), load_addr + info_off)
    struct.pack_into("<I", mbi, 0, MBI_FLAGS)
    struct.pack_into("<I", mbi, 12, 0x8000FFFF)   # boot device: none chosen
    struct.pack_into("<I", mbi, 48, MMAP_ADDR)

    fw.add_i32(F.FW_CFG_KERNEL_ENTRY, entry)
    fw.add_i32(F.FW_CFG_KERNEL_ADDR, load_addr)
    fw.add_i32(F.FW_CFG_KERNEL_SIZE, len(buf))
    fw.add_bytes(F.FW_CFG_KERNEL_DATA, bytes(buf))
    fw.add_i32(F.FW_CFG_INITRD_ADDR, MBI_ADDR)
    fw.add_i32(F.FW_CFG_INITRD_SIZE, MBI_SIZE)
    fw.add_bytes(F.FW_CFG_INITRD_DATA, bytes(mbi))
    fw.files_pending.append(("genroms/" + MULTIBOOT_ROM, rom()))
    return True


def is_elf(image: bytes) -> bool:
    return image[:4] == b"\x7fELF"


XEN_ELFNOTE_PHYS32_ENTRY = 18


def elf_loadable(image: bytes) -> bool:
    """Whether an ELF32/ELF64 has program headers with something to load."""
    try:
        if image[4] == 2:
            phoff, = struct.unpack_from("<Q", image, 32)
            phentsize, phnum = struct.unpack_from("<HH", image, 54)
        elif image[4] == 1:
            phoff, = struct.unpack_from("<I", image, 28)
            phentsize, phnum = struct.unpack_from("<HH", image, 42)
        else:
            return False
        return any(struct.unpack_from("<I", image, phoff + n * phentsize)[0] == PT_LOAD
                   for n in range(phnum))
    except (struct.error, IndexError):
        return False


def has_pvh_note(image: bytes) -> bool:
    """Whether an ELF (32 or 64-bit) has Xen's PHYS32_ENTRY note (PVH boot)."""
    try:
        is64 = image[4] == 2
        if is64:
            phoff, = struct.unpack_from("<Q", image, 32)
            phentsize, phnum = struct.unpack_from("<HH", image, 54)
        else:
            phoff, = struct.unpack_from("<I", image, 28)
            phentsize, phnum = struct.unpack_from("<HH", image, 42)
        for n in range(phnum):
            base = phoff + n * phentsize
            p_type, = struct.unpack_from("<I", image, base)
            if p_type != 4:   # PT_NOTE
                continue
            if is64:
                off, = struct.unpack_from("<Q", image, base + 8)
                size, = struct.unpack_from("<Q", image, base + 32)
            else:
                off, size = struct.unpack_from("<I", image, base + 4)[0], struct.unpack_from("<I", image, base + 16)[0]
            end = min(off + size, len(image))
            while off + 12 <= end:
                namesz, descsz, ntype = struct.unpack_from("<III", image, off)
                name = image[off + 12:off + 12 + namesz].rstrip(b"\0")
                if name == b"Xen" and ntype == XEN_ELFNOTE_PHYS32_ENTRY:
                    return True
                off += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    except struct.error:
        return False
    return False


__all__ = ["elf_loadable", "find_header", "has_pvh_note", "is_elf", "load_multiboot", "MULTIBOOT_ROM"]
