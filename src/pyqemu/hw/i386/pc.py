"""The ``pc`` machine (alias of ``pc-i440fx-7.2``): i440FX host bridge, PIIX3, ISA devices.

Built as QEMU 7.2's pc_init1 lays it out: main RAM ``pc.ram`` shown through
``ram-below-4g`` (at most 3 GiB once RAM reaches 3.5 GiB) and ``ram-above-4g``,
the PCI address space under system memory at priority -1, the firmware
``pc.bios`` at the top of 4 GiB with its last 128 KiB aliased as ``isa-bios``
at 0xe0000, the option ROM area ``pc.rom`` at 0xc0000, PAM and SMRAM aliases
from the i440FX, and on the ISA bus the i8259 pair, the RTC with the CMOS
contents QEMU's PC writes, the COM ports, port 0x92 and the i8042.

The CPUs are system-mode x86 CPUs (target/i386/sysemu) run by the translator
in slices inside the main loop (system/cpus.CPURunner); the PIC's INTR line
and the A20 gate (port 0x92, i8042) are wired to them.
"""
from __future__ import annotations

import calendar
import datetime
import os
import time
from typing import Any, Callable, Dict, List, Optional

from pyqemu.qom import object as qom
from pyqemu.exec.memory import (get_system_memory, memory_region_init, memory_region_init_alias,
                                memory_region_init_rom)
from pyqemu.hw.char import debugcon  # noqa: F401 - isa-debugcon for -debugcon
from pyqemu.hw.char.serial import ISASerial
from pyqemu.hw.core.machine import MachineState, register_machine
from pyqemu.hw.core.qdev import IRQ, BusState, main_system_bus
from pyqemu.hw.input.i8042 import I8042
from pyqemu.hw.isa import debugexit  # noqa: F401 - isa-debug-exit
from pyqemu.hw.intc.i8259 import PIC, PICPair
from pyqemu.hw.i386.topology import apic_id_limit
from pyqemu.hw.intc.ioapic import IOAPIC
from pyqemu.hw.isa.port92 import Port92
from pyqemu.hw.nvram.fw_cfg import (FW_CFG_BOOT_MENU, FW_CFG_E820_TABLE, FW_CFG_IRQ0_OVERRIDE,
                                     FW_CFG_MAX_CPUS, FW_CFG_NB_CPUS, FW_CFG_NOGRAPHIC,
                                     FW_CFG_RAM_SIZE, FWCfgIO, e820_table)
from pyqemu.hw.pci.pci import install_info_pci
from pyqemu.hw.pci_host.i440fx import PIIX3, I440FX, I440FXPCIHost
from pyqemu.hw.i386.x86_linux import load_kernel
from pyqemu.hw.rtc.mc146818rtc import RTC
from pyqemu.hw.timer.hpet import HPET
from pyqemu.hw.timer.i8254 import PIT
from pyqemu.system.runstate import runstate
from pyqemu.qom.object import PropDef
from pyqemu.util.error import QemuError

GiB = 1 << 30
BIOS_NAME = "bios-256k.bin"
# Where Debian's packages put the firmware QEMU loads by default.
FIRMWARE_DIRS = ("/usr/share/qemu", "/usr/share/seabios", "/usr/lib/ipxe/qemu")


def create_device(cls: type, bus: Optional[BusState], name: str,
                  props: Optional[Dict[str, Any]] = None,
                  setup: Optional[Callable[[Any], None]] = None) -> Any:
    """qdev_new + properties + realize, the device kept under /machine/unattached."""
    dev = cls()
    for k, v in (props or {}).items():
        dev.set_property(k, v)
    qom.root().child("machine").child("unattached").add_child(name, dev)
    if bus is not None:
        bus.attach(dev)
    if setup is not None:
        setup(dev)
    dev.set_property("realized", True)
    return dev


def find_firmware(name: str, extra_dirs: List[str]) -> Optional[str]:
    if os.path.isabs(name) or os.path.exists(name):
        return name if os.path.exists(name) else None
    for d in list(extra_dirs) + list(FIRMWARE_DIRS):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    return None


def rtc_base_time(base: Optional[str]) -> float:
    """Seconds since the epoch (UTC) the RTC starts at, from -rtc base=."""
    now = time.time()
    if base in (None, "utc"):
        return now
    if base == "localtime":
        # The RTC holds local time: shift by the host's UTC offset.
        return now + calendar.timegm(time.localtime(now)) - calendar.timegm(time.gmtime(now))
    fmt = "%Y-%m-%dT%H:%M:%S" if "T" in base else "%Y-%m-%d"
    try:
        return calendar.timegm(datetime.datetime.strptime(base, fmt).timetuple())
    except ValueError:
        raise QemuError("invalid datetime format",
                        hint="valid formats: '2006-06-17T16:01:21' or '2006-06-17'") from None


@register_machine
class PCMachine(MachineState):
    NAME = "pc-i440fx-7.2"
    ALIAS = "pc"
    DESC = "Standard PC (i440FX + PIIX, 1996)"
    IS_DEFAULT = True    # as in QEMU: no -M means pc-i440fx-7.2
    MAX_CPUS = 255
    SMP_DIES = True     # x86 has dies in -smp (QEMU's topology messages name them)
    PROPERTIES = (
        PropDef("host-unpack", "bool", False,
                desc="Unpack a bzImage's compressed kernel on the host and enter it directly "
                     "(pyqemu only; skips the firmware)"),
    )
    DEFAULT_RAM_SIZE = 128 << 20
    DEFAULT_RAM_ID = "pc.ram"
    DEFAULT_CPU_TYPE = None

    def __init__(self) -> None:
        super().__init__()
        self.below_4g = 0
        self.above_4g = 0
        self.a20 = 1
        self.intr = 0
        self.devices: Dict[str, Any] = {}

    def check(self) -> None:
        if self.smp["cpus"] > self.MAX_CPUS:
            raise QemuError("Invalid SMP CPUs %d. The max CPUs supported by machine '%s' is %d"
                            % (self.smp["cpus"], self.NAME, self.MAX_CPUS))

    # -- memory -------------------------------------------------------------
    def _memory(self) -> Any:
        system = get_system_memory()
        ram_size = self.ram_size
        lowmem = 0xC0000000 if ram_size >= 0xE0000000 else 0xE0000000
        self.below_4g = min(ram_size, lowmem)
        self.above_4g = ram_size - self.below_4g
        if self.ram is not None:
            below = memory_region_init_alias(self, "ram-below-4g", self.ram, 0, self.below_4g)
            system.add_subregion(0, below)
            if self.above_4g:
                above = memory_region_init_alias(self, "ram-above-4g", self.ram, self.below_4g,
                                                 self.above_4g)
                system.add_subregion(1 << 32, above)
        pci = memory_region_init(self, "pci", 1 << 64)
        system.add_subregion_overlap(0, pci, -1)
        self._load_bios(pci)
        rom = memory_region_init_rom(self, "pc.rom", 0x20000)
        pci.add_subregion_overlap(0xC0000, rom, 1)
        return pci

    def _load_bios(self, pci: Any) -> None:
        name = self.firmware or BIOS_NAME
        dirs = list(getattr(self, "firmware_dirs", []))
        path = find_firmware(name, dirs)
        data = b""
        if path is not None:
            try:
                with open(path, "rb") as f:
                    data = f.read((16 << 20) + 1)
            except OSError:
                path = None
        size = len(data)
        if path is None or size == 0 or size % 65536 != 0 or size > (16 << 20):
            raise QemuError("could not load PC BIOS '%s'" % name)
        bios = memory_region_init_rom(self, "pc.bios", size)
        bios.ram_block.mem[0:size] = data
        pci.add_subregion((1 << 32) - size, bios)
        isa_size = min(size, 128 << 10)
        isa_bios = memory_region_init_alias(self, "isa-bios", bios, size - isa_size, isa_size)
        isa_bios.readonly = True
        pci.add_subregion_overlap(0x100000 - isa_size, isa_bios, 1)

    # -- board ----------------------------------------------------------------
    def init(self) -> None:
        if self.kernel is None and (self.initrd is not None or self.append is not None):
            raise QemuError("-%s only allowed with -kernel option"
                            % ("initrd" if self.initrd is not None else "append"))
        pci_mem = self._memory()
        sysbus = main_system_bus()
        host = create_device(I440FXPCIHost, sysbus, "i440fx-host")
        pci_bus = host.bus
        install_info_pci(pci_bus)

        def i440fx_setup(d: Any) -> None:
            d.ram_size = self.ram_size
            d.setup_memory(get_system_memory(), self.ram, pci_mem)
        i440fx = create_device(I440FX, pci_bus, "i440fx", {"addr": "0"}, i440fx_setup)
        piix3 = create_device(PIIX3, pci_bus, "piix3", {"addr": "8", "multifunction": "on"})
        isa = piix3.isa_bus
        master = create_device(PIC, isa, "pic[0]", {"iobase": "0x20", "elcr_addr": "0x4d0",
                                                    "elcr_mask": "0xf8", "master": "on"})
        slave = create_device(PIC, isa, "pic[1]", {"iobase": "0xa0", "elcr_addr": "0x4d1",
                                                   "elcr_mask": "0xde"})
        self.pic = PICPair(master, slave)
        self.pic.set_intr_handler(IRQ(self._set_intr))
        self.ioapic = create_device(IOAPIC, sysbus, "ioapic")
        pic_lines = self.pic.irq_lines()
        # Each ISA line goes to the PIC and to the IOAPIC pin of its GSI (IRQ 0 is GSI 2).
        isa.irqs = [IRQ(self._isa_irq_fanout(pic_lines[i], self.ioapic.get_gpio_in(2 if i == 0 else i)), i)
                    for i in range(16)]
        rtc = create_device(RTC, isa, "rtc", setup=self._rtc_setup)
        pit = create_device(PIT, isa, "pit")
        hpet = create_device(HPET, sysbus, "hpet")
        hpet.set_isa_irq = lambda n, level: isa.irqs[n].set(level)
        hpet.set_gsi = lambda n, level: self.ioapic.get_gpio_in(n).set(level)
        hpet.legacy_notify.append(lambda on: pit.set_irq_enabled(not on))
        from pyqemu.system.vl import serial_hd
        for i in range(4):
            chr = serial_hd(i)
            if chr is not None:
                create_device(ISASerial, isa, "serial[%d]" % i,
                              {"index": str(i), "chardev": chr.label})
        a20 = IRQ(self._set_a20)
        p92 = create_device(Port92, isa, "port92")
        p92.connect_gpio_out(0, a20, "a20")
        kbd = create_device(I8042, isa, "i8042")
        kbd.connect_gpio_out(0, a20, "a20")
        fw_cfg = create_device(FWCfgIO, isa, "fw_cfg", setup=self._fw_cfg_setup)
        self._create_cpus()
        self._wire_apics()
        self.devices = {"host": host, "i440fx": i440fx, "piix3": piix3, "rtc": rtc,
                        "port92": p92, "i8042": kbd,
                        "fw_cfg": fw_cfg, "pit": pit, "hpet": hpet}
        self._cmos_init(rtc)

    def _fw_cfg_setup(self, fw: Any) -> None:
        # Filled before realize so that the file directory is built once complete.
        fw.add_i64(FW_CFG_RAM_SIZE, self.ram_size)
        fw.add_i16(FW_CFG_NOGRAPHIC, 0)
        fw.add_i16(FW_CFG_NB_CPUS, self.smp["cpus"])
        # QEMU hands the firmware the APIC ID limit, not the CPU count
        fw.add_i16(FW_CFG_MAX_CPUS, apic_id_limit(self.smp))
        fw.add_i16(FW_CFG_BOOT_MENU, 0)
        fw.add_i32(FW_CFG_IRQ0_OVERRIDE, 1)
        fw.add_i32(FW_CFG_E820_TABLE, 0)  # the legacy table is empty; etc/e820 has the map
        fw.files_pending = [("etc/e820", e820_table(self.below_4g, self.above_4g))]
        self._user_fw_cfg(fw)
        self.direct_boot = None
        if self.kernel is not None and self.host_unpack:
            from pyqemu.hw.i386 import linux_unpack
            self.direct_boot = linux_unpack.prepare(self.kernel, self.initrd, self.append or "",
                                                    self.below_4g, self.above_4g)
        elif self.kernel is not None:
            load_kernel(fw, self.kernel, self.initrd, self.append or "", self.below_4g, self._option_rom)

    def _direct_boot_reset(self) -> None:
        """host-unpack=on: the kernel, its zero page and page tables in RAM, the BSP at its entry."""
        boot = getattr(self, "direct_boot", None)
        if boot is None or not self.cpus:
            return
        from pyqemu.exec.memory import address_space_memory
        from pyqemu.hw.i386 import linux_unpack
        from pyqemu.target.i386.sysemu.translator import get_sys_translator
        mem = address_space_memory()
        for addr, data in boot.blobs:
            mem.write_bytes(addr, data)
        # no firmware to count the CPUs: an MP table tells Linux about them (for
        # one CPU too, as SeaBIOS writes one, so Linux finds its boot CPU listed)
        eax, _b, _c, edx = self.cpus[0].cpuid(1, 0)
        ids = [getattr(cpu, "apic_id", i) for i, cpu in enumerate(self.cpus)]
        mem.write_bytes(linux_unpack.MP_TABLE_ADDR, linux_unpack.mp_table(len(self.cpus), eax, edx, ids))
        for cpu in self.cpus:
            get_sys_translator(cpu).cache.flush()   # code from before the reset is gone
        linux_unpack.enter_kernel(self.cpus[0], boot)

    def _option_rom(self, name: str) -> bytes:
        path = find_firmware(name, list(getattr(self, "firmware_dirs", [])))
        if path is None:
            raise QemuError("Option ROM '%s' not found" % name)
        with open(path, "rb") as f:
            return f.read()

    @staticmethod
    def _user_fw_cfg(fw: Any) -> None:
        """-fw_cfg name=...,file=|string=: named blobs for the firmware (gen_id needs vmgenid)."""
        from pyqemu.hw.i386.boot_options import fw_cfg_group
        for o in fw_cfg_group().instances:
            loc = getattr(o, "loc", None)
            if o.get("gen_id") is not None:
                raise QemuError("gen_id is not supported yet (no vmgenid device)", loc=loc)
            path = o.get("file")
            if path is not None:
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError as e:
                    raise QemuError("can't load %s: Failed to open file \u201c%s\u201d: %s"
                                    % (path, path, e.strerror), loc=loc) from None
            else:
                data = o.get("string").encode()
            fw.files_pending.append((o.get("name"), data))

    def _rtc_setup(self, rtc: Any) -> None:
        from pyqemu.system.vl import option_groups
        o = option_groups()["rtc"].find(None)
        base = o.get("base") if o is not None else None
        clock = o.get("clock") if o is not None else None
        clock_fn: Optional[Callable[[], float]] = None
        if clock == "vm":
            from pyqemu.exec.main_loop import QEMU_CLOCK_VIRTUAL, clock_get_ns
            clock_fn = lambda: clock_get_ns(QEMU_CLOCK_VIRTUAL) / 1e9  # noqa: E731
        elif clock == "rt":
            clock_fn = time.monotonic
        rtc.set_base(rtc_base_time(base), clock_fn)

    def _cmos_init(self, rtc: Any) -> None:
        """The CMOS bytes QEMU's pc_cmos_init writes (no floppy or IDE drives here)."""
        s = rtc.set_cmos
        s(0x15, 640 & 0xFF)
        s(0x16, 640 >> 8)
        ext_kb = min(max(self.ram_size // 1024 - 1024, 0), 65535)
        for lo in (0x17, 0x30):
            s(lo, ext_kb & 0xFF)
            s(lo + 1, ext_kb >> 8)
        val = 0
        if self.below_4g > (16 << 20):
            val = min((self.below_4g - (16 << 20)) // 65536, 65535)
        s(0x34, val & 0xFF)
        s(0x35, val >> 8)
        above = self.above_4g // 65536
        s(0x5B, above & 0xFF)
        s(0x5C, (above >> 8) & 0xFF)
        s(0x5D, (above >> 16) & 0xFF)
        s(0x5F, self.smp["cpus"] - 1)
        # Boot order "cad": hard disk (2), floppy (1), CD-ROM (3).
        s(0x3D, (1 << 4) | 2)
        s(0x38, 3 << 4)
        s(0x14, 0x02 | 0x04)  # FPU present, PS/2 mouse present; no floppy drive

    @staticmethod
    def _isa_irq_fanout(a: IRQ, b: IRQ) -> Callable[[int, int], None]:
        def handler(n: int, level: int) -> None:
            a.set(level)
            b.set(level)
        return handler

    # -- local APICs (hw/intc/apic_bus.py) ----------------------------------------------
    def _wire_apics(self) -> None:
        from pyqemu.hw.intc.apic_bus import APICBus, current_cpu_of_runner
        if not self.cpus:
            self.apic_bus = None
            return
        self.apic_bus = APICBus(self.cpus, self.pic, self.ioapic, self.cpu_runner.kick,
                                current_cpu_of_runner)

        def pic_intr(n: int, level: int) -> None:
            self.intr = level
            self.apic_bus.set_pic_intr(n, level)
        # the PIC's INTR now reaches the CPUs through their APICs' LINT0
        self.pic.set_intr_handler(IRQ(pic_intr))

    # -- CPUs ---------------------------------------------------------------------
    def _create_cpus(self) -> None:
        from pyqemu.exec.main_loop import QEMU_CLOCK_VIRTUAL, clock_get_ns
        from pyqemu.system.cpus import CPURunner, create_cpu
        for i in range(self.smp["cpus"]):
            cpu = create_cpu(self, self.cpu_type or "qemu64", i)
            cpu.get_irq = self.pic.read_irq
            # TSC at 1 GHz of guest (virtual) time
            cpu.tsc_source = lambda: clock_get_ns(QEMU_CLOCK_VIRTUAL)
            cpu.on_triple_fault = lambda: runstate().request_reset("guest-reset")
            self.cpus.append(cpu)
        self.cpu_runner = CPURunner(self.cpus)
        from pyqemu.target.i386.sysemu import monitor
        from pyqemu.system.hmp_machine import monitor_cpu
        monitor.install(monitor_cpu)

    def reset(self) -> None:
        super().reset()
        # APs wait for INIT/SIPI
        for cpu in self.cpus[1:]:
            cpu.halted = True
        if getattr(self, "apic_bus", None) is not None:
            self.apic_bus.reset()
        self._direct_boot_reset()
        self._set_a20(0, self.a20)
        runner = getattr(self, "cpu_runner", None)
        if runner is not None:
            runner.kick()

    def _set_intr(self, n: int, level: int) -> None:
        self.intr = level
        if self.cpus:
            cpu = self.cpus[0]
            cpu.intr_level = bool(level)
            if level:
                cpu.interrupt_request = True
                self.cpu_runner.kick()

    def _set_a20(self, n: int, level: int) -> None:
        self.a20 = level
        for cpu in self.cpus:
            cpu.a20_mask = (1 << 64) - 1 if level else ((1 << 64) - 1) & ~(1 << 20)
            cpu.tlb.flush()


__all__ = ["PCMachine", "create_device", "find_firmware", "rtc_base_time"]
