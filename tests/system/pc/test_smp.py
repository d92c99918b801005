"""-smp N on the PC machine, under pyqemu-system-x86_64 and real
qemu-system-x86_64 side by side: SeaBIOS counts its CPUs by sending INIT/SIPI
to the APs and waiting for each to take its SMP lock (it printed nothing past
"PCI: No VGA devices found" under pyqemu until PAUSE yielded to the other
CPUs), and the multiboot test kernel's smp part starts every AP through a
real-mode trampoline and exchanges IPIs with it."""
from __future__ import annotations

import subprocess
import time

import pytest
from pcvm import PYQEMU

import mbguest


def _seabios_log(prog: str, smp: str, log) -> list:
    """SeaBIOS's debug log up to its CPU count line (the emulator is killed then)."""
    p = subprocess.Popen([prog, "-M", "pc", "-nodefaults", "-display", "none",
                          "-smp", smp, "-no-reboot",
                          "-chardev", "file,id=d,path=%s" % log,
                          "-device", "isa-debugcon,iobase=0x402,chardev=d"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    data = b""
    try:
        # generous: the machine may be heavily loaded; the count takes seconds
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and p.poll() is None:
            data = log.read_bytes() if log.exists() else b""
            if b"max supported" in data and data.endswith(b"\n"):
                break
            time.sleep(0.2)
    finally:
        p.kill()
        p.wait()
    return data.decode("latin-1").splitlines()


@pytest.mark.slow
@pytest.mark.parametrize("smp,ids,limit", [("2", [0, 1], 2), ("3", [0, 1, 2], 3),
                                           # 3 cores take 2 bits of the APIC ID
                                           ("6,sockets=2", [0, 1, 2, 4, 5, 6], 7)])
def test_seabios_counts_every_cpu(real_qemu, tmp_path, smp, ids, limit):
    real = _seabios_log(real_qemu, smp, tmp_path / "real.log")
    ours = _seabios_log(PYQEMU, smp, tmp_path / "ours.log")
    # "max supported" is fw_cfg's max CPUs: the APIC ID limit, not the count
    found = "Found %d cpu(s) max supported %d cpu(s)" % (len(ids), limit)
    assert found in real, real[-5:]
    assert found in ours, ours[-5:]
    # each AP ran SeaBIOS's handle_smp with its own APIC ID (in the order the
    # APs took the lock, which real QEMU does not fix), before the count
    aps = ["handle_smp: apic_id=0x%x" % i for i in ids[1:]]
    assert sorted(ln for ln in real if ln.startswith("handle_smp")) == aps
    assert sorted(ln for ln in ours if ln.startswith("handle_smp")) == aps
    assert ours.index(found) > max(ours.index(a) for a in aps)


@pytest.fixture(scope="module")
def kernel():
    return mbguest.build_kernel()


@pytest.mark.slow
@pytest.mark.parametrize("ncpus", [2, 4])
def test_multiboot_smp_part_as_real_qemu(real_qemu, kernel, ncpus):
    rc_real, real = mbguest.run(real_qemu, kernel, "tests=smp", ("-smp", str(ncpus)))
    rc, ours = mbguest.run(PYQEMU, kernel, "tests=smp", ("-smp", str(ncpus)))
    assert rc_real == 33, real
    assert (rc, ours) == (rc_real, real)
    p = mbguest.findings(ours)["smp"]
    assert p["cpus"] == ncpus
    # every AP ran the trampoline and read its own APIC ID; a fixed IPI reached
    # each AP and each answered the BSP
    assert p["started"] == ncpus - 1
    assert p["ap_mask"] == ((1 << ncpus) - 1) & ~1
    assert p["ipis_to_aps"] == ncpus - 1 and p["acks"] == ncpus - 1 and p["ipi_back"] == 1


@pytest.mark.slow
def test_every_part_with_two_cpus_as_real_qemu(real_qemu, kernel):
    # the started AP idles in HLT while the BSP runs the other parts (timers,
    # paging, exceptions, long mode): nothing may change for them ('mbi' is
    # left out: its memory map differs without QEMU's ACPI tables)
    parts = "tests=pm,paging4m,paging4k,pit,apic,exc,ring3,long,smp"
    real = mbguest.run(real_qemu, kernel, parts, ("-smp", "2"))
    ours = mbguest.run(PYQEMU, kernel, parts, ("-smp", "2"))
    assert real[0] == 33, real[1]
    assert ours == real


SMP_ARGS = ["0", "cpus=0,maxcpus=0", "2,maxcpus=1", "2,sockets=3", "4,dies=3", "2,clusters=2",
            "2,foo=1", "abc", "-1", "5000000000", "2,maxcpus=-1", "2,cores=-1", "300",
            "99999999999999999999999"]


def _smp_messages(prog: str, arg: str) -> tuple:
    # -S with a monitor on stdin: a machine that starts quits at once
    res = subprocess.run([prog, "-M", "pc", "-S", "-display", "none", "-nodefaults",
                          "-monitor", "stdio", "-smp", arg], input=b"quit\n",
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    name = prog.rsplit("/", 1)[-1]
    return res.returncode, res.stderr.decode().replace(name + ":", "PROG:")


@pytest.mark.parametrize("arg", SMP_ARGS)
def test_smp_option_messages_as_real_qemu(real_qemu, arg):
    # QEMU 7.2's -smp rules: a zero only warns (one CPU), negative and huge
    # values wrap to an unsigned int, dies count on x86, clusters do not
    real = _smp_messages(real_qemu, arg)
    ours = _smp_messages(PYQEMU, arg)
    assert real[1], real
    assert ours == real
