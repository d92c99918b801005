"""The command line -> a configured machine, then the main loop (QEMU's vl.c).

:func:`qemu_main` reads the options in order (each one's handler records it in
a :class:`Config`, or acts at once like ``-version``), answers the ``help``
requests, then builds the VM in QEMU's order: log and pidfile, objects,
chardevs, machine with RAM, default and explicit serial/monitor ports,
devices, reset, run state; and runs the main loop until a shutdown request.
"""
from __future__ import annotations

import os
import signal
import sys
from typing import Any, Dict, List, Optional, Tuple

import pyqemu
from pyqemu.qom import object as qom
from pyqemu.system import options as optreg
from pyqemu.system.runstate import runstate
from pyqemu.util.error import QemuError, UsageError, error_report, get_progname, warn_report
from pyqemu.util.opts import Opts, OptsList, registered_opts


def version_text() -> str:
    return ("QEMU emulator version %s (pyqemu %s)\n"
            "Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n"
            % (pyqemu.QEMU_VERSION, pyqemu.__version__))


class HelpExit(Exception):
    """A help request was answered: exit with status 0 after printing ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class Config:
    """Everything the command line asked for, in the order it was given."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.loc = ""                       # the option being handled, for messages
        self.cpu_model: Optional[str] = None
        self.nographic = False
        self.display = "default"
        self.serials: List[Tuple[str, str]] = []      # (spec, loc)
        self.parallels: List[Tuple[str, str]] = []
        self.debugcons: List[Tuple[str, str]] = []
        self.monitors: List[Tuple[Opts, str]] = []    # -mon style opts
        self.pidfile: Optional[str] = None
        self.daemonize = False
        self.autostart = True
        self.no_reboot = False
        self.icount: Optional[Tuple[Optional[int], bool, bool]] = None  # (shift|None=auto, sleep, align)
        self.no_shutdown = False
        self.default_serial = True
        self.default_parallel = True
        self.default_monitor = True
        self.uuid: Optional[str] = None
        self.mem_path: Optional[str] = None
        self.mem_prealloc = False
        self.data_dirs: List[str] = []
        self.log_items: Optional[str] = None
        self.log_file: Optional[str] = None
        self.dfilter: Optional[str] = None
        self.writeconfig: Optional[str] = None
        self.objects: List[Tuple[Dict[str, Any], str]] = []  # (props incl qom-type/id, loc)
        self.object_ids: List[str] = []
        self.images: List[str] = []
        self.trace_patterns: List[str] = []
        self.panic_action = "shutdown"
        self.help_requests: List[Tuple[str, Opts]] = []
        self.debugcon_devices: List[Tuple[str, str]] = []


# ---------------------------------------------------------------------------
# Option groups (QemuOptsList) the command line and -readconfig/-set share
# ---------------------------------------------------------------------------

def _group(name: str, **kw: Any) -> OptsList:
    from pyqemu.util.opts import find_opts, register_opts
    try:
        return find_opts(name)
    except QemuError:
        return register_opts(OptsList(name, **kw))


def option_groups() -> Dict[str, OptsList]:
    try:
        import pyqemu.chardev.create  # noqa: F401 - registers the chardev group for -set
    except ImportError:
        pass
    from pyqemu.util.opts import OPT_BOOL, OPT_NUMBER, OPT_SIZE, OPT_STRING, OptDesc
    g = {
        "machine": _group("machine", implied_key="type", merge_lists=True),
        "accel": _group("accel", implied_key="accel"),
        "smp": _group("smp-opts", implied_key="cpus", merge_lists=True, option="smp"),
        "memory": _group("memory", implied_key="size", merge_lists=True, desc=[
            OptDesc("size", OPT_SIZE), OptDesc("slots", OPT_NUMBER), OptDesc("maxmem", OPT_SIZE)]),
        "name": _group("name", implied_key="guest", merge_lists=True, desc=[
            OptDesc("guest", OPT_STRING), OptDesc("process", OPT_STRING),
            OptDesc("debug-threads", OPT_BOOL)]),
        "device": _group("device", implied_key="driver"),
        "global": _group("global", desc=[
            OptDesc("driver", OPT_STRING), OptDesc("property", OPT_STRING),
            OptDesc("value", OPT_STRING)]),
        "mon": _group("mon", desc=[
            OptDesc("mode", OPT_STRING), OptDesc("chardev", OPT_STRING),
            OptDesc("pretty", OPT_BOOL)], implied_key="chardev"),
        "icount": _group("icount", implied_key="shift", merge_lists=True, desc=[
            OptDesc("shift", OPT_STRING), OptDesc("align", OPT_BOOL),
            OptDesc("sleep", OPT_BOOL), OptDesc("rr", OPT_STRING),
            OptDesc("rrfile", OPT_STRING), OptDesc("rrsnapshot", OPT_STRING)]),
        "rtc": _group("rtc", merge_lists=True, desc=[
            OptDesc("base", OPT_STRING), OptDesc("clock", OPT_STRING),
            OptDesc("driftfix", OPT_STRING)]),
        "trace": _group("trace", implied_key="enable", desc=[
            OptDesc("enable", OPT_STRING), OptDesc("events", OPT_STRING),
            OptDesc("file", OPT_STRING)]),
        # Only config files fill this group; -object itself uses keyval.
        "object": _group("object", implied_key="qom-type"),
        "action": _group("action", merge_lists=True, desc=[
            OptDesc("reboot", OPT_STRING), OptDesc("shutdown", OPT_STRING),
            OptDesc("panic", OPT_STRING), OptDesc("watchdog", OPT_STRING)]),
    }
    return g


def reset_option_groups() -> None:
    """Forget the instances of every option group (a fresh command line)."""
    for g in registered_opts():
        del g.instances[:]


# ---------------------------------------------------------------------------
# Reading the command line
# ---------------------------------------------------------------------------

def parse_command_line(argv: List[str], config: Config) -> None:
    import pyqemu.system.core_options  # noqa: F401 - registers the core options
    import pyqemu.hw.i386.boot_options  # noqa: F401 - -kernel/-initrd/-append
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-") or arg == "-":
            config.images.append(arg)
            continue
        name = arg[2:] if arg.startswith("--") else arg[1:]
        opt = optreg.lookup_option(name)
        if opt is None:
            raise UsageError("invalid option", loc=arg)
        value: Optional[str] = None
        if opt.has_arg:
            if i >= len(argv):
                raise UsageError("requires an argument", loc=arg)
            value = argv[i]
            i += 1
        config.loc = "%s %s" % (arg, value) if opt.has_arg else arg
        if opt.handler is not None:
            try:
                opt.handler(config, value)
            except (HelpExit, UsageError):
                raise
            except QemuError as e:
                if e.loc is None and not getattr(e, "no_loc", False):
                    e.loc = config.loc
                raise


# ---------------------------------------------------------------------------
# Building the VM
# ---------------------------------------------------------------------------

def _chardev_api():
    """The monitor & chardev side's creation functions."""
    from pyqemu.chardev import create
    return create


def _start_monitor(chr: Any, mode: str, pretty: bool) -> None:
    from pyqemu.monitor import start_monitor
    start_monitor(chr, mode=mode, pretty=pretty)


class VM:
    """The running emulator: the machine and what was created for it."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.machine: Any = None


def _setup_logging(config: Config) -> None:
    from pyqemu.util import log
    if config.log_file is not None:
        log.set_file(config.log_file)
    if config.log_items is not None:
        mask, traces = log.parse_items(config.log_items)
        log.set_mask(mask, traces)
    if config.dfilter is not None:
        log.set_dfilter(config.dfilter)


def write_pidfile(path: str) -> None:
    import fcntl
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise QemuError("cannot create PID file: Could not create '%s': %s" % (path, e.strerror))
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        raise QemuError("cannot create PID file: Cannot lock pid file: %s" % e.strerror)
    os.ftruncate(fd, 0)
    os.write(fd, b"%d\n" % os.getpid())
    # Keep the descriptor (and so the lock) open for the life of the process.
    _pidfile_state["fd"] = fd
    _pidfile_state["path"] = path


_pidfile_state: Dict[str, Any] = {}


def remove_pidfile() -> None:
    path = _pidfile_state.pop("path", None)
    fd = _pidfile_state.pop("fd", None)
    if path is not None:
        try:
            os.unlink(path)
        except OSError:
            pass
    if fd is not None:
        os.close(fd)


def _daemonize_start() -> Optional[int]:
    """Fork; the parent waits for the child's start-up status and exits with it."""
    r, w = os.pipe()
    pid = os.fork()
    if pid > 0:
        os.close(w)
        data = os.read(r, 1)
        if not data:
            return 1
        return data[0]
    os.close(r)
    os.setsid()
    _pidfile_state["daemon_pipe"] = w
    return None


def _daemonize_finish(status: int) -> None:
    w = _pidfile_state.pop("daemon_pipe", None)
    if w is None:
        return
    os.write(w, bytes([status]))
    os.close(w)
    if status == 0:
        os.chdir("/")
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)


def create_objects(config: Config) -> None:
    for props, loc in config.objects:
        props = dict(props)
        qom_type = props.pop("qom-type")
        id = props.pop("id")
        style = props.pop("\0style", "keyval")
        try:
            qom.user_creatable_add(qom_type, id, props, style=style)
        except QemuError as e:
            if e.loc is None and not getattr(e, "no_loc", False):
                e.loc = loc
            raise


def create_machine(config: Config) -> Any:
    from pyqemu.hw.core import machine as mach
    from pyqemu.exec import memory
    import pyqemu.hw.core.null_machine  # noqa: F401 - the none board
    _load_boards()
    groups = option_groups()
    mopts = groups["machine"].find(None) or groups["machine"].create(None)
    mtype = mopts.get("type")
    if mtype is None:
        cls = mach.default_machine()
        if cls is None:
            raise QemuError("No machine specified, and there is no default",
                            hint="Use -machine help to list supported machines")
    else:
        cls = mach.find_machine(mtype)
        if cls is None:
            raise QemuError("unsupported machine type",
                            hint="Use -machine help to list supported machines")
    qom.reset_root()
    machine = cls()
    qom.root().add_child("machine", machine)
    for name in ("peripheral", "peripheral-anon", "unattached"):
        machine.add_child(name, qom.Container())
    memory.memory_init()
    from pyqemu.hw.core.qdev import main_system_bus, reset_main_bus
    reset_main_bus()
    main_system_bus()
    for key, value in mopts.items:
        if key in ("type", "accel"):
            continue
        machine.set_property(key, value)
    _configure_accel(config, mopts.get("accel"))
    _configure_smp(machine, groups["smp"])
    _configure_memory(config, machine, groups["memory"])
    name = groups["name"].find(None)
    if name is not None:
        machine.name_opt = name.get("guest")
        if name.get("process"):
            _set_proc_name(name.get("process"))
    return machine


def _set_proc_name(name: str) -> None:
    """``-name process=NAME``: the thread name ps and top show (at most 15 bytes)."""
    import ctypes
    import ctypes.util
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    PR_SET_NAME = 15
    if libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0) != 0:
        raise QemuError("unable to change process name: %s" % os.strerror(ctypes.get_errno()))


def _load_boards() -> None:
    """Import the optional board packages so that they register themselves."""
    import importlib
    for modname in ("pyqemu.hw.i386",):
        try:
            importlib.import_module(modname)
        except ModuleNotFoundError as e:
            # Only a board package that does not exist yet is skipped; its bugs are not.
            if e.name != modname:
                raise


def _configure_accel(config: Config, machine_accel: Optional[str]) -> None:
    groups = option_groups()
    names: List[Tuple[str, Opts]] = []
    for o in groups["accel"].instances:
        names.append((o.get("accel") or "", o))
    if machine_accel is not None:
        if names:
            raise QemuError("The -accel and \"-machine accel=\" options are incompatible")
        for n in machine_accel.split(":"):
            names.append((n, Opts(groups["accel"])))
    for n, o in names or [("tcg", Opts(groups["accel"]))]:
        if n != "tcg":
            raise QemuError("invalid accelerator %s" % n)
        try:
            _accel_props(o)
        except QemuError as e:
            e.loc = e.loc or getattr(o, "loc", None)
            raise
        return


def _accel_props(o: Opts) -> None:
    from pyqemu.util.opts import parse_bool, parse_number
    for key, value in o.items:
        if key == "accel":
            continue
        if key == "thread":
            if value not in ("single", "multi"):
                raise QemuError("Invalid 'thread' setting %s" % value)
        elif key == "tb-size":
            parse_number(key, value)
        elif key == "split-wx":
            parse_bool(key, value)
        else:
            raise QemuError("Property 'tcg-accel.%s' not found" % key)


_SMP_KEYS = ("cpus", "maxcpus", "sockets", "dies", "clusters", "cores", "threads")


def _configure_smp(machine: Any, group: OptsList) -> None:
    o = group.find(None)
    given: Dict[str, int] = {}
    if o is not None:
        for key, value in o.items:
            if key not in _SMP_KEYS:
                raise QemuError("Parameter 'smp.%s' is unexpected" % key)
            try:
                n = int(value, 0) if value.strip() else None
            except ValueError:
                n = None
            if n is None or n >= 1 << 64 or n < -(1 << 64):
                raise QemuError("Parameter 'smp.%s' expects integer" % key)
            # QEMU reads a uint64 (strtoull wraps '-1') and keeps an unsigned int
            given[key] = n & 0xFFFFFFFF
    machine.smp = compute_smp(machine, given)


def _topo_text(machine: Any, s: Dict[str, int]) -> str:
    text = "sockets (%d)" % s["sockets"]
    if machine.SMP_DIES:
        text += " * dies (%d)" % s["dies"]
    if machine.SMP_CLUSTERS:
        text += " * clusters (%d)" % s["clusters"]
    return text + " * cores (%d) * threads (%d)" % (s["cores"], s["threads"])


def compute_smp(machine: Any, given: Dict[str, int]) -> Dict[str, int]:
    """QEMU 7.2's -smp rules: derive the omitted values, then check the product."""
    if any(given.get(k) == 0 for k in given):
        # any explicit zero, '-smp 0' too (QEMU 7.2 then starts one CPU)
        warn_report("Deprecated CPU topology (considered invalid): "
                    "CPU topology parameters must be greater than zero")
    cpus = given.get("cpus", 0)
    maxcpus = given.get("maxcpus", 0)
    sockets = given.get("sockets", 0)
    dies = given.get("dies", 0)
    clusters = given.get("clusters", 0)
    cores = given.get("cores", 0)
    threads = given.get("threads", 0)
    if not machine.SMP_DIES and dies > 1:
        raise QemuError("dies not supported by this machine's CPU topology")
    if not machine.SMP_CLUSTERS and clusters > 1:
        raise QemuError("clusters not supported by this machine's CPU topology")
    dies = dies or 1
    clusters = clusters or 1
    if cpus == 0 and maxcpus == 0:
        sockets = sockets or 1
        cores = cores or 1
        threads = threads or 1
    else:
        maxcpus = maxcpus or cpus
        # Since 6.2 cores are preferred over sockets when one must be derived.
        if cores == 0:
            sockets = sockets or 1
            threads = threads or 1
            cores = maxcpus // (sockets * dies * clusters * threads)
        elif sockets == 0:
            threads = threads or 1
            sockets = maxcpus // (dies * clusters * cores * threads)
        if threads == 0:
            threads = maxcpus // (sockets * dies * clusters * cores)
    maxcpus = maxcpus or sockets * dies * clusters * cores * threads
    cpus = cpus or maxcpus
    s = {"cpus": cpus, "maxcpus": maxcpus, "sockets": sockets, "dies": dies,
         "clusters": clusters, "cores": cores, "threads": threads}
    if sockets * dies * clusters * cores * threads != maxcpus:
        raise QemuError("Invalid CPU topology: product of the hierarchy must match maxcpus: "
                        "%s != maxcpus (%d)" % (_topo_text(machine, s), maxcpus))
    if maxcpus < cpus:
        raise QemuError("Invalid CPU topology: maxcpus must be equal to or greater than smp: "
                        "%s == maxcpus (%d) < smp_cpus (%d)" % (_topo_text(machine, s), maxcpus, cpus))
    if maxcpus > machine.MAX_CPUS:
        # printed as a signed int, as QEMU does
        raise QemuError("Invalid SMP CPUs %d. The max CPUs supported by machine '%s' is %d"
                        % (maxcpus - (1 << 32) if maxcpus >> 31 else maxcpus,
                           machine.NAME, machine.MAX_CPUS))
    return s


def _configure_memory(config: Config, machine: Any, group: OptsList) -> None:
    from pyqemu.util.opts import parse_size
    o = group.find(None)
    size = machine.DEFAULT_RAM_SIZE
    if o is not None and o.get("size") is not None:
        text = o.get("size")
        sz = parse_size("size", text)
        if text and text[-1].isdigit():
            # A number without a suffix means MiB.
            sz *= 1 << 20
            if sz >= 1 << 64:
                raise QemuError("too large 'size' option value")
        if sz:
            size = sz
    machine.ram_size = size
    machine.maxram_size = size
    if o is not None:
        slots = o.get_number("slots", 0) if o.get("slots") is not None else 0
        maxmem = o.get("maxmem")
        if slots and maxmem is None:
            raise QemuError("slots specified but no max-size")
        if maxmem is not None:
            mx = o.get_size("maxmem")
            if mx < size:
                raise QemuError("invalid value of maxmem: maximum memory size (0x%x) must be at "
                                "least the initial memory size (0x%x)" % (mx, size))
            machine.maxram_size = mx
        machine.ram_slots = slots


def _setup_ram(config: Config, machine: Any) -> None:
    """Main RAM: the memory-backend the user named, or a default one (QEMU's create_default_memdev)."""
    from pyqemu.system import hostmem
    backend_id = machine.memory_backend
    if backend_id:
        obj = qom.objects_root().child(backend_id)
        if obj is None or not obj.is_a("memory-backend"):
            raise QemuError("Memory backend '%s' not found" % backend_id)
        if config_memory_given() and obj.size != machine.ram_size:
            raise QemuError("Machine memory size does not match the size of the memory backend")
        machine.ram_size = obj.size
        machine.maxram_size = max(machine.maxram_size, obj.size)
        machine.ram = hostmem.backend_use_as_ram(obj)
        return
    if machine.ram_size == 0:
        return
    rid = machine.DEFAULT_RAM_ID
    if qom.objects_root().child(rid) is not None:
        raise QemuError("object name '%s' is reserved for the default RAM backend, it can't be used "
                        "for any other purposes. Change the object's 'id' to something else" % rid)
    props: Dict[str, Any] = {"size": str(machine.ram_size)}
    kind = "memory-backend-ram"
    if config.mem_path is not None:
        kind = "memory-backend-file"
        props["mem-path"] = config.mem_path
    if config.mem_prealloc:
        props["prealloc"] = "on"
    obj = qom.user_creatable_add(kind, rid, props)
    machine.memory_backend = rid
    machine.ram = hostmem.backend_use_as_ram(obj)


def config_memory_given() -> bool:
    o = option_groups()["memory"].find(None)
    return o is not None and o.get("size") is not None


def _check_globals() -> None:
    from pyqemu.hw.core.qdev import _globals
    for g in _globals:
        cls = qom.type_lookup(g["driver"])
        if cls is None:
            warn_report("global %s.%s has invalid class name" % (g["driver"], g["property"]))


def create_device(opts: Opts, loc: str) -> Any:
    from pyqemu.hw.core import qdev
    driver = opts.get("driver")
    cls = qom.type_lookup(driver or "")
    if cls is None or not issubclass(cls, qdev.DeviceState) or qom.is_abstract(cls):
        raise QemuError("'%s' is not a valid device model name" % driver, loc=loc)
    if not cls.USER_CREATABLE:
        raise QemuError("Parameter 'driver' expects a pluggable device type", loc=loc)
    dev = cls()
    dev.id = opts.id
    bus_name = opts.get("bus")
    bus = None
    if bus_name is not None:
        bus = _find_bus(bus_name)
        if bus is None:
            raise QemuError("Bus '%s' not found" % bus_name, loc=loc)
    elif cls.BUS_TYPE is not None:
        bus = _find_bus_of_type(cls.BUS_TYPE)
        if bus is None:
            raise QemuError("No '%s' bus found for device '%s'" % (cls.BUS_TYPE, driver), loc=loc)
    try:
        for key, value in opts.items:
            if key in ("driver", "bus"):
                continue
            dev.set_property(key, value)
        machine = qom.root().child("machine")
        if dev.id is not None:
            machine.child("peripheral").add_child(dev.id, dev)
        else:
            machine.child("peripheral-anon").add_child("device[*]", dev)
        if bus is not None:
            bus.attach(dev)
        dev.set_property("realized", True)
    except QemuError as e:
        if dev.parent is not None:
            dev.unparent()
        if e.loc is None:
            e.loc = loc
        raise
    return dev


def _all_buses() -> List[Any]:
    from pyqemu.hw.core.qdev import BusState, main_system_bus
    out: List[Any] = []

    def walk(b: BusState) -> None:
        out.append(b)
        for d in b.devices:
            for cb in d.child_buses:
                walk(cb)
    walk(main_system_bus())
    return out


def _find_bus(name: str) -> Any:
    for b in _all_buses():
        if b.name == name:
            return b
    return None


def _find_bus_of_type(typename: str) -> Any:
    for b in _all_buses():
        if b.is_a(typename):
            return b
    return None


def _open_ports(config: Config) -> None:
    """Serial/parallel/debugcon chardevs and the monitors, defaults included."""
    create = _chardev_api()
    serials = list(config.serials)
    parallels = list(config.parallels)
    if config.nographic:
        if config.default_parallel and _machine_wants("parallel"):
            parallels.append(("null", ""))
        if config.default_serial and config.default_monitor and _machine_wants("serial"):
            serials.append(("mon:stdio", ""))
        else:
            if config.default_serial and _machine_wants("serial"):
                serials.append(("stdio", ""))
            if config.default_monitor:
                config.monitors.append((_mon_opts("stdio", "readline", False), ""))
    else:
        # without -nographic every default goes to a virtual console (a null
        # one without a display), each independently of the others, as QEMU
        if config.default_serial and _machine_wants("serial"):
            serials.append(("vc:80Cx24C", ""))
        if config.default_parallel and _machine_wants("parallel"):
            parallels.append(("vc:80Cx24C", ""))
        if config.default_monitor:
            config.monitors.append((_mon_opts("vc:80Cx24C", "readline", False), ""))
    del serial_hds[:]
    del parallel_hds[:]
    # Monitors come first, as in QEMU: with "-serial stdio -monitor stdio" it is
    # the serial port that finds stdio taken.
    for opts, loc in config.monitors:
        _monitor(create, opts, loc)
    for i, (spec, loc) in enumerate(serials):
        serial_hds.append(_port(create, spec, "serial%d" % i, loc, "serial"))
    for i, (spec, loc) in enumerate(parallels):
        parallel_hds.append(_port(create, spec, "parallel%d" % i, loc, "parallel"))
    for i, (spec, loc) in enumerate(config.debugcons):
        label = "debugcon" if i == 0 else "debugcon%d" % i
        _port(create, spec, label, loc, "debugcon")
        config.debugcon_devices.append((label, loc))


# The chardevs of -serial/-parallel (None for "none"), made before the board so
# that its init can connect them to its UARTs: serial_hd(0) is COM1.
serial_hds: List[Any] = []
parallel_hds: List[Any] = []


def serial_hd(i: int) -> Any:
    return serial_hds[i] if 0 <= i < len(serial_hds) else None


def parallel_hd(i: int) -> Any:
    return parallel_hds[i] if 0 <= i < len(parallel_hds) else None


def _create_debugcon_devices(config: Config) -> None:
    """-debugcon is an isa-debugcon device, provided by boards with an ISA bus."""
    for label, loc in config.debugcon_devices:
        dev = Opts(option_groups()["device"])
        dev.items = [("driver", "isa-debugcon"), ("chardev", label)]
        if _find_bus_of_type("ISA") is None:
            raise QemuError("No 'ISA' bus found for device 'isa-debugcon'", loc=loc)
        create_device(dev, loc)


def _machine_wants(kind: str) -> bool:
    machine = qom.root().child("machine")
    return not getattr(machine, "NO_" + kind.upper(), machine.NAME == "none")


def _mon_opts(spec: str, mode: str, pretty: bool) -> Opts:
    o = Opts(option_groups()["mon"])
    o.items = [("spec", spec), ("mode", mode), ("pretty", "on" if pretty else "off")]
    return o


_mon_count = [0]


def _port(create: Any, spec: str, label: str, loc: str, what: str) -> Any:
    try:
        return create.create_from_spec(spec, label)
    except QemuError as e:
        e.loc = e.loc or loc or None
        # A missing chardev:ID is not reported by itself for ports, only the failure
        # below; nor is a malformed tcp:/udp: form (QEMU's parser rejects it silently).
        if not spec.startswith("chardev:") and not getattr(e, "silent", False):
            error_report(e.msg, loc=e.loc, hint=e.hint)
        if what in ("serial", "parallel"):
            raise QemuError("could not connect %s device to character backend '%s'" % (what, spec),
                            loc=e.loc) from None
        raise QemuError("invalid character backend '%s'" % spec, loc=e.loc) from None


def _monitor(create: Any, opts: Opts, loc: str) -> None:
    spec = opts.get("spec")
    mode = opts.get("mode") or "readline"
    pretty = opts.get_bool("pretty", False)
    if mode not in ("readline", "control"):
        # QEMU's MonitorOptions visitor: the enum is checked first
        raise QemuError("Parameter 'mode' does not accept value '%s'" % mode, loc=loc or None)
    try:
        if spec is not None:
            label = "compat_monitor%d" % _mon_count[0]
            _mon_count[0] += 1
            if spec.startswith("chardev:"):
                chr = create.create_from_spec(spec, label)
            else:
                copts = create.parse_serial_spec(spec, label)
                if copts is None:
                    return
                if getattr(copts, "monitor_wanted", False):
                    # mon:X given to -monitor: the monitor itself is what was asked for.
                    copts.monitor_wanted = False
                chr = create.create_from_opts(copts)
        else:
            name = opts.get("chardev")
            if name is None:
                raise QemuError("Parameter 'chardev' is missing")
            from pyqemu.chardev.char import chardev_find
            chr = chardev_find(name)
            if chr is None:
                raise QemuError("chardev \"%s\" not found" % name)
        if pretty and mode == "readline":
            raise QemuError("'pretty' is not compatible with HMP monitors")
    except QemuError as e:
        if e.loc is None and loc:
            e.loc = loc
        if spec is not None and "not a valid char driver" in e.msg and spec.split(":")[0] != "chardev":
            if not getattr(e, "silent", False):
                error_report(e.msg, loc=e.loc)
            raise QemuError("parse error: %s" % spec, loc=e.loc) from None
        raise
    _start_monitor(chr, mode, pretty)


def build_vm(config: Config) -> VM:
    vm = VM(config)
    rs = runstate()
    rs.no_reboot = config.no_reboot
    rs.no_shutdown = config.no_shutdown
    rs.panic_pause = config.panic_action == "pause"
    _setup_logging(config)
    if config.pidfile is not None:
        write_pidfile(config.pidfile)
    if config.icount is not None:
        from pyqemu.exec.icount import ICount
        from pyqemu.exec.main_loop import main_loop
        main_loop().set_icount(ICount(*config.icount))
    machine = create_machine(config)
    machine.target = config.target      # x86_64 or i386: CPU type names, CPUID limits
    vm.machine = machine
    _check_globals()
    if config.cpu_model is not None:
        from pyqemu.system.cpus import check_cpu_model
        check_cpu_model(config.cpu_model)
        machine.cpu_type = config.cpu_model
    from pyqemu.system import hostmem  # noqa: F401 - registers memory-backend-*
    from pyqemu.system import secret  # noqa: F401 - registers secret
    import pyqemu.hw.core.testdev  # noqa: F401 - the test device
    create_objects(config)
    _chardevs(config)
    _setup_ram(config, machine)
    if config.images:
        img = config.images[0]
        if not os.path.exists(img):
            raise QemuError("Could not open '%s': No such file or directory" % img, loc=img)
        raise QemuError("disk images are not supported by this machine yet", loc=img)
    # Ports and monitors exist before the board, which connects serial_hd(i).
    _open_ports(config)
    machine.firmware_dirs = list(config.data_dirs)  # -L, for boards that load firmware
    machine.init()
    _create_debugcon_devices(config)
    for opts in option_groups()["device"].instances:
        create_device(opts, getattr(opts, "loc", "-device %s" % opts.to_string()))
    if config.writeconfig is not None:
        from pyqemu.util.opts import write_config
        write_config(config.writeconfig)
    rs.reset_handler = lambda cause: machine.reset()
    machine.reset()
    from pyqemu.system import qmp_machine
    qmp_machine.install(vm)
    return vm


def _chardevs(config: Config) -> None:
    groups = [g for g in registered_opts() if g.name == "chardev"]
    if not groups:
        return
    create = _chardev_api()
    for o in list(groups[0].instances):
        try:
            create.create_from_opts(o)
        except QemuError as e:
            if e.loc is None:
                e.loc = getattr(o, "loc", "-chardev %s" % o.to_string())
            raise


_TERM_SIGNALS = (signal.SIGINT, signal.SIGHUP, signal.SIGTERM)


def _block_term_signals() -> None:
    """Block the terminating signals in every thread (threads inherit the mask),
    so that one waiter thread receives them with the sender's pid."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _TERM_SIGNALS)


def _pid_name(pid: int) -> str:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")[0].decode("utf-8", "replace") or "<unknown process>"
    except OSError:
        return "<unknown process>"


def _install_signals() -> None:
    import threading
    from pyqemu.exec.main_loop import main_loop
    rs = runstate()
    loop = main_loop()

    def wait() -> "tuple[int, int]":
        # PyPy 3.9 has no sigwaitinfo: sigwait gives the signal without its sender
        if hasattr(signal, "sigwaitinfo"):
            info = signal.sigwaitinfo(_TERM_SIGNALS)
            return info.si_signo, info.si_pid
        return int(signal.sigwait(_TERM_SIGNALS)), 0

    def waiter() -> None:
        while True:
            signo, pid = wait()
            if pid:
                report = "terminating on signal %d from pid %d (%s)" % (signo, pid, _pid_name(pid))
            else:
                report = "terminating on signal %d" % signo

            def request(report: str = report) -> None:
                rs.kill_report = report
                rs.request_shutdown("host-signal")
            loop.bh_schedule(request)

    threading.Thread(target=waiter, name="signals", daemon=True).start()


def run_vm(vm: VM) -> int:
    from pyqemu.exec.main_loop import main_loop
    rs = runstate()
    if vm.config.autostart:
        rs.vm_start()
    else:
        main_loop().pause_virtual_clock()
    _install_signals()
    _daemonize_finish(0)
    loop = main_loop()
    loop.run_until(rs.process_requests)
    # the reply to 'quit' (and anything else answered on the last turn) is
    # still a pending bottom half: send it before exiting, after SHUTDOWN
    loop.iterate(0)
    if rs.is_running():
        # vm_shutdown: the VM stops in the shutdown state, without a STOP event.
        rs.set("shutdown")
    return rs.exit_status or 0


def qemu_main(argv: List[str], target: str = "x86_64") -> int:
    from pyqemu.hw.core import qdev
    _block_term_signals()
    config = Config(target)
    reset_option_groups()
    qdev.clear_globals()
    option_groups()
    try:
        parse_command_line(argv, config)
        _answer_help_requests(config)
    except HelpExit as h:
        sys.stdout.write(h.text)
        sys.stdout.flush()
        return 0
    if config.daemonize:
        if config.nographic:
            raise QemuError("-nographic cannot be used with -daemonize")
        status = _daemonize_start()
        if status is not None:
            return status
    try:
        vm = build_vm(config)
    except BaseException:
        _daemonize_finish(1)
        remove_pidfile()
        raise
    try:
        return run_vm(vm)
    finally:
        _cleanup()


def _cleanup() -> None:
    try:
        from pyqemu.chardev.char import chardev_reset_all
        chardev_reset_all()
    except ImportError:
        pass
    remove_pidfile()


def _answer_help_requests(config: Config) -> None:
    """``-machine help``, ``-cpu help``, ``-device help`` ... print and exit 0."""
    from pyqemu.system import help as helptext
    helptext.answer(config, option_groups())


def progname_for(target: str) -> str:
    return "pyqemu-system-%s" % target


def current_progname() -> str:
    return get_progname()
