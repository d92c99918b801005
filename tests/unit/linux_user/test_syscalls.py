"""The syscall layer against a real GuestMemory and the host kernel."""
import errno
import os
import struct

import pytest

from pyqemu.exec.guest_memory import PROT_READ, PROT_WRITE, GuestMemory
from pyqemu.linux_user.mm import AddressSpace
from pyqemu.linux_user.strace import Strace
from pyqemu.linux_user.syscall_nr import I386_NUMBERS, X86_64_NUMBERS
from pyqemu.linux_user.syscalls import GuestExit, Process, Syscalls

BUF = 0x10000


class Regs:
    """The register file the dispatcher reads (x86 encoding order)."""

    def __init__(self):
        self.regs = [0] * 16
        self.fs_base = 0
        self.gs_base = 0


def _setup(bits=64, strace_lines=None):
    mem = GuestMemory()
    mem.map(BUF, 0x10000, PROT_READ | PROT_WRITE)
    top = 1 << 47 if bits == 64 else 1 << 32
    aspace = AddressSpace(mem, bits, 0x400000, 0x7F0000000000 if bits == 64 else 0x40000000, top - (1 << 24))
    mem.map(0x3FF000, 0x1000, PROT_READ | PROT_WRITE)
    tracer = Strace(mem, bits, write=strace_lines.append, pid=lambda: 42) if strace_lines is not None else None
    return mem, Syscalls(Process(mem, bits, aspace, "/bin/true"), tracer)


def call(sc, name, *args):
    cpu = Regs()
    nums = X86_64_NUMBERS if sc.bits == 64 else I386_NUMBERS
    cpu.regs[0] = nums[name]
    regs = (7, 6, 2, 10, 8, 9) if sc.bits == 64 else (3, 1, 2, 6, 7, 5)
    for i, a in zip(regs, args):
        cpu.regs[i] = a & sc.mask
    sc.dispatch(cpu)
    return sc.s(cpu.regs[0]), cpu


@pytest.mark.parametrize("bits", [64, 32])
def test_file_io_roundtrip(tmp_path, bits):
    mem, sc = _setup(bits)
    path = str(tmp_path / "f").encode() + b"\0"
    mem.write(BUF, path)
    name = "open"
    fd, _ = call(sc, name, BUF, os.O_CREAT | os.O_WRONLY, 0o644)
    assert fd >= 0
    mem.write(BUF + 0x100, b"hello world")
    assert call(sc, "write", fd, BUF + 0x100, 11)[0] == 11
    assert call(sc, "close", fd)[0] == 0
    assert (tmp_path / "f").read_bytes() == b"hello world"
    fd, _ = call(sc, "openat", -100, BUF, os.O_RDONLY, 0)
    assert call(sc, "read", fd, BUF + 0x200, 100)[0] == 11
    assert mem.read(BUF + 0x200, 11) == b"hello world"
    st = "fstat" if bits == 64 else "fstat64"
    assert call(sc, st, fd, BUF + 0x400)[0] == 0
    if bits == 64:
        size = struct.unpack_from("<q", mem.read(BUF + 0x400, 144), 48)[0]
        mode = struct.unpack_from("<I", mem.read(BUF + 0x400, 144), 24)[0]
    else:
        size = struct.unpack_from("<q", mem.read(BUF + 0x400, 96), 44)[0]
        mode = struct.unpack_from("<I", mem.read(BUF + 0x400, 96), 16)[0]
    assert size == 11 and mode & 0o777 == 0o644
    call(sc, "close", fd)
    # Errors come back as -errno, bad pointers as -EFAULT.
    assert call(sc, "close", 999)[0] == -errno.EBADF
    assert call(sc, "write", 1, 0xDEAD0000, 4)[0] == -errno.EFAULT
    mem.write(BUF, str(tmp_path / "missing").encode() + b"\0")
    assert call(sc, "open", BUF, 0, 0)[0] == -errno.ENOENT


def test_unknown_syscall_is_enosys_and_straced():
    lines = []
    mem, sc = _setup(64, lines)
    assert call(sc, "kexec_load", 0, 0, 0)[0] == -errno.ENOSYS
    assert lines == ["42 Unknown syscall %d\n" % X86_64_NUMBERS["kexec_load"]]
    cpu = Regs()
    cpu.regs[0] = 5000
    sc.dispatch(cpu)
    assert sc.s(cpu.regs[0]) == -errno.ENOSYS


def test_strace_format(tmp_path):
    lines = []
    mem, sc = _setup(64, lines)
    missing = str(tmp_path / "missing")
    mem.write(BUF, missing.encode() + b"\0")
    call(sc, "openat", -100, BUF, 0, 0)
    call(sc, "close", 99)
    call(sc, "brk", 0)
    assert lines == [
        '42 openat(-100,"%s",O_RDONLY)' % missing, " = -1 errno=2 (No such file or directory)\n",
        "42 close(99)", " = -1 errno=9 (Bad file descriptor)\n",
        "42 brk(NULL)", " = 0x0000000000400000\n",
    ]
    lines.clear()
    with pytest.raises(GuestExit) as ei:
        call(sc, "exit_group", 3)
    assert ei.value.status == 3 and lines == ["42 exit_group(3)\n"]


def test_brk_and_mmap():
    mem, sc = _setup(64)
    assert call(sc, "brk", 0)[0] == 0x400000
    assert call(sc, "brk", 0x402345)[0] == 0x402345
    mem.write_u64(0x402000, 7)
    assert call(sc, "brk", 0x100)[0] == 0x402345  # below the start: unchanged
    assert call(sc, "brk", 0x400000)[0] == 0x400000 and not mem.is_mapped(0x400000, 1)
    a, _ = call(sc, "mmap", 0, 10000, PROT_READ | PROT_WRITE, 0x22, -1, 0)
    assert a > 0 and a % 4096 == 0 and mem.read(a, 10000) == bytes(10000)
    assert call(sc, "mprotect", a, 4096, PROT_READ)[0] == 0
    assert mem.get_prot(a) == PROT_READ
    assert call(sc, "munmap", a, 10000)[0] == 0 and not mem.is_mapped(a, 1)
    assert call(sc, "mmap", 0, 4096, 3, 0x22, -1, 1)[0] == -errno.EINVAL
    assert call(sc, "mmap", 0, 0, 3, 0x22, -1, 0)[0] == -errno.EINVAL


def test_mmap_file_and_mremap(tmp_path):
    mem, sc = _setup(64)
    f = tmp_path / "data"
    f.write_bytes(b"A" * 5000 + b"B" * 100)
    fd = os.open(f, os.O_RDONLY)
    try:
        a, _ = call(sc, "mmap", 0, 8192, PROT_READ, 2, fd, 4096)
        assert mem.read(a, 1004) == b"A" * 904 + b"B" * 100
        assert mem.read(a + 1004, 10) == bytes(10)
    finally:
        os.close(fd)
    b, _ = call(sc, "mmap", 0, 4096, 3, 0x22, -1, 0)
    mem.write(b, b"xyz")
    c, _ = call(sc, "mremap", b, 4096, 3 * 4096, 1, 0)
    assert c > 0 and mem.read(c, 3) == b"xyz" and mem.is_mapped(c, 3 * 4096)


def test_i386_mmap2_and_old_mmap():
    mem, sc = _setup(32)
    a, _ = call(sc, "mmap2", 0, 8192, 3, 0x22, -1, 0)
    assert 0 < a < 1 << 32
    mem.write(BUF, struct.pack("<6I", 0, 4096, 3, 0x22, 0xFFFFFFFF, 0))
    b, _ = call(sc, "mmap", BUF)
    assert 0 < b < 1 << 32 and b != a


def test_uname_arch_prctl_readlink():
    mem, sc = _setup(64)
    assert call(sc, "uname", BUF)[0] == 0
    assert mem.read(BUF + 65 * 4, 65).rstrip(b"\0") == b"x86_64"
    r, cpu = call(sc, "arch_prctl", 0x1002, 0x12345678)
    assert r == 0 and cpu.fs_base == 0x12345678
    mem.write(BUF, b"/proc/self/exe\0")
    n, _ = call(sc, "readlink", BUF, BUF + 0x100, 4096)
    assert mem.read(BUF + 0x100, n) == b"/bin/true"
    _mem32, sc32 = _setup(32)
    call(sc32, "uname", BUF)
    assert _mem32.read(BUF + 65 * 4, 65).rstrip(b"\0") == b"i686"


def test_pipe_and_writev():
    mem, sc = _setup(64)
    assert call(sc, "pipe2", BUF, 0)[0] == 0
    r, w = struct.unpack("<ii", mem.read(BUF, 8))
    try:
        mem.write(BUF + 0x100, b"abcdef")
        mem.write(BUF + 0x200, struct.pack("<QQQQ", BUF + 0x100, 3, BUF + 0x103, 3))
        assert call(sc, "writev", w, BUF + 0x200, 2)[0] == 6
        assert os.read(r, 10) == b"abcdef"
    finally:
        os.close(r)
        os.close(w)


def test_hostile_arguments_give_errors_not_exceptions():
    mem, sc = _setup(64)
    huge = (1 << 64) - 1
    for name, args in [("read", (0, huge, huge)), ("write", (1, 0, huge)), ("mmap", (huge, huge, 7, 0x32, -1, 0)),
                       ("munmap", (huge, huge)), ("mprotect", (huge & ~4095, 4096, 7)),
                       ("mremap", (BUF, 4096, huge, 1, 0)), ("readv", (0, BUF, 100000)),
                       ("poll", (BUF, huge, 0)), ("select", (huge, 0, 0, 0, 0)),
                       ("epoll_wait", (0, BUF, huge, 0)), ("getdents64", (0, BUF, huge)),
                       ("rt_sigaction", (99, 0, 0, 8)), ("futex", (huge, 0, 0, 0, 0, 0)),
                       ("execve", (0, 0, 0)), ("clock_nanosleep", (0, 0, huge, 0))]:
        r, _ = call(sc, name, *args)
        assert -4096 < r < 0, name
