"""``--object tls-creds-x509,...`` for the NBD tools, on Python's ssl module.

Certificates are read from ``dir`` under the file names QEMU's
tls-creds-x509 expects: ``ca-cert.pem``, ``server-cert.pem`` and
``server-key.pem`` for a server, ``client-cert.pem`` and ``client-key.pem``
for a client.  ``verify-peer`` (default on) makes a server demand and check
a client certificate.
"""
from __future__ import annotations

import os
import ssl
from typing import Dict, Optional

from pyqemu.util.error import QemuError
from pyqemu.util.opts import keyval_parse, parse_bool


class TlsCreds:
    def __init__(self, id: str, dir: str, endpoint: str = "client", verify_peer: bool = True) -> None:
        self.id = id
        self.dir = dir
        self.endpoint = endpoint
        self.verify_peer = verify_peer

    def _path(self, name: str, required: bool = True) -> Optional[str]:
        path = os.path.join(self.dir, name)
        if not os.access(path, os.R_OK):
            if not required:
                return None
            err = os.strerror(2 if not os.path.exists(path) else 13)
            raise QemuError("Unable to access credentials %s: %s" % (path, err))
        return path

    def server_context(self) -> ssl.SSLContext:
        ca = self._path("ca-cert.pem")
        cert = self._path("server-cert.pem")
        key = self._path("server-key.pem")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            ctx.load_cert_chain(cert, key)
            ctx.load_verify_locations(ca)
        except (ssl.SSLError, OSError) as exc:
            raise QemuError("Cannot load TLS credentials from %s: %s" % (self.dir, exc)) from None
        ctx.verify_mode = ssl.CERT_REQUIRED if self.verify_peer else ssl.CERT_NONE
        return ctx

    def client_context(self, hostname: Optional[str] = None) -> ssl.SSLContext:
        ca = self._path("ca-cert.pem")
        cert = self._path("client-cert.pem", required=False)
        key = self._path("client-key.pem", required=False)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            ctx.load_verify_locations(ca)
            if cert and key:
                ctx.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            raise QemuError("Cannot load TLS credentials from %s: %s" % (self.dir, exc)) from None
        ctx.check_hostname = bool(self.verify_peer and hostname)
        ctx.verify_mode = ssl.CERT_REQUIRED if self.verify_peer else ssl.CERT_NONE
        return ctx


# Credentials defined with --object, by id, for the NBD block driver to find.
_registry: Dict[str, TlsCreds] = {}


def register_creds(creds: TlsCreds) -> None:
    if creds.id in _registry:
        raise QemuError("attempt to add duplicate property '%s' to object (type 'container')" % creds.id)
    _registry[creds.id] = creds


def find_creds(id: str) -> TlsCreds:
    creds = _registry.get(id)
    if creds is None:
        raise QemuError("No TLS credentials with id '%s'" % id)
    return creds


def parse_object(text: str) -> TlsCreds:
    """Parse one ``--object`` value; only tls-creds-x509 is known to the NBD tools."""
    tree, _ = keyval_parse(text, implied_key="qom-type")
    qom_type = tree.pop("qom-type", None)
    if qom_type is None:
        raise QemuError("Parameter 'qom-type' is missing")
    if qom_type != "tls-creds-x509":
        raise QemuError("Parameter 'qom-type' does not accept value '%s'" % qom_type)
    oid = tree.pop("id", None)
    if not oid:
        raise QemuError("Parameter 'id' is missing")
    endpoint = str(tree.pop("endpoint", "client"))
    if endpoint not in ("client", "server"):
        raise QemuError("Parameter 'endpoint' does not accept value '%s'" % endpoint)
    verify = parse_bool("verify-peer", str(tree.pop("verify-peer", "on")))
    d = tree.pop("dir", None)
    tree.pop("sanity-check", None)
    if tree:
        raise QemuError("Property 'tls-creds-x509.%s' not found" % sorted(tree)[0])
    if d is None:
        raise QemuError("Parameter 'dir' is missing")
    return TlsCreds(str(oid), str(d), endpoint, verify)
