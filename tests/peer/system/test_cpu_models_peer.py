"""x86 CPU models beside real QEMU 7.2: ``-cpu help``, the CPUID a guest reads,
and the warnings and errors of ``-cpu`` option strings."""
import os
import shutil
import subprocess
import sys

import pytest

from pyqemu.target.i386 import cpu_models as cm

QEMU = shutil.which("qemu-system-x86_64")
QEMU_USER = shutil.which("qemu-x86_64")
GCC = shutil.which("gcc")
PYQEMU = os.path.join(os.path.dirname(sys.executable), "pyqemu-system-x86_64")


def test_reference_tools_are_installed():
    # Peer tests must not pass by being skipped: a missing tool is an error.
    assert QEMU and QEMU_USER and GCC, "qemu-system-x86, qemu-user and gcc are needed"


@pytest.mark.parametrize("target, spelling", [("x86_64", "help"), ("i386", "help"), ("x86_64", "?")])
def test_cpu_help_is_byte_identical(target, spelling):
    ours = subprocess.run([PYQEMU.replace("x86_64", target), "-cpu", spelling], capture_output=True,
                          timeout=120)
    theirs = subprocess.run([QEMU.replace("x86_64", target), "-cpu", spelling], capture_output=True,
                            timeout=60)
    assert ours.returncode == theirs.returncode == 0
    assert ours.stdout == theirs.stdout


def test_user_mode_cpu_help_text_matches_qemu_x86_64():
    theirs = subprocess.run([QEMU_USER, "-cpu", "help"], capture_output=True, timeout=60, text=True)
    assert cm.cpu_help_text(system=False) == theirs.stdout


DUMPER = r"""
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        char *end;
        unsigned leaf = strtoul(argv[i], &end, 16), sub = *end ? strtoul(end + 1, 0, 16) : 0, a, b, c, d;
        __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(leaf), "c"(sub));
        printf("%08x.%x: %08x %08x %08x %08x\n", leaf, sub, a, b, c, d);
    }
    return 0;
}
"""

LEAVES = ["0", "1", "2", "4.0", "4.1", "4.2", "4.3", "4.4", "5", "6", "7.0", "7.1", "7.2", "a", "b.0",
          "b.1", "b.2", "d.0", "d.1", "e", "40000000", "40000001", "40000002", "80000000", "80000001",
          "80000002", "80000003", "80000004", "80000005", "80000006", "80000007", "80000008",
          "80000009", "8000000a", "8000001d.0", "8000001d.3", "8000001e", "c0000000", "c0000001"]


@pytest.fixture(scope="module")
def dumpers(tmp_path_factory):
    d = tmp_path_factory.mktemp("cpuid")
    (d / "cpuid.c").write_text(DUMPER)
    for bits, name in (("-m64", "cpuid64"), ("-m32", "cpuid32")):
        subprocess.run([GCC, bits, "-O1", "-static", "-o", str(d / name), str(d / "cpuid.c")],
                       check=True, timeout=120)
    return d


def _expected(cpu):
    out = []
    for spec in LEAVES:
        leaf, _, sub = spec.partition(".")
        regs = cpu.cpuid(int(leaf, 16), int(sub or "0", 16))
        out.append("%08x.%x: %08x %08x %08x %08x" % ((int(leaf, 16), int(sub or "0", 16)) + tuple(regs)))
    return out


# 486, pentium and base have no CPUID / CMOV the static dumper needs
RUNNABLE = [n for n in cm.model_names() if not n.startswith(("486", "pentium-", "base"))
            and n != "pentium"]


@pytest.mark.slow
def test_cpuid_of_every_model_matches_qemu_tcg(dumpers):
    """pyqemu's CPU equals QEMU's TCG CPU of the same model with the features
    pyqemu does not implement switched off: same leaves, same warnings."""
    failures = []
    for name in RUNNABLE:
        warnings = []
        cpu = cm.resolve(name, warnings.append)
        base = cm._lookup(name)
        model_feats = cm.QEMU_TCG_FEATURES if name == "max" else base.features
        drop = sorted(f for f in model_feats if f in cm.QEMU_TCG_FEATURES and f not in cm.PYQEMU_FEATURES)
        option = name + "".join(",-" + f for f in drop)
        if name == "max":
            option += ",xlevel=0x80000008"      # see cpu_models._MAX
        lm = "lm" in base.features or name == "max"
        prog = [QEMU_USER, "-cpu", option, str(dumpers / ("cpuid64" if lm else "cpuid32"))] + LEAVES
        if not lm:
            prog[0] = shutil.which("qemu-i386")
        r = subprocess.run(prog, capture_output=True, text=True, timeout=60)
        theirs_warn = [line.split("warning: ", 1)[1] for line in r.stderr.splitlines() if "warning: " in line]
        if "svm" in drop:
            # '-svm' makes QEMU clear the SVM leaf quietly; pyqemu, like plain QEMU
            # (test_cpu_option_messages_match), reports the bits QEMU's TCG lacks there
            warnings = [w for w in warnings if "CPUID.8000000AH:" not in w]
        if r.stdout.splitlines() != _expected(cpu) or theirs_warn != warnings:
            failures.append((name, r.stderr[-300:]))
    assert failures == []


@pytest.mark.slow
@pytest.mark.parametrize("option", ["Haswell,l3-cache=off", "EPYC,l3-cache=off", "qemu64,pmu=on",
                                    "qemu64,phys-bits=40", "qemu64,kvm=off"])
def test_cpu_properties_in_cpuid_match_qemu_tcg(dumpers, option):
    warnings = []
    cpu = cm.resolve(option, warnings.append)
    name = option.split(",")[0]
    drop = sorted(f for f in cm._lookup(name).features
                  if f in cm.QEMU_TCG_FEATURES and f not in cm.PYQEMU_FEATURES)
    r = subprocess.run([QEMU_USER, "-cpu", option + "".join(",-" + f for f in drop),
                        str(dumpers / "cpuid64")] + LEAVES, capture_output=True, text=True, timeout=60)
    assert r.stdout.splitlines() == _expected(cpu)


def _run_system(prog, cpu_option, smp="1"):
    p = subprocess.run([prog, "-M", "pc", "-smp", smp, "-cpu", cpu_option, "-S", "-display", "none",
                        "-nodefaults", "-qmp", "stdio"],
                       input=b'{"execute": "qmp_capabilities"}\n{"execute": "quit"}\n',
                       capture_output=True, timeout=120)
    name = os.path.basename(prog).encode()
    return p.returncode, p.stderr.replace(name + b":", b"EMU:")


@pytest.mark.slow
@pytest.mark.parametrize("option, smp", [
    ("qemu64", "1"), ("nosuch", "1"), ("qemu64,+vmx,+sgx", "2"), ("qemu64,+foo", "1"),
    ("qemu64,foo=on", "1"), ("qemu64,vmx=bad", "1"), ("qemu64,enforce,+vmx", "1"),
    ("qemu64,family=x", "1"), ("host", "1"), ("Haswell,-vmx,vmx=on", "2"),
    ("Cascadelake-Server-v5", "1"), ("EPYC", "1"), ("qemu64,+vmx-ept,+kvmclock", "1"),
    ("qemu64,+vmx,-vmx", "1"), ("Opteron_G5", "1"), ("qemu64,check=off,+vmx", "1"),
    ("qemu64,phys-bits=20", "1"), ("qemu64,pmu=x", "1"), ("qemu64,migratable=on", "1"),
    ("max,migratable=off", "1"),
])
def test_cpu_option_messages_match(option, smp):
    assert _run_system(PYQEMU, option, smp) == _run_system(QEMU, option, smp)


@pytest.mark.slow
def test_none_machine_refuses_a_cpu_like_qemu():
    def run(prog):
        p = subprocess.run([prog, "-M", "none", "-cpu", "qemu64", "-display", "none", "-nodefaults"],
                           capture_output=True, timeout=120)
        return p.returncode, p.stderr.replace(os.path.basename(prog).encode() + b":", b"EMU:")
    assert run(PYQEMU) == run(QEMU)


@pytest.mark.slow
@pytest.mark.parametrize("option", ["qemu64", "qemu64,+foo", "max", "Haswell", "qemu64,+lm"])
def test_i386_target_messages_match(option):
    ours = _run_system(PYQEMU.replace("x86_64", "i386"), option)
    theirs = _run_system(shutil.which("qemu-system-i386"), option)
    assert ours == theirs
