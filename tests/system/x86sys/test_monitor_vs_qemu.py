"""The monitor against a running system-mode CPU, compared with real
qemu-system-x86_64 on the same firmware (fw_modes.S, halted in long mode at
its end): info registers, x /4i $pc, info tlb, info mem, then system_reset
runs the firmware again from the reset vector."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time

from x86sys_util import PYQEMU, build_firmware, wait_for_text

DONE = b"back rbx=EEDDCCBBAA998877\n"


class _Monitor:
    def __init__(self, prog: str, fw: str, tmp, tag: str) -> None:
        self.serial = os.path.join(str(tmp), tag + ".txt")
        sock = os.path.join(str(tmp), tag + ".qmp")
        self.proc = subprocess.Popen(
            [prog, "-M", "pc", "-nodefaults", "-display", "none", "-bios", fw,
             "-serial", "file:%s" % self.serial, "-qmp", "unix:%s,server=on,wait=off" % sock],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            self.sock = socket.socket(socket.AF_UNIX)
            try:
                self.sock.connect(sock)
                break
            except OSError:
                self.sock.close()
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.settimeout(120)
        self.f = self.sock.makefile("rw")
        self.f.readline()
        self.qmp("qmp_capabilities")

    def qmp(self, cmd: str, **args) -> dict:
        self.f.write(json.dumps({"execute": cmd, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "return" in r or "error" in r:
                return r

    def hmp(self, line: str) -> str:
        return self.qmp("human-monitor-command", **{"command-line": line})["return"]

    def close(self) -> None:
        try:
            self.qmp("quit")
        except (OSError, ValueError):
            pass
        self.sock.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _session(prog: str, fw: str, tmp, tag: str) -> dict:
    m = _Monitor(prog, fw, tmp, tag)
    try:
        assert wait_for_text(m.serial, DONE, m.proc, 120).endswith(DONE)
        out = {line: m.hmp(line) for line in ("p $pc", "info registers", "x /4i $pc",
                                              "info tlb", "info mem")}
        m.hmp("system_reset")
        out["again"] = wait_for_text(m.serial, DONE, m.proc, 120, count=2)
        return out
    finally:
        m.close()


def test_monitor_on_a_halted_long_mode_cpu_matches_qemu(real_qemu, binutils, tmp_path):
    fw = build_firmware("fw_modes.S", tmp_path)
    real = _session(real_qemu, fw, tmp_path, "real")
    ours = _session(PYQEMU, fw, tmp_path, "ours")
    assert real["again"].count(DONE) == 2
    for key in real:
        assert ours[key] == real[key], key
