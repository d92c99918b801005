"""URIs as QEMU's block layer reads them: ``nbd://``, ``nbd+unix://``, ``file:``.

:func:`parse_uri` splits a URI (RFC 3986 shape); :func:`nbd_uri_to_options`
turns an NBD URI into the options the NBD block driver takes, with the checks
and error messages QEMU gives.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple
from urllib.parse import unquote

from pyqemu.util.error import QemuError


class URIError(QemuError):
    pass


class URI:
    __slots__ = ("scheme", "user", "server", "port", "path", "query", "fragment")

    def __init__(self) -> None:
        self.scheme: Optional[str] = None
        self.user: Optional[str] = None
        self.server: Optional[str] = None
        self.port: Optional[int] = None
        self.path = ""
        self.query: Optional[str] = None
        self.fragment: Optional[str] = None

    def query_params(self) -> List[Tuple[str, str]]:
        """``a=b&c=d`` (also ``;`` separated) as decoded pairs, in order."""
        if not self.query:
            return []
        out = []
        for part in self.query.replace(";", "&").split("&"):
            if not part:
                continue
            k, _, v = part.partition("=")
            out.append((unquote(k), unquote(v)))
        return out

    def __repr__(self) -> str:
        return "URI(scheme=%r, server=%r, port=%r, path=%r, query=%r)" % (
            self.scheme, self.server, self.port, self.path, self.query)


def parse_uri(text: str) -> URI:
    """Split ``scheme://[user@]host[:port]/path?query#fragment``.

    IPv6 hosts are written in brackets (``nbd://[::1]:10809/x``); the
    brackets are removed from ``server``.  Raises URIError on malformed input.
    """
    u = URI()
    colon = text.find(":")
    if colon <= 0 or not (text[0].isalpha() and all(c.isalnum() or c in "+-." for c in text[:colon])):
        raise URIError("Invalid URI '%s'" % text)
    u.scheme = text[:colon].lower()
    rest = text[colon + 1:]
    if "#" in rest:
        rest, u.fragment = rest.split("#", 1)
    if "?" in rest:
        rest, u.query = rest.split("?", 1)
    if rest.startswith("//"):
        rest = rest[2:]
        slash = rest.find("/")
        authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
        if "@" in authority:
            user, authority = authority.rsplit("@", 1)
            u.user = unquote(user)
        port = None
        if authority.startswith("["):
            end = authority.find("]")
            if end < 0:
                raise URIError("Invalid URI '%s'" % text)
            host = authority[1:end]
            tail = authority[end + 1:]
            if tail:
                if not tail.startswith(":"):
                    raise URIError("Invalid URI '%s'" % text)
                port = tail[1:]
        else:
            host, sep, p = authority.partition(":")
            port = p if sep else None
        if port is not None and port != "":
            if not port.isdigit() or int(port) > 65535:
                raise URIError("Invalid URI '%s'" % text)
            u.port = int(port)
        u.server = unquote(host) if host else None
        u.path = unquote(path)
    else:
        u.path = unquote(rest)
    return u


NBD_DEFAULT_PORT = 10809


def nbd_uri_to_options(text: str) -> Dict[str, object]:
    """Options of the NBD block driver for an NBD URI.

    ``nbd[+tcp]://host[:port]/[export]`` gives an inet server,
    ``nbd+unix:///[export]?socket=PATH`` a unix socket.  The result has
    ``server`` (``{"type": "inet", "host", "port"}`` or
    ``{"type": "unix", "path"}``) and ``export`` when one is named.
    """
    u = parse_uri(text)
    if u.scheme in ("nbd", "nbd+tcp"):
        transport = "tcp"
    elif u.scheme == "nbd+unix":
        transport = "unix"
    else:
        raise URIError("Invalid URI '%s'" % text, hint="")
    opts: Dict[str, object] = {}
    path = u.path
    if path.startswith("/"):
        path = path[1:]
    if path:
        opts["export"] = path
    params = u.query_params()
    if transport == "unix":
        if u.server or u.port is not None:
            raise URIError("NBD URI with a unix socket must not name a server")
        if len(params) != 1 or params[0][0] != "socket":
            raise URIError("NBD URI with a unix socket needs exactly the 'socket' query parameter")
        opts["server"] = {"type": "unix", "path": params[0][1]}
    else:
        if params:
            raise URIError("NBD URI over TCP takes no query parameters")
        opts["server"] = {"type": "inet", "host": u.server or "localhost",
                          "port": str(u.port if u.port is not None else NBD_DEFAULT_PORT)}
    return opts


def format_nbd_uri(server: Dict[str, object], export: Optional[str] = None) -> str:
    """The URI for an NBD server, as ``qemu-img info`` names an NBD image."""
    exp = export or ""
    if server.get("type") == "unix":
        return "nbd+unix:///%s?socket=%s" % (exp, server["path"])
    host = str(server.get("host", "localhost"))
    if ":" in host:
        host = "[%s]" % host
    port = server.get("port", NBD_DEFAULT_PORT)
    return "nbd://%s:%s/%s" % (host, port, exp)
