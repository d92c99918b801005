"""The ``nbd`` protocol driver: an NBD export as a node of the block graph.

Reachable as ``nbd://host[:port]/export``, ``nbd+unix:///export?socket=PATH``,
the legacy ``nbd:host:port[:exportname=NAME]`` and ``nbd:unix:PATH``, or the
option form ``driver=nbd,server.type=inet,server.host=...,export=...`` with
``tls-creds=ID`` naming a ``--object tls-creds-x509``.  Importing this module
registers the driver with the block layer.
"""
from __future__ import annotations

import errno
from typing import Any, Dict, Optional

from pyqemu.block.node import STATUS_DATA, STATUS_OFFSET_VALID, STATUS_ZERO, BlockNode, BlockStatus
from pyqemu.block.open import register_protocol
from pyqemu.nbd import protocol as P
from pyqemu.nbd.client import NBDClient, NBDError, connect_socket
from pyqemu.nbd.tls import find_creds
from pyqemu.util.error import QemuError
from pyqemu.util.uri import NBD_DEFAULT_PORT, nbd_uri_to_options


def parse_nbd_filename(name: str) -> Dict[str, Any]:
    """Options tree for any NBD file name form QEMU accepts."""
    if "://" in name:
        tree: Dict[str, Any] = dict(nbd_uri_to_options(name))
        tree["driver"] = "nbd"
        return tree
    if not name.startswith("nbd:"):
        raise QemuError("Invalid NBD file name '%s'" % name)
    rest = name[4:]
    export = None
    if ":exportname=" in rest:
        rest, export = rest.split(":exportname=", 1)
    if rest.startswith("unix:"):
        server: Dict[str, Any] = {"type": "unix", "path": rest[5:]}
    else:
        host, sep, port = rest.rpartition(":")
        if not sep:
            host, port = rest, str(NBD_DEFAULT_PORT)
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not host:
            raise QemuError("address resolution failed for %s: Name or service not known" % rest)
        server = {"type": "inet", "host": host, "port": port}
    tree = {"driver": "nbd", "server": server}
    if export is not None:
        tree["export"] = export
    return tree


def _server_from_options(options: Dict[str, Any]) -> Dict[str, Any]:
    server = options.get("server")
    if isinstance(server, dict):
        server = dict(server)
        if server.get("type") not in ("inet", "unix"):
            raise QemuError("Parameter 'server.type' is missing" if "type" not in server else
                            "Parameter 'server.type' does not accept value '%s'" % server.get("type"))
        if server["type"] == "inet":
            server.setdefault("port", str(NBD_DEFAULT_PORT))
            if "host" not in server:
                raise QemuError("Parameter 'server.host' is missing")
        elif "path" not in server:
            raise QemuError("Parameter 'server.path' is missing")
        return server
    # Legacy flat options: host/port or path.
    if options.get("path"):
        if options.get("host"):
            raise QemuError("path and host may not be used at the same time")
        return {"type": "unix", "path": options["path"]}
    if options.get("host"):
        return {"type": "inet", "host": options["host"], "port": str(options.get("port", NBD_DEFAULT_PORT))}
    if options.get("filename"):
        return _server_from_options(parse_nbd_filename(str(options["filename"])))
    raise QemuError("NBD server address missing")


def format_filename(server: Dict[str, Any], export: Optional[str]) -> str:
    """The name ``qemu-img info`` shows for an NBD node."""
    exp = export or ""
    if server.get("type") == "unix":
        return "nbd+unix:///%s?socket=%s" % (exp, server["path"]) if exp else \
            "nbd+unix://?socket=%s" % server["path"]
    host = str(server.get("host"))
    if ":" in host:
        host = "[%s]" % host
    base = "nbd://%s:%s" % (host, server.get("port", NBD_DEFAULT_PORT))
    return "%s/%s" % (base, exp) if exp else base


class NBDNode(BlockNode):
    driver = "nbd"

    def __init__(self, options: Dict[str, Any], read_only: bool) -> None:
        super().__init__(options, read_only)
        if options.get("filename") and "server" not in options and not options.get("host") \
                and not options.get("path"):
            parsed = parse_nbd_filename(str(options["filename"]))
            options = dict(options, **parsed)
        server = _server_from_options(options)
        export = options.get("export")
        if export is None and options.get("filename"):
            export = parse_nbd_filename(str(options["filename"])).get("export")
        self.export = str(export) if export is not None else ""
        tls = None
        hostname = None
        creds_id = options.get("tls-creds")
        if creds_id:
            creds = find_creds(str(creds_id))
            if creds.endpoint != "client":
                raise QemuError("Expecting TLS credentials with a client endpoint")
            hostname = str(options.get("tls-hostname") or server.get("host") or "") or None
            if hostname is None and creds.verify_peer:
                raise QemuError("No hostname for certificate validation")
            tls = creds.client_context(hostname)
        sock = connect_socket(server)
        self.client = NBDClient(sock, self.export, tls=tls, tls_hostname=hostname)
        if not read_only and self.client.read_only:
            self.client.close()
            raise QemuError("Permission denied", errno=errno.EACCES)
        self.filename = format_filename(server, self.export)

    def length(self) -> int:
        return self.client.size

    def _io(self, fn, *args):
        try:
            return fn(*args)
        except NBDError:
            raise
        except OSError as exc:
            raise QemuError(str(exc), errno=exc.errno or errno.EIO) from None

    def pread(self, offset: int, length: int) -> bytes:
        self.check_io(offset, length)
        return self._io(self.client.pread, offset, length)

    def pwrite(self, offset: int, data: bytes) -> None:
        self.check_io(offset, len(data))
        self._io(self.client.pwrite, offset, data)

    def pwrite_zeroes(self, offset: int, length: int, may_unmap: bool = False) -> None:
        self.check_io(offset, length)
        self._io(self.client.pwrite_zeroes, offset, length, may_unmap)

    def discard(self, offset: int, length: int) -> None:
        self._io(self.client.discard, offset, length)

    def flush(self) -> None:
        self._io(self.client.flush)

    def block_status(self, offset: int, length: int) -> BlockStatus:
        n = max(0, min(length, self.length() - offset))
        if n == 0:
            return BlockStatus(0, 0, None, None)
        extents = self._io(self.client.block_status, offset, n)
        elen, eflags = extents[0]
        # As QEMU's client: data unless the server says hole; the offset is ours.
        flags = (0 if eflags & P.STATE_HOLE else STATUS_DATA) | (STATUS_ZERO if eflags & P.STATE_ZERO else 0)
        return BlockStatus(flags | STATUS_OFFSET_VALID, min(elen, n), offset, self)

    def _close(self) -> None:
        self.client.close()


def _factory(options: Dict[str, Any], read_only: bool) -> BlockNode:
    return NBDNode(options, read_only)


for _prefix in ("nbd", "nbd+tcp", "nbd+unix"):
    register_protocol("nbd", _factory, prefix=_prefix, parse_filename=parse_nbd_filename)
