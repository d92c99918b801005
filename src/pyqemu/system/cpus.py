"""The CPU model registry behind ``-cpu``, ``-cpu help`` and query-cpus-fast.

A target registers each model with :func:`register_cpu_model` (a factory
taking the machine and the CPU index) and may replace the ``-cpu help``
layout with :func:`set_cpu_help`; the none machine and the PC board both
create their CPUs through :func:`create_cpu`.
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
    return sorted(_models)


def cpu_help() -> str:
    if _help is not None:
        return _help()
    lines = ["Available CPUs:"]
    for name in sorted(_models):
        lines.append("%-22s %s" % (name, _models[name][1]))
    return "\n".join(lines) + "\n"


def create_cpu(machine: Any, model: str, index: int) -> Any:
    entry = _models.get(model)
    if entry is None:
        raise QemuError("unable to find CPU model '%s'" % model)
    return entry[0](machine, index)


def check_cpu_model(model: str) -> None:
    if model not in _models:
        raise QemuError("unable to find CPU model '%s'" % model)
