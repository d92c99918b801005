"""Loading a Linux bzImage for the PC through fw_cfg, as QEMU's x86 loader does.

Following the x86 boot protocol (Documentation/arch/x86/boot.rst): the real-mode
setup (``setup_sects`` + 1 sectors) goes to 0x10000, the command line to
0x20000, the protected-mode kernel to 0x100000 and the initrd as high as
``initrd_addr_max`` and the end of RAM below 4 GiB (less the room QEMU keeps
for ACPI tables) allow.  The setup header is patched as the protocol asks a
boot loader to (type_of_loader, CAN_USE_HEAP, heap_end_ptr, cmd_line_ptr,
ramdisk_image/size) and everything is handed to the firmware as fw_cfg items;
the option ROM ``linuxboot_dma.bin`` copies it into place and jumps to the
kernel.  Only protocol 2.02+ kernels loaded high (every bzImage since 2002)
are supported here. ``load_kernel`` also recognises multiboot kernels
(hw/i386/multiboot.py), as QEMU tries them when there is no setup header;
uncompressed ELF kernels (PVH) are not supported yet.
"""
from __future__ import annotations

import struct
from typing import Any, Callable, Optional

from pyqemu.hw.nvram import fw_cfg as F
from pyqemu.util.error import QemuError

REAL_ADDR, CMDLINE_ADDR, PROT_ADDR = 0x10000, 0x20000, 0x100000
# QEMU's PC keeps this much below the top of low RAM for ACPI tables.
ACPI_DATA_SIZE = 0x20000 + 0x8000
XLF_CAN_BE_LOADED_ABOVE_4G = 0x02
LINUXBOOT_ROM = "linuxboot_dma.bin"


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except IsADirectoryError as e:
        # QEMU opens a directory fine and fails later: reading the kernel, or
        # mapping the initrd (GLib's g_mapped_file_new, its message verbatim)
        if what == "initrd":
            raise QemuError("error reading initrd %s: Failed to map %s' %s': mmap() failed: "
                            "No such device" % (path, path, path)) from None
        raise QemuError("could not load %s '%s': %s" % (what, path, e.strerror)) from None
    except OSError as e:
        if what == "initrd":
            raise QemuError("error reading initrd %s: Failed to open file \u201c%s\u201d: "
                            "open() failed: %s" % (path, path, e.strerror)) from None
        raise QemuError("could not open %s file '%s': %s" % (what, path, e.strerror)) from None


def load_kernel(fw: Any, kernel_path: str, initrd: Optional[str], cmdline: str,
                below_4g: int, find_rom: Callable[[str], bytes]) -> str:
    """-kernel for the PC: a bzImage, else a multiboot kernel, in QEMU's order.
    ``find_rom(name)`` returns an option ROM's bytes. Returns "linux" or
    "multiboot"."""
    from pyqemu.hw.i386 import multiboot
    kernel = _read(kernel_path, "kernel")
    if kernel[0x202:0x206] == b"HdrS":
        load_linux(fw, kernel_path, initrd, cmdline, below_4g, find_rom(LINUXBOOT_ROM), kernel)
        return "linux"
    if multiboot.load_multiboot(fw, kernel_path, kernel, initrd, cmdline,
                                lambda: find_rom(multiboot.MULTIBOOT_ROM)):
        return "multiboot"
    if multiboot.is_elf(kernel):
        # QEMU boots an ELF kernel only through its PVH entry note
        if not multiboot.elf_loadable(kernel):
            raise QemuError("Error while loading elf kernel")
        raise QemuError("Error loading uncompressed kernel without PVH ELF Note"
                        if not multiboot.has_pvh_note(kernel) else
                        "uncompressed ELF kernels with a PVH note are not supported yet")
    # QEMU's order: a protocol-0 kernel with an initrd fails before its size is checked
    if initrd is not None:
        raise QemuError("linux kernel too old to load a ram disk")
    setup_sects = (kernel[0x1F1] if len(kernel) > 0x1F1 else 0) or 4
    if (setup_sects + 1) * 512 > len(kernel):
        raise QemuError("invalid kernel header")
    # QEMU would start this as a pre-2.00 zImage; pyqemu says what it is instead
    raise QemuError("linux kernel '%s' is neither a bzImage (no 'HdrS' setup header) "
                    "nor a multiboot kernel" % kernel_path)


def load_linux(fw: Any, kernel_path: str, initrd_path: Optional[str], cmdline: str,
               below_4g: int, rom_data: bytes, kernel: Optional[bytes] = None) -> None:
    """Fill ``fw`` (a fw_cfg device) with the kernel, initrd and command line."""
    if kernel is None:
        kernel = _read(kernel_path, "kernel")
    if len(kernel) < 0x300 or kernel[0x202:0x206] != b"HdrS":
        raise QemuError("linux kernel '%s' is not a bzImage (no 'HdrS' setup header)" % kernel_path)
    protocol = struct.unpack_from("<H", kernel, 0x206)[0]
    if protocol < 0x202 or not kernel[0x211] & 0x01:
        raise QemuError("linux kernel '%s' uses boot protocol %d.%02d without LOADED_HIGH; "
                        "only protocol 2.02+ bzImages are supported"
                        % (kernel_path, protocol >> 8, protocol & 0xFF))
    if protocol >= 0x20C and struct.unpack_from("<H", kernel, 0x236)[0] & XLF_CAN_BE_LOADED_ABOVE_4G:
        initrd_max = 0xFFFFFFFF
    elif protocol >= 0x203:
        initrd_max = struct.unpack_from("<I", kernel, 0x22C)[0]
    else:
        initrd_max = 0x37FFFFFF
    if initrd_max >= below_4g - ACPI_DATA_SIZE:
        initrd_max = below_4g - ACPI_DATA_SIZE - 1

    setup_sects = kernel[0x1F1] or 4
    setup_size = (setup_sects + 1) * 512
    if setup_size > len(kernel):
        raise QemuError("invalid kernel header")
    header = bytearray(kernel[:setup_size])
    kernel_body = kernel[setup_size:]

    cmd = cmdline.encode() + b"\0"
    fw.add_i32(F.FW_CFG_CMDLINE_ADDR, CMDLINE_ADDR)
    fw.add_i32(F.FW_CFG_CMDLINE_SIZE, len(cmd))
    fw.add_bytes(F.FW_CFG_CMDLINE_DATA, cmd)

    struct.pack_into("<I", header, 0x228, CMDLINE_ADDR)
    header[0x210] = 0xB0  # type_of_loader: "undefined" boot loader, as QEMU
    header[0x211] |= 0x80  # CAN_USE_HEAP
    struct.pack_into("<H", header, 0x224, CMDLINE_ADDR - REAL_ADDR - 0x200)

    if initrd_path is not None:
        initrd = _read(initrd_path, "initrd")
        if len(initrd) >= initrd_max:
            raise QemuError("initrd is too large, cannot support.(max: %d, need %d)"
                            % (initrd_max, len(initrd)))
        initrd_addr = (initrd_max - len(initrd)) & ~4095
        fw.add_i32(F.FW_CFG_INITRD_ADDR, initrd_addr)
        fw.add_i32(F.FW_CFG_INITRD_SIZE, len(initrd))
        fw.add_bytes(F.FW_CFG_INITRD_DATA, initrd)
        struct.pack_into("<II", header, 0x218, initrd_addr, len(initrd))

    fw.add_i32(F.FW_CFG_KERNEL_ADDR, PROT_ADDR)
    fw.add_i32(F.FW_CFG_KERNEL_SIZE, len(kernel_body))
    fw.add_bytes(F.FW_CFG_KERNEL_DATA, kernel_body)
    fw.add_i32(F.FW_CFG_SETUP_ADDR, REAL_ADDR)
    fw.add_i32(F.FW_CFG_SETUP_SIZE, len(header))
    fw.add_bytes(F.FW_CFG_SETUP_DATA, bytes(header))
    fw.files_pending.append(("genroms/" + LINUXBOOT_ROM, rom_data))
