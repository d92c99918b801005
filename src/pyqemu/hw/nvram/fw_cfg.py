"""fw_cfg, QEMU's firmware configuration device, on I/O ports (``fw_cfg_io``).

Port 0x510 selects an item (16-bit write), port 0x511 reads the selected item
byte by byte; 0x514-0x51b is the DMA interface (write the big-endian physical
address of a ``FWCfgDmaAccess``: be32 control, be32 length, be64 address; the
high half at 0x514, the low half at 0x518 starts the transfer; reading it
gives the signature "QEMU CFG").  Items are QEMU's numbered keys plus named
files listed in the directory at key 0x19 (be32 count, then per file be32
size, be16 key, be16 reserved, 56-byte name), files from key 0x20 on.
"""
from __future__ import annotations

import struct
from typing import Dict, List, Optional, Tuple

from pyqemu.exec.memory import MemoryRegionOps, address_space_memory
from pyqemu.hw.isa.isa_bus import ISADevice
from pyqemu.qom.object import PropDef, register_type
from pyqemu.util.error import QemuError

FW_CFG_SIGNATURE, FW_CFG_ID, FW_CFG_UUID, FW_CFG_RAM_SIZE = 0x00, 0x01, 0x02, 0x03
FW_CFG_NOGRAPHIC, FW_CFG_NB_CPUS, FW_CFG_BOOT_MENU, FW_CFG_MAX_CPUS = 0x04, 0x05, 0x0E, 0x0F
FW_CFG_KERNEL_ADDR, FW_CFG_KERNEL_SIZE, FW_CFG_KERNEL_CMDLINE = 0x07, 0x08, 0x09
FW_CFG_INITRD_ADDR, FW_CFG_INITRD_SIZE, FW_CFG_KERNEL_ENTRY = 0x0A, 0x0B, 0x10
FW_CFG_KERNEL_DATA, FW_CFG_INITRD_DATA = 0x11, 0x12
FW_CFG_CMDLINE_ADDR, FW_CFG_CMDLINE_SIZE, FW_CFG_CMDLINE_DATA = 0x13, 0x14, 0x15
FW_CFG_SETUP_ADDR, FW_CFG_SETUP_SIZE, FW_CFG_SETUP_DATA = 0x16, 0x17, 0x18
FW_CFG_FILE_DIR, FW_CFG_FILE_FIRST = 0x19, 0x20
FW_CFG_ARCH_LOCAL = 0x8000
FW_CFG_IRQ0_OVERRIDE, FW_CFG_E820_TABLE = 0x8002, 0x8003
FW_CFG_MAX_ENTRY = 0x4000
FILE_NAME_LEN = 56

DMA_CTL_ERROR, DMA_CTL_READ, DMA_CTL_SKIP, DMA_CTL_SELECT, DMA_CTL_WRITE = 1, 2, 4, 8, 0x10
DMA_SIGNATURE = b"QEMU CFG"
_DMA_ACCESS = struct.Struct(">IIQ")


@register_type
class FWCfgIO(ISADevice):
    TYPE_NAME = "fw_cfg_io"
    ABSTRACT = False
    USER_CREATABLE = False
    DEVICE_PROPS = (
        PropDef("dma_enabled", "bool", True),
        PropDef("x-file-slots", "uint16", 32),
        PropDef("acpi-mr-restore", "bool", True),
    )

    def __init__(self) -> None:
        super().__init__()
        self.entries: Dict[int, bytes] = {}
        self.files: List[Tuple[str, int]] = []
        self.cur_entry = 0xFFFF  # FW_CFG_INVALID
        self.cur_offset = 0
        self.dma_addr = 0
        self.files_pending: List[Tuple[str, bytes]] = []

    def realize(self) -> None:
        self.isa_register_ioport(0x510, 2, "fwcfg", MemoryRegionOps(
            self._comb_read, self._comb_write, valid_max=2, impl_max=2))
        if self.dma_enabled:
            self.isa_register_ioport(0x514, 8, "fwcfg.dma", MemoryRegionOps(
                self._dma_read, self._dma_write, valid_max=4, impl_max=4))
        self.add_bytes(FW_CFG_SIGNATURE, b"QEMU")
        self.add_i32(FW_CFG_ID, 3 if self.dma_enabled else 1)
        for name, data in self.files_pending:
            self.add_file(name, data)
        self.files_pending = []
        self._rebuild_dir()

    def reset(self) -> None:
        self.cur_entry = 0xFFFF
        self.cur_offset = 0

    # -- items ---------------------------------------------------------------------
    def add_bytes(self, key: int, data: bytes) -> None:
        self.entries[key] = bytes(data)

    def add_i16(self, key: int, v: int) -> None:
        self.add_bytes(key, struct.pack("<H", v & 0xFFFF))

    def add_i32(self, key: int, v: int) -> None:
        self.add_bytes(key, struct.pack("<I", v & 0xFFFFFFFF))

    def add_i64(self, key: int, v: int) -> None:
        self.add_bytes(key, struct.pack("<Q", v & (2 ** 64 - 1)))

    def add_string(self, key: int, s: str) -> None:
        self.add_bytes(key, s.encode() + b"\0")

    def add_file(self, name: str, data: bytes) -> None:
        if len(name.encode()) >= FILE_NAME_LEN:
            raise QemuError("fw_cfg file name '%s' is too long" % name)
        if any(n == name for n, _ in self.files):
            raise QemuError("duplicate fw_cfg file name: %s" % name)
        if len(self.files) >= self.x_file_slots:
            raise QemuError("fw_cfg: no free file slot for %s" % name)
        self.files.append((name, len(self.files)))
        self.files.sort()
        self.entries[FW_CFG_FILE_FIRST + dict(self.files)[name]] = bytes(data)
        self._rebuild_dir()

    def _rebuild_dir(self) -> None:
        out = [struct.pack(">I", len(self.files))]
        for name, idx in self.files:
            key = FW_CFG_FILE_FIRST + idx
            out.append(struct.pack(">IHH", len(self.entries[key]), key, 0))
            out.append(name.encode().ljust(FILE_NAME_LEN, b"\0"))
        self.entries[FW_CFG_FILE_DIR] = b"".join(out)

    def file_data(self, name: str) -> Optional[bytes]:
        idx = dict(self.files).get(name)
        return None if idx is None else self.entries[FW_CFG_FILE_FIRST + idx]

    # -- I/O interface ------------------------------------------------------------------
    def select(self, key: int) -> None:
        self.cur_offset = 0
        self.cur_entry = key if (key & 0x7FFF) < FW_CFG_MAX_ENTRY else 0xFFFF

    def _data(self) -> bytes:
        return self.entries.get(self.cur_entry, b"")

    def _comb_write(self, off: int, val: int, size: int) -> None:
        if off == 0 and size == 2:
            self.select(val)
        # Data writes through the port were removed from QEMU 2.4 on: ignored.

    def _comb_read(self, off: int, size: int) -> int:
        if off != 1:
            return 0
        data = self._data()
        if self.cur_offset < len(data):
            v = data[self.cur_offset]
            self.cur_offset += 1
            return v
        return 0

    # -- DMA ----------------------------------------------------------------------------
    def _dma_read(self, off: int, size: int) -> int:
        return int.from_bytes(DMA_SIGNATURE[off:off + size], "little")

    def _dma_write(self, off: int, val: int, size: int) -> None:
        # The device is big-endian: the guest's bytes are the address's big-endian bytes.
        be = int.from_bytes(val.to_bytes(size, "little"), "big")
        if off == 0 and size == 4:
            self.dma_addr = (be << 32) | (self.dma_addr & 0xFFFFFFFF)
        elif off == 4 and size == 4:
            self.dma_addr = (self.dma_addr & ~0xFFFFFFFF) | be
            self._dma_transfer(self.dma_addr)
            self.dma_addr = 0
        elif off == 0 and size == 8:
            self._dma_transfer(be)

    def _dma_transfer(self, addr: int) -> None:
        mem = address_space_memory()
        control, length, dst = _DMA_ACCESS.unpack(mem.read_bytes(addr, _DMA_ACCESS.size))
        if control & DMA_CTL_SELECT:
            self.select(control >> 16)
        error = False
        if control & DMA_CTL_WRITE:
            error = True  # no writable items
        elif control & (DMA_CTL_READ | DMA_CTL_SKIP):
            data = self._data()
            chunk = data[self.cur_offset:self.cur_offset + length]
            if control & DMA_CTL_READ:
                # Past the end of the item the guest buffer is zero-filled.
                mem.write_bytes(dst, chunk + bytes(length - len(chunk)))
            self.cur_offset += length
        mem.write_bytes(addr, struct.pack(">I", DMA_CTL_ERROR if error else 0))


AMD_HT_START, AMD_HT_SIZE = 0xFD00000000, 0x300000000
E820_RAM, E820_RESERVED = 1, 2


def e820_table(below_4g: int, above_4g: int, amd_ht_hole: bool = True) -> bytes:
    """The ``etc/e820`` file of QEMU's PC (le64 addr, le64 len, le32 type per entry).

    With an AMD-vendor CPU model (QEMU's default qemu64 is one) QEMU 7.2 first
    reserves the HyperTransport range below 1 TiB, then lists the RAM.
    """
    out = struct.pack("<QQI", AMD_HT_START, AMD_HT_SIZE, E820_RESERVED) if amd_ht_hole else b""
    out += struct.pack("<QQI", 0, below_4g, E820_RAM)
    if above_4g:
        out += struct.pack("<QQI", 1 << 32, above_4g, E820_RAM)
    return out
