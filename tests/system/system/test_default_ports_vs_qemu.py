"""QEMU's default serial, parallel and monitor chardevs, and what -serial mon:,
-parallel mon:, -monitor and -nodefaults change, compared through ``info chardev``
with qemu-system-x86_64 (the list is in hash-table order there: compared as sets)."""
from __future__ import annotations

import json
import shlex

import pytest

CASES = ["", "-serial null", "-serial mon:null", "-parallel mon:null", "-monitor null",
         "-serial mon:null -parallel none", "-nodefaults"]
SCRIPT = ("".join(json.dumps(x) + "\n" for x in (
    {"execute": "qmp_capabilities"},
    {"execute": "human-monitor-command", "arguments": {"command-line": "info chardev"}},
    {"execute": "quit"}))).encode()


def _chardevs(run_prog, binary, extra):
    p = run_prog([binary, "-M", "pc", "-S", "-display", "none", "-qmp", "stdio"] + shlex.split(extra),
                 input=SCRIPT, timeout=120)
    assert p.returncode == 0, p.stderr
    replies = [json.loads(x) for x in p.stdout.decode().splitlines()]
    text = [r["return"] for r in replies if isinstance(r.get("return"), str)][0]
    return sorted(text.split("\r\n"))


@pytest.mark.slow
@pytest.mark.parametrize("extra", CASES)
def test_default_chardevs_match_qemu(pyqemu_system, real_qemu, run_prog, extra):
    assert _chardevs(run_prog, pyqemu_system, extra) == _chardevs(run_prog, real_qemu, extra)
