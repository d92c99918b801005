"""The ``none`` machine: no CPU unless asked for, no devices; RAM at 0 if -m."""
from __future__ import annotations

from pyqemu.exec.memory import get_system_memory
from pyqemu.hw.core.machine import MachineState, register_machine
from pyqemu.util.error import QemuError


@register_machine
class NoneMachine(MachineState):
    NAME = "none"
    DESC = "empty machine"
    MAX_CPUS = 1
    DEFAULT_RAM_SIZE = 0
    DEFAULT_RAM_ID = "ram"

    def init(self) -> None:
        if self.cpu_type is not None:
            from pyqemu.system.cpus import create_cpu
            self.cpus.append(create_cpu(self, self.cpu_type, 0))
        if self.ram is not None:
            get_system_memory().add_subregion(0, self.ram)

    def check(self) -> None:
        if self.smp["cpus"] > self.MAX_CPUS:
            raise QemuError("Invalid SMP CPUs %d. The max CPUs supported by machine '%s' is %d"
                            % (self.smp["cpus"], self.NAME, self.MAX_CPUS))
