"""pyqemu-nbd: serve a disk image over NBD, with qemu-nbd's command line."""
from __future__ import annotations

import getopt
import os
import signal
import socket
import sys
from typing import Dict, List, Optional, Sequence

import pyqemu.block.nbd  # noqa: F401  (serve nbd:// images too: registers the driver)
from pyqemu.nbd import protocol as P
from pyqemu.nbd.backend import load_internal_snapshot, open_backend, open_snapshot_backend
from pyqemu.nbd.client import NBDClient, connect_socket
from pyqemu.nbd.partition import find_partition
from pyqemu.nbd.export import Export, LockedBackend, PolicyBackend, WindowBackend
from pyqemu.nbd.server import NBDServer
from pyqemu.nbd.tls import TlsCreds, parse_object, register_creds
from pyqemu.qom import cmdline as cmdline_object
from pyqemu.util.error import QemuError, UsageError, run_main
from pyqemu.util.opts import keyval_parse, parse_json_filename

VERSION = "pyqemu-nbd 7.2.0 (pyqemu)"

USAGE = """\
Usage: {prog} [OPTIONS] FILE
  or:  {prog} -L [OPTIONS]
Serve a disk image over the Network Block Device (NBD) protocol.

  -h, --help                show this text and exit
  -V, --version             show the version and exit

Where to listen:
  -p, --port=PORT           TCP port (default 10809)
  -b, --bind=IFACE          address to listen on (default 0.0.0.0)
  -k, --socket=PATH         listen on a unix socket instead
  -e, --shared=NUM          serve up to NUM clients at a time (default 1)
  -t, --persistent          keep running when the last client leaves
  -v, --verbose             more messages
  -x, --export-name=NAME    name of the export (default: empty)
  -D, --description=TEXT    description sent to clients that ask

Part of the image:
  -o, --offset=OFFSET       serve the image from this byte offset on
  -P, --partition=NUM       serve only partition NUM (MBR 1-4 primary, 5+
                            logical; GPT entry NUM); not in QEMU 7.2

Other options:
  -L, --list                show the exports of another NBD server
  --object type,id=ID,...   create an object (secret, tls-creds-x509)
  --tls-creds=ID            require TLS with the credentials object ID
  --fork                    run in the background; the parent exits once
                            the server accepts clients
  --pid-file=PATH           write the server's process ID to PATH

Kernel NBD device (needs the host's nbd module):
  -c, --connect=DEV         attach FILE to /dev/nbdX (not implemented)
  -d, --disconnect          detach DEV

Image options:
  -f, --format=FORMAT       image format (raw, qcow2, ...); probed if absent
  -r, --read-only           serve read-only
  -s, --snapshot            send writes to a temporary overlay on top of
                            FILE; the image itself stays unchanged
  -n, --nocache             same as --cache=none
      --cache=MODE          none, writeback (default), writethrough,
                            directsync or unsafe
      --aio=MODE            threads, native or io_uring (I/O is synchronous)
      --discard=MODE        ignore (default) or unmap
      --detect-zeroes=MODE  off (default), on or unmap
  -l, --load-snapshot=SNAPSHOT_PARAM
                            serve an internal snapshot of FILE, read-only:
                            'snapshot.id=ID,snapshot.name=NAME' or 'ID_OR_NAME'
      --image-opts          FILE is a set of block options, not a name
"""

SHORT = "hVp:b:k:e:tvx:D:o:P:Lc:dnf:rsl:T:"
LONG = ["help", "version", "port=", "bind=", "socket=", "shared=", "persistent", "verbose",
        "export-name=", "description=", "offset=", "partition=", "list", "object=", "tls-creds=", "tls-authz=",
        "trace=", "fork", "pid-file=", "connect=", "disconnect", "format=", "read-only",
        "snapshot", "load-snapshot=", "nocache", "cache=", "aio=", "discard=", "detect-zeroes=",
        "image-opts", "allocation-depth", "bitmap=", "selinux-label="]

CACHE_MODES = ("none", "writeback", "writethrough", "directsync", "unsafe")


class Options:
    def __init__(self) -> None:
        self.port = "10809"
        self.bind: Optional[str] = None
        self.socket: Optional[str] = None
        self.shared = 1
        self.persistent = False
        self.verbose = False
        self.export_name: Optional[str] = None
        self.description = ""
        self.offset = 0
        self.partition = 0
        self.list = False
        self.objects: List[str] = []
        self.tls_creds: Optional[str] = None
        self.fork = False
        self.pid_file: Optional[str] = None
        self.connect: Optional[str] = None
        self.disconnect = False
        self.format: Optional[str] = None
        self.read_only = False
        self.snapshot = False
        self.load_snapshot: Optional[str] = None
        self.cache = "writeback"
        self.discard = "ignore"
        self.detect_zeroes = "off"
        self.image_opts = False
        self.args: List[str] = []


def _try_help(msg: str) -> UsageError:
    return UsageError(msg, hint="pyqemu-nbd: Try `pyqemu-nbd --help' for more information.")


def parse_args(argv: Sequence[str]) -> Options:
    o = Options()
    try:
        pairs, args = getopt.gnu_getopt(list(argv), SHORT, LONG)
    except getopt.GetoptError as exc:
        if exc.opt and len(exc.opt) > 1 and "requires argument" in exc.msg:
            raise _try_help("option '--%s' requires an argument" % exc.opt) from None
        if exc.opt and len(exc.opt) == 1 and "requires argument" in exc.msg:
            raise _try_help("option requires an argument -- '%s'" % exc.opt) from None
        if exc.opt and len(exc.opt) == 1:
            raise _try_help("invalid option -- '%s'" % exc.opt) from None
        raise _try_help("unrecognized option '--%s'" % exc.opt) from None
    for opt, val in pairs:
        if opt in ("-h", "--help"):
            sys.stdout.write(USAGE.format(prog="pyqemu-nbd"))
            raise SystemExit(0)
        if opt in ("-V", "--version"):
            sys.stdout.write(VERSION + "\n")
            raise SystemExit(0)
        if opt in ("-p", "--port"):
            o.port = val
        elif opt in ("-b", "--bind"):
            o.bind = val
        elif opt in ("-k", "--socket"):
            if len(val) >= 108:
                raise QemuError("socket path too long")
            o.socket = val
        elif opt in ("-e", "--shared"):
            if not val.isdigit():
                raise QemuError("Invalid shared device number '%s'" % val)
            o.shared = int(val)
        elif opt in ("-t", "--persistent"):
            o.persistent = True
        elif opt in ("-v", "--verbose"):
            o.verbose = True
        elif opt in ("-x", "--export-name"):
            if len(val.encode()) > 4096:
                raise QemuError("export name '%s' too long" % val)
            o.export_name = val
        elif opt in ("-D", "--description"):
            if len(val.encode()) > 4096:
                raise QemuError("export description '%s' too long" % val)
            o.description = val
        elif opt in ("-o", "--offset"):
            try:
                o.offset = int(val, 0)
                if o.offset < 0:
                    raise ValueError
            except ValueError:
                raise QemuError("Invalid offset '%s'" % val) from None
        elif opt in ("-P", "--partition"):
            if not val.isdigit() or not 1 <= int(val) <= 128:
                raise QemuError("Invalid partition '%s'" % val)
            o.partition = int(val)
        elif opt in ("-L", "--list"):
            o.list = True
        elif opt == "--object":
            o.objects.append(val)
        elif opt == "--tls-creds":
            o.tls_creds = val
        elif opt == "--fork":
            o.fork = True
        elif opt == "--pid-file":
            o.pid_file = val
        elif opt in ("-c", "--connect"):
            o.connect = val
        elif opt in ("-d", "--disconnect"):
            o.disconnect = True
        elif opt in ("-f", "--format"):
            o.format = val
        elif opt in ("-r", "--read-only"):
            o.read_only = True
        elif opt in ("-s", "--snapshot"):
            o.snapshot = True
        elif opt in ("-l", "--load-snapshot"):
            o.load_snapshot = val
            o.read_only = True
        elif opt in ("-n", "--nocache"):
            o.cache = "none"
        elif opt == "--cache":
            if val not in CACHE_MODES:
                raise QemuError("Invalid cache mode `%s'" % val)
            o.cache = val
        elif opt == "--aio":
            if val not in ("threads", "native", "io_uring"):
                raise QemuError("Invalid aio mode '%s'" % val)
        elif opt == "--discard":
            if val not in ("ignore", "off", "unmap", "on"):
                raise QemuError("Invalid discard mode `%s'" % val)
            o.discard = val
        elif opt == "--detect-zeroes":
            if val not in ("off", "on", "unmap"):
                raise QemuError("Failed to parse detect_zeroes mode: invalid parameter value: %s" % val)
            o.detect_zeroes = val
        elif opt == "--image-opts":
            o.image_opts = True
        else:   # -T, -A, -B, --tls-authz, --selinux-label
            raise QemuError("option '%s' is not supported by pyqemu-nbd yet" % opt)
    o.args = args
    return o


def _listeners(o: Options) -> List[socket.socket]:
    if o.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if os.path.exists(o.socket):
                os.unlink(o.socket)
            s.bind(o.socket)
        except OSError as exc:
            s.close()
            raise QemuError("Failed to bind socket to %s: %s" % (o.socket, os.strerror(exc.errno or 5))) \
                from None
        s.listen(16)
        return [s]
    host = o.bind or "0.0.0.0"
    try:
        infos = socket.getaddrinfo(host, o.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise QemuError("address resolution failed for %s:%s: %s" % (host, o.port, exc.strerror)) from None
    out = []
    last: Optional[OSError] = None
    for family, stype, proto, _, addr in infos:
        s = socket.socket(family, stype, proto)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            s.bind(addr)
        except OSError as exc:
            s.close()
            last = exc
            continue
        s.listen(16)
        out.append(s)
    if not out:
        err = os.strerror(last.errno or 5) if last else "no address"
        raise QemuError("Failed to bind socket: %s" % err)
    return out


_FLAG_NAMES = ("readonly", "flush", "fua", "rotational", "trim", "zeroes", "df", "multi", "resize",
               "cache", "fast-zero")


def _list(o: Options) -> int:
    """qemu-nbd -L: describe the exports of another server."""
    tls = None
    objects = _objects(o)
    hostname = o.bind or "localhost"
    if o.tls_creds:
        creds = _creds(objects, o.tls_creds, "client")
        if o.socket and creds.verify_peer:
            # A unix socket names no host to check the certificate against.
            raise QemuError("No hostname for certificate validation")
        tls = creds.client_context(hostname)
    if o.socket:
        server = {"type": "unix", "path": o.socket}
    else:
        server = {"type": "inet", "host": hostname, "port": o.port}
    exports = NBDClient.describe_exports(connect_socket(server), tls, hostname if tls else None)
    lines = ["exports available: %d" % len(exports)]
    for e in exports:
        lines.append(" export: '%s'" % e["name"])
        if e["description"]:
            lines.append("  description: %s" % e["description"])
        flags = int(e["flags"])  # type: ignore[arg-type]
        if flags & P.TF_HAS_FLAGS:
            names = "".join("%s " % n for i, n in enumerate(_FLAG_NAMES) if flags & (2 << i))
            lines.append("  size:  %d" % e["size"])
            lines.append("  flags: 0x%x ( %s)" % (flags, names))
        else:
            lines.append("  size:  %d" % e["size"])
        lines.append("  min block: %d" % e["min"])
        lines.append("  opt block: %d" % e["opt"])
        lines.append("  max block: %d" % e["max"])
        ctx = e["contexts"]
        lines.append("  available meta contexts: %d" % len(ctx))  # type: ignore[arg-type]
        lines.extend("   %s" % c for c in ctx)  # type: ignore[union-attr]
    print("\n".join(lines))
    return 0


def _objects(o: Options) -> Dict[str, TlsCreds]:
    objects: Dict[str, TlsCreds] = {}
    for text in o.objects:
        if cmdline_object.handles(text):
            cmdline_object.add_object_from_cmdline(text)
            continue
        obj = parse_object(text)
        if obj.id in objects:
            raise QemuError("attempt to add duplicate property '%s' to object (type 'container')" % obj.id)
        objects[obj.id] = obj
        register_creds(obj)
    return objects


def _creds(objects: Dict[str, TlsCreds], id: str, endpoint: str) -> TlsCreds:
    creds = objects.get(id)
    if creds is None:
        raise QemuError("Failed to get TLS creds: No TLS credentials with id '%s'" % id)
    if creds.endpoint != endpoint:
        raise QemuError("Expecting TLS credentials with a %s endpoint" % endpoint)
    return creds


def _kernel_nbd(o: Options) -> int:
    dev = o.connect or (o.args[0] if o.args else "")
    if not os.path.exists("/sys/module/nbd") and not os.path.exists(dev or "/dev/nbd0"):
        raise QemuError("%s %s: No such file or directory" % ("Failed to open" if o.connect else "Cannot open",
                                                              dev),
                        hint="The kernel's nbd module is not loaded on this host "
                             "(no /sys/module/nbd), so /dev/nbdX cannot be used.")
    raise QemuError("connecting images to the kernel's /dev/nbdX is not supported by pyqemu-nbd yet")


def _main(argv: Sequence[str]) -> int:
    o = parse_args(argv)
    if o.disconnect:
        if len(o.args) != 1:
            raise _try_help("Invalid number of arguments")
        return _kernel_nbd(o)
    if o.list:
        if o.args:
            raise _try_help("Invalid number of arguments")
        return _list(o)
    if len(o.args) != 1:
        raise UsageError("Invalid number of arguments",
                         hint="Try `pyqemu-nbd --help' for more information.")
    if o.connect:
        return _kernel_nbd(o)
    tls = None
    objects = _objects(o)
    if o.tls_creds:
        tls = _creds(objects, o.tls_creds, "server").server_context()
    filename = o.args[0]
    if o.image_opts:
        if o.format:
            raise QemuError("--image-opts and -f are mutually exclusive")
        if filename.startswith("json:"):
            tree = parse_json_filename(filename)
        else:
            tree, _ = keyval_parse(filename)
        backend = open_backend(tree, None, o.read_only, cache=o.cache, name=filename)
    elif o.snapshot:
        backend = open_snapshot_backend(filename, o.format, cache=o.cache)
    else:
        backend = open_backend(filename, o.format, o.read_only, cache=o.cache)
    if o.load_snapshot is not None:
        try:
            load_internal_snapshot(backend, o.load_snapshot)
        except QemuError:
            backend.close()
            raise
    size = backend.size()
    if o.offset > size:
        backend.close()
        raise QemuError("Offset (%d) exceeds image size (%d)" % (o.offset, size))
    if o.detect_zeroes == "unmap" and o.discard not in ("unmap", "on"):
        backend.close()
        raise QemuError("setting detect-zeroes to unmap is not allowed without setting discard operation to unmap")
    if o.partition:
        inner = backend
        try:
            start, length = find_partition(lambda off, n: inner.pread(o.offset + off, n),
                                           size - o.offset, o.partition)
        except (QemuError, OSError) as exc:
            backend.close()
            raise QemuError(str(exc)) from None
        backend = WindowBackend(backend, o.offset + start, length)
    elif o.offset:
        backend = WindowBackend(backend, o.offset)
    backend = PolicyBackend(backend, o.discard, o.detect_zeroes)
    export = Export(o.export_name if o.export_name is not None else "", LockedBackend(backend),
                    description=o.description, multi_conn=o.shared != 1)
    listeners = _listeners(o)
    ready_w = None
    if o.fork:
        # The listening sockets exist already, so the server accepts as soon as
        # the parent returns: nothing is lost between the two.  The parent
        # waits until the child has written its pid file (or failed to), so a
        # caller that reads the pid file after we exit finds it complete.
        sys.stdout.flush()
        sys.stderr.flush()
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid:
            os.close(ready_w)
            for s in listeners:
                s.close()
            chunks = []
            while True:
                chunk = os.read(ready_r, 4096)
                if not chunk:
                    break
                chunks.append(chunk)
            os.close(ready_r)
            message = b"".join(chunks).decode("utf-8", "replace")
            if message != "ok":
                raise QemuError(message or "the server process ended before it was ready")
            os._exit(0)
        os.close(ready_r)
        os.setsid()
        # Detach from the caller's terminal and pipes, as qemu-nbd's daemon does.
        fd = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(fd, target)
        os.close(fd)
    if o.pid_file:
        try:
            with open(o.pid_file, "w") as f:
                f.write("%d\n" % os.getpid())
        except OSError as exc:
            message = ("Could not create '%s': %s"
                       % (o.pid_file, os.strerror(exc.errno or 5)))
            if ready_w is not None:
                os.write(ready_w, message.encode())
                os.close(ready_w)
                os._exit(1)
            raise QemuError(message) from None
    if ready_w is not None:
        os.write(ready_w, b"ok")
        os.close(ready_w)
    server = NBDServer([export], max_connections=o.shared, persistent=o.persistent, tls=tls,
                       verbose=o.verbose)
    # SIGTERM/SIGINT end the server cleanly, removing its socket and pid file.
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    signal.signal(signal.SIGINT, lambda *_: server.stop())
    try:
        server.serve_forever(listeners)
    finally:
        backend.close()
        if o.socket:
            try:
                os.unlink(o.socket)
            except OSError:
                pass
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The pyqemu-nbd console script; returns the exit status."""
    return run_main(_main, "pyqemu-nbd", argv)


if __name__ == "__main__":
    sys.exit(main())
