"""A tiny synchronous QMP driver for the PC tests: start an emulator stopped
(-S) with a QMP socket, send HMP lines through human-monitor-command."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

PYQEMU = os.path.join(os.path.dirname(sys.executable), "pyqemu-system-x86_64")


class PCVM:
    def __init__(self, prog: str, args: list, tmp: str, tag: str) -> None:
        self.sock_path = os.path.join(tmp, tag + ".qmp")
        self.events: list = []
        self.proc = subprocess.Popen(
            [prog, "-M", "pc", "-S", "-display", "none", "-nodefaults",
             "-qmp", "unix:%s,server=on,wait=off" % self.sock_path] + list(args),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 30
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(self.sock_path)
                break
            except OSError:
                self.sock.close()
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("%s did not start: %s" % (prog, self.proc.stderr.read()))
                time.sleep(0.05)
        self.sock.settimeout(30)
        self.f = self.sock.makefile("rw")
        self.f.readline()
        self.qmp("qmp_capabilities")

    def qmp(self, cmd: str, **args) -> dict:
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.f.write(json.dumps(msg) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "event" in r:
                self.events.append(r["event"])
                continue
            return r

    def hmp(self, line: str) -> str:
        return self.qmp("human-monitor-command", **{"command-line": line})["return"]

    def inb(self, port: int) -> int:
        return int(self.hmp("i /b 0x%x" % port).split("=")[1], 16)

    def outb(self, port: int, val: int) -> None:
        self.hmp("o /b 0x%x 0x%x" % (port, val))

    def inl(self, port: int) -> int:
        return int(self.hmp("i /w 0x%x" % port).split("=")[1], 16)

    def outl(self, port: int, val: int) -> None:
        self.hmp("o /w 0x%x 0x%x" % (port, val))

    def wait_event(self, name: str, timeout: float = 10) -> bool:
        end = time.time() + timeout
        while name not in self.events and time.time() < end:
            self.qmp("query-status")
            time.sleep(0.05)
        return name in self.events

    def close(self) -> None:
        try:
            self.qmp("quit")
        except (OSError, ValueError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.sock.close()
        self.proc.stdout.close()
        self.proc.stderr.close()
