"""Creating chardevs: ``-chardev`` options, ``-serial`` short forms and QMP ``chardev-add``.

All three arrive at :func:`chardev_new` with a QMP-shaped backend description
(``type`` plus the ``data`` of QEMU's ChardevBackend union), so that they
behave the same.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Type

from pyqemu.chardev.char import Chardev, chardev_find, chardev_register, chardev_unregister
from pyqemu.chardev.fd import FileChardev, PipeChardev, SerialChardev
from pyqemu.chardev.mux import MuxChardev
from pyqemu.chardev.pty import PtyChardev
from pyqemu.chardev.simple import MemoryChardev, NullChardev, RingbufChardev
from pyqemu.chardev.socket import SocketChardev
from pyqemu.chardev.stdio import StdioChardev
from pyqemu.chardev.udp import UdpChardev
from pyqemu.util.error import QemuError
from pyqemu.util.opts import (OPT_BOOL, OPT_NUMBER, OPT_SIZE, OPT_STRING, OptDesc, Opts, OptsList,
                              register_opts, split_params)


class VcChardev(NullChardev):
    """``vc`` without a graphical display: output is discarded, as QEMU does with -display none."""

    typename = "vc"


BACKENDS: Dict[str, Type[Chardev]] = {
    "null": NullChardev, "socket": SocketChardev, "udp": UdpChardev, "file": FileChardev,
    "pipe": PipeChardev, "pty": PtyChardev, "stdio": StdioChardev, "ringbuf": RingbufChardev,
    "memory": MemoryChardev, "serial": SerialChardev, "mux": MuxChardev, "vc": VcChardev,
}
# Names -chardev accepts for the same backend.
ALIASES = {"tty": "serial"}

_S, _B, _N = OPT_STRING, OPT_BOOL, OPT_NUMBER
CHARDEV_OPTS = register_opts(OptsList("chardev", implied_key="backend", desc=[
    OptDesc(n, t) for n, t in [
        ("backend", _S), ("path", _S), ("host", _S), ("port", _S), ("fd", _S), ("local", _B),
        ("localaddr", _S), ("localport", _S), ("to", _N), ("ipv4", _B), ("ipv6", _B),
        ("wait", _B), ("server", _B), ("delay", _B), ("nodelay", _B), ("reconnect", _N),
        ("telnet", _B), ("tn3270", _B), ("tls-creds", _S), ("tls-authz", _S), ("websocket", _B),
        ("width", _N), ("height", _N), ("cols", _N), ("rows", _N), ("mux", _B), ("signal", _B),
        ("name", _S), ("debug", _N), ("size", OPT_SIZE), ("chardev", _S), ("append", _B),
        ("logfile", _S), ("logappend", _B), ("mouse", _B), ("clipboard", _B),
        ("abstract", _B), ("tight", _B)]]))


def backend_names() -> list:
    return sorted(BACKENDS)


def _need(opts: Opts, key: str, msg: str) -> str:
    v = opts.get(key)
    if not v:
        raise QemuError(msg)
    return v


def backend_from_opts(opts: Opts) -> Tuple[str, Dict[str, Any]]:
    """The QMP (type, data) for a parsed ``-chardev`` (qemu_chr_parse_opts)."""
    kind = opts.get("backend") or ""
    kind = ALIASES.get(kind, kind)
    if kind not in BACKENDS:
        raise QemuError("'%s' is not a valid char driver name" % kind)
    data: Dict[str, Any] = {}
    if opts.get("logfile"):
        data["logfile"] = opts.get("logfile")
    if "logappend" in opts:
        data["logappend"] = opts.get_bool("logappend")
    if kind == "file":
        data["out"] = _need(opts, "path", "chardev: file: no filename given")
        if "append" in opts:
            data["append"] = opts.get_bool("append")
    elif kind in ("pipe", "serial"):
        name = "pipe" if kind == "pipe" else "serial/tty"
        data["device"] = _need(opts, "path", "chardev: %s: no device path given" % name)
    elif kind == "socket":
        data.update(_socket_from_opts(opts))
    elif kind == "udp":
        port = opts.get("port")
        if not port:
            raise QemuError("chardev: udp: remote port not specified")
        data["remote"] = {"type": "inet", "data": {"host": opts.get("host") or "localhost",
                                                  "port": port}}
        if opts.get("localaddr") or opts.get("localport"):
            data["local"] = {"type": "inet", "data": {"host": opts.get("localaddr") or "",
                                                     "port": opts.get("localport") or "0"}}
    elif kind in ("ringbuf", "memory"):
        if "size" in opts:
            data["size"] = opts.get_size("size")
    elif kind == "stdio":
        if "signal" in opts:
            data["signal"] = opts.get_bool("signal")
    elif kind == "mux":
        data["chardev"] = _need(opts, "chardev", "chardev: mux: no chardev given")
    return kind, data


# Socket options pyqemu accepts but cannot honour yet: refuse rather than ignore.
_UNSUPPORTED_SOCKET = ("tls-creds", "tls-authz", "websocket", "tn3270")


def _socket_from_opts(opts: Opts) -> Dict[str, Any]:
    for key in _UNSUPPORTED_SOCKET:
        if key in opts and opts.get(key) not in ("off", ""):
            raise QemuError("chardev: socket: '%s' is not supported by pyqemu yet" % key)
    path, host, port, fd = opts.get("path"), opts.get("host"), opts.get("port"), opts.get("fd")
    server = opts.get_bool("server", False)
    data: Dict[str, Any] = {"server": server}
    if server:
        data["wait"] = opts.get_bool("wait", True)
    elif "wait" in opts:
        raise QemuError("'wait' option is incompatible with socket in client connect mode")
    if "telnet" in opts:
        data["telnet"] = opts.get_bool("telnet")
    nodelay = opts.get_bool("nodelay", False) or not opts.get_bool("delay", True)
    if nodelay:
        data["nodelay"] = True
    if "reconnect" in opts:
        data["reconnect"] = opts.get_number("reconnect")
    if path:
        addr: Dict[str, Any] = {"path": path}
        data["addr"] = {"type": "unix", "data": addr}
    elif host or port:
        if not port:
            raise QemuError("chardev: socket: no port given")
        inet: Dict[str, Any] = {"host": host or "", "port": port}
        for k in ("ipv4", "ipv6"):
            if k in opts:
                inet[k] = opts.get_bool(k)
        if "to" in opts:
            inet["to"] = opts.get_number("to")
        data["addr"] = {"type": "inet", "data": inet}
    else:
        if not fd or not fd.isdigit():
            raise QemuError("Unable to parse FD number %s" % (fd or ""))
        data["addr"] = {"type": "fd", "data": {"str": fd}}
    return data


def chardev_new(label: str, kind: str, data: Dict[str, Any], loop=None) -> Tuple[Chardev, Dict[str, Any]]:
    """Create, open and register a chardev; returns it and chardev-add's extra result."""
    if chardev_find(label) is not None:
        raise QemuError("attempt to add duplicate property '%s' to object (type 'container')" % label)
    cls = BACKENDS.get(kind)
    if cls is None:
        raise QemuError("'%s' is not a valid char driver name" % kind)
    chr = cls(label, dict(data), loop)
    ret = chr.open()
    chardev_register(chr)
    return chr, ret


def create_from_opts(opts: Opts, loop=None) -> Chardev:
    """``-chardev`` (qemu_chr_new_from_opts): the chardev, with a mux in front if mux=on."""
    if opts.help_wanted or opts.get("backend") in ("help", "?"):
        raise QemuError("use chardev_help_text() for help")
    label = opts.id
    if label is None:
        raise QemuError("chardev: no id specified")
    kind, data = backend_from_opts(opts)
    if opts.get_bool("mux", False):
        base_label = label + "-base"
        chardev_new(base_label, kind, data, loop)
        try:
            chr, _ = chardev_new(label, "mux", {"chardev": base_label}, loop)
        except QemuError:
            chardev_unregister(base_label)
            raise
    else:
        chr, _ = chardev_new(label, kind, data, loop)
    if getattr(opts, "monitor_wanted", False):
        from pyqemu.monitor import start_monitor
        start_monitor(chr, mode="readline")
    return chr


def chardev_help_text() -> str:
    return "Available chardev backend types: \n" + "".join(
        "  %s\n" % n for n in BACKENDS)


# ---------------------------------------------------------------------------
# -serial/-monitor/-parallel short forms (qemu_chr_parse_compat)
# ---------------------------------------------------------------------------

def _split_host_port(text: str) -> Tuple[str, str]:
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ValueError(text)
    return host, port


def parse_serial_spec(text: str, label: str) -> Optional[Opts]:
    """The chardev options a short form stands for, or None for ``none``.

    An unknown form raises "'X' is not a valid char driver"; a known one with a
    malformed address raises the same error with ``silent`` set, meaning QEMU
    prints only the caller's own message for it.

    ``chardev:ID`` is not a new chardev; use :func:`create_from_spec`.  With
    ``mon:`` the options carry ``monitor_wanted`` so that creating them starts
    an HMP monitor on the (multiplexed) chardev, as QEMU does.
    """
    if text == "none":
        return None
    opts = Opts(CHARDEV_OPTS, label)
    spec = text
    if spec.startswith("mon:"):
        spec = spec[4:]
        opts.monitor_wanted = True  # type: ignore[attr-defined]
        opts.items.append(("mux", "on"))
    bad = QemuError("'%s' is not a valid char driver" % text)
    # A known prefix with a malformed address: QEMU fails without this first
    # message and the caller only reports its own ("could not connect ...").
    bad.silent = True  # type: ignore[attr-defined]

    def add(k: str, v: str) -> None:
        opts.items.append((k, v))

    def extra(rest: str) -> None:
        for k, v in split_params(rest):
            if v is None:
                # Legacy short forms accept bare flags without a warning.
                k, v = (k[2:], "off") if k.startswith("no") else (k, "on")
            CHARDEV_OPTS.check_key(k, v)
            add(k, v)

    if spec in ("null", "pty", "stdio", "vc", "msmouse", "braille", "testdev") or spec.startswith("vc:"):
        add("backend", "vc" if spec.startswith("vc") else spec)
    elif spec.startswith("file:"):
        add("backend", "file")
        add("path", spec[5:])
    elif spec.startswith("pipe:"):
        add("backend", "pipe")
        add("path", spec[5:])
    elif spec.startswith(("tcp:", "telnet:")):
        head, _, rest = spec.partition(",")
        kind, _, hp = head.partition(":")
        try:
            host, port = _split_host_port(hp)
        except ValueError:
            raise bad from None
        add("backend", "socket")
        add("host", host)
        add("port", port)
        if kind == "telnet":
            add("telnet", "on")
        extra(rest)
    elif spec.startswith("unix:"):
        path, _, rest = spec[5:].partition(",")
        add("backend", "socket")
        add("path", path)
        extra(rest)
    elif spec.startswith("udp:"):
        remote, _, local = spec[4:].partition("@")
        try:
            host, port = _split_host_port(remote)
            add("backend", "udp")
            add("host", host)
            add("port", port)
            if local:
                lhost, lport = _split_host_port(local)
                add("localaddr", lhost)
                add("localport", lport)
        except ValueError:
            raise bad from None
    elif spec.startswith("/dev/"):
        add("backend", "serial")
        add("path", spec)
    else:
        raise QemuError("'%s' is not a valid char driver" % text)
    return opts


def create_from_spec(text: str, label: str, loop=None) -> Optional[Chardev]:
    """A chardev for a short form (``qemu_chr_new``); ``chardev:ID`` finds an existing one."""
    if text.startswith("chardev:"):
        name = text[8:]
        chr = chardev_find(name)
        if chr is None:
            raise QemuError('chardev "%s" not found' % name)
        return chr
    opts = parse_serial_spec(text, label)
    if opts is None:
        return None
    return create_from_opts(opts, loop)
