"""HMP commands of the machine core; each calls its QMP command (or the memory
API for the port and memory dumps) and prints the result as QEMU 7.2 does.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List

from pyqemu.monitor.hmp_table import register_hmp, register_info
from pyqemu.monitor.qmp_commands import execute
from pyqemu.util.error import QemuError

Args = Dict[str, Any]

# The last /fmt of x, xp, p, i and o, shared by all monitors as in QEMU.
_last = {"format": "x", "size": 4}


def _fmt(args: Args) -> tuple:
    """The /fmt of this command with QEMU's defaults: the last format and size used."""
    fmt = args.get("format") or _last["format"]
    size = args.get("size")
    if fmt != "i":
        if size is None:
            size = _last["size"]
        _last["size"] = size
    _last["format"] = fmt
    return fmt, size


def _bad_format(mon: Any, args: Args, cmd: str) -> bool:
    """QEMU's format parser has no 's': answer as it does."""
    if args.get("format") == "s":
        mon.printf("invalid char in format: 's'\nTry \"help %s\" for more information\n" % cmd)
        return True
    return False


def _c_alt_hex(v: int) -> str:
    return "0x%x" % v if v else "0"


def _c_alt_oct(v: int) -> str:
    return "0%o" % v if v else "0"


def _char(v: int) -> str:
    c = v & 0xFF
    special = {0x27: "\\'", 0x5C: "\\\\", 0x0A: "\\n", 0x0D: "\\r"}
    if c in special:
        return "'%s'" % special[c]
    if 32 <= c <= 126:
        return "'%s'" % chr(c)
    return "'\\x%02x'" % c


# -- run state ---------------------------------------------------------------

def hmp_info_status(mon: Any, args: Args) -> None:
    st = execute("query-status")
    if st["running"]:
        mon.printf("VM status: running\n")
    elif st["status"] == "paused":
        mon.printf("VM status: paused\n")
    else:
        mon.printf("VM status: paused (%s)\n" % st["status"])


def hmp_stop(mon: Any, args: Args) -> None:
    execute("stop")


def hmp_cont(mon: Any, args: Args) -> None:
    execute("cont")


def hmp_system_reset(mon: Any, args: Args) -> None:
    execute("system_reset")


def hmp_system_powerdown(mon: Any, args: Args) -> None:
    execute("system_powerdown")


def hmp_quit(mon: Any, args: Args) -> None:
    execute("quit")


# -- machine facts -----------------------------------------------------------

def hmp_info_name(mon: Any, args: Args) -> None:
    info = execute("query-name")
    if "name" in info:
        mon.printf("%s\n" % info["name"])


def hmp_info_uuid(mon: Any, args: Args) -> None:
    mon.printf("%s\n" % execute("query-uuid")["UUID"])


def hmp_info_kvm(mon: Any, args: Args) -> None:
    info = execute("query-kvm")
    if info["present"]:
        mon.printf("kvm support: %s\n" % ("enabled" if info["enabled"] else "disabled"))
    else:
        mon.printf("kvm support: not compiled\n")


def hmp_info_cpus(mon: Any, args: Args) -> None:
    mine = getattr(mon, "cpu_index", 0)
    for c in execute("query-cpus-fast"):
        active = "*" if c["cpu-index"] == mine else " "
        mon.printf("%c CPU #%d: thread_id=%d\n" % (active, c["cpu-index"], c["thread-id"]))


def hmp_cpu(mon: Any, args: Args) -> None:
    index = args["index"]
    if not 0 <= index < len(machine_cpus()):
        mon.printf("invalid CPU index\n")
        return
    mon.cpu_index = index


def machine_cpus() -> List[Any]:
    from pyqemu.system import qmp_machine
    vm = qmp_machine.current
    return list(vm.machine.cpus) if vm is not None and vm.machine is not None else []


def monitor_cpu() -> Any:
    """The CPU of the monitor command running now (QEMU's mon_get_cpu): the one
    chosen with 'cpu N' or human-monitor-command's cpu-index, CPU 0 otherwise."""
    from pyqemu.monitor import hmp
    mon = hmp.current_monitor
    cpus = machine_cpus()
    index = getattr(mon, "cpu_index", 0) if mon is not None else 0
    return cpus[index] if 0 <= index < len(cpus) else (cpus[0] if cpus else None)


def _mon_cpu() -> Any:
    return monitor_cpu()


def hmp_info_registers(mon: Any, args: Args) -> None:
    from pyqemu.system import qmp_machine
    vm = qmp_machine.current
    cpus = list(vm.machine.cpus) if vm is not None else []
    if not args.get("cpustate_all"):
        cpu = monitor_cpu()
        cpus = [cpu] if cpu is not None else []
    if not cpus:
        mon.printf("No CPU available\n")
        return
    for cpu in cpus:
        index = machine_cpus().index(cpu)
        dump = getattr(cpu, "dump_state", None)
        if dump is None:
            mon.printf("No CPU available\n")
            return
        mon.printf("\nCPU#%d\n" % index)
        mon.printf(dump())


def hmp_info_memdev(mon: Any, args: Args) -> None:
    for m in execute("query-memdev"):
        mon.printf("memory backend: %s\n" % m["id"])
        mon.printf("  size:  %d\n" % m["size"])
        for key in ("merge", "dump", "prealloc", "share", "reserve"):
            mon.printf("  %s: %s\n" % (key, "true" if m[key] else "false"))
        mon.printf("  policy: %s\n" % m["policy"])
        mon.printf("  host nodes: %s\n" % ",".join(str(n) for n in m["host-nodes"]))
        mon.printf("\n")


def hmp_info_qtree(mon: Any, args: Args) -> None:
    from pyqemu.hw.core.qdev import format_qtree
    mon.printf(format_qtree())


def hmp_info_mtree(mon: Any, args: Args) -> None:
    from pyqemu.exec.memory import format_mtree
    # -d (the dispatch tree under -f) is accepted; pyqemu has no such tree to show.
    mon.printf(format_mtree(flatview=bool(args.get("flatview")), owner=bool(args.get("owner")),
                            disabled=bool(args.get("disabled"))))


def hmp_info_ramblock(mon: Any, args: Args) -> None:
    from pyqemu.exec.ramblock import ram_list
    mon.printf(ram_list.format_info())


def hmp_info_qom_tree(mon: Any, args: Args) -> None:
    from pyqemu.qom import object as qom
    path = args.get("path") or "/machine"
    obj = qom.resolve_path(path)
    if obj is None:
        mon.printf("Path '%s' could not be resolved.\n" % path)
        return
    lines: List[str] = []

    def walk(o: Any, indent: int) -> None:
        name = o.canonical_name if o.parent is not None else ""
        lines.append("%*s/%s (%s)" % (indent, "", name, o.type_name))
        for c in sorted(o.children(), key=lambda c: c.canonical_name):
            walk(c, indent + 2)

    walk(obj, 0)
    mon.printf("\n".join(lines) + "\n")


# -- QOM ----------------------------------------------------------------------

def hmp_qom_list(mon: Any, args: Args) -> None:
    path = args.get("path")
    if path is None:
        mon.printf("/\n")
        return
    for p in execute("qom-list", {"path": path}):
        mon.printf("%s (%s)\n" % (p["name"], p["type"]))


def hmp_qom_get(mon: Any, args: Args) -> None:
    value = execute("qom-get", {"path": args["path"], "property": args["property"]})
    mon.printf("%s\n" % json.dumps(value, indent=4))


def hmp_qom_set(mon: Any, args: Args) -> None:
    value: Any = args["value"]
    if args.get("json"):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise QemuError("JSON parse error, %s" % e)
        execute("qom-set", {"path": args["path"], "property": args["property"], "value": value})
        return
    # Without -j the value is text, parsed by the property's type (object_property_parse).
    from pyqemu.qom import object as qom
    obj = qom.resolve_path(args["path"])
    if obj is None:
        raise QemuError("Device '%s' not found" % args["path"])
    obj.set_property(args["property"], value, "qdev")


def hmp_object_add(mon: Any, args: Args) -> None:
    from pyqemu.util.opts import keyval_parse
    from pyqemu.system.qmp_machine import qmp_object_add
    props, _ = keyval_parse(args["object"], implied_key="qom-type")
    for key in ("qom-type", "id"):
        if key not in props:
            raise QemuError("Parameter '%s' is missing" % key)
    qmp_object_add(_style="keyval", **{k.replace("-", "_"): v for k, v in props.items()})


def hmp_object_del(mon: Any, args: Args) -> None:
    execute("object-del", {"id": args["id"]})


# -- guest memory and ports ------------------------------------------------------

def _dump(mon: Any, args: Args, physical: bool) -> None:
    from pyqemu.exec.memory import address_space_memory
    if _bad_format(mon, args, "xp" if physical else "x"):
        return
    fmt, wsize = _fmt(args)
    count = args.get("count", 1)
    addr = args["addr"] & ((1 << 64) - 1)
    if fmt == "i":
        cpu = _mon_cpu()
        if cpu is None:
            mon.printf("Can not dump without CPU\n")
        elif hasattr(cpu, "disassemble"):
            mon.printf(cpu.disassemble(addr, count, physical))
        else:
            mon.printf("disassembly is not supported yet\n")
        return
    cpu = _mon_cpu()
    if not physical and cpu is None:
        mon.printf("Can not dump without CPU\n")
        return
    # The length comes from the remembered size even for 'c', which then
    # prints one character per byte, as QEMU's memory_dump does.
    length = wsize * count
    line_size = 8 if wsize == 1 else 16
    if fmt == "c":
        wsize = 1
    digits = {"o": (wsize * 8 + 2) // 3, "x": wsize * 2,
              "u": (wsize * 80 + 32) // 33, "d": (wsize * 80 + 32) // 33}.get(fmt, 0)
    asp = address_space_memory()
    while length > 0:
        mon.printf("%016x:" % addr)
        n = min(length, line_size)
        if physical:
            if not asp.is_accessible(addr, n):
                mon.printf(" Cannot access memory\n")
                return
            buf = asp.read_bytes(addr, n)
        else:
            buf = cpu.memory_rw_debug(addr, n)
            if buf is None:
                mon.printf(" Cannot access memory\n")
                return
        parts = []
        for i in range(0, n, wsize):
            v = int.from_bytes(buf[i:i + wsize], "little")
            if fmt == "o":
                parts.append(("%" + str(digits) + "s") % _c_alt_oct(v))
            elif fmt == "x":
                parts.append("0x%0*x" % (digits, v))
            elif fmt == "u":
                parts.append("%*d" % (digits, v))
            elif fmt == "d":
                if wsize == 8 and v >> 63:
                    v -= 1 << 64
                parts.append("%*d" % (digits, v))
            elif fmt == "c":
                parts.append(_char(v))
        mon.printf("".join(" " + p for p in parts) + "\n")
        addr += n
        length -= n


def hmp_x(mon: Any, args: Args) -> None:
    _dump(mon, args, False)


def hmp_xp(mon: Any, args: Args) -> None:
    _dump(mon, args, True)


def hmp_print(mon: Any, args: Args) -> None:
    if _bad_format(mon, args, "print"):
        return
    fmt, _ = _fmt(args)
    val = args["val"] & ((1 << 64) - 1)
    if fmt == "o":
        mon.printf("%s\n" % _c_alt_oct(val))
    elif fmt == "x":
        mon.printf("%s\n" % _c_alt_hex(val))
    elif fmt == "u":
        mon.printf("%d\n" % val)
    elif fmt == "c":
        mon.printf("%s\n" % _char(val))
    else:
        # 'd' and every other remembered format (x /i leaves 'i'): signed decimal
        mon.printf("%d\n" % (val - (1 << 64) if val >> 63 else val))


def hmp_memsave(mon: Any, args: Args) -> None:
    execute("memsave", {"val": args["val"], "size": args["size"], "filename": args["filename"],
                        "cpu-index": getattr(mon, "cpu_index", 0)})


def hmp_pmemsave(mon: Any, args: Args) -> None:
    execute("pmemsave", {"val": args["val"], "size": args["size"], "filename": args["filename"]})


def hmp_ioport_read(mon: Any, args: Args) -> None:
    from pyqemu.exec.memory import address_space_io
    if _bad_format(mon, args, "i"):
        return
    _, size = _fmt(args)
    if size not in (1, 2, 4):
        size = 4
    addr = args["addr"] & 0xFFFF
    val = address_space_io().read(addr, size)
    suffix = {1: "b", 2: "w", 4: "l"}[size]
    mon.printf("port%s[0x%04x] = 0x%0*x\n" % (suffix, addr, size * 2, val))


def hmp_ioport_write(mon: Any, args: Args) -> None:
    from pyqemu.exec.memory import address_space_io
    if _bad_format(mon, args, "o"):
        return
    _, size = _fmt(args)
    if size not in (1, 2, 4):
        size = 4
    address_space_io().write(args["addr"] & 0xFFFF, size, args["val"])


def install() -> None:
    register_hmp("cpu", "index:i", "index", "set the default CPU", hmp_cpu)
    register_hmp("stop", "", "", "stop emulation", hmp_stop)
    register_hmp("cont|c", "", "", "resume emulation", hmp_cont)
    register_hmp("system_reset", "", "", "reset the system", hmp_system_reset)
    register_hmp("system_powerdown", "", "", "send system power down event", hmp_system_powerdown)
    register_hmp("quit|q", "", "", "quit the emulator", hmp_quit)
    register_hmp("x", "fmt:/,addr:l", "/fmt addr", "virtual memory dump starting at 'addr'", hmp_x)
    register_hmp("xp", "fmt:/,addr:l", "/fmt addr", "physical memory dump starting at 'addr'", hmp_xp)
    register_hmp("print|p", "fmt:/,val:l", "/fmt expr", "print expression value (use $reg for CPU register access)",
                 hmp_print)
    register_hmp("memsave", "val:l,size:i,filename:s", "addr size file",
                 "save to disk virtual memory dump starting at 'addr' of size 'size'", hmp_memsave)
    register_hmp("pmemsave", "val:l,size:i,filename:s", "addr size file",
                 "save to disk physical memory dump starting at 'addr' of size 'size'", hmp_pmemsave)
    register_hmp("i", "fmt:/,addr:i", "/fmt addr", "I/O port read", hmp_ioport_read)
    register_hmp("o", "fmt:/,addr:i,val:i", "/fmt addr value", "I/O port write", hmp_ioport_write)
    register_hmp("qom-list", "path:s?", "path", "list QOM properties", hmp_qom_list)
    register_hmp("qom-get", "path:s,property:s", "path property", "print QOM property", hmp_qom_get)
    register_hmp("qom-set", "json:-j,path:s,property:s,value:S", "[-j] path property value",
                 "set QOM property.\n\t\t\t-j: the value is specified in json format.", hmp_qom_set)
    register_hmp("object_add", "object:S", "[qom-type=]type,id=str[,prop=value][,...]",
                 "create QOM object", hmp_object_add)
    register_hmp("object_del", "id:s", "id", "destroy QOM object", hmp_object_del)
    register_info("status", "", "", "show the current VM status (running|paused)", hmp_info_status)
    register_info("name", "", "", "show the current VM name", hmp_info_name)
    register_info("uuid", "", "", "show the current VM UUID", hmp_info_uuid)
    register_info("kvm", "", "", "show KVM information", hmp_info_kvm)
    register_info("cpus", "", "", "show infos for each CPU", hmp_info_cpus)
    register_info("registers", "cpustate_all:-a", "[-a]", "show the cpu registers (-a: all - show register info for all cpus)",
                  hmp_info_registers)
    register_info("memdev", "", "", "show memory backends", hmp_info_memdev)
    register_info("qtree", "", "", "show device tree", hmp_info_qtree)
    register_info("qom-tree", "path:s?", "[path]", "show QOM composition tree", hmp_info_qom_tree)
    register_info("mtree", "flatview:-f,dispatch_tree:-d,owner:-o,disabled:-D", "[-f][-d][-o][-D]",
                  "show memory tree (-f: dump flat view for address spaces;"
                  "-d: dump dispatch tree, valid with -f only);"
                  "-o: dump region owners/parents;"
                  "-D: dump disabled regions", hmp_info_mtree)
    register_info("ramblock", "", "", "Display system ramblock information", hmp_info_ramblock)
