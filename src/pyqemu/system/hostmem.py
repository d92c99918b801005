"""Host memory backends: ``memory-backend-ram`` and ``memory-backend-file``.

A backend owns one RAM region (an mmap RAM block) made when the object is
completed; the machine maps it as main RAM (``-machine memory-backend=ID``,
or the default backend made for ``-m``), and ``query-memdev`` lists them.
"""
from __future__ import annotations

from typing import Any, Dict, List

from pyqemu.exec.memory import MemoryRegion, memory_region_init_ram
from pyqemu.qom.object import Object, PropDef, UserCreatable, objects_root, register_type
from pyqemu.util.error import QemuError

_POLICIES = ("default", "preferred", "bind", "interleave")


@register_type
class HostMemoryBackend(Object, UserCreatable):
    TYPE_NAME = "memory-backend"
    ABSTRACT = True
    REQUIRED = ("size",)
    PROPERTIES = (
        PropDef("merge", "bool", True, desc="Mark memory as mergeable"),
        PropDef("dump", "bool", True, desc="Set to 'off' to exclude from core dump"),
        PropDef("prealloc", "bool", False, desc="Preallocate memory"),
        PropDef("prealloc-threads", "uint32", 1, shown_as="int",
                desc="Number of CPU threads to use for prealloc"),
        PropDef("size", "size", 0, shown_as="int", desc="Size of the memory region (ex: 500M)"),
        PropDef("share", "bool", False, desc="Mark the memory as private to QEMU or shared"),
        PropDef("reserve", "bool", True, desc="Reserve swap space (or huge pages) if applicable"),
        PropDef("policy", "HostMemPolicy", "default", enum=_POLICIES, desc="Set the NUMA policy"),
        PropDef("host-nodes", "string", "", shown_as="int",
                desc="Binds memory to the list of NUMA host nodes"),
        PropDef("prealloc-context", "link<thread-context>", None, readonly=True, getter=lambda b: "",
                desc="Context to use for creating CPU threads for preallocation"),
        PropDef("x-use-canonical-path-for-ramblock-id", "bool", False),
    )

    def __init__(self) -> None:
        super().__init__()
        self.mr: Any = None
        self.used = False

    def alloc(self) -> MemoryRegion:
        raise NotImplementedError

    def check_settable(self, prop: Any) -> None:
        # The memory exists once the object is complete; its shape is fixed then.
        if self.mr is not None and prop.name not in ("dump", "merge"):
            raise QemuError("cannot change property %s of %s " % (prop.name, self.type_name))

    def complete(self) -> None:
        if not self.size:
            raise QemuError("property 'size' of %s doesn't take value '0'" % self.type_name)
        self.mr = self.alloc()

    def can_be_deleted(self) -> bool:
        return not self.used

    def finalize(self) -> None:
        if self.mr is not None and self.mr.ram_block is not None:
            from pyqemu.exec.ramblock import ram_list
            ram_list.remove(self.mr.ram_block)
            self.mr.ram_block = None
        super().finalize()

    def memdev_info(self, id: str) -> Dict[str, Any]:
        return {"id": id, "size": self.size, "merge": self.merge, "dump": self.dump,
                "prealloc": self.prealloc, "share": self.share, "reserve": self.reserve,
                "host-nodes": [], "policy": self.policy}


@register_type
class MemoryBackendRam(HostMemoryBackend):
    TYPE_NAME = "memory-backend-ram"
    ABSTRACT = False

    def alloc(self) -> MemoryRegion:
        # The RAM block gets its id only when the region is used (as QEMU's
        # vmstate_register_ram does), so unused backends show a blank name.
        return memory_region_init_ram(self, self.canonical_name, self.size, share=self.share,
                                      prealloc=self.prealloc, ramblock_id="")


@register_type
class MemoryBackendFile(HostMemoryBackend):
    TYPE_NAME = "memory-backend-file"
    ABSTRACT = False
    REQUIRED = ("size", "mem-path")
    PROPERTIES = (
        PropDef("mem-path", "string", None),
        PropDef("discard-data", "bool", False),
        PropDef("align", "size", 0, shown_as="int"),
        PropDef("readonly", "bool", False),
        PropDef("pmem", "bool", False),
    )

    def alloc(self) -> MemoryRegion:
        if not self.mem_path:
            raise QemuError("mem-path property not set")
        return memory_region_init_ram(self, self.canonical_name, self.size, path=self.mem_path,
                                      share=self.share, readonly=self.readonly,
                                      prealloc=self.prealloc, ramblock_id="")

    def memdev_info(self, id: str) -> Dict[str, Any]:
        info = super().memdev_info(id)
        return info


def backend_use_as_ram(backend: HostMemoryBackend) -> MemoryRegion:
    """Give the backend's region its id as name (ramblock and mtree) and mark it used."""
    if backend.used:
        raise QemuError("memory backend %s can't be used multiple times." % backend.canonical_name)
    backend.used = True
    mr = backend.mr
    if mr.ram_block is not None:
        mr.ram_block.idstr = backend.canonical_name
    return mr


def memdevs() -> List[HostMemoryBackend]:
    return [o for o in objects_root().children() if isinstance(o, HostMemoryBackend)]


def query_memdev() -> List[Dict[str, Any]]:
    # Newest first: QEMU builds this list by prepending each backend.
    return [b.memdev_info(b.canonical_name) for b in reversed(memdevs())]


def format_info_memdev() -> str:
    """The text of HMP ``info memdev``."""
    out = []
    for m in query_memdev():
        out.append("memory backend: %s" % m["id"])
        out.append("  size:  %d" % m["size"])
        out.append("  merge: %s" % ("true" if m["merge"] else "false"))
        out.append("  dump: %s" % ("true" if m["dump"] else "false"))
        out.append("  prealloc: %s" % ("true" if m["prealloc"] else "false"))
        out.append("  share: %s" % ("true" if m["share"] else "false"))
        out.append("  reserve: %s" % ("true" if m["reserve"] else "false"))
        out.append("  policy: %s" % m["policy"])
        out.append("  host nodes: ")
        out.append("")
    return "\n".join(out) + ("\n" if out else "")
