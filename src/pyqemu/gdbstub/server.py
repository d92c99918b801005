"""GDB remote stub: answers gdb's packets for one stopped CPU.

Target independent: registers come from an ``arch`` object (for x86,
``pyqemu.target.i386.gdbstub``) with ``registers(mode)``,
``get_register(cpu, n, mode)``, ``set_register(cpu, n, v, mode)`` and
``target_xml(mode)``; memory is a GuestMemory; breakpoints and single
stepping use ``cpu.breakpoints`` and ``cpu.single_step``.

The emulator calls :meth:`GdbStub.stopped` whenever the guest stops (start,
breakpoint, step, signal); it returns once gdb resumes, with the signal gdb
wants delivered (0 for none).  While the guest runs, a watcher thread turns
gdb's Ctrl-C into ``cpu.interrupt_request``.
"""
from __future__ import annotations

import select
import socket
import threading
from typing import List, Optional

from pyqemu.exec.guest_memory import PAGE_SIZE, PROT_READ, PROT_WRITE, GuestFault
from pyqemu.gdbstub.protocol import PacketReader, escape, frame

SIGINT = 2
SIGTRAP = 5


class GdbDisconnected(Exception):
    """gdb went away (or detached): the guest runs on without a debugger."""


class GdbKill(Exception):
    """gdb asked to kill the program."""


class GdbStub:
    def __init__(self, conn: socket.socket, cpu, mem, arch, mode: int, auxv: bytes = b"",
                 osabi: str = "", load_bias: Optional[int] = None) -> None:
        self.conn = conn
        self.cpu = cpu
        self.mem = mem
        self.arch = arch
        self.mode = mode
        self.auxv = auxv
        self.osabi = osabi
        self.load_bias = load_bias
        self.reader = PacketReader()
        self.pending: List = []
        self.ack = True
        self.nregs = len(arch.registers(mode))
        self.reg_bytes = [bits // 8 for _n, bits, _t, _f in arch.registers(mode)]
        self.interrupted = False
        self.running = threading.Event()
        self.closed = False
        self.watcher = threading.Thread(target=self._watch, daemon=True)
        self.watcher.start()

    # -- transport ------------------------------------------------------------
    def _recv_events(self) -> None:
        data = self.conn.recv(65536)
        if not data:
            raise GdbDisconnected()
        self.pending.extend(self.reader.feed(data))

    def _next_packet(self) -> bytes:
        while True:
            while not self.pending:
                self._recv_events()
            kind, payload = self.pending.pop(0)
            if kind == "packet":
                if self.ack:
                    self.conn.sendall(b"+")
                return payload
            if kind == "bad" and self.ack:
                self.conn.sendall(b"-")

    def send(self, payload: bytes) -> None:
        self.conn.sendall(frame(payload))
        if self.ack:
            # Wait for gdb's acknowledgement, resending on '-'.
            while True:
                while not self.pending:
                    self._recv_events()
                kind, _p = self.pending[0]
                if kind == "ack":
                    self.pending.pop(0)
                    return
                if kind == "nack":
                    self.pending.pop(0)
                    self.conn.sendall(frame(payload))
                    continue
                return  # a packet: gdb went on without acking

    def _watch(self) -> None:
        while not self.closed:
            if not self.running.wait(0.2):
                continue
            try:
                r, _w, _x = select.select([self.conn], [], [], 0.1)
                if not r or not self.running.is_set():
                    continue
                peek = self.conn.recv(1, socket.MSG_PEEK)
            except (OSError, ValueError):
                return
            if peek == b"\x03" and self.running.is_set():
                try:
                    self.conn.recv(1)
                except OSError:
                    return
                self.interrupted = True
                self.cpu.interrupt_request = True
            elif not peek:
                return
            else:
                self.running.wait(0.05)

    def close(self) -> None:
        self.closed = True
        self.running.set()
        try:
            self.conn.close()
        except OSError:
            pass

    # -- stop / resume -----------------------------------------------------------
    def stop_reply(self, sig: int) -> bytes:
        return b"T%02xthread:01;" % sig

    def stopped(self, sig: int, announce: bool = True) -> int:
        """The guest stopped with ``sig``: serve gdb until it resumes; returns the signal to deliver."""
        self.running.clear()
        self.cpu.single_step = False
        self.last_sig = sig
        if announce:
            self.send(self.stop_reply(sig))
        while True:
            pkt = self._next_packet()
            resume = self.handle(pkt)
            if resume is not None:
                self.running.set()
                return resume

    def exited(self, status: int) -> None:
        try:
            self.send(b"W%02x" % (status & 0xFF))
        except (OSError, GdbDisconnected):
            pass
        self.close()

    def killed_by(self, sig: int) -> None:
        try:
            self.send(b"X%02x" % (sig & 0xFF))
        except (OSError, GdbDisconnected):
            pass
        self.close()

    # -- packets -----------------------------------------------------------------
    def handle(self, pkt: bytes) -> Optional[int]:
        """Answer one packet; returns the signal to deliver when gdb resumes, else None."""
        cmd = pkt[:1]
        try:
            if cmd == b"?":
                self.send(self.stop_reply(getattr(self, "last_sig", SIGTRAP)))
            elif cmd == b"g":
                self.send(b"".join(self._reg_hex(i) for i in range(self.nregs)))
            elif cmd == b"G":
                self._write_all_regs(pkt[1:])
                self.send(b"OK")
            elif cmd == b"p":
                n = int(pkt[1:], 16)
                self.send(self._reg_hex(n) if n < self.nregs else b"E45")
            elif cmd == b"P":
                num, val = pkt[1:].split(b"=", 1)
                n = int(num, 16)
                if n >= self.nregs:
                    self.send(b"E45")
                else:
                    self.arch.set_register(self.cpu, n, int.from_bytes(bytes.fromhex(val.decode()), "little"),
                                           self.mode)
                    self.send(b"OK")
            elif cmd == b"m":
                addr, length = (int(x, 16) for x in pkt[1:].split(b","))
                data = self.read_memory(addr, min(length, 0x10000))
                self.send(data.hex().encode() if data is not None else b"E14")
            elif cmd == b"M":
                head, hexdata = pkt[1:].split(b":", 1)
                addr, _length = (int(x, 16) for x in head.split(b","))
                ok = self.write_memory(addr, bytes.fromhex(hexdata.decode()))
                self.send(b"OK" if ok else b"E14")
            elif cmd == b"X":
                head, data = pkt[1:].split(b":", 1)
                addr, length = (int(x, 16) for x in head.split(b","))
                ok = self.write_memory(addr, data[:length]) if length else True
                self.send(b"OK" if ok else b"E14")
            elif cmd in (b"Z", b"z"):
                return self._breakpoint(pkt)
            elif cmd in (b"c", b"s", b"C", b"S"):
                return self._resume_simple(pkt)
            elif pkt.startswith(b"vCont?"):
                self.send(b"vCont;c;C;s;S")
            elif pkt.startswith(b"vCont;"):
                return self._resume_vcont(pkt)
            elif pkt.startswith(b"qSupported"):
                self.send(b"PacketSize=4000;qXfer:features:read+;qXfer:auxv:read+;QStartNoAckMode+;"
                          b"vContSupported+")
            elif pkt == b"QStartNoAckMode":
                self.send(b"OK")
                self.ack = False
            elif pkt.startswith(b"qXfer:features:read:"):
                annex, rng = pkt[len(b"qXfer:features:read:"):].split(b":", 1)
                if annex != b"target.xml":
                    self.send(b"E00")
                else:
                    self._xfer(self.arch.target_xml(self.mode, self.osabi).encode(), rng)
            elif pkt.startswith(b"qXfer:auxv:read::"):
                self._xfer(self.auxv, pkt[len(b"qXfer:auxv:read::"):])
            elif pkt == b"qOffsets" and self.load_bias is not None:
                # Where the program was loaded (a PIE's bias), as gdb relocates symbols.
                self.send(b"Text=%x;Data=%x;Bss=%x" % ((self.load_bias,) * 3))
            elif pkt == b"qAttached":
                self.send(b"1")
            elif pkt == b"qC":
                self.send(b"QC01")
            elif pkt == b"qfThreadInfo":
                self.send(b"m01")
            elif pkt == b"qsThreadInfo":
                self.send(b"l")
            elif pkt.startswith(b"qSymbol"):
                self.send(b"OK")
            elif cmd == b"H" or cmd == b"T":
                self.send(b"OK")
            elif cmd == b"D":
                self.send(b"OK")
                self.cpu.breakpoints.clear()
                raise GdbDisconnected()
            elif cmd == b"k" or pkt.startswith(b"vKill"):
                raise GdbKill()
            else:
                self.send(b"")
        except (ValueError, IndexError):
            self.send(b"E22")
        return None

    def _reg_hex(self, n: int) -> bytes:
        size = self.reg_bytes[n]
        val = self.arch.get_register(self.cpu, n, self.mode) & ((1 << (size * 8)) - 1)
        return val.to_bytes(size, "little").hex().encode()

    def _write_all_regs(self, hexdata: bytes) -> None:
        raw = bytes.fromhex(hexdata.decode())
        pos = 0
        for n, size in enumerate(self.reg_bytes):
            if pos + size > len(raw):
                break
            self.arch.set_register(self.cpu, n, int.from_bytes(raw[pos:pos + size], "little"), self.mode)
            pos += size

    def _xfer(self, blob: bytes, rng: bytes) -> None:
        off, length = (int(x, 16) for x in rng.split(b","))
        chunk = blob[off:off + length]
        self.send((b"l" if off + length >= len(blob) else b"m") + escape(chunk))

    def _breakpoint(self, pkt: bytes) -> None:
        kind, addr, _size = pkt[1:].split(b",")[:3] if pkt.count(b",") >= 2 else (pkt[1:2], b"0", b"0")
        if kind not in (b"0", b"1"):
            self.send(b"")  # watchpoints are not supported
            return None
        a = int(addr, 16)
        if pkt[:1] == b"Z":
            self.cpu.breakpoints.add(a)
        else:
            self.cpu.breakpoints.discard(a)
        self.send(b"OK")
        return None

    def _resume(self, step: bool, addr: Optional[int], sig: int) -> int:
        if addr is not None:
            self.cpu.rip = addr
        self.cpu.single_step = step
        # Continuing from a breakpoint address must not stop there again at once.
        self.cpu._bp_resume = True
        return sig

    def _resume_simple(self, pkt: bytes) -> int:
        cmd, rest = pkt[:1], pkt[1:]
        sig = 0
        if cmd in (b"C", b"S"):
            sigtxt, _sep, rest = rest.partition(b";")
            sig = int(sigtxt, 16)
        addr = int(rest, 16) if rest else None
        return self._resume(cmd in (b"s", b"S"), addr, sig)

    def _resume_vcont(self, pkt: bytes) -> int:
        action = pkt[len(b"vCont;"):].split(b";")[0].split(b":")[0]
        kind = action[:1]
        sig = int(action[1:], 16) if kind in (b"C", b"S") and len(action) > 1 else 0
        if kind not in (b"c", b"s", b"C", b"S"):
            self.send(b"")
            return None
        return self._resume(kind in (b"s", b"S"), None, sig)

    # -- memory (debugger accesses ignore page protections) -----------------------
    def read_memory(self, addr: int, length: int) -> Optional[bytes]:
        out = bytearray()
        pages = self.mem.pages
        while length > 0:
            off = addr % PAGE_SIZE
            n = min(length, PAGE_SIZE - off)
            view = pages.get(addr // PAGE_SIZE)
            if view is None:
                return bytes(out) if out else None
            out += view[off:off + n].tobytes()
            addr += n
            length -= n
        return bytes(out)

    def write_memory(self, addr: int, data: bytes) -> bool:
        mem = self.mem
        if not mem.is_mapped(addr, max(1, len(data))):
            return False
        try:
            mem.write(addr, data)
            return True
        except GuestFault:
            pass
        first = addr // PAGE_SIZE * PAGE_SIZE
        saved = [(a, mem.get_prot(a)) for a in range(first, addr + len(data), PAGE_SIZE)]
        for a, p in saved:
            mem.protect(a, PAGE_SIZE, (p or 0) | PROT_READ | PROT_WRITE)
        try:
            mem.write(addr, data)
        finally:
            for a, p in saved:
                mem.protect(a, PAGE_SIZE, p or 0)
        return True
