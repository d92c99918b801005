"""``-icount``: guest time counted in instructions.  Option errors as real
qemu-system-x86_64 words them; the multiboot test kernel's timer parts (PIT
and local APIC interrupts waited for with HLT) under -icount print the same
text as under real QEMU; and a run under -icount is repeatable: the same
interrupts at the same guest instructions."""
from __future__ import annotations

import shutil
import subprocess

import pytest
from pcvm import PYQEMU

import mbguest

QEMU = shutil.which("qemu-system-x86_64")


def qemu() -> str:
    if QEMU is None:
        pytest.fail("qemu-system-x86_64 (Debian qemu-system-x86) is needed for this test")
    return QEMU


@pytest.fixture(scope="module")
def kernel():
    return mbguest.build_kernel()


@pytest.mark.parametrize("arg", ["shift=11", "shift=x", "shift=-1", "align=on",
                                 "shift=3,align=on,sleep=off", "foo=1", "sleep=maybe",
                                 "shift=3,rr=record"])
def test_option_errors_as_qemu(arg):
    cmd = ["-icount", arg, "-M", "none", "-display", "none", "-monitor", "none"]
    theirs = subprocess.run([qemu()] + cmd, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    ours = subprocess.run([PYQEMU] + cmd, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert theirs.returncode == 1 and ours.returncode == 1
    assert ours.stderr.replace("pyqemu-system-x86_64", "qemu-system-x86_64") == theirs.stderr


@pytest.mark.parametrize("icount", ["shift=0,sleep=off", "shift=7", "shift=auto"])
def test_timer_parts_under_icount_match_qemu(kernel, icount):
    args = ("-icount", icount)
    q_rc, q_text = mbguest.run(qemu(), kernel, "tests=pit,apic", args)
    p_rc, p_text = mbguest.run(PYQEMU, kernel, "tests=pit,apic", args)
    parts = mbguest.findings(p_text)
    assert parts["pit"]["ticks"] == 1 and parts["apic"]
    assert p_text == q_text
    assert p_rc == q_rc


def test_runs_under_icount_are_repeatable(kernel, tmp_path):
    logs = []
    for i in range(2):
        log = tmp_path / ("int%d.log" % i)
        rc, text = mbguest.run(PYQEMU, kernel, "tests=pit,apic,exc exit=5",
                               ("-icount", "shift=2,sleep=off", "-d", "int", "-D", str(log)))
        assert rc == (5 << 1) | 1, text
        logs.append(log.read_text())
    # timer interrupts and exceptions, each at the same guest instruction
    assert logs[0].count("v=20") >= 10
    assert logs[0] == logs[1]



@pytest.mark.parametrize("prog", ["qemu", "pyqemu"])
def test_query_replay_counts_instructions_and_stop_freezes_them(kernel, tmp_path, prog):
    from pcvm import PCVM
    import time
    serial = tmp_path / "com1.txt"
    vm = PCVM(qemu() if prog == "qemu" else PYQEMU,
              ["-kernel", kernel, "-append", "tests=pit", "-icount", "shift=0,sleep=off",
               "-serial", "file:%s" % serial], str(tmp_path), prog)
    try:
        assert vm.qmp("query-replay")["return"] == {"icount": 0, "mode": "none"}
        vm.qmp("cont")
        deadline = time.time() + 240
        while b"mbtest: done" not in serial.read_bytes() and time.time() < deadline:
            time.sleep(0.2)
        assert b"mbtest: done" in serial.read_bytes()
        vm.qmp("stop")
        n = vm.qmp("query-replay")["return"]["icount"]
        assert n > 10000
        time.sleep(0.3)
        # stopped: no instruction runs, guest time stands still
        assert vm.qmp("query-replay")["return"]["icount"] == n
    finally:
        vm.close()
    # without -icount QEMU reports no count
    vm = PCVM(qemu() if prog == "qemu" else PYQEMU, [], str(tmp_path), prog + "2")
    try:
        vm.qmp("cont")
        assert vm.qmp("query-replay")["return"] == {"icount": 0, "mode": "none"}
    finally:
        vm.close()
