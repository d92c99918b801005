"""The local APICs of a PC's CPUs and what connects them.

One ``LocalAPIC`` per CPU (its ``cpu.apic_id``: hw/i386/topology.py), reached by the CPU as
``cpu.apic``. The xAPIC page is one MMIO window ``apic-msi`` at 0xfee00000
(1 MiB, as QEMU maps it); an access goes to the APIC of the CPU that makes
it. Interrupts reach a CPU through its INTR line (``cpu.intr_level`` +
``cpu.interrupt_request``), which is up while its APIC has a deliverable
vector or, if the APIC accepts PIC interrupts (hardware-disabled APIC, or
LINT0 unmasked: the BSP's LINT0 is ExtINT at reset), while the i8259's INTR
is up. The CPU's acknowledge (``cpu.get_irq``) takes the APIC's vector
first, then the PIC's. The IOAPIC's messages and the ICR's IPIs (fixed,
lowest priority, INIT, SIPI; physical or logical destinations, shorthands)
are routed here; a level-triggered vector's EOI is passed back to the IOAPIC.
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional

from pyqemu.exec.memory import MemoryRegionOps, get_system_memory, memory_region_init_io
from pyqemu.hw.intc.apic import LVT_MASKED, LocalAPIC

APIC_DEFAULT_ADDRESS = 0xFEE00000
APIC_WINDOW = 0x100000
APICBASE_ENABLE = 1 << 11
LVT_LINT0 = 4
DM_FIXED, DM_LOWEST, DM_SMI, DM_NMI, DM_INIT, DM_SIPI, DM_EXTINT = 0, 1, 2, 4, 5, 6, 7
ICR_LEVEL_ASSERT = 1 << 14
ICR_TRIGGER_LEVEL = 1 << 15


class APICBus:
    def __init__(self, cpus: List[Any], pic: Any, ioapic: Any,
                 kick: Callable[[], None], current_cpu: Callable[[], Any],
                 map_mmio: bool = True) -> None:
        self.cpus = cpus
        self.pic = pic
        self.ioapic = ioapic
        self.kick = kick
        self.current_cpu = current_cpu
        self.pic_level = 0
        self.apics: List[LocalAPIC] = []
        for i, cpu in enumerate(cpus):
            apic = LocalAPIC(getattr(cpu, "apic_id", i))
            apic.cpu = cpu
            apic.ipi_handlers.append(self._ipi_sender(apic))
            # the timer raises IRR behind our back: re-evaluate after it
            apic.on_irq = lambda c=cpu: self.update(c)
            cpu.apic = apic
            cpu.get_irq = self._acknowledge(cpu)
            cpu.tpr_hook = self._cr8_writer(cpu)
            cpu.apic_base_hook = lambda value, c=cpu: self.update(c)
            cpu.wait_sipi = False
            # PAUSE yields to these (target/i386/sysemu/ops.pause)
            cpu.smp_siblings = cpus
            self.apics.append(apic)
        if ioapic is not None:
            ioapic.deliver.append(self._ioapic_message)
        self.mr = memory_region_init_io(None, MemoryRegionOps(
            self._read, self._write, valid_max=4, impl_min=4, impl_max=4), "apic-msi", APIC_WINDOW)
        if map_mmio:
            get_system_memory().add_subregion_overlap(APIC_DEFAULT_ADDRESS, self.mr, 0x1000)

    # -- reset ----------------------------------------------------------------------
    def reset(self) -> None:
        for i, (cpu, apic) in enumerate(zip(self.cpus, self.apics)):
            apic.reset()
            if i == 0:
                # the firmware relies on PIC interrupts reaching the BSP through LINT0
                apic.lvt[LVT_LINT0] = DM_EXTINT << 8
            cpu.wait_sipi = i != 0
            cpu.intr_level = False

    # -- the INTR line ----------------------------------------------------------------
    @staticmethod
    def _hw_enabled(cpu: Any) -> bool:
        return bool(getattr(cpu, "apic_base", APICBASE_ENABLE) & APICBASE_ENABLE)

    def _accepts_pic(self, cpu: Any) -> bool:
        return not self._hw_enabled(cpu) or not cpu.apic.lvt[LVT_LINT0] & LVT_MASKED

    def update(self, cpu: Any) -> None:
        apic = cpu.apic
        level = (self._hw_enabled(cpu) and apic.pending() >= 0) or \
            (self.pic_level and self._accepts_pic(cpu))
        cpu.intr_level = bool(level)
        if level:
            cpu.interrupt_request = True
            self.kick()

    def set_pic_intr(self, n: int, level: int) -> None:
        """The i8259's INTR output."""
        self.pic_level = level
        for cpu in self.cpus:
            self.update(cpu)

    def _acknowledge(self, cpu: Any) -> Callable[[], int]:
        def get_irq() -> int:
            v = -1
            if self._hw_enabled(cpu):
                v = cpu.apic.ack()
            if v < 0 and self.pic_level and self._accepts_pic(cpu):
                v = self.pic.read_irq()
            self.update(cpu)
            return v
        return get_irq

    def _cr8_writer(self, cpu: Any) -> Callable[[int], None]:
        def write(value: int) -> None:
            cpu.apic.tpr = (value & 0xF) << 4
            self.update(cpu)
        return write

    # -- the xAPIC page ---------------------------------------------------------------
    def _cpu(self) -> Any:
        cpu = self.current_cpu()
        return cpu if cpu is not None and getattr(cpu, "apic", None) is not None else self.cpus[0]

    def _read(self, off: int, size: int) -> int:
        cpu = self._cpu()
        if off >= 0x1000:
            return 0
        return cpu.apic.read(off & 0xFF0)

    def _write(self, off: int, val: int, size: int) -> None:
        cpu = self._cpu()
        if off >= 0x1000:
            return      # MSI writes: no device sends them yet
        apic = cpu.apic
        off &= 0xFF0
        eoi_vector = -1
        if off == 0xB0:
            v = apic.isr.bit_length() - 1
            if v >= 0 and apic.tmr >> v & 1:
                eoi_vector = v
        apic.write(off, val)
        if off == 0x80:
            cpu.cr[8] = apic.tpr >> 4
        if eoi_vector >= 0 and self.ioapic is not None:
            self.ioapic.eoi(eoi_vector)
        self.update(cpu)

    # -- delivery -----------------------------------------------------------------------
    def _targets(self, dest: int, logical: bool) -> List[int]:
        out = []
        for i, apic in enumerate(self.apics):
            if not logical:
                if dest == 0xFF or apic.id == dest:
                    out.append(i)
            elif (apic.dfr >> 28) == 0xF:          # flat model
                if (apic.ldr >> 24) & dest:
                    out.append(i)
            else:                                  # cluster model
                if (apic.ldr >> 28) == (dest >> 4) and (apic.ldr >> 24) & dest & 0xF:
                    out.append(i)
        return out

    def _deliver(self, targets: List[int], mode: int, vector: int, level_trig: bool) -> None:
        if mode == DM_LOWEST and targets:
            # lowest priority: the lowest TPR wins, ties to the lowest index
            targets = [min(targets, key=lambda i: (self.apics[i].tpr, i))]
        for i in targets:
            cpu = self.cpus[i]
            apic = self.apics[i]
            if mode in (DM_FIXED, DM_LOWEST):
                apic.set_irq(vector, level_trig)
                self.update(cpu)
            elif mode == DM_INIT:
                self._init(cpu)
            elif mode == DM_SIPI:
                self._sipi(cpu, vector)
            elif mode == DM_EXTINT:
                self.update(cpu)
            # SMI and NMI are not modelled by the CPU yet

    def _ioapic_message(self, msg: dict) -> None:
        targets = self._targets(msg["dest"], bool(msg["dest_mode"]))
        self._deliver(targets, msg["delivery_mode"], msg["vector"], bool(msg["trigger_level"]))

    def _ipi_sender(self, src: LocalAPIC) -> Callable[[int, int], None]:
        def send(icr: int, dest: int) -> None:
            mode = (icr >> 8) & 7
            if mode == DM_INIT and not icr & ICR_LEVEL_ASSERT and icr & ICR_TRIGGER_LEVEL:
                return      # INIT level de-assert: only re-syncs arbitration IDs
            shorthand = (icr >> 18) & 3
            me = self.apics.index(src)
            if shorthand == 1:
                targets = [me]
            elif shorthand == 2:
                targets = list(range(len(self.apics)))
            elif shorthand == 3:
                targets = [i for i in range(len(self.apics)) if i != me]
            else:
                targets = self._targets(dest, bool(icr & (1 << 11)))
            self._deliver(targets, mode, icr & 0xFF, False)
        return send

    def _init(self, cpu: Any) -> None:
        """INIT: the CPU's reset state (APIC base and APIC ID kept), waiting for SIPI."""
        base = getattr(cpu, "apic_base", None)
        cpu.reset()
        if base is not None:
            cpu.apic_base = base
        apic_id = cpu.apic.id
        cpu.apic.reset()
        cpu.apic.id = apic_id
        cpu.halted = True
        cpu.wait_sipi = True
        cpu.intr_level = False

    def _sipi(self, cpu: Any, vector: int) -> None:
        if not cpu.wait_sipi:
            return
        cpu.wait_sipi = False
        cpu.segs[1] = vector << 8
        cpu.seg_base[1] = vector << 12
        cpu.rip = 0
        cpu.halted = False
        cpu.update_mode()
        cpu.exit_request = cpu.interrupt_request = True
        self.kick()


def current_cpu_of_runner() -> Optional[Any]:
    """The CPU executing now, as the CPU runner reports it (None outside a slice)."""
    from pyqemu.system import cpus
    return getattr(cpus, "current_cpu", None)


__all__ = ["APICBus", "APIC_DEFAULT_ADDRESS", "current_cpu_of_runner"]
