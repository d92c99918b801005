"""Opt-in direct boot of a bzImage with its payload unpacked on the host.

Beyond QEMU (``-M pc,host-unpack=on``): instead of letting the firmware and
the kernel's own decompressor run in the guest (three quarters of the
instructions of a Debian kernel's boot are its XZ decompressor), pyqemu
takes the compressed payload out of the bzImage (setup header fields
payload_offset/payload_length, boot protocol 2.08+), decompresses it with
Python's lzma/zlib/bz2 (or the optional zstandard module), loads the
resulting vmlinux ELF's segments at their physical addresses and enters the
kernel proper at its 64-bit entry (startup_64) as the 64-bit boot protocol
describes (Documentation/arch/x86/boot.rst): long mode, identity-mapped
page tables, a GDT with flat __BOOT_CS (0x10) and __BOOT_DS (0x18),
interrupts off, RSI = the boot_params "zero page". The zero page carries the
bzImage's setup header, the command line, the initrd and the e820 map the
firmware would have reported. No firmware runs, so there are no ACPI or MP
tables: the guest sees one CPU.
"""
from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from typing import Any, List, Optional, Tuple

from pyqemu.util.error import QemuError

# where things go in guest RAM (all below 1 MiB, away from the kernel at 16 MiB)
GDT_ADDR = 0x500
ZERO_PAGE_ADDR = 0x7000
PML4_ADDR = 0x9000
PDPT_ADDR = 0xA000
PD_ADDR = 0xB000              # four page directories: 0xb000-0xefff map 4 GiB
CMDLINE_ADDR = 0x20000
CMDLINE_MAX = 0x10000
ACPI_DATA_SIZE = 0x20000 + 0x8000
E820_RAM, E820_RESERVED = 1, 2
# decompressed kernels beyond this are not kernels (and would cost the host that much)
MAX_VMLINUX = 1 << 30
GDT = (0, 0, 0x00AF9B000000FFFF, 0x00CF93000000FFFF)   # null, null, __BOOT_CS, __BOOT_DS
BOOT_CS, BOOT_DS = 0x10, 0x18


class DirectBoot:
    """What to put in RAM and into the boot CPU at every reset."""

    def __init__(self) -> None:
        self.blobs: List[Tuple[int, bytes]] = []     # (physical address, bytes)
        self.entry = 0
        self.zero_page = ZERO_PAGE_ADDR


def _payload(kernel: bytes) -> bytes:
    if kernel[0x202:0x206] != b"HdrS":
        raise QemuError("host-unpack=on needs a bzImage kernel")
    protocol = struct.unpack_from("<H", kernel, 0x206)[0]
    if protocol < 0x208:
        raise QemuError("host-unpack=on needs boot protocol 2.08 or later (this kernel has %d.%02d)"
                        % (protocol >> 8, protocol & 0xFF))
    setup_size = ((kernel[0x1F1] or 4) + 1) * 512
    off, length = struct.unpack_from("<II", kernel, 0x248)
    start = setup_size + off
    if start + length > len(kernel) or length < 4:
        raise QemuError("invalid kernel header")
    return kernel[start:start + length]


def decompress_payload(payload: bytes) -> bytes:
    """The vmlinux inside a bzImage payload (the build appends its size as le32)."""
    try:
        if payload.startswith(b"\xfd7zXZ\x00"):
            d: Any = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
            out = d.decompress(payload, MAX_VMLINUX + 1)
        elif payload.startswith(b"\x1f\x8b"):
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = d.decompress(payload, MAX_VMLINUX + 1)
        elif payload.startswith(b"\x5d\x00\x00"):
            d = lzma.LZMADecompressor(format=lzma.FORMAT_ALONE)
            out = d.decompress(payload, MAX_VMLINUX + 1)
        elif payload.startswith(b"BZh"):
            d = bz2.BZ2Decompressor()
            out = d.decompress(payload, MAX_VMLINUX + 1)
        elif payload.startswith(b"\x28\xb5\x2f\xfd"):
            try:
                import zstandard  # type: ignore[import-not-found]
            except ImportError:
                raise QemuError("host-unpack=on: this kernel is zstd-compressed and the "
                                "Python module 'zstandard' is not installed") from None
            out = zstandard.ZstdDecompressor().decompressobj().decompress(payload[:-4])
        else:
            raise QemuError("host-unpack=on: the kernel's payload uses a compression pyqemu "
                            "cannot unpack (only xz, gzip, lzma, bzip2 and zstd)")
    except (lzma.LZMAError, zlib.error, OSError, EOFError) as e:
        raise QemuError("host-unpack=on: cannot decompress the kernel: %s" % e) from None
    if len(out) > MAX_VMLINUX:
        raise QemuError("host-unpack=on: the decompressed kernel is larger than 1 GiB")
    want = struct.unpack_from("<I", payload, len(payload) - 4)[0]
    if len(out) != want:
        raise QemuError("host-unpack=on: the decompressed kernel has %d bytes, its header says %d"
                        % (len(out), want))
    return out


def vmlinux_segments(elf: bytes) -> Tuple[int, List[Tuple[int, bytes, int]]]:
    """(physical entry, [(physical address, file bytes, memory size)]) of a vmlinux."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or struct.unpack_from("<H", elf, 18)[0] != 62:
        raise QemuError("host-unpack=on: the payload is not an x86-64 ELF kernel")
    entry, phoff = struct.unpack_from("<QQ", elf, 24)
    phentsize, phnum = struct.unpack_from("<HH", elf, 54)
    segs = []
    for n in range(phnum):
        base = phoff + n * phentsize
        p_type, _flags, off, _vaddr, paddr, filesz, memsz = struct.unpack_from("<IIQQQQQ", elf, base)
        if p_type != 1 or memsz == 0:
            continue
        if filesz > memsz or off + filesz > len(elf):
            raise QemuError("host-unpack=on: the kernel's ELF program headers are invalid")
        segs.append((paddr, elf[off:off + filesz], memsz))
    if not segs:
        raise QemuError("host-unpack=on: the kernel has nothing to load")
    return entry, segs


def e820_entries(below_4g: int, above_4g: int) -> List[Tuple[int, int, int]]:
    """The memory map the firmware would report (QEMU's + SeaBIOS's reservations)."""
    out = [(0, 0x9FC00, E820_RAM), (0x9FC00, 0x400, E820_RESERVED),
           (0xF0000, 0x10000, E820_RESERVED), (0x100000, below_4g - 0x100000, E820_RAM),
           (0xFFFC0000, 0x40000, E820_RESERVED)]
    if above_4g:
        out.append((1 << 32, above_4g, E820_RAM))
    return out


def zero_page(kernel: bytes, cmdline_addr: int, cmdline_size: int, initrd: Optional[Tuple[int, int]],
              e820: List[Tuple[int, int, int]]) -> bytes:
    """struct boot_params: the bzImage's setup header plus what a loader fills in."""
    zp = bytearray(4096)
    hdr_end = 0x202 + kernel[0x201]
    zp[0x1F1:hdr_end] = kernel[0x1F1:hdr_end]
    zp[0x210] = 0xB0                       # type_of_loader: QEMU's id
    zp[0x211] |= 0x01                      # LOADED_HIGH
    struct.pack_into("<I", zp, 0x228, cmdline_addr)
    struct.pack_into("<I", zp, 0x238, cmdline_size)
    if initrd is not None:
        struct.pack_into("<II", zp, 0x218, initrd[0], initrd[1])
    zp[0x1E8] = len(e820)
    for i, (addr, size, kind) in enumerate(e820[:128]):
        struct.pack_into("<QQI", zp, 0x2D0 + 20 * i, addr, size, kind)
    return bytes(zp)


MP_TABLE_ADDR = 0x9FC00


def _checksummed(data: bytearray, at: int) -> bytes:
    data[at] = (-sum(data)) & 0xFF
    return bytes(data)


def mp_table(ncpus: int, cpu_signature: int, cpu_features: int,
             apic_ids: Optional[List[int]] = None) -> bytes:
    """MP floating pointer + configuration table at MP_TABLE_ADDR (``apic_ids``:
    the CPUs' APIC IDs, by default their indexes)."""
    ids = list(range(ncpus)) if apic_ids is None else apic_ids
    entries = []
    for i, apic_id in enumerate(ids):
        flags = 1 | (2 if i == 0 else 0)                       # enabled, BSP
        entries.append(struct.pack("<BBBBII8x", 0, apic_id, 0x14, flags, cpu_signature, cpu_features))
    entries.append(struct.pack("<BB6s", 1, 0, b"ISA   "))
    ioapic_id = 0     # what the IOAPIC's ID register holds
    entries.append(struct.pack("<BBBBI", 2, ioapic_id, 0x20, 1, 0xFEC00000))
    for irq in range(16):
        if irq == 2:
            continue                                            # the cascade
        entries.append(struct.pack("<BBHBBBB", 3, 0, 0, 0, irq, ioapic_id, 2 if irq == 0 else irq))
    entries.append(struct.pack("<BBHBBBB", 4, 3, 0, 0, 0, 0xFF, 0))   # ExtINT on LINT0
    entries.append(struct.pack("<BBHBBBB", 4, 1, 0, 0, 0, 0xFF, 1))   # NMI on LINT1
    body = b"".join(entries)
    cfg = bytearray(struct.pack("<4sHBB8s12sIHHIHBB", b"PCMP", 44 + len(body), 4, 0,
                                b"PYQEMU  ", b"PC          ", 0, 0, len(entries),
                                0xFEE00000, 0, 0, 0) + body)
    cfg_bytes = _checksummed(cfg, 7)
    fp = bytearray(struct.pack("<4sIBBBB4x", b"_MP_", MP_TABLE_ADDR + 16, 1, 4, 0, 0))
    return _checksummed(fp, 10) + cfg_bytes


def page_tables() -> List[Tuple[int, bytes]]:
    """Identity map of the low 4 GiB with 2 MiB pages (PML4 -> PDPT -> 4 PDs)."""
    pml4 = struct.pack("<Q", PDPT_ADDR | 3).ljust(4096, b"\0")
    pdpt = b"".join(struct.pack("<Q", (PD_ADDR + 4096 * i) | 3) for i in range(4)).ljust(4096, b"\0")
    pds = b"".join(struct.pack("<Q", (i << 21) | 0x83) for i in range(4 * 512))
    return [(PML4_ADDR, pml4), (PDPT_ADDR, pdpt), (PD_ADDR, pds)]


def prepare(kernel_path: str, initrd_path: Optional[str], cmdline: str,
            below_4g: int, above_4g: int) -> DirectBoot:
    from pyqemu.hw.i386.x86_linux import _read
    kernel = _read(kernel_path, "kernel")
    elf = decompress_payload(_payload(kernel))
    entry, segs = vmlinux_segments(elf)
    del elf
    boot = DirectBoot()
    init_size = struct.unpack_from("<I", kernel, 0x260)[0]
    kernel_end = max(max(p + m for p, _d, m in segs), segs[0][0] + init_size)
    if kernel_end > below_4g:
        raise QemuError("host-unpack=on: the kernel needs %d MiB of RAM below 4 GiB"
                        % ((kernel_end + (1 << 20) - 1) >> 20))
    for paddr, data, memsz in segs:
        boot.blobs.append((paddr, data + bytes(memsz - len(data))))
    cmd = cmdline.encode()
    if len(cmd) >= CMDLINE_MAX:
        raise QemuError("host-unpack=on: the kernel command line is too long")
    boot.blobs.append((CMDLINE_ADDR, cmd + b"\0"))
    initrd = None
    if initrd_path is not None:
        data = _read(initrd_path, "initrd")
        protocol = struct.unpack_from("<H", kernel, 0x206)[0]
        xlf = struct.unpack_from("<H", kernel, 0x236)[0] if protocol >= 0x20C else 0
        limit = 0xFFFFFFFF if xlf & 0x02 else struct.unpack_from("<I", kernel, 0x22C)[0]
        limit = min(limit, below_4g - ACPI_DATA_SIZE - 1)
        if len(data) >= limit or (limit - len(data)) & ~4095 < kernel_end:
            raise QemuError("initrd is too large, cannot support.(max: %d, need %d)" % (limit, len(data)))
        addr = (limit - len(data)) & ~4095
        boot.blobs.append((addr, data))
        initrd = (addr, len(data))
    boot.blobs.append((ZERO_PAGE_ADDR, zero_page(kernel, CMDLINE_ADDR, len(cmd), initrd,
                                                 e820_entries(below_4g, above_4g))))
    boot.blobs.append((GDT_ADDR, b"".join(struct.pack("<Q", d) for d in GDT)))
    boot.blobs.extend(page_tables())
    boot.entry = entry
    return boot


def enter_kernel(cpu: Any, boot: DirectBoot) -> None:
    """Put the boot CPU in the state the 64-bit boot protocol specifies."""
    from pyqemu.target.i386.sysemu.cpu import CR0_ET, CR0_PE, CR0_PG
    cpu.cr[0] = CR0_PE | CR0_ET | CR0_PG
    cpu.cr[3] = PML4_ADDR
    cpu.cr[4] = 0x20                        # PAE
    cpu.efer |= 0x500                       # LME, LMA
    cpu.gdt.base, cpu.gdt.limit = GDT_ADDR, len(GDT) * 8 - 1
    for i in range(6):
        sel = BOOT_CS if i == 1 else BOOT_DS
        desc = GDT[sel >> 3]
        cpu.segs[i] = sel
        cpu.seg_base[i] = 0
        cpu.seg_limit[i] = 0xFFFFFFFF
        # the descriptor's high dword without its base bits, as the segment caches keep it
        cpu.seg_flags[i] = (desc >> 32) & 0x00F0FF00
    cpu.cpl = 0
    cpu.set_eflags(2)                       # interrupts off
    cpu.regs = [0] * 16
    cpu.regs[6] = ZERO_PAGE_ADDR            # RSI
    cpu.rip = boot.entry
    cpu.halted = False
    cpu.update_mode()
    cpu.tlb.flush()


__all__ = ["DirectBoot", "decompress_payload", "enter_kernel", "mp_table", "prepare",
           "vmlinux_segments", "zero_page", "e820_entries"]
