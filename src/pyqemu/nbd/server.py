"""NBD server: fixed-newstyle negotiation and the transmission phase.

One thread per client connection.  Every client-controlled length is checked
against a bound before anything is allocated, and a client that breaks the
protocol loses its own connection only; the exports and other clients go on.
"""
from __future__ import annotations

import os
import socket
import ssl
import threading
from typing import Callable, Dict, List, Optional, Tuple

from pyqemu.nbd import protocol as P
from pyqemu.nbd.export import Export


class ProtocolViolation(Exception):
    """The client broke the protocol badly enough that its connection is dropped."""


class _Closed(Exception):
    """The peer went away."""


def _recv_exact(sock: socket.socket, n: int) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if not k:
            raise _Closed()
        got += k
    return buf


def _skip(sock: socket.socket, n: int) -> None:
    """Consume ``n`` bytes of payload we will not use, without holding it all."""
    while n > 0:
        chunk = _recv_exact(sock, min(n, 1 << 20))
        n -= len(chunk)


class NBDServer:
    """Serves ``exports`` to clients accepted on ``listener``.

    ``max_connections`` is ``qemu-nbd -e`` (0 = unlimited); without
    ``persistent`` the server stops once its last client has gone, as
    qemu-nbd does.  ``tls`` is a server-side SSLContext that every client
    must upgrade to with NBD_OPT_STARTTLS before anything else.
    """

    def __init__(self, exports: List[Export], max_connections: int = 1,
                 persistent: bool = False, tls: Optional[ssl.SSLContext] = None,
                 verbose: bool = False) -> None:
        self.exports: Dict[str, Export] = {e.name: e for e in exports}
        self.order = [e.name for e in exports]
        self.max_connections = max_connections
        self.persistent = persistent
        self.tls = tls
        self.verbose = verbose
        self._cond = threading.Condition()
        self._active = 0
        self._served = 0
        self._stopping = False
        self._listeners: List[socket.socket] = []
        self._threads: List[threading.Thread] = []
        self._conns: List[socket.socket] = []
        self.on_first_listen: Optional[Callable[[], None]] = None

    # -- lifecycle ---------------------------------------------------------
    def serve_forever(self, listeners: List[socket.socket]) -> None:
        """Accept clients until stopped (or until the last one leaves when not persistent)."""
        self._listeners = listeners
        for ls in listeners:
            ls.settimeout(0.1)
        try:
            while True:
                with self._cond:
                    while (self.max_connections and self._active >= self.max_connections
                           and not self._stopping):
                        self._cond.wait(0.2)
                    if self._stopping:
                        break
                    if not self.persistent and self._served and self._active == 0:
                        break
                conn = self._accept_one()
                if conn is None:
                    continue
                with self._cond:
                    self._active += 1
                    self._served += 1
                    self._conns.append(conn)
                t = threading.Thread(target=self._client_thread, args=(conn,), daemon=True)
                self._threads.append(t)
                t.start()
        finally:
            for ls in listeners:
                ls.close()
            # Wake client threads blocked in recv so that stopping is prompt.
            with self._cond:
                conns = list(self._conns)
            for c in conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            for t in self._threads:
                t.join(5)

    def _accept_one(self) -> Optional[socket.socket]:
        for ls in self._listeners:
            try:
                conn, _ = ls.accept()
            except socket.timeout:
                continue
            except OSError:
                continue
            conn.settimeout(None)
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return conn
        return None

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def _client_thread(self, conn: socket.socket) -> None:
        try:
            ClientSession(self, conn).run()
        finally:
            try:
                conn.close()
            except OSError:
                pass
            with self._cond:
                self._active -= 1
                if conn in self._conns:
                    self._conns.remove(conn)
                self._cond.notify_all()


class ClientSession:
    """One client connection from greeting to disconnect."""

    def __init__(self, server: NBDServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.no_zeroes = False
        self.structured = False
        self.tls_done = False
        self.meta_ids: Dict[int, str] = {}
        self.export: Optional[Export] = None
        self._plain = sock

    def run(self) -> None:
        try:
            if self._negotiate():
                self._transmission()
        except (_Closed, ProtocolViolation, ConnectionError, ssl.SSLError, OSError):
            pass

    # -- negotiation ---------------------------------------------------------
    def _send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _reply(self, opt: int, rtype: int, data: bytes = b"") -> None:
        self._send(P.S_OPT_REPLY.pack(P.REPLY_MAGIC_OPT, opt, rtype, len(data)) + data)

    def _error(self, opt: int, rtype: int, msg: str = "") -> None:
        self._reply(opt, rtype, msg.encode())

    def _negotiate(self) -> bool:
        """Run the option haggling; True when the client enters transmission."""
        self._send(P.S_GREETING.pack(P.NBDMAGIC, P.IHAVEOPT,
                                     P.FLAG_FIXED_NEWSTYLE | P.FLAG_NO_ZEROES))
        (cflags,) = P.S_U32.unpack(_recv_exact(self.sock, 4))
        if cflags & ~(P.FLAG_C_FIXED_NEWSTYLE | P.FLAG_C_NO_ZEROES):
            raise ProtocolViolation("unsupported client flags")
        self.no_zeroes = bool(cflags & P.FLAG_C_NO_ZEROES)
        fixed = bool(cflags & P.FLAG_C_FIXED_NEWSTYLE)
        while True:
            magic, opt, length = P.S_OPTION.unpack(_recv_exact(self.sock, P.S_OPTION.size))
            if magic != P.IHAVEOPT:
                raise ProtocolViolation("bad option magic")
            if length > P.MAX_OPTION_LENGTH:
                # Too big to be honest; dropping it keeps memory bounded.
                raise ProtocolViolation("option too long")
            data = bytes(_recv_exact(self.sock, length))
            if self.server.tls is not None and not self.tls_done:
                if opt == P.OPT_STARTTLS:
                    if length:
                        self._error(opt, P.REP_ERR_INVALID, "OPT_STARTTLS should not have length")
                        continue
                    self._reply(opt, P.REP_ACK)
                    self._start_tls()
                    continue
                if opt == P.OPT_EXPORT_NAME:
                    raise ProtocolViolation("Option 0x1 not permitted before TLS")
                if opt == P.OPT_ABORT:
                    self._try_ack_abort(opt)
                    return False
                self._error(opt, P.REP_ERR_TLS_REQD, "Option 0x%x not permitted before TLS" % opt)
                continue
            if not fixed and opt != P.OPT_EXPORT_NAME:
                raise ProtocolViolation("unsupported option without fixed newstyle")
            if opt == P.OPT_EXPORT_NAME:
                return self._opt_export_name(data)
            if opt == P.OPT_ABORT:
                self._try_ack_abort(opt)
                return False
            if opt == P.OPT_LIST:
                self._opt_list(opt, data)
            elif opt == P.OPT_STARTTLS:
                if self.tls_done:
                    self._error(opt, P.REP_ERR_INVALID, "TLS already enabled")
                else:
                    self._error(opt, P.REP_ERR_POLICY, "TLS not configured")
            elif opt in (P.OPT_INFO, P.OPT_GO):
                if self._opt_info_go(opt, data):
                    return True
            elif opt == P.OPT_STRUCTURED_REPLY:
                if length:
                    self._error(opt, P.REP_ERR_INVALID, "option '%s' has unexpected length" % "structured reply")
                elif self.structured:
                    self._error(opt, P.REP_ERR_INVALID, "structured reply already negotiated")
                else:
                    self.structured = True
                    self._reply(opt, P.REP_ACK)
            elif opt in (P.OPT_LIST_META_CONTEXT, P.OPT_SET_META_CONTEXT):
                self._opt_meta_context(opt, data)
            else:
                self._error(opt, P.REP_ERR_UNSUP, "Unsupported option %d (%s)" % (opt, _opt_name(opt)))

    def _try_ack_abort(self, opt: int) -> None:
        try:
            self._reply(opt, P.REP_ACK)
        except OSError:
            pass

    def _start_tls(self) -> None:
        assert self.server.tls is not None
        self.sock = self.server.tls.wrap_socket(self._plain, server_side=True)
        self.tls_done = True

    def _find(self, name: str) -> Optional[Export]:
        return self.server.exports.get(name)

    def _opt_export_name(self, data: bytes) -> bool:
        exp = self._find(data.decode("utf-8", "replace"))
        if exp is None:
            raise ProtocolViolation("unknown export")
        self.export = exp
        reply = P.S_EXPORT_NAME_REPLY.pack(exp.backend.size(), self._tflags(exp))
        if not self.no_zeroes:
            reply += bytes(124)
        self._send(reply)
        return True

    def _opt_list(self, opt: int, data: bytes) -> None:
        if data:
            self._error(opt, P.REP_ERR_INVALID, "option '%s' has unexpected length" % "list")
            return
        for name in self.server.order:
            exp = self.server.exports[name]
            raw = name.encode()
            self._reply(opt, P.REP_SERVER, P.S_U32.pack(len(raw)) + raw + exp.description.encode())
        self._reply(opt, P.REP_ACK)

    def _tflags(self, exp: Export) -> int:
        flags = P.TF_HAS_FLAGS | P.TF_SEND_FLUSH | P.TF_SEND_FUA | P.TF_SEND_CACHE
        if self.structured:     # DF only means something with structured reads
            flags |= P.TF_SEND_DF
        if exp.read_only:
            flags |= P.TF_READ_ONLY
        else:
            flags |= P.TF_SEND_TRIM | P.TF_SEND_WRITE_ZEROES | P.TF_SEND_FAST_ZERO
        if exp.multi_conn:
            flags |= P.TF_CAN_MULTI_CONN
        return flags

    def _opt_info_go(self, opt: int, data: bytes) -> bool:
        if len(data) < 4:
            self._error(opt, P.REP_ERR_INVALID, "request data too short")
            return False
        (nlen,) = P.S_U32.unpack_from(data, 0)
        if nlen > P.MAX_STRING or 4 + nlen + 2 > len(data):
            self._error(opt, P.REP_ERR_INVALID, "export name length too long or data truncated")
            return False
        name = data[4:4 + nlen].decode("utf-8", "replace")
        (nreq,) = P.S_U16.unpack_from(data, 4 + nlen)
        if len(data) != 4 + nlen + 2 + 2 * nreq:
            self._error(opt, P.REP_ERR_INVALID, "request data has wrong length")
            return False
        reqs = [P.S_U16.unpack_from(data, 6 + nlen + 2 * i)[0] for i in range(nreq)]
        exp = self._find(name)
        if exp is None:
            self._error(opt, P.REP_ERR_UNKNOWN, "export '%s' not present" % name)
            return False
        if P.INFO_NAME in reqs:
            self._reply(opt, P.REP_INFO, P.S_U16.pack(P.INFO_NAME) + exp.name.encode())
        if P.INFO_DESCRIPTION in reqs and exp.description:
            self._reply(opt, P.REP_INFO, P.S_U16.pack(P.INFO_DESCRIPTION) + exp.description.encode())
        # Always advertised: byte-granular access, 4 KiB preferred, 32 MiB per request.
        self._reply(opt, P.REP_INFO, P.S_BLOCK_SIZE_INFO.pack(P.INFO_BLOCK_SIZE, 1, 4096, P.MAX_BUFFER))
        self._reply(opt, P.REP_INFO, P.S_EXPORT_INFO.pack(P.INFO_EXPORT, exp.backend.size(),
                                                          self._tflags(exp)))
        self._reply(opt, P.REP_ACK)
        if opt == P.OPT_GO:
            self.export = exp
            if not self.structured:
                self.meta_ids = {}
            return True
        return False

    def _opt_meta_context(self, opt: int, data: bytes) -> None:
        if opt == P.OPT_SET_META_CONTEXT and not self.structured:
            self._error(opt, P.REP_ERR_INVALID, "request option '%s' when structured reply is not negotiated"
                        % "set meta context")
            return
        try:
            pos = 0
            (nlen,) = P.S_U32.unpack_from(data, pos)
            pos += 4
            if nlen > P.MAX_STRING or pos + nlen > len(data):
                raise ValueError
            name = data[pos:pos + nlen].decode("utf-8", "replace")
            pos += nlen
            (nq,) = P.S_U32.unpack_from(data, pos)
            pos += 4
            queries = []
            for _ in range(nq):
                (ql,) = P.S_U32.unpack_from(data, pos)
                pos += 4
                if ql > P.MAX_STRING or pos + ql > len(data):
                    raise ValueError
                queries.append(data[pos:pos + ql].decode("utf-8", "replace"))
                pos += ql
            if pos != len(data):
                raise ValueError
        except (ValueError, IndexError, Exception):
            self._error(opt, P.REP_ERR_INVALID, "malformed meta context request")
            return
        if self._find(name) is None:
            self._error(opt, P.REP_ERR_UNKNOWN, "export '%s' not present" % name)
            return
        selected = {}
        if opt == P.OPT_LIST_META_CONTEXT and not queries:
            selected[0] = P.CONTEXT_BASE_ALLOCATION
        for q in queries:
            if q == P.CONTEXT_BASE_ALLOCATION or (opt == P.OPT_LIST_META_CONTEXT and q == "base:"):
                selected[0] = P.CONTEXT_BASE_ALLOCATION
        for cid, cname in selected.items():
            self._reply(opt, P.REP_META_CONTEXT, P.S_U32.pack(cid) + cname.encode())
        if opt == P.OPT_SET_META_CONTEXT:
            self.meta_ids = selected
        self._reply(opt, P.REP_ACK)

    # -- transmission --------------------------------------------------------
    def _transmission(self) -> None:
        exp = self.export
        assert exp is not None
        backend = exp.backend
        sock = self.sock
        req_size = P.S_REQUEST.size
        unpack = P.S_REQUEST.unpack
        while True:
            magic, flags, cmd, handle, offset, length = unpack(_recv_exact(sock, req_size))
            if magic != P.REQUEST_MAGIC:
                raise ProtocolViolation("bad request magic")
            if cmd == P.CMD_DISC:
                return
            if cmd == P.CMD_WRITE:
                if length > P.MAX_BUFFER:
                    # The payload cannot be consumed within bounds: hang up.
                    raise ProtocolViolation("write too large")
                payload = _recv_exact(sock, length)
            else:
                payload = None
            err, result = self._check(cmd, flags, offset, length, backend)
            if err:
                self._send_error(handle, cmd, err)
                continue
            try:
                if cmd == P.CMD_READ:
                    if self.structured and not flags & P.CMD_FLAG_DF and length:
                        self._send_sparse_read(handle, offset, length, backend)
                        continue
                    data = backend.pread(offset, length)
                    self._send_read(handle, offset, data)
                    continue
                if cmd == P.CMD_WRITE:
                    backend.pwrite(offset, payload, bool(flags & P.CMD_FLAG_FUA))
                elif cmd == P.CMD_FLUSH:
                    backend.flush()
                elif cmd == P.CMD_TRIM:
                    backend.discard(offset, length)
                    if flags & P.CMD_FLAG_FUA:
                        backend.flush()
                elif cmd == P.CMD_WRITE_ZEROES:
                    if flags & P.CMD_FLAG_FAST_ZERO and not flags & P.CMD_FLAG_NO_HOLE:
                        pass
                    backend.pwrite_zeroes(offset, length, not flags & P.CMD_FLAG_NO_HOLE,
                                          bool(flags & P.CMD_FLAG_FUA))
                elif cmd == P.CMD_CACHE:
                    pass        # nothing is cached beyond what the host page cache does
                elif cmd == P.CMD_BLOCK_STATUS:
                    self._send_block_status(handle, offset, length, flags, backend)
                    continue
            except OSError as exc:
                self._send_error(handle, cmd, P.errno_to_wire(exc.errno or 5))
                continue
            self._send(P.S_SIMPLE_REPLY.pack(P.SIMPLE_REPLY_MAGIC, 0, handle))

    def _check(self, cmd: int, flags: int, offset: int, length: int, backend) -> Tuple[int, None]:
        """Validate a request; the NBD error to send, or 0."""
        allowed = {
            P.CMD_READ: P.CMD_FLAG_DF,
            P.CMD_WRITE: P.CMD_FLAG_FUA,
            P.CMD_FLUSH: 0,
            P.CMD_TRIM: P.CMD_FLAG_FUA,
            P.CMD_CACHE: 0,
            P.CMD_WRITE_ZEROES: P.CMD_FLAG_FUA | P.CMD_FLAG_NO_HOLE | P.CMD_FLAG_FAST_ZERO,
            P.CMD_BLOCK_STATUS: P.CMD_FLAG_REQ_ONE,
        }
        if cmd not in allowed:
            return P.NBD_EINVAL, None
        if flags & ~allowed[cmd]:
            return P.NBD_EINVAL, None
        if flags & P.CMD_FLAG_DF and not self.structured:
            return P.NBD_EINVAL, None
        if cmd in (P.CMD_WRITE, P.CMD_TRIM, P.CMD_WRITE_ZEROES) and backend.read_only:
            return P.NBD_EPERM, None
        if cmd == P.CMD_FLUSH:
            return 0, None
        if cmd == P.CMD_READ and length > P.MAX_BUFFER:
            return P.NBD_EINVAL, None
        if cmd == P.CMD_BLOCK_STATUS:
            if not self.structured or not self.meta_ids or length == 0:
                return P.NBD_EINVAL, None
        size = backend.size()
        if offset > size or length > size - offset:
            return (P.NBD_ENOSPC if cmd in (P.CMD_WRITE, P.CMD_WRITE_ZEROES) else P.NBD_EINVAL), None
        return 0, None

    def _send_error(self, handle: int, cmd: int, err: int) -> None:
        if self.structured and cmd in (P.CMD_READ, P.CMD_BLOCK_STATUS):
            msg = os.strerror(P.wire_to_errno(err)).encode()
            body = P.S_ERROR.pack(err, len(msg)) + msg
            self._send(P.S_CHUNK.pack(P.STRUCTURED_REPLY_MAGIC, P.REPLY_FLAG_DONE, P.REPLY_TYPE_ERROR,
                                      handle, len(body)) + body)
        else:
            self._send(P.S_SIMPLE_REPLY.pack(P.SIMPLE_REPLY_MAGIC, err, handle))

    def _send_read(self, handle: int, offset: int, data: bytes) -> None:
        if self.structured:
            if not data:
                head = P.S_CHUNK.pack(P.STRUCTURED_REPLY_MAGIC, P.REPLY_FLAG_DONE, P.REPLY_TYPE_NONE,
                                      handle, 0)
                self._send(head)
                return
            head = P.S_CHUNK.pack(P.STRUCTURED_REPLY_MAGIC, P.REPLY_FLAG_DONE, P.REPLY_TYPE_OFFSET_DATA,
                                  handle, 8 + len(data)) + P.S_OFFSET.pack(offset)
        else:
            head = P.S_SIMPLE_REPLY.pack(P.SIMPLE_REPLY_MAGIC, 0, handle)
        self._send_parts(head, data)

    def _send_sparse_read(self, handle: int, offset: int, length: int, backend) -> None:
        """A structured read as QEMU sends it: zero runs as OFFSET_HOLE, the rest as data.

        Everything is read before the first chunk goes out, so a failing read
        still gets a single clean error reply.
        """
        runs: List[Tuple[int, int, bool]] = []
        pos, end = offset, offset + length
        while pos < end:
            got = backend.block_status(pos, end - pos)
            n = min(got[0][0], end - pos) if got and got[0][0] > 0 else end - pos
            zero = bool(got and got[0][1] & P.STATE_ZERO)
            if runs and runs[-1][2] == zero:
                runs[-1] = (runs[-1][0], runs[-1][1] + n, zero)
            else:
                runs.append((pos, n, zero))
            pos += n
        if len(runs) == 1 and not runs[0][2]:
            self._send_read(handle, offset, backend.pread(offset, length))
            return
        parts = [(roff, rlen, None if zero else backend.pread(roff, rlen)) for roff, rlen, zero in runs]
        for i, (roff, rlen, data) in enumerate(parts):
            done = P.REPLY_FLAG_DONE if i == len(parts) - 1 else 0
            if data is None:
                self._send(P.S_CHUNK.pack(P.STRUCTURED_REPLY_MAGIC, done, P.REPLY_TYPE_OFFSET_HOLE, handle, 12)
                           + P.S_HOLE.pack(roff, rlen))
            else:
                head = P.S_CHUNK.pack(P.STRUCTURED_REPLY_MAGIC, done, P.REPLY_TYPE_OFFSET_DATA, handle,
                                      8 + rlen) + P.S_OFFSET.pack(roff)
                self._send_parts(head, data)

    def _send_parts(self, head: bytes, data: bytes) -> None:
        if isinstance(self.sock, ssl.SSLSocket):
            self.sock.sendall(head)
            self.sock.sendall(data)
            return
        # sendmsg avoids concatenating a large payload with its header.
        total = len(head) + len(data)
        sent = self.sock.sendmsg([head, data])
        if sent < total:
            rest = memoryview(head + data if sent < len(head) else data)
            self.sock.sendall(rest[sent if sent < len(head) else sent - len(head):])

    def _send_block_status(self, handle: int, offset: int, length: int, flags: int, backend) -> None:
        extents: List[Tuple[int, int]] = []
        pos, end = offset, offset + length
        # Bound the reply: a few thousand extents is plenty for one request.
        while pos < end and len(extents) < 4096:
            got = backend.block_status(pos, end - pos)
            if not got:
                break
            for elen, eflags in got:
                elen = min(elen, end - pos)
                if elen <= 0:
                    break
                if extents and extents[-1][1] == eflags:
                    extents[-1] = (extents[-1][0] + elen, eflags)
                else:
                    extents.append((elen, eflags))
                pos += elen
                if pos >= end:
                    break
            if flags & P.CMD_FLAG_REQ_ONE:
                break
        if flags & P.CMD_FLAG_REQ_ONE:
            extents = extents[:1]
        cid = next(iter(self.meta_ids))
        body = P.S_U32.pack(cid) + b"".join(P.S_EXTENT.pack(e_len, e_fl) for e_len, e_fl in extents)
        self._send(P.S_CHUNK.pack(P.STRUCTURED_REPLY_MAGIC, P.REPLY_FLAG_DONE, P.REPLY_TYPE_BLOCK_STATUS,
                                  handle, len(body)) + body)


_OPT_NAMES = {1: "export name", 2: "abort", 3: "list", 4: "peek export", 5: "starttls",
              6: "info", 7: "go", 8: "structured reply", 9: "list meta context",
              10: "set meta context", 11: "extended headers"}


def _opt_name(opt: int) -> str:
    return _OPT_NAMES.get(opt, "<unknown>")
