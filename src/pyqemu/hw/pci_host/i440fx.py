"""The i440FX PCI host bridge (configuration mechanism #1, PAM, SMRAM) and PIIX3.

Ports 0xcf8 (CONFIG_ADDRESS, 32-bit accesses only) and 0xcfc-0xcff
(CONFIG_DATA, any size) reach the configuration spaces of ``pci.0``.  The
i440FX function (00.0) keeps QEMU's reset values; its PAM registers
(0x59-0x5f) switch each segment of 0xc0000-0xfffff between PCI/ROM, read-only
RAM and read-write RAM, and SMRAM (0x72) opens RAM at 0xa0000 in place of the
VGA window.  PIIX3 (01.0) is the ISA bridge with the PIIX3 datasheet's reset
values; it owns the ISA bus and the reset control register at 0xcf9.
"""
from __future__ import annotations

from typing import Any, List, Optional

from pyqemu.exec.memory import (MemoryRegion, MemoryRegionOps, get_system_io,
                                memory_region_init_alias, memory_region_init_io)
from pyqemu.hw.core.qdev import SysBusDevice
from pyqemu.hw.isa.isa_bus import ISABus
from pyqemu.hw.pci.pci import PCIBus, PCIDevice
from pyqemu.qom.object import PropDef, register_type
from pyqemu.system.runstate import runstate

I440FX_PAM = 0x59
I440FX_SMRAM = 0x72
I440FX_COREBOOT_RAM_SIZE = 0x57
SMRAM_D_OPEN, SMRAM_D_CLS, SMRAM_D_LCK, SMRAM_G_SMRAME = 0x40, 0x20, 0x10, 0x08
# (start, size) of the 13 PAM segments, in register nibble order.
PAM_SEGMENTS = [(0xF0000, 0x10000)] + [(0xC0000 + i * 0x4000, 0x4000) for i in range(12)]


@register_type
class I440FXPCIHost(SysBusDevice):
    TYPE_NAME = "i440FX-pcihost"
    ABSTRACT = False
    USER_CREATABLE = False
    DEVICE_PROPS = (
        PropDef("pci-hole64-size", "size", 1 << 31),
        PropDef("short_root_bus", "uint32", 0),
        PropDef("x-pci-hole64-fix", "bool", True),
        PropDef("x-config-reg-migration-enabled", "bool", True),
        PropDef("bypass-iommu", "bool", False),
    )

    def __init__(self) -> None:
        super().__init__()
        self.config_reg = 0
        self.bus = PCIBus("pci.0", self)

    def realize(self) -> None:
        io = get_system_io()
        self.idx_mr = memory_region_init_io(
            self, MemoryRegionOps(lambda o, s: self.config_reg, self._write_idx,
                                  valid_min=4, valid_max=4, impl_min=4, impl_max=4),
            "pci-conf-idx", 4)
        io.add_subregion(0xCF8, self.idx_mr)
        self.data_mr = memory_region_init_io(
            self, MemoryRegionOps(self._read_data, self._write_data, valid_max=4,
                                  valid_unaligned=True, impl_max=4),
            "pci-conf-data", 4)
        io.add_subregion(0xCFC, self.data_mr)

    def unrealize(self) -> None:
        get_system_io().del_subregion(self.idx_mr)
        get_system_io().del_subregion(self.data_mr)

    def _write_idx(self, off: int, v: int, size: int) -> None:
        self.config_reg = v & 0xFFFFFFFF

    def _target(self, off: int) -> Optional[tuple]:
        reg = self.config_reg
        if not reg & 0x80000000 or (reg >> 16) & 0xFF != 0:
            return None  # disabled, or a bus behind a bridge (none exist)
        return (reg >> 8) & 0xFF, (reg & 0xFC) | off

    def _read_data(self, off: int, size: int) -> int:
        t = self._target(off)
        if t is None:
            return (1 << (8 * size)) - 1
        return self.bus.config_read(t[0], t[1], size)

    def _write_data(self, off: int, v: int, size: int) -> None:
        t = self._target(off)
        if t is not None:
            self.bus.config_write(t[0], t[1], v, size)


@register_type
class I440FX(PCIDevice):
    TYPE_NAME = "i440FX"
    ABSTRACT = False
    USER_CREATABLE = False
    VENDOR, DEVICE, CLASS, REVISION = 0x8086, 0x1237, 0x0600, 0x02

    def __init__(self) -> None:
        super().__init__()
        self.ram_size = 0
        self.pam: List[List[Any]] = []
        self.smram_region: Optional[MemoryRegion] = None
        self.smram_ram: Optional[MemoryRegion] = None

    def setup_memory(self, system: MemoryRegion, ram: MemoryRegion, pci: MemoryRegion) -> None:
        """Create the PAM and SMRAM aliases over ``system`` (QEMU's init_pam/smram)."""
        for i, (start, size) in enumerate(PAM_SEGMENTS):
            ram_rw = memory_region_init_alias(self, "pam-ram", ram, start, size)
            ram_ro = memory_region_init_alias(self, "pam-rom", ram, start, size)
            ram_ro.readonly = True
            to_pci = memory_region_init_alias(self, "pam-pci", pci, start, size)
            segs = [to_pci, ram_ro, to_pci, ram_rw]
            # Mode 2 (write-only RAM) is shown as PCI for reads, as QEMU does for fetches.
            for mr in (to_pci, ram_ro, ram_rw):
                mr.set_enabled(False)
                system.add_subregion_overlap(start, mr, 1)
            self.pam.append(segs)
        self.smram_region = memory_region_init_alias(self, "smram-region", pci, 0xA0000, 0x20000)
        system.add_subregion_overlap(0xA0000, self.smram_region, 1)
        self.smram_ram = memory_region_init_alias(self, "smram-low", ram, 0xA0000, 0x20000)
        self.smram_ram.set_enabled(False)
        system.add_subregion_overlap(0xA0000, self.smram_ram, 1)

    def init_config(self) -> None:
        c = self.config
        c[I440FX_COREBOOT_RAM_SIZE] = min(self.ram_size >> 23, 255)
        c[I440FX_SMRAM] = 0x02
        for a in range(I440FX_PAM, I440FX_PAM + 7):
            self.wmask[a] = 0xFF
        self.wmask[I440FX_SMRAM] = SMRAM_D_OPEN | SMRAM_D_CLS | SMRAM_D_LCK | SMRAM_G_SMRAME
        self._update_memory()

    def pam_mode(self, seg: int) -> int:
        if seg == 0:
            return (self.config[I440FX_PAM] >> 4) & 3
        reg = self.config[I440FX_PAM + 1 + (seg - 1) // 2]
        return (reg >> (4 * ((seg - 1) % 2))) & 3

    def _update_memory(self) -> None:
        for i, segs in enumerate(self.pam):
            want = segs[self.pam_mode(i)]
            for mr in set(segs):
                if mr.enabled != (mr is want):
                    mr.set_enabled(mr is want)
        if self.smram_region is not None and self.smram_ram is not None:
            smram = self.config[I440FX_SMRAM]
            open_ = bool(smram & SMRAM_D_OPEN and smram & SMRAM_G_SMRAME)
            self.smram_region.set_enabled(not open_)
            self.smram_ram.set_enabled(open_)

    def config_write(self, addr: int, value: int, size: int) -> None:
        if self.config[I440FX_SMRAM] & SMRAM_D_LCK and addr <= I440FX_SMRAM < addr + size:
            # Once locked, D_OPEN stays clear and the lock stays set until reset.
            shift = 8 * (I440FX_SMRAM - addr)
            value = (value & ~(0xFF << shift)) | ((self.config[I440FX_SMRAM] & ~SMRAM_D_OPEN) << shift)
        super().config_write(addr, value, size)
        if self.config[I440FX_SMRAM] & SMRAM_D_LCK:
            self.config[I440FX_SMRAM] &= ~SMRAM_D_OPEN
        if addr < I440FX_SMRAM + 1 and addr + size > I440FX_PAM:
            self._update_memory()


@register_type
class PIIX3(PCIDevice):
    TYPE_NAME = "PIIX3"
    ABSTRACT = False
    USER_CREATABLE = False
    VENDOR, DEVICE, CLASS = 0x8086, 0x7000, 0x0601
    DEVICE_PROPS = ()

    def __init__(self) -> None:
        super().__init__()
        self.isa_bus = ISABus("isa.0", self)
        self.rcr = 0

    def realize(self) -> None:
        super().realize()
        self.rcr_mr = memory_region_init_io(
            self, MemoryRegionOps(lambda o, s: self.rcr, self._rcr_write, valid_max=1, impl_max=1),
            "piix3-reset-control", 1)
        get_system_io().add_subregion(0xCF9, self.rcr_mr, 1)

    def _rcr_write(self, off: int, v: int, size: int) -> None:
        # Bit 2 starts the reset; bit 1 asks for a hard one (the same here).
        if v & 0x04:
            self.rcr = 0
            runstate().request_reset("guest-reset")
            return
        self.rcr = v & 0x02

    def init_config(self) -> None:
        c = self.config
        self.set_word(0x06, 0x0200)  # status: medium DEVSEL timing
        # Datasheet reset values: IORT, XBCS, PIRQ routing off, TOM, MBIRQ, MBDMA,
        # APIC base, SMI control and enable.
        for off, v in ((0x4C, 0x4D), (0x4E, 0x03), (0x60, 0x80), (0x61, 0x80), (0x62, 0x80),
                       (0x63, 0x80), (0x69, 0x02), (0x70, 0x80), (0x76, 0x0C), (0x77, 0x0C),
                       (0x78, 0x02), (0xA0, 0x08), (0xA8, 0x0F)):
            c[off] = v
        for off in (0x4C, 0x4E, 0x4F, 0x60, 0x61, 0x62, 0x63, 0x69, 0x6A, 0x70, 0x76, 0x77,
                    0x78, 0x79, 0x80, 0x82, 0xA0, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8,
                    0xAA, 0xAB, 0xAC, 0xAE):
            self.wmask[off] = 0xFF
        self.rcr = 0
