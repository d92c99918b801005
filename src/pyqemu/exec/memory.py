"""The memory API: memory regions, address spaces and their flat views.

A :class:`MemoryRegion` is RAM (an ``mmap`` RAM block), ROM, MMIO/port I/O
(callbacks with access-size rules), an alias into another region, or a pure
container.  Regions nest with offsets and priorities; an
:class:`AddressSpace` renders its root into a sorted list of non-overlapping
:class:`FlatRange` for dispatch, re-rendered only when the topology changes.

Python 3.9 syntax: the CPU's soft MMU dispatches through this module.
"""
from __future__ import annotations

import bisect
import struct
from typing import Callable, Dict, List, Optional, Tuple

from pyqemu.exec.ramblock import RAMBlock, ram_list
from pyqemu.qom.object import Object, register_type
from pyqemu.util.error import QemuError

UINT64_END = 1 << 64

_LE = {1: struct.Struct("<B"), 2: struct.Struct("<H"), 4: struct.Struct("<I"), 8: struct.Struct("<Q")}


class MemoryRegionOps:
    """Callbacks of an MMIO / port I/O region and the access sizes they take.

    ``read(offset, size) -> int`` and ``write(offset, value, size)``.
    ``valid_*`` bound what the guest may do (other accesses are rejected as
    unassigned); ``impl_*`` bound what the callbacks see (larger or smaller
    accesses are split or widened here, as QEMU's access_with_adjusted_size).
    """

    def __init__(self, read: Optional[Callable[[int, int], int]] = None,
                 write: Optional[Callable[[int, int, int], None]] = None, *,
                 valid_min: int = 1, valid_max: int = 4, valid_unaligned: bool = False,
                 impl_min: int = 0, impl_max: int = 0) -> None:
        self.read = read
        self.write = write
        self.valid_min = valid_min
        self.valid_max = valid_max
        self.valid_unaligned = valid_unaligned
        self.impl_min = impl_min or 1
        self.impl_max = impl_max or 4


@register_type
class MemoryRegion(Object):
    TYPE_NAME = "memory-region"
    ABSTRACT = False

    def __init__(self, owner: Optional[Object] = None, name: str = "", size: int = 0) -> None:
        super().__init__()
        self.owner = owner
        self.name = name
        self.size = size
        self.kind = "container"          # container, ram, rom, io, romd, alias
        self.readonly = False
        self.ops: Optional[MemoryRegionOps] = None
        self.ram_block: Optional[RAMBlock] = None
        self.ram_offset = 0              # offset of this region inside ram_block
        self.alias: Optional[MemoryRegion] = None
        self.alias_offset = 0
        self.subregions: List[MemoryRegion] = []
        self.container: Optional[MemoryRegion] = None
        self.addr = 0
        self.priority = 0
        self.enabled = True
        self.may_overlap = False
        self._listeners: List[AddressSpace] = []
        if name:
            # QOM places a region under its owner (or /machine/unattached) as name[N].
            pass

    # -- topology ---------------------------------------------------------
    def add_subregion(self, offset: int, sub: "MemoryRegion", priority: int = 0,
                      overlap: bool = False) -> None:
        if sub.container is not None:
            raise QemuError("memory region '%s' is already mapped" % sub.name)
        sub.container = self
        sub.addr = offset
        sub.priority = priority
        sub.may_overlap = overlap
        # Higher priority first; a newcomer goes before equals and so wins.
        i = 0
        while i < len(self.subregions) and self.subregions[i].priority > priority:
            i += 1
        self.subregions.insert(i, sub)
        _topology_changed()

    def add_subregion_overlap(self, offset: int, sub: "MemoryRegion", priority: int) -> None:
        self.add_subregion(offset, sub, priority, overlap=True)

    def del_subregion(self, sub: "MemoryRegion") -> None:
        self.subregions.remove(sub)
        sub.container = None
        _topology_changed()

    def set_enabled(self, enabled: bool) -> None:
        if enabled != self.enabled:
            self.enabled = enabled
            _topology_changed()

    def set_address(self, addr: int) -> None:
        if self.container is None:
            self.addr = addr
            return
        c, prio = self.container, self.priority
        c.del_subregion(self)
        c.add_subregion(addr, self, prio, self.may_overlap)

    def set_alias_offset(self, offset: int) -> None:
        self.alias_offset = offset
        _topology_changed()

    def type_text(self) -> str:
        """The type column of ``info mtree``."""
        mr = self
        while mr.alias is not None:
            mr = mr.alias
        if mr.kind == "romd":
            return "romd"
        if mr.kind == "rom":
            return "rom"
        if mr.kind == "ram":
            return "rom" if mr.readonly else "ram"
        return "i/o"

    def finalize(self) -> None:
        super().finalize()
        if self.ram_block is not None and self.ram_offset == 0:
            ram_list.remove(self.ram_block)
            self.ram_block = None

    # -- direct access to RAM contents -------------------------------------
    @property
    def ram(self):
        """The backing mmap (RAM and ROM regions only)."""
        assert self.ram_block is not None
        return self.ram_block.mem


def _attach(owner: Optional[Object], mr: MemoryRegion) -> MemoryRegion:
    """Give the region its QOM place: ``owner/name[N]`` or /machine/unattached."""
    from pyqemu.qom.object import container_get
    parent = owner if owner is not None else container_get("/machine/unattached")
    base = (mr.name or "anonymous").replace("/", "_")
    parent.add_child(base + "[*]", mr)
    return mr


def memory_region_init(owner: Optional[Object], name: str, size: int) -> MemoryRegion:
    """A pure container."""
    return _attach(owner, MemoryRegion(owner, name, size))


def memory_region_init_ram(owner: Optional[Object], name: str, size: int, *,
                           path: Optional[str] = None, share: bool = False,
                           readonly: bool = False, prealloc: bool = False,
                           attach: bool = True, ramblock_id: Optional[str] = None) -> MemoryRegion:
    mr = MemoryRegion(owner, name, size)
    mr.kind = "ram"
    try:
        block = RAMBlock(ramblock_id if ramblock_id is not None else name, size, path=path,
                         share=share, readonly=readonly, prealloc=prealloc)
    except (OSError, OverflowError, MemoryError) as e:
        text = e.strerror if isinstance(e, OSError) and e.strerror else "Cannot allocate memory"
        raise QemuError("cannot set up guest memory '%s': %s" % (name, text)) from None
    mr.ram_block = ram_list.add(block)
    return _attach(owner, mr) if attach else mr


def memory_region_init_rom(owner: Optional[Object], name: str, size: int) -> MemoryRegion:
    mr = memory_region_init_ram(owner, name, size)
    mr.kind = "rom"
    mr.readonly = True
    return mr


def memory_region_init_io(owner: Optional[Object], ops: MemoryRegionOps, name: str,
                          size: int) -> MemoryRegion:
    mr = MemoryRegion(owner, name, size)
    mr.kind = "io"
    mr.ops = ops
    return _attach(owner, mr)


def memory_region_init_alias(owner: Optional[Object], name: str, orig: MemoryRegion,
                             offset: int, size: int) -> MemoryRegion:
    mr = MemoryRegion(owner, name, size)
    mr.kind = "alias"
    mr.alias = orig
    mr.alias_offset = offset
    return _attach(owner, mr)


# ---------------------------------------------------------------------------
# Flat views and dispatch
# ---------------------------------------------------------------------------

class FlatRange:
    __slots__ = ("start", "end", "mr", "offset", "readonly")

    def __init__(self, start: int, end: int, mr: MemoryRegion, offset: int, readonly: bool) -> None:
        self.start = start
        self.end = end                  # exclusive
        self.mr = mr                    # a terminal region: ram, rom or io
        self.offset = offset            # offset into mr of self.start
        self.readonly = readonly


def _render(mr: MemoryRegion, base: int, clip_lo: int, clip_hi: int, alias_delta: int,
            out: List[FlatRange], readonly: bool) -> None:
    """Add mr's uncovered parts to ``out`` (earlier entries win, as higher priority)."""
    if not mr.enabled:
        return
    lo = max(clip_lo, base)
    hi = min(clip_hi, base + mr.size)
    if lo >= hi:
        return
    if mr.alias is not None:
        # The alias shows the target's [alias_offset, alias_offset+size) at base.
        tbase = base - mr.alias_offset
        _render(mr.alias, tbase, lo, hi, 0, out, readonly or mr.readonly)
        return
    for sub in mr.subregions:
        _render(sub, base + sub.addr, lo, hi, 0, out, readonly)
    if mr.kind == "container":
        return
    ro = readonly or mr.readonly
    # Fill the gaps in [lo, hi) not taken by already-rendered ranges.
    covered = sorted((r.start, r.end) for r in out if r.end > lo and r.start < hi)
    pos = lo
    for s, e in covered:
        if s > pos:
            out.append(FlatRange(pos, s, mr, pos - base, ro))
        pos = max(pos, e)
    if pos < hi:
        out.append(FlatRange(pos, hi, mr, pos - base, ro))


def _simplify(ranges: List[FlatRange]) -> List[FlatRange]:
    """Join neighbours that continue each other: same region, adjacent
    addresses and offsets, same access (QEMU's flatview_simplify; a region
    seen through several aliases in a row, such as the PAM windows over
    pc.rom, is then one range in the view and in ``info mtree -f``)."""
    merged: List[FlatRange] = []
    for r in ranges:
        prev = merged[-1] if merged else None
        if (prev is not None and prev.mr is r.mr and prev.end == r.start
                and prev.offset + (prev.end - prev.start) == r.offset
                and prev.readonly == r.readonly):
            prev.end = r.end
        else:
            merged.append(r)
    return merged


class AddressSpace:
    """A root region seen as one flat, dispatchable address space."""

    def __init__(self, root: MemoryRegion, name: str) -> None:
        self.root = root
        self.name = name
        self._ranges: Optional[List[FlatRange]] = None
        self._starts: List[int] = []
        # Unassigned port I/O reads as all ones; unassigned memory as zero.
        self.unassigned_value = (1 << 64) - 1 if root.kind == "io" else 0
        _address_spaces.append(self)

    def flat_view(self) -> List[FlatRange]:
        if self._ranges is None:
            out: List[FlatRange] = []
            _render(self.root, 0, 0, min(self.root.size, UINT64_END), 0, out, False)
            out.sort(key=lambda r: r.start)
            out = _simplify(out)
            self._ranges = out
            self._starts = [r.start for r in out]
        return self._ranges

    def invalidate(self) -> None:
        self._ranges = None

    def lookup(self, addr: int) -> Optional[FlatRange]:
        ranges = self.flat_view()
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and ranges[i].end > addr:
            return ranges[i]
        return None

    def is_accessible(self, addr: int, length: int) -> bool:
        """True when every byte of [addr, addr+length) is backed by some region."""
        end = addr + length
        while addr < end:
            r = self.lookup(addr)
            if r is None:
                return False
            addr = r.end
        return True

    # -- integer accesses (little-endian, the host and x86 order) ----------
    def read(self, addr: int, size: int) -> int:
        r = self.lookup(addr)
        if r is None or addr + size > r.end and not _io_fits(r, addr, size):
            if r is not None:
                return int.from_bytes(self.read_bytes(addr, size), "little")
            return self.unassigned_value & ((1 << (8 * size)) - 1)
        off = addr - r.start + r.offset
        mr = r.mr
        if mr.ram_block is not None:
            return _LE[size].unpack_from(mr.ram_block.mem, mr.ram_offset + off)[0]
        return _io_read(mr, off, size, self.unassigned_value)

    def write(self, addr: int, size: int, value: int) -> None:
        value &= (1 << (8 * size)) - 1
        r = self.lookup(addr)
        if r is None:
            return
        if addr + size > r.end and not _io_fits(r, addr, size):
            self.write_bytes(addr, value.to_bytes(size, "little"))
            return
        off = addr - r.start + r.offset
        mr = r.mr
        if mr.ram_block is not None:
            if not r.readonly:
                _LE[size].pack_into(mr.ram_block.mem, mr.ram_offset + off, value)
            return
        _io_write(mr, off, size, value)

    # -- byte-string accesses (memsave, x/xp, DMA) -------------------------
    def read_bytes(self, addr: int, length: int) -> bytes:
        out = bytearray()
        while length > 0:
            r = self.lookup(addr)
            if r is None:
                # Up to the next mapped range, unassigned bytes.
                i = bisect.bisect_right(self._starts, addr)
                n = min(length, (self._starts[i] - addr) if i < len(self._starts) else length)
                out += bytes([self.unassigned_value & 0xFF]) * n
            else:
                n = min(length, r.end - addr)
                off = addr - r.start + r.offset
                mr = r.mr
                if mr.ram_block is not None:
                    base = mr.ram_offset + off
                    out += mr.ram_block.mem[base:base + n]
                else:
                    for i in range(n):
                        out.append(_io_read(mr, off + i, 1, 0xFF))
            addr += n
            length -= n
        return bytes(out)

    def write_bytes(self, addr: int, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            r = self.lookup(addr)
            if r is None:
                i = bisect.bisect_right(self._starts, addr)
                n = min(len(data) - pos, (self._starts[i] - addr) if i < len(self._starts)
                        else len(data) - pos)
            else:
                n = min(len(data) - pos, r.end - addr)
                off = addr - r.start + r.offset
                mr = r.mr
                if mr.ram_block is not None:
                    if not r.readonly:
                        base = mr.ram_offset + off
                        mr.ram_block.mem[base:base + n] = data[pos:pos + n]
                else:
                    for i in range(n):
                        _io_write(mr, off + i, 1, data[pos + i])
            addr += n
            pos += n


def _io_fits(r: FlatRange, addr: int, size: int) -> bool:
    """An I/O access goes whole to the region at its start address (as QEMU's
    dispatch does) when the region itself spans it, even if a higher-priority
    region covers part of it in the flat view (0xcf8 under 0xcf9 on the PC)."""
    return r.mr.ram_block is None and addr - r.start + r.offset + size <= r.mr.size


def _io_read(mr: MemoryRegion, off: int, size: int, unassigned: int) -> int:
    ops = mr.ops
    mask = (1 << (8 * size)) - 1
    if ops is None or ops.read is None or not _access_valid(ops, off, size):
        return unassigned & mask
    step = max(min(size, ops.impl_max), ops.impl_min)
    if step >= size:
        if step == size:
            return ops.read(off, size) & mask
        # Widen: read the aligned larger unit and extract our bytes.
        aligned = off & ~(step - 1)
        return (ops.read(aligned, step) >> (8 * (off - aligned))) & mask
    value = 0
    for i in range(0, size, step):
        value |= (ops.read(off + i, step) & ((1 << (8 * step)) - 1)) << (8 * i)
    return value


def _io_write(mr: MemoryRegion, off: int, size: int, value: int) -> None:
    ops = mr.ops
    if ops is None or ops.write is None or not _access_valid(ops, off, size):
        return
    step = max(min(size, ops.impl_max), ops.impl_min)
    if step >= size:
        if step == size:
            ops.write(off, value, size)
        else:
            aligned = off & ~(step - 1)
            ops.write(aligned, value << (8 * (off - aligned)), step)
        return
    for i in range(0, size, step):
        ops.write(off + i, (value >> (8 * i)) & ((1 << (8 * step)) - 1), step)


def _access_valid(ops: MemoryRegionOps, off: int, size: int) -> bool:
    if size < ops.valid_min or size > ops.valid_max:
        return False
    if not ops.valid_unaligned and off & (size - 1):
        return False
    return True


_address_spaces: List[AddressSpace] = []


def _topology_changed() -> None:
    for a in _address_spaces:
        a.invalidate()


def address_spaces() -> List[AddressSpace]:
    return list(_address_spaces)


# ---------------------------------------------------------------------------
# The global system memory and I/O spaces
# ---------------------------------------------------------------------------

_system: Dict[str, Tuple[MemoryRegion, AddressSpace]] = {}


def _unassigned_io_read(off: int, size: int) -> int:
    return (1 << (8 * size)) - 1


def memory_init() -> None:
    """Create ``system`` (memory) and ``io`` (I/O ports), as at QEMU start-up."""
    _system.clear()
    del _address_spaces[:]
    ram_list.clear()
    sysmem = memory_region_init(None, "system", UINT64_END)
    _system["memory"] = (sysmem, AddressSpace(sysmem, "memory"))
    io = memory_region_init_io(None, MemoryRegionOps(_unassigned_io_read, lambda o, v, s: None,
                                                     valid_max=4), "io", 0x10000)
    _system["I/O"] = (io, AddressSpace(io, "I/O"))


def get_system_memory() -> MemoryRegion:
    return _system["memory"][0]


def get_system_io() -> MemoryRegion:
    return _system["I/O"][0]


def address_space_memory() -> AddressSpace:
    return _system["memory"][1]


def address_space_io() -> AddressSpace:
    return _system["I/O"][1]


# ---------------------------------------------------------------------------
# info mtree
# ---------------------------------------------------------------------------

def _owner_text(mr: MemoryRegion) -> str:
    """`` owner:{...} parent:{...}`` of ``info mtree -o``."""
    def expand(label: str, obj: Object) -> str:
        is_dev = obj.is_a("device")
        dev_id = getattr(obj, "id", None) if is_dev else None
        if dev_id:
            what = " id=%s" % dev_id
        elif obj.parent is not None or obj is _root_object():
            what = " path=%s" % obj.path()
        else:
            what = " type=%s" % obj.type_name
        return " %s:{%s%s}" % (label, "dev" if is_dev else "obj", what)
    owner, parent = mr.owner, mr.parent
    if owner is None and parent is None:
        return " orphan"
    out = expand("owner", owner) if owner is not None else ""
    if parent is not None and parent is not owner:
        out += expand("parent", parent)
    return out


def _root_object() -> Object:
    from pyqemu.qom.object import root
    return root()


def _print_mr(mr: MemoryRegion, level: int, base: int, lines: List[str],
              aliases: List[MemoryRegion], owner: bool = False, disabled: bool = False) -> None:
    if not mr.enabled and not disabled:
        return
    start = base + mr.addr
    end = start + mr.size - 1 if mr.size else start - 1
    end &= UINT64_END - 1
    head = "  " * level + "%016x-%016x (prio %d, %s): " % (start, end, mr.priority, mr.type_text())
    dis = "" if mr.enabled else " [disabled]"
    if mr.alias is not None:
        if mr.alias not in aliases:
            aliases.append(mr.alias)
        line = head + "alias %s @%s %016x-%016x%s" % (
            mr.name, mr.alias.name, mr.alias_offset, mr.alias_offset + mr.size - 1, dis)
    else:
        line = head + mr.name + dis
    lines.append(line + (_owner_text(mr) if owner else ""))
    # Ordered by address, then highest priority first.
    for sub in sorted(mr.subregions, key=lambda s: (s.addr, -s.priority)):
        _print_mr(sub, level + 1, start, lines, aliases, owner, disabled)


def flatview_root(mr: Optional[MemoryRegion]) -> Optional[MemoryRegion]:
    """The region a flat view is named after: descend through whole aliases and
    through containers whose only enabled child covers them from offset 0."""
    while mr is not None and mr.enabled:
        if mr.alias is not None:
            if mr.alias_offset == 0 and mr.size >= mr.alias.size:
                mr = mr.alias
                continue
        elif mr.kind == "container":
            enabled = [c for c in mr.subregions if c.enabled]
            if not enabled:
                return None
            if len(enabled) == 1 and enabled[0].addr == 0 and mr.size >= enabled[0].size:
                mr = enabled[0]
                continue
        return mr
    return None


def _format_flatviews(lines: List[str], owner: bool) -> None:
    views: List[Tuple[Optional[MemoryRegion], List[AddressSpace]]] = []
    for a in _address_spaces:
        root = flatview_root(a.root)
        for r, spaces in views:
            if r is root:
                spaces.append(a)
                break
        else:
            views.append((root, [a]))
    for n, (root, spaces) in enumerate(views):
        lines.append("FlatView #%d" % n)
        for a in spaces:
            alias = ", alias %s" % a.root.alias.name if a.root.alias is not None else ""
            lines.append(' AS "%s", root: %s%s' % (a.name, a.root.name, alias))
        lines.append(" Root memory region: %s" % (root.name if root is not None else "(none)"))
        ranges = spaces[0].flat_view()
        if not ranges:
            lines.append("  No rendered FlatView")
            lines.append("")
            continue
        for r in ranges:
            mr = r.mr
            text = "  %016x-%016x (prio %d, %s): %s" % (
                r.start, r.end - 1, mr.priority, "rom" if r.readonly and mr.kind != "rom"
                else mr.type_text(), mr.name)
            if r.offset:
                text += " @%016x" % r.offset
            lines.append(text + (_owner_text(mr) if owner else ""))
        lines.append("")


def format_mtree(flatview: bool = False, owner: bool = False, disabled: bool = False) -> str:
    """The text of HMP ``info mtree`` with its -f, -o and -D options."""
    lines: List[str] = []
    if flatview:
        _format_flatviews(lines, owner)
        return "\n".join(lines) + "\n"
    aliases: List[MemoryRegion] = []
    groups: List[Tuple[MemoryRegion, List[str]]] = []
    for a in _address_spaces:
        for root, names in groups:
            if root is a.root:
                names.append(a.name)
                break
        else:
            groups.append((a.root, [a.name]))
    shown = set()
    for root, names in groups:
        # QEMU names the address spaces of one tree in name order
        for n in sorted(names):
            lines.append("address-space: %s" % n)
        _print_mr(root, 1, 0, lines, aliases, owner, disabled)
        shown.add(id(root))
        lines.append("")
    for mr in aliases:
        # An alias target not drawn as part of any address space gets its own tree.
        if mr.container is None and id(mr) not in shown:
            lines.append("memory-region: %s" % mr.name)
            _print_mr(mr, 1, -mr.addr, lines, aliases, owner, disabled)
            lines.append("")
    return "\n".join(lines) + "\n"
