"""pyqemu-x86_64/i386 command line against real qemu-x86_64/qemu-i386 (no guest code runs)."""
import os
import re
import shutil
import subprocess
import sys

import pytest

BIN = os.path.dirname(sys.executable)
TOOLS = [("x86_64", os.path.join(BIN, "pyqemu-x86_64"), "qemu-x86_64"),
         ("i386", os.path.join(BIN, "pyqemu-i386"), "qemu-i386")]


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)


def norm(text):
    return re.sub(r"^(py)?qemu(-x86_64|-i386)?:", "PROG:", text, flags=re.M)


@pytest.fixture(autouse=True)
def _need_qemu():
    assert shutil.which("qemu-x86_64"), "qemu-user must be installed (make peer-tools)"


@pytest.mark.parametrize("arch,ours,theirs", TOOLS)
def test_help_matches_except_unsupported_options(arch, ours, theirs):
    a = run([ours, "-h"])
    b = run([theirs, "-h"])
    assert a.returncode == b.returncode == 0
    want = [ln.replace(theirs, "py" + theirs) for ln in b.stdout.splitlines()
            if not ln.startswith(("-trace", "-plugin"))]
    assert a.stdout.splitlines() == want


@pytest.mark.parametrize("args", [[], ["-foo"], ["-L"], ["-cpu"], ["--nosuch", "x"]])
def test_usage_errors(args):
    a = run([TOOLS[0][1]] + args)
    b = run([TOOLS[0][2]] + args)
    assert a.returncode == b.returncode == 1
    assert norm(a.stderr) == norm(b.stderr)
    assert "Traceback" not in a.stderr


def test_bad_stack_size_prints_usage_and_fails():
    a = run([TOOLS[0][1], "-s", "abc", "/bin/true"])
    b = run([TOOLS[0][2], "-s", "abc", "/bin/true"])
    assert a.returncode == b.returncode == 1
    assert a.stdout.startswith("usage: pyqemu-x86_64") and b.stdout.startswith("usage: qemu-x86_64")


def test_version_and_d_help():
    a = run([TOOLS[0][1], "-version"])
    assert a.returncode == 0 and re.match(r"pyqemu-x86_64 version 7\.2", a.stdout)
    assert "Fabrice Bellard" in a.stdout


def test_wrong_architecture_elf(tmp_path):
    # A 64-bit program under the i386 emulator: both reject it the same way.
    a = run([TOOLS[1][1], "/bin/true"])
    b = run([TOOLS[1][2], "/bin/true"])
    assert a.returncode == b.returncode == 255
    assert norm(a.stderr) == norm(b.stderr)


@pytest.mark.parametrize("content,mode", [(b"garbage", 0o755), (b"#!/bin/sh\n", 0o755),
                                          (b"\x7fELF\x02\x01\x01", 0o755), (b"", 0o644)])
def test_unloadable_programs(tmp_path, content, mode):
    p = tmp_path / "prog"
    p.write_bytes(content)
    os.chmod(p, mode)
    a = run([TOOLS[0][1], str(p)])
    b = run([TOOLS[0][2], str(p)])
    assert a.returncode == b.returncode == 1
    # qemu writes this message with printf and _exit(), so it is lost when
    # stdout is a pipe; through a terminal (script) it can be compared.
    c = run(["script", "-qec", "%s %s" % (TOOLS[0][2], p), "/dev/null"])
    assert a.stdout.strip() == c.stdout.strip()
    assert a.stdout.startswith("Error while loading %s: " % p)


def test_missing_program(tmp_path):
    a = run([TOOLS[0][1], str(tmp_path / "nope")])
    assert a.returncode == 1
    assert a.stdout == "Error while loading %s: No such file or directory\n" % (tmp_path / "nope")


@pytest.fixture(scope="module")
def static_progs(tmp_path_factory):
    d = tmp_path_factory.mktemp("rb")
    (d / "t.c").write_text("#include <stdio.h>\n#include <sys/mman.h>\n"
                           "int main(void) { void *p = mmap(0, 1 << 30, PROT_NONE, "
                           "MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);\n"
                           "  puts(p == MAP_FAILED ? \"1G mmap failed\" : \"1G mmap ok\"); return 0; }\n")
    out = {}
    for bits in (64, 32):
        exe = d / ("t%d" % bits)
        subprocess.run(["gcc", "-m%d" % bits, "-static", "-O1", "-o", str(exe), str(d / "t.c")],
                       check=True)
        out[bits] = str(exe)
    return out


@pytest.mark.parametrize("arch,args", [
    ("x86_64", ["-R", "0x10000000"]), ("x86_64", ["-R", "16M"]), ("x86_64", ["-R", "abc"]),
    ("x86_64", ["-R", "1m"]), ("x86_64", ["-R", "0"]), ("x86_64", ["-B", "12345"]),
    ("x86_64", ["-B", "abc"]), ("x86_64", ["-B", "0x1000"]), ("x86_64", ["-p", "3000"]),
    ("x86_64", ["-p", "4096x"]), ("x86_64", ["-R", "0x10000000", "-B", "0x1000"]),
    ("x86_64", ["-B", "0x10000000000000"]),
    ("i386", ["-R", "8G"]), ("i386", ["-R", "0xfffff001"]), ("i386", ["-R", "0xfffff000"]),
    ("i386", ["-R", "64k"]), ("i386", ["-R", "0x20000000"]), ("i386", ["-R", "-1"])])
def test_reserved_va_guest_base_page_size(static_progs, arch, args):
    """-R, -B and -p: the same messages, exit status and (where the program runs,
    e.g. i386 in a 512 MiB reserved space where a 1 GiB mmap fails) output."""
    _, ours, theirs = TOOLS[0] if arch == "x86_64" else TOOLS[1]
    prog = static_progs[64 if arch == "x86_64" else 32]
    a = run([ours] + args + [prog])
    b = run([theirs] + args + [prog])
    assert (a.returncode, a.stdout, norm(a.stderr)) == (b.returncode, b.stdout, norm(b.stderr))


@pytest.mark.parametrize("arch,cpu", [
    ("x86_64", "qemu64"), ("x86_64", "qemu32"), ("x86_64", "Haswell"), ("x86_64", "max"),
    ("x86_64", "qemu64,-sse2"), ("x86_64", "nope"), ("x86_64", "Haswell,+nosuch"),
    ("x86_64", "help"), ("i386", "pentium3"), ("i386", "help")])
def test_cpu_models(static_progs, arch, cpu):
    """-cpu with QEMU's model table: same messages, exit status, output."""
    _, ours, theirs = TOOLS[0] if arch == "x86_64" else TOOLS[1]
    prog = static_progs[64 if arch == "x86_64" else 32]
    a = run([ours, "-cpu", cpu, prog])
    b = run([theirs, "-cpu", cpu, prog])
    assert (a.returncode, a.stdout, norm(a.stderr)) == (b.returncode, b.stdout, norm(b.stderr))
