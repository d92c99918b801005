"""The options every system emulator has, registered into the option table.

Board-, CPU- and device-family options are registered by their own modules
with :func:`pyqemu.system.options.register_option`.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Optional

from pyqemu.system.options import register_option as reg
from pyqemu.util.error import QemuError
from pyqemu.util.opts import is_help, keyval_parse, read_config, set_option

STD = "Standard options"
DISP = "Display options"
CHR = "Character device options"
DBG = "Debug/Expert options"
OBJ = "Generic object creation"


def _groups() -> Any:
    from pyqemu.system.vl import option_groups
    return option_groups()


def _help(c: Any, v: Optional[str]) -> None:
    from pyqemu.system.vl import HelpExit, version_text
    from pyqemu.system.options import format_help
    from pyqemu.util.error import get_progname
    raise HelpExit(format_help(get_progname(), version_text()))


def _version(c: Any, v: Optional[str]) -> None:
    from pyqemu.system.vl import HelpExit, version_text
    raise HelpExit(version_text())


def _machine(c: Any, v: str) -> None:
    o = _groups()["machine"].parse(v, loc=c.loc)
    if o.help_wanted:
        o.loc = c.loc  # type: ignore[attr-defined]
        c.help_requests.append(("machine", o))


def _accel(c: Any, v: str) -> None:
    o = _groups()["accel"].parse(v, loc=c.loc)
    if o.help_wanted and o.get("accel") in (None, "help", "?"):
        from pyqemu.system.vl import HelpExit
        raise HelpExit("Accelerators supported in QEMU binary:\ntcg\n")
    name = o.get("accel")
    if name != "tcg":
        raise QemuError("invalid accelerator %s" % name)
    if o.help_wanted:
        raise QemuError("Property 'tcg-accel.help' not found")
    o.loc = c.loc  # type: ignore[attr-defined]


def _cpu(c: Any, v: str) -> None:
    c.cpu_model = v


def _smp(c: Any, v: str) -> None:
    _groups()["smp"].parse(v, loc=c.loc)


def _memory(c: Any, v: str) -> None:
    _groups()["memory"].parse(v, loc=c.loc)


def _name(c: Any, v: str) -> None:
    _groups()["name"].parse(v, loc=c.loc)


_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")


def _uuid(c: Any, v: str) -> None:
    if not _UUID_RE.match(v):
        raise QemuError("failed to parse UUID string: wrong format")
    c.uuid = v.lower()


def _nographic(c: Any, v: Optional[str]) -> None:
    c.nographic = True
    c.display = "none"


def _display(c: Any, v: str) -> None:
    kind, _, rest = v.partition(",")
    if kind != "none":
        raise QemuError("Parameter 'type' does not accept value '%s'" % kind)
    for item in [x for x in rest.split(",") if x]:
        key = item.partition("=")[0]
        raise QemuError("Parameter '%s' is unexpected" % key)
    c.display = "none"


def _serial(c: Any, v: str) -> None:
    c.default_serial = False
    if v.startswith("mon:"):
        # a port that carries the monitor replaces QEMU's default monitor
        c.default_monitor = False
    if v != "none":
        c.serials.append((v, c.loc))


def _parallel(c: Any, v: str) -> None:
    c.default_parallel = False
    if v.startswith("mon:"):
        c.default_monitor = False
    if v != "none":
        c.parallels.append((v, c.loc))


def _monitor(c: Any, v: str, mode: str = "readline", pretty: bool = False) -> None:
    from pyqemu.system.vl import _mon_opts
    c.default_monitor = False
    if v != "none":
        c.monitors.append((_mon_opts(v, mode, pretty), c.loc))


def _qmp(c: Any, v: str) -> None:
    _monitor(c, v, "control")


def _qmp_pretty(c: Any, v: str) -> None:
    _monitor(c, v, "control", True)


def _mon(c: Any, v: str) -> None:
    c.default_monitor = False
    o = _groups()["mon"].parse(v, loc=c.loc, store=False)
    c.monitors.append((o, c.loc))


def _chardev(c: Any, v: str) -> None:
    from pyqemu.chardev import create
    from pyqemu.system.vl import HelpExit
    o = create.CHARDEV_OPTS.parse(v, loc=c.loc, store=False)
    if o.help_wanted or is_help(o.get("backend")):
        raise HelpExit(create.chardev_help_text())
    if o.id is None:
        raise QemuError("chardev: no id specified")
    # Stored now so that duplicate ids and -set see it, as qemu_opts_parse does.
    stored = create.CHARDEV_OPTS.create(o.id)
    stored.items.extend(o.items)
    stored.loc = c.loc  # type: ignore[attr-defined]


def _debugcon(c: Any, v: str) -> None:
    c.debugcons.append((v, c.loc))


def _pidfile(c: Any, v: str) -> None:
    c.pidfile = v


def _daemonize(c: Any, v: Optional[str]) -> None:
    c.daemonize = True


def _freeze(c: Any, v: Optional[str]) -> None:
    c.autostart = False


def _no_reboot(c: Any, v: Optional[str]) -> None:
    c.no_reboot = True


def _no_shutdown(c: Any, v: Optional[str]) -> None:
    c.no_shutdown = True
    c.panic_action = "pause"


def _action(c: Any, v: str) -> None:
    o = _groups()["action"].parse(v, loc=c.loc, store=False)
    choices = {"reboot": ("reset", "shutdown"), "shutdown": ("poweroff", "pause"),
               "panic": ("pause", "shutdown", "exit-failure", "none"),
               "watchdog": ("reset", "shutdown", "poweroff", "inject-nmi", "pause", "debug", "none")}
    for key, value in o.items:
        if value not in choices[key]:
            raise QemuError("Parameter '%s' does not accept value '%s'" % (key, value))
        if key == "reboot":
            c.no_reboot = value == "shutdown"
        elif key == "shutdown":
            c.no_shutdown = value == "pause"
        elif key == "panic":
            c.panic_action = value


_DATETIME = (re.compile(r"\d+-\d+-\d+T\d+:\d+:\d+\Z"), re.compile(r"\d+-\d+-\d+\Z"))


class _NoLocError(QemuError):
    no_loc = True


def _rtc(c: Any, v: str) -> None:
    o = _groups()["rtc"].parse(v, loc=c.loc)
    base = o.get("base")
    if base is not None and base not in ("utc", "localtime") and \
            not any(r.match(base) for r in _DATETIME):
        raise _NoLocError("invalid datetime format",
                          hint="valid formats: '2006-06-17T16:01:21' or '2006-06-17'")
    for key, allowed in (("clock", ("host", "rt", "vm")), ("driftfix", ("none", "slew"))):
        val = o.get(key)
        if val is not None and val not in allowed:
            raise _NoLocError("invalid option value '%s'" % val)


def _icount(c: Any, v: str) -> None:
    from pyqemu.exec.icount import parse_shift
    o = _groups()["icount"].parse(v, loc=c.loc)
    shift_opt = o.get("shift")
    sleep = parse_bool_opt(o, "sleep", True)
    align = parse_bool_opt(o, "align", False)
    if shift_opt is None and o.get("align") is not None:
        raise QemuError("Please specify shift option when using align")
    if align and not sleep:
        raise QemuError("align=on and sleep=off are incompatible")
    if o.get("rr") is not None:
        if o.get("rr") in ("record", "replay") and not o.get("rrfile"):
            raise QemuError("File name not specified for replay")
        raise QemuError("pyqemu: record/replay (-icount rr=...) is not supported")
    if shift_opt is None:
        c.icount = None             # as QEMU: no shift, no instruction counting
        return
    try:
        shift = parse_shift(shift_opt)
    except ValueError:
        raise QemuError("icount: Invalid shift value") from None
    c.icount = (shift, sleep, align)


def parse_bool_opt(o: Any, key: str, default: bool) -> bool:
    val = o.get(key)
    if val is None:
        return default
    return val in (True, "on", "yes", "true", "y")


def _device(c: Any, v: str) -> None:
    o = _groups()["device"].parse(v, loc=c.loc)
    o.loc = c.loc  # type: ignore[attr-defined]
    if o.help_wanted:
        c.help_requests.append(("device", o))


def _global(c: Any, v: str) -> None:
    from pyqemu.hw.core.qdev import add_global
    m = re.match(r"([^.=]+)\.([^=]+)=(.*)\Z", v, re.S)
    if m:
        add_global(m.group(1), m.group(2), m.group(3))
        return
    o = _groups()["global"].parse(v, loc=c.loc, store=False)
    add_global(o.get("driver") or "", o.get("property") or "", o.get("value") or "")


def _object(c: Any, v: str) -> None:
    from pyqemu.system.help import object_help
    if v.startswith("{"):
        import json
        try:
            props = json.loads(v)
        except ValueError as e:
            raise QemuError("JSON parse error, %s" % e)
        if not isinstance(props, dict):
            raise QemuError("Invalid parameter type, expected: object")
        help_wanted = False
        # Typed JSON values go through the strict visitor when the object is made.
        props["\0style"] = "json"
    else:
        props, help_wanted = keyval_parse(v, implied_key="qom-type")
    qom_type = props.get("qom-type")
    if help_wanted or is_help(qom_type):
        from pyqemu.system.vl import HelpExit
        raise HelpExit(object_help(None if is_help(qom_type) else qom_type))
    _add_object(c, props, c.loc)


def _add_object(c: Any, props: Dict[str, Any], loc: str) -> None:
    """Check an -object (or a config file's [object] section) and record it."""
    qom_type = props.get("qom-type")
    if qom_type is None:
        raise QemuError("Parameter 'qom-type' is missing")
    from pyqemu.system.help import load_object_types
    from pyqemu.qom.object import type_lookup, type_implements
    load_object_types()
    cls = type_lookup(qom_type)
    if cls is None or not type_implements(cls, "user-creatable"):
        raise QemuError("Parameter 'qom-type' does not accept value '%s'" % qom_type)
    id = props.get("id")
    if id is None:
        raise QemuError("Parameter 'id' is missing")
    from pyqemu.util.opts import check_id
    check_id(id)
    if id in c.object_ids:
        raise QemuError("Duplicate ID '%s' for object" % id)
    for req in getattr(cls, "REQUIRED", ()):
        if req not in props:
            raise QemuError("Parameter '%s' is missing" % req)
    c.object_ids.append(id)
    c.objects.append((props, loc))


def _set(c: Any, v: str) -> None:
    set_option(v)


def _readconfig(c: Any, v: str) -> None:
    try:
        with open(v, "rb"):
            pass
    except OSError as e:
        raise QemuError("Could not open '%s': %s" % (v, e.strerror))
    for o in read_config(v):
        if o.list.name == "object":
            # [object "id"] sections become -object options.
            o.list.instances.remove(o)
            props: Dict[str, Any] = dict(o.items)
            if o.id is not None:
                props["id"] = o.id
            _add_object(c, props, "")


def _writeconfig(c: Any, v: str) -> None:
    c.writeconfig = v


def _d(c: Any, v: str) -> None:
    from pyqemu.util import log
    mask, traces = log.parse_items(v)
    if not mask and not traces:
        # QEMU prints the item list on stdout and exits 1, for "help" as for an unknown item.
        import sys
        sys.stdout.write(log.usage())
        sys.stdout.flush()
        raise SystemExit(1)
    c.log_items = v


def _D(c: Any, v: str) -> None:
    c.log_file = v


def _dfilter(c: Any, v: str) -> None:
    from pyqemu.util import log
    log.parse_dfilter(v)
    c.dfilter = v


def _L(c: Any, v: str) -> None:
    c.data_dirs.append(v)


def _trace(c: Any, v: str) -> None:
    from pyqemu.system import trace
    o = _groups()["trace"].parse(v, loc=c.loc, store=False)
    pattern = o.get("enable")
    if is_help(pattern):
        from pyqemu.system.vl import HelpExit
        raise HelpExit(trace.list_events())
    if pattern is not None:
        trace.enable(pattern, c.loc)
    if o.get("events") is not None:
        trace.enable_from_file(o.get("events"), c.loc)
    if o.get("file") is not None:
        c.log_file = o.get("file")


def _mem_path(c: Any, v: str) -> None:
    c.mem_path = v


def _mem_prealloc(c: Any, v: Optional[str]) -> None:
    c.mem_prealloc = True


def _nodefaults(c: Any, v: Optional[str]) -> None:
    c.default_serial = c.default_parallel = c.default_monitor = False


def _nothing(c: Any, v: Optional[str]) -> None:
    pass


reg("h", False, STD, "-h or -help", "display this help and exit", _help)
reg("help", False, STD, "", "", _help)
reg("version", False, STD, "-version", "display version information and exit", _version)
reg("machine", True, STD, "-machine [type=]name[,prop[=value][,...]]",
    "selects emulated machine ('-machine help' for list)\n"
    "property accel=accel1[:accel2[:...]] selects accelerator (tcg)", _machine)
reg("M", True, STD, "", "", _machine)
reg("cpu", True, STD, "-cpu cpu", "select CPU ('-cpu help' for list)", _cpu)
reg("accel", True, STD, "-accel [accel=]accelerator[,prop[=value][,...]]",
    "select accelerator (tcg; use 'help' for a list)\n"
    "thread=single|multi, tb-size=n, split-wx=on|off", _accel)
reg("smp", True, STD, "-smp [[cpus=]n][,maxcpus=maxcpus][,sockets=sockets][,dies=dies]"
    "[,clusters=clusters][,cores=cores][,threads=threads]",
    "set the number of initial CPUs to 'n' [default=1]; omitted topology values\n"
    "are derived, preferring cores over sockets", _smp)
reg("set", True, STD, "-set group.id.arg=value", "set <arg> parameter for item <id> of type <group>",
    _set)
reg("global", True, STD, "-global driver.property=value\n-global driver=driver,property=property,value=value",
    "set a global default for a device property", _global)
reg("m", True, STD, "-m [size=]megs[,slots=n,maxmem=size]",
    "configure guest RAM (a plain number is in MiB; suffixes k, M, G, T)\n"
    "slots, maxmem: hotplug slots and the most memory they may bring", _memory)
reg("mem-path", True, STD, "-mem-path FILE", "provide backing storage for guest RAM", _mem_path)
reg("mem-prealloc", False, STD, "-mem-prealloc", "preallocate guest memory (use with -mem-path)",
    _mem_prealloc)
reg("device", True, STD, "-device driver[,prop[=value][,...]]",
    "add device 'driver' with properties 'prop'\n"
    "use '-device help' to list drivers, '-device driver,help' for their properties", _device)
reg("name", True, STD, "-name string1[,process=string2][,debug-threads=on|off]",
    "set the name of the guest", _name)
reg("uuid", True, STD, "-uuid %08x-%04x-%04x-%04x-%012x", "specify machine UUID", _uuid)
reg("display", True, DISP, "-display none", "select display backend type (only 'none')", _display)
reg("nographic", False, DISP, "-nographic",
    "disable graphical output and put the monitor\n(and serial port) on the console", _nographic)
reg("chardev", True, CHR, "-chardev help\n-chardev backend,id=id[,prop=value,...]",
    "create a character device; see docs/system.md for the backends", _chardev)
reg("serial", True, DBG, "-serial dev", "redirect the serial port to char device 'dev'", _serial)
reg("parallel", True, DBG, "-parallel dev", "redirect the parallel port to char device 'dev'",
    _parallel)
reg("monitor", True, DBG, "-monitor dev", "redirect the monitor to char device 'dev'", _monitor)
reg("qmp", True, DBG, "-qmp dev", "like -monitor but opens in 'control' mode", _qmp)
reg("qmp-pretty", True, DBG, "-qmp-pretty dev", "like -qmp but uses pretty JSON formatting",
    _qmp_pretty)
reg("mon", True, DBG, "-mon [chardev=]name[,mode=readline|control][,pretty[=on|off]]",
    "attach a monitor to an existing chardev", _mon)
reg("debugcon", True, DBG, "-debugcon dev", "redirect the debug console to char device 'dev'",
    _debugcon)
reg("pidfile", True, DBG, "-pidfile file", "write PID to 'file'", _pidfile)
reg("S", False, DBG, "-S", "freeze CPU at startup (use 'c' to start execution)", _freeze)
reg("d", True, DBG, "-d item1,...", "enable logging of specified items (use '-d help' for a list)", _d)
reg("D", True, DBG, "-D logfile", "output log to logfile (default stderr)", _D)
reg("dfilter", True, DBG, "-dfilter range,..", "filter debug output to range of addresses", _dfilter)
reg("L", True, DBG, "-L path", "set the directory for firmware images", _L)
reg("no-reboot", False, DBG, "-no-reboot", "exit instead of rebooting", _no_reboot)
reg("no-shutdown", False, DBG, "-no-shutdown", "stop before shutdown", _no_shutdown)
reg("action", True, DBG, "-action reboot=reset|shutdown\n-action shutdown=poweroff|pause\n"
    "-action panic=pause|shutdown|exit-failure|none",
    "action when the guest reboots, shuts down or panics", _action)
reg("daemonize", False, DBG, "-daemonize", "daemonize QEMU after initializing", _daemonize)
reg("icount", True, DBG, "-icount [shift=N|auto][,align=on|off][,sleep=on|off][,rr=record|replay,rrfile=<filename>[,rrsnapshot=<snapshot>]]",
    "enable virtual instruction counter with 2^N clock ticks per\n"
    "instruction, enable aligning the host and virtual clocks\n"
    "or disable real time cpu sleeping, and optionally enable\n"
    "record-and-replay mode", _icount)
reg("rtc", True, DBG, "-rtc [base=utc|localtime|<datetime>][,clock=host|rt|vm][,driftfix=none|slew]",
    "set the RTC base and clock", _rtc)
reg("nodefaults", False, DBG, "-nodefaults", "don't create default devices", _nodefaults)
reg("no-user-config", False, DBG, "-no-user-config", "do not load user-provided config files", _nothing)
reg("readconfig", True, DBG, "-readconfig <file>", "read options from a config file", _readconfig)
reg("writeconfig", True, DBG, "-writeconfig <file>",
    "write the options as a config file ('-' for stdout; a pyqemu extension)", _writeconfig)
reg("trace", True, DBG, "-trace [[enable=]<pattern>][,events=<file>][,file=<file>]",
    "enable trace events ('-trace help' lists them)", _trace)
reg("object", True, OBJ, "-object TYPENAME[,PROP1=VALUE1,...]",
    "create a new object of type TYPENAME setting properties\n"
    "in the order they are specified ('-object help' lists the types)", _object)
