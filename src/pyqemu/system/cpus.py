"""The CPU model registry behind ``-cpu``, ``-cpu help`` and query-cpus-fast.

A target registers each model with :func:`register_cpu_model` (a factory
taking the machine and the CPU index) and may replace the ``-cpu help``
layout with :func:`set_cpu_help`; the none machine and the PC board both
create their CPUs through :func:`create_cpu`.  :class:`CPURunner` runs the
created CPUs inside the main loop.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from pyqemu.util.error import QemuError

_models: Dict[str, Tuple[Callable[[Any, int], Any], str]] = {}
_help: Optional[Callable[[], str]] = None


def register_cpu_model(name: str, factory: Callable[[Any, int], Any], desc: str = "") -> None:
    _models[name] = (factory, desc)


def set_cpu_help(func: Callable[[], str]) -> None:
    global _help
    _help = func


def cpu_models() -> List[str]:
    _ensure_models()
    return sorted(_models)


def cpu_help() -> str:
    _ensure_models()
    if _help is not None:
        return _help()
    lines = ["Available CPUs:"]
    for name in sorted(_models):
        lines.append("%-22s %s" % (name, _models[name][1]))
    return "\n".join(lines) + "\n"


def create_cpu(machine: Any, model: str, index: int) -> Any:
    _ensure_models()
    # '-cpu NAME,feature,...': the factory reads the features from machine.cpu_type
    entry = _models.get(model.split(",", 1)[0])
    if entry is None:
        raise QemuError("unable to find CPU model '%s'" % model)
    return entry[0](machine, index)


def check_cpu_model(model: str) -> None:
    _ensure_models()
    name = model.split(",", 1)[0]
    if name not in _models:
        raise QemuError("unable to find CPU model '%s'" % name)


# -- x86 models until the CPU-model table (target/i386/cpu_models.py) exists ----------

def _ensure_models() -> None:
    if _models:
        return
    try:
        import pyqemu.target.i386.cpu_models  # noqa: F401 - registers the models itself
    except ImportError:
        pass
    if _models:
        return
    from pyqemu.target.i386.cpu import cpu_models as x86_models
    for m in x86_models():
        register_cpu_model(m.name, _x86_factory(m.name), m.desc)


def _x86_factory(model: str) -> Callable[[Any, int], Any]:
    def make(machine: Any, index: int) -> Any:
        from pyqemu.exec.memory import address_space_io, address_space_memory
        from pyqemu.target.i386.sysemu.cpu import X86SysCPU
        cpu = X86SysCPU(address_space_memory(), model, index)
        cpu.io_as = address_space_io()
        return cpu
    return make


# -- running the CPUs inside the main loop ----------------------------------------------

SLICE_SECONDS = 0.02

# the CPU whose slice runs now (device models ask which CPU accessed them,
# e.g. the local APIC window); None outside slices
current_cpu: Any = None
# the CPUs of the running machine (set by CPURunner)
all_cpus: Optional[List[Any]] = None


class CPURunner:
    """Runs the machine's TCG CPUs in slices inside the one event loop
    (ARCHITECTURE.md decision 4): round-robin, each slice a bottom half, so
    timers, chardevs and the monitor are serviced between slices.  A halted
    CPU costs nothing until :meth:`kick` (an interrupt line rose, a reset).
    """

    def __init__(self, cpus: List[Any]) -> None:
        from pyqemu.system.runstate import runstate
        self.cpus = cpus
        global all_cpus
        all_cpus = cpus
        from pyqemu.exec.main_loop import main_loop
        self.icount = main_loop().icount
        if self.icount is not None:
            if len(cpus) == 1:
                cpu0 = cpus[0]
                self.icount.counter = lambda: cpu0.insn_count
            else:
                self.icount.counter = lambda: sum(c.insn_count for c in cpus)
        self.scheduled = False
        self.budget = 20000
        from pyqemu.system.guestprof import start_from_env
        start_from_env()
        runstate().state_listeners.append(lambda running, state: self.kick() if running else None)

    def kick(self) -> None:
        """Make sure a slice runs soon (safe to call from device callbacks)."""
        if not self.scheduled:
            from pyqemu.exec.main_loop import main_loop
            self.scheduled = True
            main_loop().bh_schedule(self._run)

    def _run(self) -> None:
        import time
        from pyqemu.exec.cpu_loop import cpu_exec_sys
        from pyqemu.exec.main_loop import main_loop
        from pyqemu.system.runstate import runstate
        from pyqemu.target.i386.cpu import EXCP_HLT
        self.scheduled = False
        rs = runstate()
        if not rs.is_running():
            return
        busy = False
        icount = self.icount
        if icount is not None:
            icount.busy()
            loop = main_loop()
        t0 = time.process_time()
        n0 = sum(cpu.insn_count for cpu in self.cpus)
        global current_cpu
        for cpu in self.cpus:
            if getattr(cpu, "wait_sipi", False) or \
                    cpu.halted and not (cpu.intr_level and cpu.interrupt_request):
                continue
            current_cpu = cpu
            budget = self.budget
            if icount is not None:
                # stop at the next guest timer, so that it fires on time
                deadline = loop.next_virtual_deadline()
                if deadline is not None:
                    budget = max(1, min(budget, icount.insns_until(deadline)))
            try:
                if cpu_exec_sys(cpu, budget) != EXCP_HLT:
                    busy = True
            finally:
                current_cpu = None
            if rs.pending:
                break
        elapsed = time.process_time() - t0
        done = sum(cpu.insn_count for cpu in self.cpus) - n0
        # aim at SLICE_SECONDS of CPU per slice whatever the speed of the
        # interpreter: the rate comes from the instructions really executed (a
        # slice cut short by an OUT must not inflate the next one)
        if busy and elapsed > 0.002 and done > 0:
            self.budget = int(min(max(done / elapsed * SLICE_SECONDS, 1000), 1000000))
        if busy:
            self.kick()
        elif icount is not None:
            icount.idle(loop.next_virtual_deadline())
