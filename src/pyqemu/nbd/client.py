"""NBD client: negotiation (fixed newstyle, TLS, structured replies, base:allocation) and I/O.

One request is in flight at a time, which keeps reply matching trivial; every
length a server sends is checked against what was asked before anything is
allocated, so a hostile server cannot make the client allocate without bound.
"""
from __future__ import annotations

import errno
import os
import socket
import ssl
from typing import Dict, List, Optional, Tuple

from pyqemu.nbd import protocol as P
from pyqemu.util.error import QemuError


class NBDError(QemuError):
    """A failed NBD request or negotiation."""


class _ServerError(Exception):
    def __init__(self, rtype: int, msg: str) -> None:
        super().__init__(msg)
        self.rtype = rtype
        self.msg = msg


P_DEFAULT_PORT = 10809

_OPT_NAMES = {1: "export name", 2: "abort", 3: "list", 4: "peek export", 5: "starttls", 6: "info",
              7: "go", 8: "structured reply", 9: "list meta context", 10: "set meta context",
              11: "extended headers"}


def option_error(exc: "_ServerError", opt: int) -> NBDError:
    """A server's refusal of an option, worded as QEMU's NBD client words it."""
    what = "option %d (%s)" % (opt, _OPT_NAMES.get(opt, "<unknown>"))
    hint = ""
    r = exc.rtype
    if r == P.REP_ERR_UNSUP:
        msg = "Unsupported %s" % what
    elif r == P.REP_ERR_POLICY:
        msg = "Denied by server for %s" % what
    elif r == P.REP_ERR_INVALID:
        msg = "Invalid parameters for %s" % what
    elif r == P.REP_ERR_PLATFORM:
        msg = "Server lacks support for %s" % what
    elif r == P.REP_ERR_TLS_REQD:
        msg = "TLS negotiation required before %s" % what
        hint = "Did you forget a valid tls-creds?\n"
    elif r == P.REP_ERR_UNKNOWN:
        msg = "Requested export not available"
    elif r == P.REP_ERR_SHUTDOWN:
        msg = "Server shutting down before %s" % what
    elif r == P.REP_ERR_BLOCK_SIZE_REQD:
        msg = "Server requires INFO_BLOCK_SIZE for %s" % what
    elif r == P.REP_ERR_TOO_BIG:
        msg = "Server considers %s too large" % what
    else:
        msg = "Unknown error code when asking for %s" % what
    if exc.msg:
        hint += "server reported: %s\n" % exc.msg
    return NBDError(msg, hint=hint.rstrip("\n"))


def connect_socket(server: Dict[str, object]) -> socket.socket:
    """Open the transport named by a QAPI SocketAddress-like dict (inet or unix)."""
    stype = server.get("type", "inet")
    try:
        if stype == "unix":
            path = str(server.get("path", ""))
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
            except OSError:
                s.close()
                raise
            return s
        if stype != "inet":
            raise NBDError("Parameter 'server.type' does not accept value '%s'" % stype)
        host = str(server.get("host", "localhost"))
        port = str(server.get("port", P_DEFAULT_PORT))
        s = socket.create_connection((host, int(port) if port.isdigit() else port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s
    except socket.gaierror as exc:
        raise NBDError("address resolution failed for %s:%s: %s"
                       % (server.get("host"), server.get("port"), exc.strerror)) from None
    except OSError as exc:
        where = server.get("path") if stype == "unix" else "%s:%s" % (server.get("host"), server.get("port"))
        raise NBDError("Failed to connect to '%s': %s" % (where, os.strerror(exc.errno or errno.EIO)),
                       errno=exc.errno) from None


class NBDClient:
    """A connection to one export of an NBD server."""

    def __init__(self, sock: socket.socket, export: str = "", tls: Optional[ssl.SSLContext] = None,
                 tls_hostname: Optional[str] = None, want_structured: bool = True,
                 want_block_status: bool = True) -> None:
        self.sock = sock
        self.export = export
        self.size = 0
        self.flags = 0
        self.structured = False
        self.meta_context: Optional[int] = None
        self.min_block = 1
        self.pref_block = 4096
        self.max_block = P.MAX_BUFFER
        self.description = ""
        self._handle = 0
        self._tls = tls
        self._tls_hostname = tls_hostname
        self.closed = False
        try:
            self._handshake(want_structured, want_block_status, go=True)
        except BaseException:
            self._close_sock()
            raise

    # -- low level ---------------------------------------------------------------
    def _recv(self, n: int) -> bytes:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            try:
                k = self.sock.recv_into(view[got:], n - got)
            except OSError as exc:
                raise NBDError("Failed to read from the NBD server: %s"
                               % os.strerror(exc.errno or errno.EIO), errno=errno.EIO) from None
            if not k:
                raise NBDError("Unexpected end-of-file before all data were read", errno=errno.EIO)
            got += k
        return bytes(buf)

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise NBDError("Failed to send to the NBD server: %s" % os.strerror(exc.errno or errno.EIO),
                           errno=errno.EIO) from None

    def _send_opt(self, opt: int, data: bytes = b"") -> None:
        self._send(P.S_OPTION.pack(P.IHAVEOPT, opt, len(data)) + data)

    def _read_opt_reply(self, opt: int) -> Tuple[int, bytes]:
        magic, ropt, rtype, length = P.S_OPT_REPLY.unpack(self._recv(P.S_OPT_REPLY.size))
        if magic != P.REPLY_MAGIC_OPT:
            raise NBDError("Unexpected option reply magic 0x%x" % magic)
        if ropt != opt:
            raise NBDError("Unexpected option in reply (%d, expected %d)" % (ropt, opt))
        if length > P.MAX_OPTION_LENGTH:
            raise NBDError("Option reply of %d bytes is too long" % length)
        data = self._recv(length)
        if rtype & P.REP_ERR_BIT:
            raise _ServerError(rtype, data.decode("utf-8", "replace"))
        return rtype, data

    # -- negotiation ---------------------------------------------------------------
    def _handshake(self, want_structured: bool, want_block_status: bool, go: bool) -> None:
        magic, second = P.S_U64.unpack(self._recv(8))[0], P.S_U64.unpack(self._recv(8))[0]
        if magic != P.NBDMAGIC:
            raise NBDError("Bad initial magic received: 0x%x" % magic)
        if second == P.OLDSTYLE_MAGIC:
            raise NBDError("Server uses the oldstyle protocol, which pyqemu does not support")
        if second != P.IHAVEOPT:
            raise NBDError("Bad server magic received: 0x%x" % second)
        (sflags,) = P.S_U16.unpack(self._recv(2))
        if not sflags & P.FLAG_FIXED_NEWSTYLE:
            raise NBDError("Server does not support fixed newstyle negotiation")
        cflags = P.FLAG_C_FIXED_NEWSTYLE
        self._no_zeroes = bool(sflags & P.FLAG_NO_ZEROES)
        if self._no_zeroes:
            cflags |= P.FLAG_C_NO_ZEROES
        self._send(P.S_U32.pack(cflags))
        if self._tls is not None:
            self._send_opt(P.OPT_STARTTLS)
            try:
                self._read_opt_reply(P.OPT_STARTTLS)
            except _ServerError as exc:
                raise NBDError("Server don't support STARTTLS option" if exc.rtype == P.REP_ERR_UNSUP
                               else "TLS negotiation failed: %s" % exc.msg) from None
            try:
                self.sock = self._tls.wrap_socket(self.sock, server_hostname=self._tls_hostname)
            except (ssl.SSLError, OSError) as exc:
                raise NBDError("TLS handshake failed: %s" % exc) from None
        if want_structured:
            self._send_opt(P.OPT_STRUCTURED_REPLY)
            try:
                self._read_opt_reply(P.OPT_STRUCTURED_REPLY)
                self.structured = True
            except _ServerError:
                pass    # any refusal means plain replies; a TLS demand surfaces at GO
        if self.structured and want_block_status:
            self._set_meta_context()
        if go:
            self._go()


    def _set_meta_context(self) -> None:
        name = self.export.encode()
        ctx = P.CONTEXT_BASE_ALLOCATION.encode()
        data = P.S_U32.pack(len(name)) + name + P.S_U32.pack(1) + P.S_U32.pack(len(ctx)) + ctx
        self._send_opt(P.OPT_SET_META_CONTEXT, data)
        try:
            while True:
                rtype, body = self._read_opt_reply(P.OPT_SET_META_CONTEXT)
                if rtype == P.REP_ACK:
                    break
                if rtype == P.REP_META_CONTEXT and len(body) >= 4 and body[4:] == ctx:
                    self.meta_context = P.S_U32.unpack_from(body)[0]
        except _ServerError:
            self.meta_context = None

    def _go(self) -> None:
        name = self.export.encode()
        data = P.S_U32.pack(len(name)) + name + P.S_U16.pack(2) + P.S_U16.pack(P.INFO_BLOCK_SIZE) \
            + P.S_U16.pack(P.INFO_DESCRIPTION)
        self._send_opt(P.OPT_GO, data)
        got_export = False
        try:
            while True:
                rtype, body = self._read_opt_reply(P.OPT_GO)
                if rtype == P.REP_ACK:
                    break
                if rtype != P.REP_INFO or len(body) < 2:
                    continue
                (itype,) = P.S_U16.unpack_from(body)
                if itype == P.INFO_EXPORT and len(body) == P.S_EXPORT_INFO.size:
                    _, self.size, self.flags = P.S_EXPORT_INFO.unpack(body)
                    got_export = True
                elif itype == P.INFO_BLOCK_SIZE and len(body) == P.S_BLOCK_SIZE_INFO.size:
                    _, self.min_block, self.pref_block, self.max_block = P.S_BLOCK_SIZE_INFO.unpack(body)
                    self.max_block = max(1, min(self.max_block, P.MAX_BUFFER))
                elif itype == P.INFO_DESCRIPTION:
                    self.description = body[2:].decode("utf-8", "replace")
        except _ServerError as exc:
            if exc.rtype == P.REP_ERR_UNSUP:
                self._export_name()
                return
            raise option_error(exc, P.OPT_GO) from None
        if not got_export:
            raise NBDError("broken server omitted NBD_INFO_EXPORT")

    def _export_name(self) -> None:
        name = self.export.encode()
        self._send_opt(P.OPT_EXPORT_NAME, name)
        body = self._recv(P.S_EXPORT_NAME_REPLY.size)
        self.size, self.flags = P.S_EXPORT_NAME_REPLY.unpack(body)
        if not self._no_zeroes:
            self._recv(124)

    # -- listing (qemu-nbd -L) ----------------------------------------------------
    @staticmethod
    def _unconnected(sock: socket.socket, tls: Optional[ssl.SSLContext],
                     tls_hostname: Optional[str]) -> "NBDClient":
        """A client on ``sock`` that negotiates options but opens no export."""
        c = NBDClient.__new__(NBDClient)
        c.sock = sock
        c.export = ""
        c._tls = tls
        c._tls_hostname = tls_hostname
        c.structured = False
        c.closed = False
        return c

    def _read_export_list(self) -> List[Tuple[str, str]]:
        """Send NBD_OPT_LIST and collect (name, description) until the ACK."""
        self._send_opt(P.OPT_LIST)
        out = []
        while True:
            rtype, body = self._read_opt_reply(P.OPT_LIST)
            if rtype == P.REP_ACK:
                return out
            if rtype == P.REP_SERVER and len(body) >= 4:
                (n,) = P.S_U32.unpack_from(body)
                out.append((body[4:4 + n].decode("utf-8", "replace"),
                            body[4 + n:].decode("utf-8", "replace")))

    @staticmethod
    def list_exports(sock: socket.socket, tls: Optional[ssl.SSLContext] = None,
                     tls_hostname: Optional[str] = None) -> List[Tuple[str, str]]:
        """Names and descriptions of a server's exports (NBD_OPT_LIST)."""
        c = NBDClient._unconnected(sock, tls, tls_hostname)
        try:
            c._handshake(False, False, go=False)
            out = c._read_export_list()
            c._send_opt(P.OPT_ABORT)
            return out
        except _ServerError as exc:
            raise option_error(exc, P.OPT_LIST) from None
        finally:
            c._close_sock()

    @staticmethod
    def describe_exports(sock: socket.socket, tls: Optional[ssl.SSLContext] = None,
                         tls_hostname: Optional[str] = None) -> List[Dict[str, object]]:
        """Every export with its size, flags, block sizes and meta contexts (``qemu-nbd -L``)."""
        c = NBDClient._unconnected(sock, tls, tls_hostname)
        try:
            c._handshake(False, False, go=False)
            opt = P.OPT_LIST
            names = c._read_export_list()
            opt = P.OPT_STRUCTURED_REPLY
            c._send_opt(P.OPT_STRUCTURED_REPLY)
            try:
                c._read_opt_reply(P.OPT_STRUCTURED_REPLY)
            except _ServerError:
                pass
            out: List[Dict[str, object]] = []
            opt = P.OPT_INFO
            for name, desc in names:
                info: Dict[str, object] = {"name": name, "description": desc, "size": 0, "flags": 0,
                                           "min": 1, "opt": 4096, "max": P.MAX_BUFFER, "contexts": []}
                raw = name.encode()
                c._send_opt(P.OPT_INFO, P.S_U32.pack(len(raw)) + raw + P.S_U16.pack(2)
                            + P.S_U16.pack(P.INFO_BLOCK_SIZE) + P.S_U16.pack(P.INFO_DESCRIPTION))
                while True:
                    rtype, body = c._read_opt_reply(P.OPT_INFO)
                    if rtype == P.REP_ACK:
                        break
                    if rtype != P.REP_INFO or len(body) < 2:
                        continue
                    (itype,) = P.S_U16.unpack_from(body)
                    if itype == P.INFO_EXPORT and len(body) == P.S_EXPORT_INFO.size:
                        _, info["size"], info["flags"] = P.S_EXPORT_INFO.unpack(body)
                    elif itype == P.INFO_BLOCK_SIZE and len(body) == P.S_BLOCK_SIZE_INFO.size:
                        _, info["min"], info["opt"], info["max"] = P.S_BLOCK_SIZE_INFO.unpack(body)
                    elif itype == P.INFO_DESCRIPTION:
                        info["description"] = body[2:].decode("utf-8", "replace")
                c._send_opt(P.OPT_LIST_META_CONTEXT, P.S_U32.pack(len(raw)) + raw + P.S_U32.pack(0))
                contexts: List[str] = []
                try:
                    while True:
                        rtype, body = c._read_opt_reply(P.OPT_LIST_META_CONTEXT)
                        if rtype == P.REP_ACK:
                            break
                        if rtype == P.REP_META_CONTEXT and len(body) >= 4:
                            contexts.append(body[4:].decode("utf-8", "replace"))
                except _ServerError:
                    pass
                info["contexts"] = contexts
                out.append(info)
            c._send_opt(P.OPT_ABORT)
            return out
        except _ServerError as exc:
            raise option_error(exc, opt) from None
        finally:
            c._close_sock()

    # -- transmission ------------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        return bool(self.flags & P.TF_READ_ONLY)

    def _request(self, cmd: int, offset: int, length: int, flags: int = 0, payload: bytes = b"") -> int:
        if self.closed:
            raise NBDError("Connection closed", errno=errno.EIO)
        self._handle += 1
        hdr = P.S_REQUEST.pack(P.REQUEST_MAGIC, flags, cmd, self._handle, offset, length)
        if payload:
            self._send(hdr)
            self._send(payload)
        else:
            self._send(hdr)
        return self._handle

    def _fail(self, err: int, msg: str = "") -> NBDError:
        e = P.wire_to_errno(err)
        return NBDError(msg or os.strerror(e), errno=e)

    def _simple_or_done(self, handle: int) -> None:
        """Wait for the reply of a command that carries no data."""
        (magic,) = P.S_U32.unpack(self._recv(4))
        if magic == P.SIMPLE_REPLY_MAGIC:
            err, h = P.S_U32.unpack(self._recv(4))[0], P.S_U64.unpack(self._recv(8))[0]
            self._check_handle(h, handle)
            if err:
                raise self._fail(err)
            return
        if magic != P.STRUCTURED_REPLY_MAGIC or not self.structured:
            self._protocol_error("Invalid reply magic 0x%x" % magic)
        error = None
        while True:
            flags, rtype, h, length = self._chunk_header(handle)
            if length > P.MAX_OPTION_LENGTH:
                self._protocol_error("Chunk too long")
            body = self._recv(length)
            if rtype & (1 << 15):
                error = self._chunk_error(body)
            elif rtype != P.REPLY_TYPE_NONE:
                self._protocol_error("Unexpected structured reply type %d" % rtype)
            if flags & P.REPLY_FLAG_DONE:
                break
            self._next_chunk_magic()
        if error is not None:
            raise error

    def _protocol_error(self, msg: str):
        self.close(send_disc=False)
        raise NBDError(msg, errno=errno.EIO)

    def _check_handle(self, got: int, want: int) -> None:
        if got != want:
            self._protocol_error("Unexpected reply handle %d (expected %d)" % (got, want))

    def _next_chunk_magic(self) -> None:
        (magic,) = P.S_U32.unpack(self._recv(4))
        if magic != P.STRUCTURED_REPLY_MAGIC:
            self._protocol_error("Invalid reply magic 0x%x" % magic)

    def _chunk_header(self, handle: int) -> Tuple[int, int, int, int]:
        flags, rtype, h, length = P.S_CHUNK_REST.unpack(self._recv(P.S_CHUNK_REST.size))
        self._check_handle(h, handle)
        return flags, rtype, h, length

    def _chunk_error(self, body: bytes) -> NBDError:
        if len(body) < 6:
            self._protocol_error("Structured error reply too short")
        err, mlen = P.S_ERROR.unpack_from(body)
        msg = body[6:6 + mlen].decode("utf-8", "replace")
        e = P.wire_to_errno(err)
        return NBDError(os.strerror(e), errno=e, hint=("server reported: %s" % msg) if msg else "")

    def pread(self, offset: int, length: int) -> bytes:
        out = bytearray()
        while length > 0:
            n = min(length, self.max_block)
            out += self._read_one(offset, n)
            offset += n
            length -= n
        return bytes(out)

    def _read_one(self, offset: int, length: int) -> bytes:
        handle = self._request(P.CMD_READ, offset, length)
        (magic,) = P.S_U32.unpack(self._recv(4))
        if magic == P.SIMPLE_REPLY_MAGIC:
            err, h = P.S_U32.unpack(self._recv(4))[0], P.S_U64.unpack(self._recv(8))[0]
            self._check_handle(h, handle)
            if err:
                raise self._fail(err)
            return self._recv(length)
        if magic != P.STRUCTURED_REPLY_MAGIC or not self.structured:
            self._protocol_error("Invalid reply magic 0x%x" % magic)
        buf = bytearray(length)
        error = None
        while True:
            flags, rtype, h, clen = self._chunk_header(handle)
            if rtype == P.REPLY_TYPE_OFFSET_DATA:
                if clen < 8 or clen - 8 > length:
                    self._protocol_error("Invalid OFFSET_DATA chunk length")
                (coff,) = P.S_U64.unpack(self._recv(8))
                n = clen - 8
                if coff < offset or coff - offset + n > length:
                    self._protocol_error("OFFSET_DATA chunk outside the request")
                buf[coff - offset:coff - offset + n] = self._recv(n)
            elif rtype == P.REPLY_TYPE_OFFSET_HOLE:
                if clen != 12:
                    self._protocol_error("Invalid OFFSET_HOLE chunk length")
                coff, hlen = P.S_HOLE.unpack(self._recv(12))
                if coff < offset or coff - offset + hlen > length:
                    self._protocol_error("OFFSET_HOLE chunk outside the request")
                buf[coff - offset:coff - offset + hlen] = bytes(hlen)
            elif rtype & (1 << 15):
                if clen > P.MAX_OPTION_LENGTH:
                    self._protocol_error("Error chunk too long")
                error = self._chunk_error(self._recv(clen))
            elif rtype == P.REPLY_TYPE_NONE:
                if clen:
                    self._protocol_error("NONE chunk with payload")
            else:
                self._protocol_error("Unexpected structured reply type %d" % rtype)
            if flags & P.REPLY_FLAG_DONE:
                break
            self._next_chunk_magic()
        if error is not None:
            raise error
        return bytes(buf)

    def pwrite(self, offset: int, data: bytes, fua: bool = False) -> None:
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            n = min(len(view) - pos, self.max_block)
            h = self._request(P.CMD_WRITE, offset + pos, n, P.CMD_FLAG_FUA if fua else 0, view[pos:pos + n])
            self._simple_or_done(h)
            pos += n

    def _ranged(self, cmd: int, offset: int, length: int, flags: int) -> None:
        # The length field is 32 bits: split long ranges.
        step = 0xFFFFFFFF & ~0xFFFF
        while length > 0:
            n = min(length, step)
            self._simple_or_done(self._request(cmd, offset, n, flags))
            offset += n
            length -= n

    def pwrite_zeroes(self, offset: int, length: int, may_unmap: bool = False, fua: bool = False) -> None:
        if not self.flags & P.TF_SEND_WRITE_ZEROES:
            chunk = bytes(min(length, self.max_block))
            while length > 0:
                n = min(length, len(chunk))
                self.pwrite(offset, chunk[:n], fua)
                offset += n
                length -= n
            return
        flags = (0 if may_unmap else P.CMD_FLAG_NO_HOLE) | (P.CMD_FLAG_FUA if fua else 0)
        self._ranged(P.CMD_WRITE_ZEROES, offset, length, flags)

    def discard(self, offset: int, length: int) -> None:
        if self.flags & P.TF_SEND_TRIM:
            self._ranged(P.CMD_TRIM, offset, length, 0)

    def flush(self) -> None:
        if self.flags & P.TF_SEND_FLUSH:
            self._simple_or_done(self._request(P.CMD_FLUSH, 0, 0))

    def cache(self, offset: int, length: int) -> None:
        if self.flags & P.TF_SEND_CACHE:
            self._ranged(P.CMD_CACHE, offset, length, 0)

    def block_status(self, offset: int, length: int) -> List[Tuple[int, int]]:
        """``(length, NBD_STATE_*)`` extents from ``offset``; all data when unsupported."""
        length = min(length, 0xFFFFFFFF & ~0xFFFF, self.size - offset)
        if self.meta_context is None or length <= 0:
            return [(max(length, 0), 0)]
        handle = self._request(P.CMD_BLOCK_STATUS, offset, length)
        (magic,) = P.S_U32.unpack(self._recv(4))
        if magic == P.SIMPLE_REPLY_MAGIC:
            err, h = P.S_U32.unpack(self._recv(4))[0], P.S_U64.unpack(self._recv(8))[0]
            self._check_handle(h, handle)
            raise self._fail(err or P.NBD_EINVAL)
        if magic != P.STRUCTURED_REPLY_MAGIC:
            self._protocol_error("Invalid reply magic 0x%x" % magic)
        extents: List[Tuple[int, int]] = []
        error = None
        while True:
            flags, rtype, h, clen = self._chunk_header(handle)
            if clen > 4 + 8 * 65536 or clen > P.MAX_BUFFER:
                self._protocol_error("Block status chunk too long")
            body = self._recv(clen)
            if rtype == P.REPLY_TYPE_BLOCK_STATUS:
                if clen < 12 or (clen - 4) % 8:
                    self._protocol_error("Invalid block status chunk length")
                (cid,) = P.S_U32.unpack_from(body)
                if cid == self.meta_context and not extents:
                    pos = 0
                    for i in range(4, clen, 8):
                        elen, eflags = P.S_EXTENT.unpack_from(body, i)
                        if elen == 0:
                            continue
                        elen = min(elen, length - pos)
                        if elen <= 0:
                            break
                        extents.append((elen, eflags))
                        pos += elen
            elif rtype & (1 << 15):
                error = self._chunk_error(body)
            elif rtype != P.REPLY_TYPE_NONE:
                self._protocol_error("Unexpected structured reply type %d" % rtype)
            if flags & P.REPLY_FLAG_DONE:
                break
            self._next_chunk_magic()
        if error is not None:
            raise error
        if not extents:
            self._protocol_error("Server did not reply with any status extents")
        return extents

    def _close_sock(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def close(self, send_disc: bool = True) -> None:
        if self.closed:
            return
        self.closed = True
        if send_disc:
            try:
                self.sock.sendall(P.S_REQUEST.pack(P.REQUEST_MAGIC, 0, P.CMD_DISC, 0, 0, 0))
            except OSError:
                pass
        self._close_sock()

