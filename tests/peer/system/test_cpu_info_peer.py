"""The CPUs of a stopped PC beside real qemu-system-x86_64: ``info registers``
(one CPU and ``-a``), ``info cpus`` and ``query-cpus-fast`` at reset."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

QEMU = shutil.which("qemu-system-x86_64")
PYQEMU = os.path.join(os.path.dirname(sys.executable), "pyqemu-system-x86_64")

HMP = ["info registers", "info registers -a", "info cpus"]


def test_reference_qemu_is_installed():
    assert QEMU, "qemu-system-x86_64 (Debian qemu-system-x86) is needed for peer tests"


def _session(prog, cpu, smp):
    lines = [{"execute": "qmp_capabilities"}]
    lines += [{"execute": "human-monitor-command", "arguments": {"command-line": c}} for c in HMP]
    lines += [{"execute": "query-cpus-fast"}, {"execute": "quit"}]
    p = subprocess.run([prog, "-M", "pc", "-S", "-cpu", cpu, "-smp", smp, "-display", "none",
                        "-nodefaults", "-qmp", "stdio"],
                       input="".join(json.dumps(x) + "\n" for x in lines).encode(),
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    replies = [json.loads(x) for x in p.stdout.decode().splitlines()]
    replies = [r for r in replies if "return" in r or "error" in r][1:-1]
    out = [r["return"] for r in replies]
    # thread IDs are the host's; QOM paths of CPUs are not modelled (pyqemu's CPUs
    # are not QOM objects yet)
    out[2] = re.sub(r"thread_id=\d+", "thread_id=N", out[2])
    for c in out[3]:
        c["thread-id"] = "N"
        c["qom-path"] = "P"
    return out


@pytest.mark.slow
@pytest.mark.parametrize("cpu, smp", [("qemu64", "1"), ("Haswell-noTSX", "2"), ("EPYC", "1"),
                                      ("qemu32", "1"), ("qemu64,family=17,model=5,stepping=9", "4")])
def test_cpu_state_at_reset_matches_qemu(cpu, smp):
    assert _session(PYQEMU, cpu, smp) == _session(QEMU, cpu, smp)


def _mtree_blocks(prog, flat):
    lines = [{"execute": "qmp_capabilities"},
             {"execute": "human-monitor-command",
              "arguments": {"command-line": "info mtree -f" if flat else "info mtree"}},
             {"execute": "quit"}]
    p = subprocess.run([prog, "-M", "pc", "-S", "-smp", "2", "-display", "none", "-nodefaults", "-qmp", "stdio"],
                       input="".join(json.dumps(x) + "\n" for x in lines).encode(),
                       capture_output=True, timeout=120)
    text = [json.loads(x) for x in p.stdout.decode().splitlines() if '"return": "' in x][0]["return"]
    return text.replace("\r\n", "\n").split("\n\n")


@pytest.mark.slow
@pytest.mark.parametrize("flat", [False, True])
def test_each_cpu_has_its_address_space_in_info_mtree(flat):
    # the block of system memory starts with the same address-space lines as QEMU's
    # (the devices inside differ: not every PC device exists in pyqemu)
    def header(prog):
        for block in _mtree_blocks(prog, flat):
            if "cpu-memory-0" in block:
                return [line for line in block.split("\n") if "AS " in line or "address-space" in line]
        return None
    assert header(PYQEMU) == header(QEMU)


def _replies(prog, commands):
    lines = [{"execute": "qmp_capabilities"}] + commands + [{"execute": "quit"}]
    p = subprocess.run([prog, "-M", "pc", "-S", "-smp", "2", "-display", "none", "-nodefaults", "-qmp", "stdio"],
                       input="".join(json.dumps(x) + "\n" for x in lines).encode(),
                       capture_output=True, timeout=120)
    out = [json.loads(x) for x in p.stdout.decode().splitlines()]
    out = [r for r in out if "return" in r or "error" in r][1:-1]
    return [re.sub(r"thread_id=\d+", "thread_id=N", json.dumps(r)) for r in out]


@pytest.mark.slow
def test_default_cpu_of_the_monitor_matches_qemu():
    hmp = [{"execute": "human-monitor-command", "arguments": {"command-line": c}}
           for c in ("cpu 1", "info cpus", "cpu 5", "cpu x", "cpu", "help cpu")]
    hmp += [{"execute": "human-monitor-command", "arguments": {"command-line": c, "cpu-index": i}}
            for c, i in (("info cpus", 1), ("info registers", 1), ("info cpus", 7), ("p $eip", 1))]
    assert _replies(PYQEMU, hmp) == _replies(QEMU, hmp)
