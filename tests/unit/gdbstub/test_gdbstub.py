"""GDB remote protocol framing and the stub's answers, over a socket pair."""
import socket
import threading
import xml.etree.ElementTree as ET

import pytest

from pyqemu.exec.guest_memory import PROT_EXEC, PROT_READ, PROT_WRITE, GuestMemory
from pyqemu.gdbstub.protocol import PacketReader, checksum, escape, frame, unescape
from pyqemu.gdbstub.server import GdbStub
from pyqemu.target.i386 import gdbstub as x86_gdb


def test_framing_and_escapes():
    assert frame(b"OK") == b"$OK#9a"
    assert checksum(b"qSupported") == 0x37
    data = bytes(range(256))
    assert unescape(escape(data)) == data
    assert b"#" not in escape(b"a#b$c}d*")
    r = PacketReader()
    ev = r.feed(b"+-\x03" + frame(b"m10,4") + b"$bad#00" + frame(escape(b"X0,1:#")))
    assert ev == [("ack", None), ("nack", None), ("interrupt", None), ("packet", b"m10,4"),
                  ("bad", None), ("packet", b"X0,1:#")]
    # Split anywhere: the same packets come out.
    stream = frame(b"qSupported:xmlRegisters=i386") + frame(b"g")
    r = PacketReader()
    out = []
    for i in range(len(stream)):
        out += r.feed(stream[i:i + 1])
    assert out == [("packet", b"qSupported:xmlRegisters=i386"), ("packet", b"g")]


class Cpu:
    """A register file with the attributes the stub reads."""

    def __init__(self):
        self.regs = list(range(100, 116))
        self.rip = 0x401000
        self.eflags = 0x246
        self.fs_base = 0x1234
        self.gs_base = 0
        self.segs = [0x2B, 0x33, 0x2B, 0x2B, 0, 0]
        self.fpregs = [0] * 8
        self.fpstt = 0
        self.xmm = [0] * 16
        self.mxcsr = 0x1F80
        self.breakpoints = set()
        self.single_step = False
        self.interrupt_request = False

    def get_eflags(self):
        return self.eflags

    def set_eflags(self, v):
        self.eflags = v

    def get_xmm(self, i):
        return self.xmm[i]

    def set_xmm(self, i, v):
        self.xmm[i] = v


class Client:
    def __init__(self, sock):
        self.sock = sock
        self.reader = PacketReader()
        self.events = []

    def cmd(self, payload):
        self.sock.sendall(frame(payload))
        while True:
            while not self.events:
                self.events += self.reader.feed(self.sock.recv(65536))
            kind, p = self.events.pop(0)
            if kind == "packet":
                self.sock.sendall(b"+")
                return p


@pytest.fixture
def stub():
    a, b = socket.socketpair()
    mem = GuestMemory()
    mem.map(0x401000, 0x1000, PROT_READ | PROT_EXEC, data=b"\x90\xcc\xc3")
    mem.map(0x600000, 0x1000, PROT_READ | PROT_WRITE)
    cpu = Cpu()
    s = GdbStub(a, cpu, mem, x86_gdb, 64, auxv=b"\x06\0\0\0\0\0\0\0\x00\x10\0\0\0\0\0\0" + bytes(16))
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("sig", s.stopped(5, announce=False)))
    t.start()
    yield Client(b), cpu, mem, t, result
    b.close()
    t.join(5)
    s.close()


def test_session(stub):
    c, cpu, mem, t, result = stub
    assert b"qXfer:features:read+" in c.cmd(b"qSupported:multiprocess+;xmlRegisters=i386")
    assert c.cmd(b"?") == b"T05thread:01;"
    xml = b""
    off = 0
    while True:
        part = c.cmd(b"qXfer:features:read:target.xml:%x,200" % off)
        xml += unescape(part[1:])
        off += len(unescape(part[1:]))
        if part[:1] == b"l":
            break
    root = ET.fromstring(xml)
    assert root.find("architecture").text == "i386:x86-64"
    names = [r.get("name") for r in root.iter("reg")]
    assert names[:3] == ["rax", "rbx", "rcx"] and names[16] == "rip" and "xmm15" in names
    g = bytes.fromhex(c.cmd(b"g").decode())
    sizes = [int(r.get("bitsize")) // 8 for r in root.iter("reg")]
    assert len(g) == sum(sizes)
    assert int.from_bytes(g[0:8], "little") == 100          # rax
    assert int.from_bytes(g[8:16], "little") == 103         # rbx is regs[3]
    assert int.from_bytes(g[128:136], "little") == 0x401000  # rip
    assert c.cmd(b"p10") == (0x401000).to_bytes(8, "little").hex().encode()
    assert c.cmd(b"P0=efbeadde00000000") == b"OK" and cpu.regs[0] == 0xDEADBEEF
    assert c.cmd(b"m401000,3") == b"90ccc3"
    assert c.cmd(b"m0,4").startswith(b"E")
    # The debugger may write to read-only code; protections stay as they were.
    assert c.cmd(b"M401000,1:cc") == b"OK" and mem.read(0x401000, 1) == b"\xcc"
    assert mem.get_prot(0x401000) == PROT_READ | PROT_EXEC
    assert c.cmd(b"qXfer:auxv:read::0,100")[:1] == b"l"
    assert c.cmd(b"Z0,401002,1") == b"OK" and cpu.breakpoints == {0x401002}
    assert c.cmd(b"Z2,600000,4") == b""  # watchpoints: not supported
    assert c.cmd(b"vCont?") == b"vCont;c;C;s;S"
    assert c.cmd(b"qXYZunknown") == b""
    c.sock.sendall(frame(b"vCont;s:1"))
    t.join(5)
    assert result["sig"] == 0 and cpu.single_step


def test_continue_with_signal(stub):
    c, cpu, mem, t, result = stub
    c.sock.sendall(frame(b"C0b"))
    t.join(5)
    assert result["sig"] == 11 and not cpu.single_step


def test_i386_layout():
    regs = x86_gdb.registers(32)
    assert [r[0] for r in regs[:9]] == ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eip"]
    root = ET.fromstring(x86_gdb.target_xml(32))
    assert root.find("architecture").text == "i386"


def test_ctrl_c_while_running_interrupts_the_cpu(stub):
    import time

    c, cpu, mem, t, result = stub
    c.sock.sendall(frame(b"c"))
    t.join(5)
    assert result["sig"] == 0
    c.sock.sendall(b"\x03")
    deadline = time.monotonic() + 5
    while not cpu.interrupt_request and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cpu.interrupt_request
